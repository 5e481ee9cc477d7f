"""Writing a large upload to a file, and syncing it, without stalling the event loop.

A gigabyte envelope written from the event loop's thread blocked the server for seconds (on a virtual
machine the kernel can take 1-3 s to take a gigabyte into its page cache): every other peer's request
waited behind it. Here each write runs on the loop's default executor while the next chunk is read from
the socket; one write is in flight at a time, so the bytes reach the file in order and at most two
chunks are held in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class OffLoopWriter:
    """``await write(chunk)`` queues the chunk behind the previous one; ``await drain()`` before closing.

    ``write`` is what each chunk is given to on the worker thread: a file's ``write``, or a hash's
    ``update`` (hashlib releases the GIL too), which must see the chunks in order as well.
    """

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._pending: asyncio.Future[object] | None = None

    async def write(self, chunk: bytes) -> None:
        """Start writing ``chunk`` once the previous write is done (raises that write's error)."""
        await self.drain()
        self._pending = asyncio.get_running_loop().run_in_executor(None, self._write, chunk)

    async def drain(self) -> None:
        """Wait for the write in flight and raise its error; call it before the file is flushed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def settle(self) -> None:
        """Wait for the write in flight, whatever became of it: for a block that is failing anyway, so the
        file is not closed and deleted under a write (the block's own error is the one to report)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)


async def finish_off_loop(call: Callable[..., T], *args: object) -> T:
    """``call(*args)`` on the loop's default executor (an fsync, a hash of a file), its result or error.

    Should the awaiting task be cancelled meanwhile, the cancellation waits until the call has returned:
    the caller's ``with`` then closes the file after the call is done with it, not under it."""
    future = asyncio.get_running_loop().run_in_executor(None, call, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.gather(future, return_exceptions=True)
        raise
