"""A TCP proxy on loopback that drops an envelope upload part way, as a district's failing link does.

Everything is forwarded byte for byte in both directions. Once a request line naming
``/satchel/v1/envelopes`` (or the ``path`` given) goes up a connection, the bytes sent up after it are
counted; with ``cut_after`` set, the connection is dropped when that many have gone by, once; with
``hold_after`` set, the upload stops there (the connection stays open, nothing more goes up) until
``release()``. ``uploads`` keeps the count of every connection that carried an envelope request, so a test
sees how much a resumed upload sent again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable


class CuttingProxy:
    def __init__(self, port: int, target_port: int, path: str = "/satchel/v1/envelopes") -> None:
        """Listen on ``port`` (a node's base_url names it) and forward to the node at ``target_port``."""
        self._watched = b" " + path.encode()
        self.port = port
        self.target_port = target_port
        self.cut_after: int | None = None
        self.hold_after: int | None = None
        self.held = threading.Event()
        self._released: asyncio.Event | None = None
        self.cuts = 0
        self.uploads: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._released is not None:
            self._loop.call_soon_threadsafe(self._released.set)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut_next_upload(self, after: int) -> None:
        self.cut_after = after

    def hold_next_upload(self, after: int) -> None:
        self.hold_after = after

    def release(self) -> None:
        released = self._released
        assert released is not None, "no upload is held"
        self._loop.call_soon_threadsafe(released.set)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _serve(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        up = asyncio.ensure_future(self._pump(down_r, up_w, self._watch_upload(down_w)))
        await self._pump(up_r, down_w)
        await asyncio.gather(up, return_exceptions=True)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
        watch: Callable[[bytes], Awaitable[bool]] | None = None,
    ) -> None:  # fmt: skip
        """Forward until ``src`` ends, or until ``watch`` (shown each block before it goes) says to stop."""
        try:
            while data := await src.read(1 << 16):
                if watch is not None and not await watch(data):
                    return
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    def _watch_upload(self, back: asyncio.StreamWriter) -> Callable[[bytes], Awaitable[bool]]:
        """Counts what goes up after an envelope request line; holds or drops the upload where told."""
        counted: int | None = None
        index = -1
        tail = b""  # a request line may come in two reads

        async def watch(data: bytes) -> bool:
            nonlocal counted, index, tail
            if counted is None:
                probe, tail = tail + data, (tail + data)[-len(self._watched) :]
                if (at := probe.find(self._watched)) < 0:
                    return True
                counted, index = len(probe) - at, len(self.uploads)
                self.uploads.append(0)
            else:
                counted += len(data)
            self.uploads[index] = counted
            if self.hold_after is not None and counted >= self.hold_after:
                self.hold_after = None
                self._released = asyncio.Event()
                self.held.set()
                await self._released.wait()
            if self.cut_after is not None and counted >= self.cut_after:
                self.cut_after = None
                self.cuts += 1
                # The sender's connection is reset; the receiver's is closed after what was forwarded (a reset
                # would make its kernel drop what it had not read yet, an amount that depends on how busy the
                # machine is): it sees its peer go mid-body.
                back.transport.abort()
                return False
            return True

        return watch
