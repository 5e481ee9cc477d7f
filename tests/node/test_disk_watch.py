"""The disk watch: when to tell people the disk runs low, and that they are told once, not every ten minutes."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.disk_watch import WARN_MARGIN, warning_due, watch_disk
from node.home import init_home, open_node
from node.notify import inbox

from support import node_fields

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("free", "reserve", "warned_hours_ago", "due"),
    [
        (10 << 30, 256 << 20, None, False),  # plenty
        ((256 << 20) + WARN_MARGIN, 256 << 20, None, False),  # exactly the margin: not yet
        ((256 << 20) + WARN_MARGIN - 1, 256 << 20, None, True),
        (100 << 20, 256 << 20, None, True),  # already under the reserve
        (100 << 20, 256 << 20, 3, False),  # told three hours ago
        (100 << 20, 256 << 20, 24, True),  # a day later: again
        (WARN_MARGIN - 1, 0, None, True),  # no reserve: still told before the disk is full
    ],
)
def test_when_a_warning_is_due(free: int, reserve: int, warned_hours_ago: int | None, due: bool) -> None:
    warned = None if warned_hours_ago is None else NOW - timedelta(hours=warned_hours_ago)
    assert warning_due(free, reserve, warned, NOW) is due


@given(st.integers(0, 1 << 42), st.integers(0, 1 << 40), st.integers(0, 100))
def test_never_due_twice_within_a_day(free: int, reserve: int, hours: int) -> None:
    if warning_due(free, reserve, None, NOW):
        assert warning_due(free, reserve, NOW, NOW + timedelta(hours=hours)) is (hours >= 24)
    else:
        assert not warning_due(free, reserve, NOW - timedelta(days=7), NOW)


def _home(tmp_path: Path, reserve_mib: int):
    home = tmp_path / "home"
    if not home.exists():
        init_home(home, node=node_fields("a.example.org"))
    return open_node(home, {"SATCHEL_STORAGE_RESERVE_MIB": str(reserve_mib)})


def test_a_low_disk_is_told_once_and_again_after_it_recovered(tmp_path: Path) -> None:
    # A reserve at the disk's real free space makes this disk "low" for the node, whatever its size.
    low = shutil.disk_usage(tmp_path).free >> 20
    node = _home(tmp_path, low)
    try:
        assert watch_disk(node) is True
        [told] = inbox(node)
        assert told["subject"] == "Satchel: disk space low on a.example.org"
        assert "storage.reserve_mib" in (told["body"] or "") and "free space on that disk" in (told["body"] or "")
        assert watch_disk(node) is False and len(inbox(node)) == 1  # ten minutes later: not again
    finally:
        node.close()
    if shutil.disk_usage(tmp_path).free < WARN_MARGIN:
        return  # this disk is low even with no reserve: it cannot be made to look recovered
    node = _home(tmp_path, 0)  # space freed (here: the reserve lowered) and the disk has room again
    try:
        assert watch_disk(node) is False
    finally:
        node.close()
    node = _home(tmp_path, low)  # low once more: news again
    try:
        assert watch_disk(node) is True and len(inbox(node)) == 2
    finally:
        node.close()
