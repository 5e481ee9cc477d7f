"""What every benchmark shares: statistics over runs, goal rows, timing and memory of whole processes.

Each goal is a ratio against a baseline measured in the same run on the same bytes, so a busy machine
slows both sides; runs of a baseline and of Satchel are interleaved for the same reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SATCHEL = str(BIN / "satchel")
SPAWN = Path(__file__).with_name("spawn.py")
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True, slots=True)
class Stats:
    """Several runs of one measurement, in the unit of the row that shows it."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def text(self, digits: int = 1) -> str:
        if len(self.values) == 1:
            return f"{self.median:,.{digits}f}"
        return f"{self.median:,.{digits}f} ({self.min:,.{digits}f}-{self.max:,.{digits}f})"

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.min, "max": self.max, "runs": list(self.values)}


def stats(values: Sequence[float]) -> Stats:
    if not values:
        raise ValueError("no runs to summarise")
    return Stats(tuple(values))


def throughput(nbytes: int, seconds: Sequence[float]) -> Stats:
    """MiB/s for each run's duration."""
    return stats([nbytes / MiB / s for s in seconds])


@dataclass(slots=True)
class Row:
    """One line of the results table: a goal (or an informational figure) with its verdict."""

    goal: str
    title: str
    baseline: str
    measured: str
    unit: str
    target: str
    baseline_stats: Stats | None = None
    measured_stats: Stats | None = None
    ratio: float | None = None
    met: bool | None = None  # None: skipped (a tool is missing) or informational
    info: bool = False
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "goal": self.goal, "title": self.title, "baseline": self.baseline, "measured": self.measured,
            "unit": self.unit, "target": self.target, "ratio": self.ratio, "met": self.met, "info": self.info,
            "note": self.note,
            "baseline_stats": self.baseline_stats.to_json() if self.baseline_stats else None,
            "measured_stats": self.measured_stats.to_json() if self.measured_stats else None,
        }  # fmt: skip


def ratio_row(
    goal: str, title: str, *, baseline: str, measured: str, base: Stats, got: Stats, unit: str,
    at_least: float, note: str = "", info: bool = False,
) -> Row:  # fmt: skip
    """A higher-is-better goal: median measured over median baseline must reach ``at_least``."""
    ratio = got.median / base.median
    return Row(goal, title, baseline, measured, unit, f">= {at_least:g}x", base, got, ratio,
               None if info else ratio >= at_least, info, note)  # fmt: skip


@dataclass(slots=True)
class Extras:
    """Numbers that are no goal row but explain one (fixed costs, profiles, sizes): kept in the JSON."""

    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value


# -- processes ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessRun:
    argv: tuple[str, ...]
    wall: float
    max_rss_kib: int
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> ProcessRun:
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv[:3])} exited {self.returncode}: {self.stderr[-2000:]}")
        return self


def run_process(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
    timeout: float = 600.0,
) -> ProcessRun:  # fmt: skip
    """Run a whole process; its wall time from start to exit and its own peak RSS (see spawn.py).

    Output goes to temporary files rather than pipes, which nobody would read while the command runs.
    """
    with tempfile.TemporaryDirectory(prefix="satchel-run-") as scratch:
        result, out_path, err_path = (
            Path(scratch) / "result.json",
            Path(scratch) / "out",
            Path(scratch) / "err",
        )
        with out_path.open("wb") as out, err_path.open("wb") as err:
            # Its own session, so that a command that overruns is stopped with everything it started.
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(SPAWN), str(result), *argv], stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, cwd=cwd, env={**os.environ, **(env or {})}, start_new_session=True,
            )  # fmt: skip
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        measured = json.loads(result.read_text()) if result.exists() else {}
        return ProcessRun(
            tuple(argv), measured.get("wall", float("nan")), measured.get("max_rss_kib", 0),
            measured.get("returncode", proc.returncode), out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"),
        )  # fmt: skip


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a live process, in KiB, from /proc (psutil is not needed)."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(rest.split()[0])
    except FileNotFoundError:
        pass
    return found


class RssSampler:
    """Samples VmRSS of some processes every ``interval`` seconds on a thread, for a memory timeline."""

    def __init__(self, pids: Mapping[str, int], interval: float = 0.05) -> None:
        self._pids = dict(pids)
        self._interval = interval
        self._stop = threading.Event()
        self.peak_kib: dict[str, int] = dict.fromkeys(self._pids, 0)
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self._pids.items():
                rss = proc_memory(pid).get("VmRSS", 0)
                self.peak_kib[name] = max(self.peak_kib[name], rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def background_load(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes while the benchmark waits: a noise indicator for the results."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(seconds)
        busy1, total1 = _cpu_times()
    except OSError:
        return float("nan")
    cores = os.cpu_count() or 1
    return round(cores * (busy1 - busy0) / max(1, total1 - total0), 2)


def tool(name: str) -> str | None:
    return shutil.which(name)


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def drop_file(path: Path) -> None:
    """Before a run that writes ``path``: remove it, so every run writes a new file (no truncation cost),
    then flush what earlier runs left dirty in the page cache, so that their writeback (kernel threads on
    the same two cores, and throttled writers) does not land inside this run, whichever side it times."""
    path.unlink(missing_ok=True)
    os.sync()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
