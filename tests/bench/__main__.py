"""`python -m tests.bench` (or `make bench`): run the goals of issue 8, print the table, write the JSON.

    python -m tests.bench                  # every goal at the issue's sizes (about 10 minutes)
    python -m tests.bench --only 1,5       # some goals
    python -m tests.bench --quick          # small sizes: a smoke run of the harness, not of the goals

Results go to tests/bench/results/latest.json (and a copy named by the time of the run); the table is
printed at the end, with --markdown also as Markdown for the README's Performance section.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.common import ROOT, Extras, MiB, Row, background_load, log

sys.path.append(str(ROOT / "tests"))  # roster_generator, support, fixtures: modules the tests share

from tests.bench import report

RESULTS = ROOT / "tests" / "bench" / "results"
Goal = Callable[[Path, argparse.Namespace, Extras], list[Row]]


def _goal1(folder: Path, args: argparse.Namespace, extras: Extras) -> list[Row]:
    from tests.bench import goal_envelope

    size = 16 * MiB if args.quick else 256 * MiB
    return goal_envelope.run(folder, size=size, runs=2 if args.quick else args.runs, extras=extras)


def _goal2(folder: Path, args: argparse.Namespace, extras: Extras) -> list[Row]:
    from tests.bench import goal_transfer

    scale = args.grade_scale * (0.02 if args.quick else 1.0)
    runs, half_runs = (1, 1) if args.quick else (3, 2)
    return goal_transfer.run(folder, runs=runs, half_runs=half_runs, scale=scale, extras=extras)


def _goal3(folder: Path, args: argparse.Namespace, extras: Extras) -> list[Row]:
    from tests.bench import goal_import

    return goal_import.run(folder, runs=2 if args.quick else args.runs, extras=extras)


def _goal4(folder: Path, args: argparse.Namespace, extras: Extras) -> list[Row]:
    from tests.bench import goal_matching

    local = args.local_students // (100 if args.quick else 1)
    incoming = args.incoming_students // (20 if args.quick else 1)
    return goal_matching.run(
        folder, local=local, incoming=incoming, runs=1 if args.quick else 3, extras=extras
    )


def _goal5(folder: Path, args: argparse.Namespace, extras: Extras) -> list[Row]:
    from tests.bench import goal_signed_http

    seconds = 1.0 if args.quick else 4.0
    return goal_signed_http.run(folder, runs=1 if args.quick else 3, seconds=seconds, extras=extras)


# name -> (what it runs, scratch in RAM?). Goal 1 compares crypto tools, so its files live in tmpfs where
# write-back cannot add noise; the nodes of goals 2 and 3 fsync what they store, so they use the real disk.
GOALS: dict[str, tuple[Goal, bool]] = {
    "1": (_goal1, True), "2": (_goal2, False), "3": (_goal3, False), "4": (_goal4, False), "5": (_goal5, False),
}  # fmt: skip


def _scratch(prefer_memory: bool) -> Path:
    shm = Path("/dev/shm")
    if prefer_memory and shm.is_dir() and shutil.disk_usage(shm).free > 4 << 30:
        return Path(tempfile.mkdtemp(prefix="satchel-bench-", dir=shm))
    return Path(tempfile.mkdtemp(prefix="satchel-bench-"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(GOALS), help="comma-separated goals to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not the goals")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement of goals 1 and 3")
    parser.add_argument("--grade-scale", type=float, default=1.0, help="multiply the grade's document sizes")
    parser.add_argument("--local-students", type=int, default=1_000_000, help="roster size for goal 4")
    parser.add_argument("--incoming-students", type=int, default=10_000, help="incoming students for goal 4")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="where to write the JSON")
    args = parser.parse_args(argv)
    chosen = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = set(chosen) - set(GOALS)
    if unknown:
        parser.error(f"no goal {', '.join(sorted(unknown))}; the goals are {', '.join(GOALS)}")
    started = time.perf_counter()
    rows: list[Row] = []
    extras = Extras()
    for name in chosen:
        run, in_memory = GOALS[name]
        # Other work on the machine slows baseline and Satchel alike, but it is worth knowing about.
        extras[f"goal{name}.background_busy_cores_before"] = background_load()
        log(f"goal {name} ...")
        began = time.perf_counter()
        folder = _scratch(in_memory)
        try:
            rows += run(folder, args, extras)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        extras[f"goal{name}.seconds"] = round(time.perf_counter() - began, 1)
        log(f"goal {name} done in {time.perf_counter() - began:.0f} s")
    elapsed = time.perf_counter() - started
    meta = {"finished": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": round(elapsed, 1),
            "quick": args.quick, "goals": chosen, "command": " ".join(sys.argv)}  # fmt: skip
    report.write_json(args.out, rows, extras.values, meta)
    if args.out == RESULTS / "latest.json":
        shutil.copy(args.out, RESULTS / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json")
    print(report.text_table(rows))
    if args.markdown:
        print()
        print(report.markdown_table(rows))
    where = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    met = [r for r in rows if not r.info and r.met is not None]
    print(
        f"\n{sum(r.met for r in met)} of {len(met)} goals met; total {elapsed / 60:.1f} min; results in {where}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
