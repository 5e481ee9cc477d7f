"""A directory's mirror feed, signed once and served again until what it publishes changes.

The feed (``GET /satchel/v1/directory/entries``) is public and lists every approved entry: building and
signing it for 13,000 entries of 2.5 KB took 0.9 s, every request. It is rebuilt when the approved
entries or the mirrors change (a stamp read with one aggregate query per request), or once it is a minute
old, so that a change the stamp cannot see (two edits of one entry within its timestamp's second) still
shows soon. Signing runs off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from node import directory_service
from node.home import Node
from protocol.directory import sign_listing
from storage import directory as store

MAX_AGE_SECONDS = 60.0


@dataclass(slots=True)
class FeedCache:
    max_age: float = MAX_AGE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _stamp: tuple | None = None
    _made: float = 0.0
    _body: bytes = b""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def feed(self, node: Node) -> bytes:
        """The signed feed, from the cache while it is current."""
        async with self._lock:  # concurrent requests after a change wait for one rebuild, not one each
            stamp = store.published_stamp(node.db)
            if stamp == self._stamp and self.clock() - self._made < self.max_age:
                return self._body
            made = self.clock()
            listing = directory_service.published_listing(node)
            self._body = await asyncio.to_thread(sign_listing, listing, node.current_keys().identity)
            self._stamp, self._made = stamp, made
            return self._body


FEED_CACHE = web.AppKey("feed_cache", FeedCache)
