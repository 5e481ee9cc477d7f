"""Progress of long work: the node calls ``progress(done, total)`` as it goes, in the work's own unit.

The node only counts; whether and how to show it is the caller's business (the CLI draws one line on a
terminal, see cli.progress). Work nobody watches passes no callable, and costs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

Progress = Callable[[int, int], None]

T = TypeVar("T")


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


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


def counted(items: Iterable[T], total: int, progress: Progress, *, every: int = 1000) -> Iterator[T]:
    """``items`` one by one, reporting every ``every`` items how many of ``total`` have been taken."""
    done = 0
    for item in items:
        yield item
        done += 1
        if done % every == 0:
            progress(done, total)
    progress(done, total)
