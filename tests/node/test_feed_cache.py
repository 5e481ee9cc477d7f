"""The directory's mirror feed is signed once and served again until what it publishes changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.feed_cache import FeedCache
from node.home import open_node
from protocol import SatchelError
from protocol.directory import verify_listing
from storage.database import write_transaction

from support import DEV_ENV, run_cli

NOW = "2026-11-23T00:00:00Z"


@pytest.fixture
def directory(tmp_path: Path):
    home = tmp_path / "directory.example.gov"
    run_cli(home, "directory", "init", "--domain", "directory.example.gov", "--name", "State Board", "--state",
            "IL", "--city", "Springfield", "--zip", "62777", "--url", "http://127.0.0.1:9", env=DEV_ENV)  # fmt: skip
    node = open_node(home, DEV_ENV)
    try:
        yield node
    finally:
        node.close()


def _add(node, domain: str, status: str = "approved", updated: str = NOW) -> None:
    with write_transaction(node.db):
        node.db.execute(
            "INSERT INTO directory_entries (domain, status, origin, name, state, city, zip, nces_id, descriptor,"
            " entry, joined_at, updated_at) VALUES (?, ?, 'directory.example.gov', ?, 'IL', 'City', '62700', '',"
            " x'00', ?, ?, ?)",
            [domain, status, domain, f"entry of {domain}".encode(), NOW, updated],
        )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _entries(node, body: bytes) -> int:
    key = node.current_keys().identity.public_key
    return len(verify_listing(body, directory="directory.example.gov", directory_key=key).listing.entries)


def test_the_feed_is_rebuilt_only_when_what_it_publishes_changes_or_it_is_old(directory) -> None:
    clock = Clock()
    cache = FeedCache(max_age=60, clock=clock)

    async def scenario() -> None:
        _add(directory, "a.example.org")
        first = await cache.feed(directory)
        assert _entries(directory, first) == 1
        assert await cache.feed(directory) is first  # same bytes object: not signed again
        _add(directory, "p.example.org", status="pending")
        assert await cache.feed(directory) is first  # a pending entry is not published
        _add(directory, "b.example.org")
        second = await cache.feed(directory)
        assert second is not first and _entries(directory, second) == 2
        clock.now += 61
        third = await cache.feed(directory)
        assert third is not second and _entries(directory, third) == 2

    asyncio.run(scenario())


def test_a_district_gets_the_coded_error_every_time(tmp_path: Path, make_home) -> None:
    node = open_node(make_home(), DEV_ENV)
    try:
        cache = FeedCache()
        for _ in range(2):
            with pytest.raises(SatchelError) as refused:
                asyncio.run(cache.feed(node))
            assert refused.value.code == "directory.not_a_directory"
    finally:
        node.close()
