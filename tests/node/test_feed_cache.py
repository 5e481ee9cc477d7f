"""The directory's mirror feed comes in pages, each signed once and served again until what it publishes
changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.directory_service import feed_query
from node.feed_cache import FeedCache
from node.home import open_node
from node.keys_admin import revoke, rotate
from protocol import InvalidInput, SatchelError
from protocol.directory import (
    FEED_PAGE_BYTES,
    FEED_PAGE_MAX_ENTRIES,
    LISTING_PURPOSE,
    MAX_DOMAIN_LENGTH,
    MAX_LISTING_BYTES,
    Listing,
    verify_listing,
)
from protocol.signed_document import verify_document
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


def _add(node, domain: str, status: str = "approved", updated: str = NOW, entry: bytes | None = None) -> None:
    with write_transaction(node.db):
        node.db.execute(
            "INSERT INTO directory_entries (domain, status, published, origin, name, state, city, zip, nces_id,"
            " descriptor, entry, joined_at, updated_at) VALUES (?, ?, ?, 'directory.example.gov', ?, 'IL', 'City',"
            " '62700', '', x'00', ?, ?, ?)",
            [domain, status, status == "approved", domain, entry or f"entry of {domain}".encode(), NOW, updated],
        )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _listing(node, body: bytes) -> Listing:
    key = node.current_keys().identity.public_key
    return verify_listing(body, directory="directory.example.gov", directory_key=key).listing


def _entries(node, body: bytes) -> int:
    return len(_listing(node, body).entries)


def _walk(node, cache: FeedCache, limit: int) -> list[list[bytes]]:
    """Every page of the feed, following ``next`` as a mirror does."""
    pages, after = [], ""
    while True:
        listing = _listing(node, asyncio.run(cache.feed(node, after=after, limit=limit)))
        pages.append(list(listing.entries))
        if listing.next is None:
            return pages
        after = listing.next


def test_the_feed_pages_through_every_approved_entry_in_domain_order(directory) -> None:
    for name in ("e", "a", "d", "b", "c"):
        _add(directory, f"{name}.example.org")
    _add(directory, "bb.example.org", status="pending")
    cache = FeedCache()
    assert _walk(directory, cache, limit=2) == [
        [b"entry of a.example.org", b"entry of b.example.org"],
        [b"entry of c.example.org", b"entry of d.example.org"],
        [b"entry of e.example.org"],
    ]
    assert _walk(directory, cache, limit=5) == [[f"entry of {n}.example.org".encode() for n in "abcde"]]
    # A page that comes out exactly full says so only if more follow.
    assert _walk(directory, cache, limit=1)[-1] == [b"entry of e.example.org"]


def test_a_page_holds_about_feed_page_bytes_of_entries_and_at_least_one(directory) -> None:
    big = FEED_PAGE_BYTES // 2 + 1
    for name in "abc":
        _add(directory, f"{name}.example.org", entry=name.encode() * big)
    _add(directory, "d.example.org", entry=b"d" * (FEED_PAGE_BYTES + 1))  # larger than a page: alone
    pages = _walk(directory, FeedCache(), limit=FEED_PAGE_MAX_ENTRIES)
    assert [[e[:1] for e in page] for page in pages] == [[b"a"], [b"b"], [b"c"], [b"d"]]


def test_pages_are_cached_each_and_the_oldest_asked_for_goes_first(directory) -> None:
    for name in "abcd":
        _add(directory, f"{name}.example.org")
    cache = FeedCache(max_pages=2)

    async def scenario() -> None:
        first = await cache.feed(directory, after="", limit=1)
        second = await cache.feed(directory, after="a.example.org", limit=1)
        assert await cache.feed(directory, after="", limit=1) is first  # kept, now the newest
        await cache.feed(directory, after="b.example.org", limit=1)  # a third page evicts the oldest asked for
        assert await cache.feed(directory, after="", limit=1) is first
        assert await cache.feed(directory, after="a.example.org", limit=1) is not second
        _add(directory, "e.example.org")  # what is published changed: every page is signed again
        assert await cache.feed(directory, after="", limit=1) is not first

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("after", "limit", "field"),
    [
        (None, "0", "limit"), (None, "1001", "limit"), (None, "-1", "limit"), (None, "ten", "limit"),
        (None, "\u0661", "limit"), (None, "", "limit"), (None, "9" * 40, "limit"),
        ("x" * (MAX_DOMAIN_LENGTH + 1), None, "after"),
    ],
)  # fmt: skip
def test_feed_queries_out_of_range_are_refused_naming_the_parameter(after, limit, field) -> None:
    with pytest.raises(InvalidInput) as refused:
        feed_query(after, limit)
    assert refused.value.field == field and refused.value.hint


def test_feed_queries_default_to_the_first_and_largest_page() -> None:
    assert feed_query(None, None) == ("", FEED_PAGE_MAX_ENTRIES)
    assert feed_query("a.example.org", "0007") == ("a.example.org", 7)


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


def test_a_page_signed_by_a_key_since_replaced_is_not_served_again(directory) -> None:
    """Within the minute, with nothing published changed: the key alone makes the page stale."""
    run_cli(directory.config.home, "users", "add", "op", "--email", "op@example.gov", "--name", "Op", "--role",
            "admin")  # fmt: skip
    cache = FeedCache(clock=Clock())

    def signer() -> str:
        body = asyncio.run(cache.feed(directory))
        return verify_document(body, purpose=LISTING_PURPOSE, max_bytes=MAX_LISTING_BYTES).signer.key_id

    old = directory.current_keys().identity.public_key.key_id
    assert signer() == old
    new = rotate(directory, actor="op", use="identity")
    assert signer() == new
    revoke(directory, actor="op", key_id=new)  # the new key was compromised: the old one signs again
    assert signer() == old
