"""Fixtures shared by the tests that run a real Satchel node against the outside implementations beside this
file. The outsider modules themselves stay free of Satchel's imports (test_outsiders_independent.py); only the
fixtures here reach into `support`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import outsider_node as n
from support import District, free_port, make_district

SATCHEL = "b.example.org"
OUTSIDE = "outside.example.net"


@pytest.fixture
def district(tmp_path: Path) -> Iterator[District]:
    """Satchel's district (b.example.org), started, with the sample roster and a coordinator (coord)."""
    d = make_district(tmp_path, SATCHEL)
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
async def outside() -> AsyncIterator[n.OutsideNode]:
    """The outside node of outsider_node.py (outside.example.net), serving on a free loopback port."""
    node = n.OutsideNode(OUTSIDE, free_port())
    await node.start()
    try:
        yield node
    finally:
        await node.stop()
