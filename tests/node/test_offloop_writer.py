"""node.offloop_writer: an upload's chunks reach the file in order, off the event loop's thread."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from node.offloop_writer import OffLoopWriter, finish_off_loop


class _SlowDisk:
    """A real file whose writes take a while, as a gigabyte into a virtual machine's page cache does."""

    def __init__(self, path: Path, delay: float, fail_at: int | None = None) -> None:
        self._file = path.open("wb")
        self._delay = delay
        self._fail_at = fail_at
        self.writes = 0
        self.threads: set[int] = set()

    def write(self, data: bytes) -> int:
        self.threads.add(threading.get_ident())
        time.sleep(self._delay)
        self.writes += 1
        if self.writes == self._fail_at:
            raise OSError(28, "No space left on device")
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()


def test_chunks_arrive_in_order_while_the_loop_keeps_running(tmp_path: Path) -> None:
    chunks = [os.urandom(n) for n in (1, 70_000, 3, 1 << 20, 0, 5)]
    disk = _SlowDisk(tmp_path / "out", delay=0.05)
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        writer = OffLoopWriter(disk.write)
        for chunk in chunks:
            await writer.write(chunk)
        await writer.drain()
        stop.set()
        await task

    asyncio.run(main())
    disk.close()
    assert (tmp_path / "out").read_bytes() == b"".join(chunks)
    assert threading.get_ident() not in disk.threads  # never on the loop's thread
    # Six writes of 50 ms: a loop blocked by them would have ticked about once; this one ticked throughout.
    assert ticks >= 20


def test_a_failed_write_is_raised_and_settle_waits_without_raising(tmp_path: Path) -> None:
    disk = _SlowDisk(tmp_path / "out", delay=0.01, fail_at=2)

    async def main() -> None:
        writer = OffLoopWriter(disk.write)
        await writer.write(b"one")
        await writer.write(b"two")  # fails on the worker thread: reported by the next call
        with pytest.raises(OSError, match="No space"):
            await writer.write(b"three")  # not started: the bytes before it are not all written
        assert disk.writes == 2
        await writer.drain()  # nothing left in flight

    asyncio.run(main())
    disk.close()
    assert (tmp_path / "out").read_bytes() == b"one"


def test_settle_swallows_the_error_of_a_failing_block(tmp_path: Path) -> None:
    disk = _SlowDisk(tmp_path / "out", delay=0.01, fail_at=1)

    async def main() -> None:
        writer = OffLoopWriter(disk.write)
        await writer.write(b"lost")
        await writer.settle()
        assert disk.writes == 1

    asyncio.run(main())
    disk.close()


def test_finish_off_loop_runs_off_the_loop_and_a_cancellation_waits_for_the_call() -> None:
    events: list[str] = []
    threads: set[int] = set()

    def slow_sync(label: str) -> str:
        threads.add(threading.get_ident())
        time.sleep(0.2)
        events.append(f"{label} done")
        return label

    async def main() -> None:
        assert await finish_off_loop(slow_sync, "first") == "first"
        task = asyncio.create_task(finish_off_loop(slow_sync, "second"))
        await asyncio.sleep(0.05)  # the call is running on its thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        events.append("cancelled")  # the caller's `with` would close the file here: after the call

    asyncio.run(main())
    assert events == ["first done", "second done", "cancelled"]
    assert threading.get_ident() not in threads


def test_finish_off_loop_raises_the_call_s_error() -> None:
    def failing() -> None:
        raise OSError(5, "Input/output error")

    async def main() -> None:
        with pytest.raises(OSError, match="Input/output"):
            await finish_off_loop(failing)

    asyncio.run(main())
