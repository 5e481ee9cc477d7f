"""One line of progress on the terminal for long commands: ``Sealing  312 MiB of 1.0 GiB  (30%)``.

Shown on standard error and only when it is a terminal, so that scripts, pipes and ``--json`` output see
nothing of it; ``SATCHEL_PROGRESS=1`` shows it anyway (``0`` never). The line is redrawn in place at most
a few times a second, and ends with a newline once the work is done or has failed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

INTERVAL = 0.2  # seconds between redraws: often enough to look alive, rarely enough to cost nothing


def wanted(stream: TextIO) -> bool:
    setting = os.environ.get("SATCHEL_PROGRESS", "")
    if setting in ("0", "1"):
        return setting == "1"
    return stream.isatty()


class ProgressLine:
    """A ``node.progress.Progress`` callable drawing ``label done of total (pct%)``; ``unit`` is "bytes"
    (shown in KiB/MiB/GiB) or a noun for counted things ("students"). ``ends`` ends the line once all is
    done, for a step whose next step draws a line of its own."""

    def __init__(
        self,
        label: str,
        *,
        unit: str = "bytes",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        ends: bool = False,
    ) -> None:
        self._label = label
        self._ends = ends
        self._unit = unit
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = wanted(self._stream) if enabled is None else enabled
        self._clock = clock
        self._last = float("-inf")
        self._width = 0
        self._lock = threading.Lock()  # sealing and opening report from worker threads too

    def _amount(self, count: int) -> str:
        if self._unit != "bytes":
            return f"{count:,}"
        from storage.free_space import size_text  # not at import: quick commands load no storage code

        return size_text(count)

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if done < total and now - self._last < INTERVAL:
            return
        percent = f" ({100 * done // total}%)" if total > 0 else ""
        noun = "" if self._unit == "bytes" else f" {self._unit}"
        self._draw(f"{self._label} {self._amount(done)} of {self._amount(total)}{noun}{percent}", now)
        if self._ends and done >= total:
            self.close()

    def phase(self, text: str) -> None:
        """A step with nothing to count yet ("Reading the roster...")."""
        if self.enabled:
            self._draw(text, self._clock())

    def _draw(self, text: str, now: float) -> None:
        with self._lock:
            self._last = now
            # Pad over the end of a longer line drawn before; \r returns to the start of the line.
            self._stream.write("\r" + text.ljust(self._width))
            self._stream.flush()
            self._width = len(text)

    def close(self) -> None:
        with self._lock:
            if self.enabled and self._width:
                self._stream.write("\n")
                self._stream.flush()
                self._width = 0


@contextmanager
def progress_line(label: str, *, unit: str = "bytes", ends: bool = False) -> Iterator[ProgressLine]:
    line = ProgressLine(label, unit=unit, ends=ends)
    try:
        yield line
    finally:
        line.close()
