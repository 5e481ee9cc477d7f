"""Progress of long work: the node calls ``progress(done, total)`` as it goes, in the work's own unit.

The node only counts; whether and how to show it is the caller's business (the CLI draws one line on a
terminal, see cli.progress). Work nobody watches passes no callable, and costs nothing more.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

Progress = Callable[[int, int], None]


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ReadMeter:
    """Bytes read so far of ``total`` (one file or several read one after another), told to ``progress`` as
    each chunk is read."""

    CHUNK = 256 * 1024

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self._progress = total, 0, progress

    def chunks(self, stream: _Readable) -> Iterator[bytes]:
        while chunk := stream.read(self.CHUNK):
            self.done += len(chunk)
            if self._progress is not None:
                self._progress(min(self.done, self.total), self.total)
            yield chunk


class CountingReader:
    """Reads through to ``source``, reporting how many of ``total`` bytes have been read so far."""

    def __init__(self, source: _Readable, total: int, progress: Progress) -> None:
        self._source = source
        self._total = total
        self._progress = progress
        self.done = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        if data:
            self.done += len(data)
            self._progress(self.done, self._total)
        return data


class ProgressFile(io.BufferedReader):
    """A file opened for reading whose reads report the position reached, of its whole size.

    An ``io.BufferedReader`` so that aiohttp streams an upload from it as from any open file (with its
    Content-Length); the position, not a running sum, is reported, so a payload that seeks back to
    send again starts over rather than passing 100%.
    """

    def __init__(self, path: Path, progress: Progress) -> None:
        raw = io.FileIO(path, "rb")
        super().__init__(raw, buffer_size=1 << 20)
        self._total = os.fstat(raw.fileno()).st_size
        self._progress = progress

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if data:
            self._progress(self.tell(), self._total)
        return data
