"""A directory's mirror feed, its pages signed once and served again until what it publishes changes.

The feed (``GET /satchel/v1/directory/entries``) is public and pages through every approved entry: when it
was one listing, building and signing it for 13,000 entries of 2.5 KB took 0.9 s, every request. A page is
rebuilt when the published entries, the mirrors or the directory's identity key change (a stamp read with
one aggregate query per request), or once it is a minute old, so that a change the stamp cannot see (two
edits of one entry within its timestamp's second) still shows soon. The last MAX_PAGES pages asked for
are kept (a mirror walks them in order, so a few suffice; a caller inventing cursors only evicts). Signing
runs off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from node import directory_resign, directory_service
from node.home import Node
from protocol.directory import FEED_PAGE_MAX_ENTRIES, sign_listing
from storage import directory as store

MAX_AGE_SECONDS = 60.0
MAX_PAGES = 8


@dataclass(slots=True)
class FeedCache:
    max_age: float = MAX_AGE_SECONDS
    clock: Callable[[], float] = time.monotonic
    max_pages: int = MAX_PAGES
    _stamp: tuple | None = None
    # (after, limit) -> (when it was made, signed page), oldest first
    _pages: OrderedDict[tuple[str, int], tuple[float, bytes]] = field(default_factory=OrderedDict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def feed(self, node: Node, *, after: str = "", limit: int = FEED_PAGE_MAX_ENTRIES) -> bytes:
        """The signed page of the feed after ``after``, from the cache while it is current."""
        async with self._lock:  # concurrent requests after a change wait for one rebuild, not one each
            key = node.current_keys().identity
            # A page signed by a key since replaced (rotated, or revoked) must not be served again: whoever
            # follows the directory's key verifies with the new one.
            # So must one vouching for an earlier key of the directory's once it is revoked (directory_resign).
            vouched = tuple(k.key_id for k in directory_resign.vouched_keys(node))
            stamp = (*store.published_stamp(node.db), key.public_key.key_id, vouched)
            if stamp != self._stamp:
                self._pages.clear()
                self._stamp = stamp
            page = (after, limit)
            kept = self._pages.get(page)
            if kept is not None and self.clock() - kept[0] < self.max_age:
                self._pages.move_to_end(page)
                return kept[1]
            made = self.clock()
            listing = directory_service.feed_page(node, after=after, limit=limit)
            body = await asyncio.to_thread(sign_listing, listing, key)
            self._pages[page] = (made, body)
            self._pages.move_to_end(page)
            while len(self._pages) > self.max_pages:
                self._pages.popitem(last=False)
            return body


FEED_CACHE = web.AppKey("feed_cache", FeedCache)
