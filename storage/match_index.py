"""The blocking index of local students, and the batched look-ups that matching needs.

``student_match_keys`` (migration ``0003_match_keys``) holds one row per (blocking key, SIS id), keys from
:func:`protocol.matching.blocking_keys`. It is a WITHOUT ROWID table whose primary key (key, sis_id) is
the index on key; a second index on sis_id lets an update drop a student's old keys. Keys are derived
data: if the key design changes, a new migration rebuilds the table with :func:`rebuild`.

Every function here makes a constant number of queries per batch of ~500 values, never one per student.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from typing import NamedTuple, TypeVar

import sqlite_utils

from protocol.matching import IncomingStudent, blocking_keys
from protocol.roster import StudentRecord

TABLE = "student_match_keys"
# SQLite allows 32766 parameters since 3.32, but IN lists of a few hundred keep each statement's plan
# and memory small while already amortising the per-statement overhead.
BATCH = 500
# A key shared by more rows than this is not selective (a common name on a popular birth date in a very
# large district): it is skipped rather than flooding scoring, and the student's other keys still search.
# In the generated million-student district (tests/bench) no key holds more than 50 rows.
LIMIT_PER_KEY = 200
# Candidates per incoming student, the ones sharing most keys first: bounds scoring time whatever the
# district's size. Fifty is far above what a typo-bearing true match needs to rank in.
MAX_CANDIDATES = 50

_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StudentRecord))
_SELECT = f"SELECT {', '.join(_FIELDS)} FROM students"
_T = TypeVar("_T")


class _KeyFields(NamedTuple):
    """The columns blocking keys read, without StudentRecord's validation (rows were validated on insert)."""

    sis_id: str
    given_name: str
    family_name: str
    middle_name: str
    preferred_name: str
    birth_date: str | None
    sex: str | None
    grade: str | None
    state_id: str


def _chunks(items: Sequence[_T], size: int = BATCH) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def index_students(db: sqlite_utils.Database, records: Iterable[StudentRecord | _KeyFields]) -> int:
    """Add the keys of students that have none yet; returns the number of rows written."""
    rows = [(key, record.sis_id) for record in records for key in blocking_keys(record)]
    db.conn.executemany(f"INSERT OR IGNORE INTO {TABLE} (key, sis_id) VALUES (?, ?)", rows)
    return len(rows)


def reindex(db: sqlite_utils.Database, records: Iterable[StudentRecord]) -> int:
    """Replace the keys of students whose names or birth date may have changed."""
    records = list(records)
    for chunk in _chunks([r.sis_id for r in records]):
        db.execute(f"DELETE FROM {TABLE} WHERE sis_id IN ({_marks(len(chunk))})", list(chunk))
    return index_students(db, records)


def rebuild(db: sqlite_utils.Database) -> int:
    """Recompute every student's keys (used by migrations); call inside a transaction."""
    db.execute(f"DELETE FROM {TABLE}")
    columns = ", ".join(_KeyFields._fields)
    cursor = db.execute(f"SELECT {columns} FROM students ORDER BY sis_id")
    written = 0
    while rows := cursor.fetchmany(5000):
        written += index_students(db, [_KeyFields(*row) for row in rows])
    return written


def _load(db: sqlite_utils.Database, where: str, values: Sequence[str]) -> list[StudentRecord]:
    found: list[StudentRecord] = []
    for chunk in _chunks(values):
        sql = f"{_SELECT} WHERE {where} IN ({_marks(len(chunk))})"
        if where == "state_id":
            sql += " AND state_id != ''"  # lets SQLite use the partial index students_state_id
        found += [StudentRecord.from_stored(row) for row in db.execute(sql, list(chunk))]
    return found


def lookup_sis_ids(db: sqlite_utils.Database, ids: Iterable[str]) -> dict[str, StudentRecord]:
    """The local students with these SIS ids (absent ids are simply missing from the result)."""
    return {r.sis_id: r for r in _load(db, "sis_id", sorted(set(ids)))}


def lookup_state_ids(db: sqlite_utils.Database, ids: Iterable[str]) -> dict[str, list[StudentRecord]]:
    """State id -> the local students holding it (normally one)."""
    result: dict[str, list[StudentRecord]] = defaultdict(list)
    for record in _load(db, "state_id", sorted({i for i in ids if i})):
        result[record.state_id].append(record)
    return dict(result)


def candidates(
    db: sqlite_utils.Database,
    incoming_list: Sequence[IncomingStudent],
    *,
    limit_per_key: int = LIMIT_PER_KEY,
    max_candidates: int = MAX_CANDIDATES,
) -> dict[int, list[StudentRecord]]:
    """Index in ``incoming_list`` -> local students sharing a blocking key with it, most keys shared first.

    Keys matching more than ``limit_per_key`` students are skipped (see :data:`LIMIT_PER_KEY`); each
    student keeps at most ``max_candidates``. Every index is present, with [] when nothing was found.
    """
    wanted: dict[str, list[int]] = defaultdict(list)
    for index, student in enumerate(incoming_list):
        for key in blocking_keys(student):
            wanted[key].append(index)
    shared: list[Counter[str]] = [Counter() for _ in incoming_list]
    for chunk in _chunks(sorted(wanted)):
        by_key: dict[str, list[str]] = defaultdict(list)
        sql = f"SELECT key, sis_id FROM {TABLE} WHERE key IN ({_marks(len(chunk))})"
        for key, sis_id in db.execute(sql, list(chunk)):
            by_key[key].append(sis_id)
        for key, sis_ids in by_key.items():
            if len(sis_ids) > limit_per_key:
                continue
            for index in wanted[key]:
                shared[index].update(sis_ids)
    chosen = [[sis_id for sis_id, _ in counts.most_common(max_candidates)] for counts in shared]
    records = lookup_sis_ids(db, {sis_id for ids in chosen for sis_id in ids})
    return {index: [records[s] for s in ids if s in records] for index, ids in enumerate(chosen)}
