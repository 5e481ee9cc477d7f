"""Goal 4: matching `roster` (10,000 incoming students against 1,000,000 local ones) and how it scales.

The local roster is generated once (tests/roster_generator.py) and stored through storage.students.upsert,
as a roster import stores it, in three growing steps (a quarter, half, all of it): after each step the
full number of incoming students is matched, and at the full roster also a quarter and half of them.
Each timed run is ``node.matching.match_students`` in a fresh process (tests/bench/match_once.py): a
fresh connection and cold name caches, as in tests/bench/match_scale.py. Growth is the slope of log(time) against
log(size) over the three sizes: 1.0 is linear, below 1.0 sub-linear. Each size's time for the slope is the
fastest of its runs: the work is the same in every run, and what a busy machine adds only ever makes a run
slower, so the minimum is the estimate least moved by it (as the timeit module advises); the medians stay in
the JSON. Matching does the same work for every incoming student, so the slope with incoming students is 1.0
up to that noise, and a median of two runs had decided it.
"""

from __future__ import annotations

import json
import math
import pickle
import sys
import time
from pathlib import Path

from storage import students
from storage.database import open_database, write_transaction
from tests.bench.common import ROOT, Extras, Row, log, run_process, stats
from tests.bench.workloads import make_incoming, make_roster

BATCH = 20_000
TIME_LIMIT = 10.0


def _grow(path: Path, roster: list, start: int, stop: int) -> float:
    started = time.perf_counter()
    db = open_database(path)
    for first in range(start, stop, BATCH):
        with write_transaction(db):
            students.upsert(db, roster[first : min(stop, first + BATCH)], now="2024-09-01T00:00:00Z")
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - started


def _match(path: Path, local: list, n: int, folder: Path) -> tuple[float, float, int]:
    """Seconds to match ``n`` incoming students, the share whose proposal is the planted answer, and the
    matching process's peak RSS (KiB).

    The match runs in a process of its own, as `satchel import preview` does: in this one a million
    generated students are alive, and every full garbage collection would walk them (that alone made
    10,000 incoming students look a fifth slower, and the growth look super-linear).
    """
    planted = make_incoming(local, n)
    batch = folder / "incoming.pickle"
    batch.write_bytes(pickle.dumps([student for student, _, _ in planted]))
    run = run_process(
        [sys.executable, "-m", "tests.bench.match_once", str(path), str(batch)], cwd=ROOT
    ).check()
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    found = answer["local_sis_ids"]
    right = sum(got == expected for got, (_, expected, _) in zip(found, planted, strict=True))
    return answer["seconds"], right / n, run.max_rss_kib


def _slope(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(size)."""
    xs, ys = [math.log(s) for s in sizes], [math.log(t) for t in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def run(folder: Path, *, local: int, incoming: int, runs: int, extras: Extras) -> list[Row]:
    log(f"  goal 4: generating {local:,} local students")
    roster = make_roster(local)
    path = folder / "roster.db"
    local_sizes = [local // 4, local // 2, local]
    incoming_sizes = [incoming // 4, incoming // 2, incoming]
    by_local: dict[int, list[float]] = {}
    by_incoming: dict[int, list[float]] = {}
    accuracy: dict[str, float] = {}
    stored = 0
    for size in local_sizes:
        log(f"  goal 4: storing local students up to {size:,}")
        extras[f"goal4.store_seconds.{size}"] = round(_grow(path, roster, stored, size), 1)
        stored = size
        subset = roster[:size]
        wanted = incoming_sizes if size == local else [incoming]
        for n in wanted:
            measured = [_match(path, subset, n, folder) for _ in range(runs)]
            seconds = [elapsed for elapsed, _, _ in measured]
            extras[f"goal4.peak_rss_kib.{n}x{size}"] = max(rss for _, _, rss in measured)
            accuracy[f"{n}x{size}"] = round(measured[-1][1], 4)
            if size == local:
                by_incoming[n] = seconds
            if n == incoming:
                by_local[size] = seconds
            log(f"  goal 4: {n:,} incoming against {size:,}: {min(seconds):.2f} s")
    extras["goal4.proposal_right_share"] = accuracy
    extras["goal4.seconds_by_local"] = {str(k): stats(v).to_json() for k, v in by_local.items()}
    extras["goal4.seconds_by_incoming"] = {str(k): stats(v).to_json() for k, v in by_incoming.items()}
    full = stats(by_local[local])
    slope_in = _slope(incoming_sizes, [min(by_incoming[n]) for n in incoming_sizes])
    slope_local = _slope(local_sizes, [min(by_local[n]) for n in local_sizes])
    sizes_in = ", ".join(f"{n:,}: {min(by_incoming[n]):.2f}s" for n in incoming_sizes)
    sizes_local = ", ".join(f"{n:,}: {min(by_local[n]):.2f}s" for n in local_sizes)
    return [
        Row("4a", f"match {incoming:,} against {local:,}", f"limit {TIME_LIMIT:g} s", "match_students", "s",
            f"< {TIME_LIMIT:g} s", None, full, full.median / TIME_LIMIT, full.median < TIME_LIMIT,
            note=f"proposal right for {accuracy[f'{incoming}x{local}']:.1%} of incoming students"),
        Row("4b", "growth with incoming students", "linear (slope 1)", "log-log slope", "exponent", "<= 1.0",
            None, stats([slope_in]), slope_in, slope_in <= 1.0, note=f"against {local:,}, fastest run: {sizes_in}"),
        Row("4c", "growth with local students", "linear (slope 1)", "log-log slope", "exponent", "< 1.0",
            None, stats([slope_local]), slope_local, slope_local < 1.0,
            note=f"{incoming:,} incoming, fastest run: {sizes_local}"),
    ]  # fmt: skip
