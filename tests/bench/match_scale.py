"""Scale check for matching (not part of the test suite): python tests/bench/match_scale.py [--quick].

Builds local rosters of 100k, 300k and 1M generated students in SQLite files (through
storage.students.upsert, as a roster import would; not timed), then times node.matching.match_students
for 1k, 5k and 10k incoming students against each, with cold name caches and a fresh connection.
Goal: 10k against 1M in under 10 s, growing linearly with incoming and sub-linearly with local students.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]
sys.path.append(str(ROOT / "tests"))

from node.matching import match_students  # noqa: E402
from protocol import matching, name_similarity  # noqa: E402
from storage import students  # noqa: E402
from storage.database import open_database, write_transaction  # noqa: E402

from roster_generator import generate_incoming, generate_roster  # noqa: E402

SEED = 20240901
_CACHED = (
    name_similarity.fold, name_similarity.name_info, name_similarity.compare_given,
    name_similarity.compare_family, matching._given_field, matching._family_field, matching._birth_field,
    matching._small_fields, matching._middle_field,
)  # fmt: skip


def build(path: Path, size: int) -> list:
    started = time.perf_counter()
    roster = generate_roster(size, SEED)
    generated = time.perf_counter()
    db = open_database(path)
    for start in range(0, size, 20_000):
        with write_transaction(db):
            students.upsert(db, roster[start : start + 20_000], now="2024-09-01T00:00:00Z")
    db.execute("ANALYZE")
    keys = db.execute("SELECT count(*) FROM student_match_keys").fetchone()[0]
    db.close()
    done = time.perf_counter()
    print(f"local {size:>9,}: generated in {generated - started:5.1f} s, stored with {keys:,} keys in "
          f"{done - generated:6.1f} s ({path.stat().st_size / 2**20:,.0f} MiB)", flush=True)  # fmt: skip
    return roster


def run(path: Path, roster: list, size: int) -> float:
    planted = generate_incoming(roster, size, SEED + size)
    incoming = [student for student, _, _ in planted]
    for cached in _CACHED:
        cached.cache_clear()
    db = open_database(path, migrate=False)
    started = time.perf_counter()
    outcomes = match_students(db, incoming)
    elapsed = time.perf_counter() - started
    db.close()
    pairs = list(zip(outcomes, planted, strict=True))
    wrong = sum(o.status == "matched" and o.local_sis_id != expected for o, (_, expected, _) in pairs)
    missed = sum(o.status == "new" and expected is not None for o, (_, expected, _) in pairs)
    statuses = collections.Counter(o.status for o in outcomes)
    print(f"  {size:>6,} incoming: {elapsed:6.2f} s  {elapsed / size * 1000:5.2f} ms/student  "
          f"{dict(sorted(statuses.items()))}  matched wrongly: {wrong}  true student missed: {missed}",
          flush=True)  # fmt: skip
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k local students only")
    parser.add_argument("--dir", type=Path, help="where to keep the databases (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="reuse databases already in --dir")
    parser.add_argument("--local", type=int, action="append", help="local sizes (repeatable)")
    args = parser.parse_args()
    local_sizes = args.local or ((10_000, 100_000) if args.quick else (100_000, 300_000, 1_000_000))
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for local in local_sizes:
            path = folder / f"local-{local}.db"
            if args.reuse and path.exists():
                roster = generate_roster(local, SEED)
            else:
                path.unlink(missing_ok=True)
                roster = build(path, local)
            for incoming in (1_000, 5_000, 10_000):
                run(path, roster, incoming)


if __name__ == "__main__":
    main()
