"""Shared fixtures. Nothing here mocks Satchel's own parts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from node.home import Node, init_home, open_node

from support import node_fields, run_cli

settings.register_profile(
    "satchel", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60
)
# SATCHEL_HYPOTHESIS=deep: many more examples for every property test that does not set its own, to hunt
# for inputs the usual 60 miss (a run of tests/protocol takes minutes instead of seconds).
settings.register_profile("deep", parent=settings.get_profile("satchel"), max_examples=1500)
settings.load_profile("deep" if os.environ.get("SATCHEL_HYPOTHESIS") == "deep" else "satchel")
# Tests name their home and operator explicitly; a developer's environment must not leak in.
os.environ.pop("SATCHEL_HOME", None)
os.environ.pop("SATCHEL_USER", None)


@pytest.fixture
def make_home(tmp_path: Path) -> Callable[..., Path]:
    """Create a real home on disk with an admin and a coordinator, returning its path."""

    def factory(domain: str = "a.example.org", *, url: str = "http://127.0.0.1:8440") -> Path:
        home = tmp_path / domain
        init_home(home, node=node_fields(domain, url))
        run_cli(
            home,
            "users",
            "add",
            "admin",
            "--email",
            f"admin@{domain}",
            "--name",
            "Ada Admin",
            "--role",
            "admin",
        )
        run_cli(home, "users", "add", "coord", "--email", f"coord@{domain}", "--name", "Cory Coordinator",
                "--role", "coordinator", "--as", "admin")  # fmt: skip
        return home

    return factory


@pytest.fixture
def node(make_home: Callable[..., Path]) -> Iterator[Node]:
    opened: Node = open_node(make_home())
    yield opened
    opened.close()
