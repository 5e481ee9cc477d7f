"""The district's own students, keyed by SIS id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import sqlite_utils

from protocol import NotFound
from protocol.roster import WHOLE, FieldMerge, StudentRecord
from storage import match_index
from storage.rows import like_escaped

_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StudentRecord))
_BATCH = 500


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> int:
        return self.inserted + self.updated


@dataclass(frozen=True, slots=True)
class StoredStudent:
    record: StudentRecord
    origin: str
    created_at: str
    updated_at: str


def upsert(
    db: sqlite_utils.Database, records: Iterable[StudentRecord], *, now: str, origin: str = "roster"
) -> UpsertCounts:
    """Insert new students, update changed ones, leave identical ones untouched (so re-runs are no-ops)."""
    return upsert_merged(db, ((record, WHOLE) for record in records), now=now, origin=origin)


def upsert_merged(
    db: sqlite_utils.Database, records: Iterable[tuple[StudentRecord, FieldMerge]], *, now: str,
    origin: str = "roster",
) -> UpsertCounts:  # fmt: skip
    """As :func:`upsert`, each record joining the student stored as its FieldMerge says: the fields it does not
    tell keep their stored values."""
    inserted = updated = unchanged = 0
    batch: list[tuple[StudentRecord, FieldMerge]] = []

    def flush() -> None:
        nonlocal inserted, updated, unchanged
        marks = ",".join("?" * len(batch))
        existing = {
            row[0]: tuple(row)
            for row in db.execute(
                f"SELECT {', '.join(_FIELDS)} FROM students WHERE sis_id IN ({marks})",
                [r.sis_id for r, _ in batch],
            ).fetchall()
        }
        new_rows, changed_rows = [], []
        new_recs, changed_recs = [], []
        for rec, merge in batch:
            values = tuple(getattr(rec, f) for f in _FIELDS)
            old = existing.get(rec.sis_id)
            if old is not None and merge is not WHOLE:
                values = _merged(values, old, merge)
                rec = StudentRecord.from_stored(values)
            inactive = rec.enrollment_status == "inactive"
            if old is None:
                new_rows.append((*values, origin, now, now, now if inactive else None))
                new_recs.append(rec)
            elif old != values:
                since = now if inactive else None
                changed_rows.append((*values[1:], now, since, since, since, rec.sis_id))
                changed_recs.append(rec)
            else:
                unchanged += 1
        # The students and their matching keys change together or not at all.
        with db.atomic():
            if new_rows:
                cols = ", ".join((*_FIELDS, "origin", "created_at", "updated_at", "inactive_since"))
                db.conn.executemany(
                    f"INSERT INTO students ({cols}) VALUES ({','.join('?' * (len(_FIELDS) + 4))})", new_rows
                )
                # A number the SIS gave back to a new child is theirs now, no longer the renumbered one's.
                db.conn.executemany(
                    "DELETE FROM former_sis_ids WHERE former_sis_id = ?", [(r.sis_id,) for r in new_recs]
                )
                match_index.index_students(db, new_recs)
            if changed_rows:
                sets = ", ".join(f"{f} = ?" for f in _FIELDS[1:])
                # Inactive since the change that first found them so (the CASE reads the row as it was); active
                # again, inactive since nothing.
                db.conn.executemany(
                    f"UPDATE students SET {sets}, updated_at = ?, inactive_since = CASE WHEN ? IS NULL THEN NULL "
                    "WHEN enrollment_status = 'inactive' THEN coalesce(inactive_since, ?) ELSE ? END WHERE sis_id = ?",
                    changed_rows,
                )
                match_index.reindex(db, changed_recs)
        inserted += len(new_rows)
        updated += len(changed_rows)
        batch.clear()

    for item in records:
        batch.append(item)
        if len(batch) >= _BATCH:
            flush()
    if batch:
        flush()
    return UpsertCounts(inserted, updated, unchanged)


def _merged(values: tuple, old: tuple, merge: FieldMerge) -> tuple:
    out = []
    for name, new, stored in zip(_FIELDS, values, old, strict=True):
        if name in merge.keep:
            new = stored
        elif name in merge.earliest and stored is not None:
            new = stored if new is None else min(new, stored)
        out.append(new)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Holder:
    """A stored student, as far as telling who holds an id goes."""

    sis_id: str
    source_id: str
    origin: str
    given_name: str = ""
    family_name: str = ""
    birth_date: str | None = None


def holders(db: sqlite_utils.Database, records: Sequence[StudentRecord]) -> list[Holder]:
    """The stored students holding the SIS id or the source id of any of ``records`` (a few hundred: one
    query, through the primary key and students_source_id)."""
    if not records:
        return []
    marks = ",".join("?" * len(records))
    rows = db.execute(
        f"SELECT sis_id, source_id, origin, given_name, family_name, birth_date FROM students"
        f" WHERE sis_id IN ({marks}) OR source_id IN ({marks})",
        [*(r.sis_id for r in records), *(r.source_id for r in records)],
    ).fetchall()
    return [Holder(*row) for row in rows]


def by_source_ids(db: sqlite_utils.Database, source_ids: Sequence[str]) -> dict[str, list[StudentRecord]]:
    """The stored students holding each of ``source_ids`` (a few hundred: one query, through
    students_source_id) that any student holds; a home may hold two under one sourcedId (migration 0022)."""
    found: dict[str, list[StudentRecord]] = {}
    if not source_ids:
        return found
    rows = db.execute(
        f"SELECT {', '.join(_FIELDS)} FROM students WHERE source_id IN ({','.join('?' * len(source_ids))})",
        list(source_ids),
    ).fetchall()
    for row in rows:
        record = StudentRecord.from_stored(row)
        found.setdefault(record.source_id, []).append(record)
    return found


def by_sis_ids(db: sqlite_utils.Database, sis_ids: Sequence[str]) -> dict[str, StudentRecord]:
    """The stored students of ``sis_ids`` (a few hundred: one query) that are held."""
    if not sis_ids:
        return {}
    rows = db.execute(
        f"SELECT {', '.join(_FIELDS)} FROM students WHERE sis_id IN ({','.join('?' * len(sis_ids))})", list(sis_ids)
    ).fetchall()
    return {row[0]: StudentRecord.from_stored(row) for row in rows}


def holds_records(db: sqlite_utils.Database, sis_id: str) -> bool:
    """Whether a document (not purged), case or assessment result is on the student."""
    return any(
        db.execute(f"SELECT 1 FROM {table} WHERE student_sis_id = ?{extra} LIMIT 1", [sis_id]).fetchone()
        for table, extra in (("documents", " AND status != 'purged'"), ("cases", ""), ("assessment_results", ""))
    )


def active_roster_students(db: sqlite_utils.Database, *, after: str, limit: int) -> list[tuple[str, str, str]]:
    """(SIS id, source id, school id) of the active students the SIS roster created, the first ``limit`` after
    SIS id ``after`` in SIS id order: to walk all of them a page at a time."""
    rows = db.execute(
        "SELECT sis_id, source_id, school_id FROM students WHERE sis_id > ? AND origin = 'roster' "
        "AND enrollment_status = 'active' ORDER BY sis_id LIMIT ?",
        [after, limit],
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def mark_inactive(db: sqlite_utils.Database, sis_ids: Sequence[str], *, now: str) -> int:
    """Mark these students (of the roster's, still active) inactive; returns how many were."""
    changed = 0
    for start in range(0, len(sis_ids), _BATCH):
        chunk = sis_ids[start : start + _BATCH]
        marks = ",".join("?" * len(chunk))
        changed += db.execute(
            f"UPDATE students SET enrollment_status = 'inactive', updated_at = ?, inactive_since = ? "
            f"WHERE sis_id IN ({marks}) AND origin = 'roster' AND enrollment_status = 'active'",
            [now, now, *chunk],
        ).rowcount
    return changed


def inactive_since(db: sqlite_utils.Database, sis_ids: Iterable[str]) -> dict[str, str]:
    """Which of ``sis_ids`` (at most a few thousand: a query per 500) are inactive, and since when (the time
    they were first saved or marked so; for those inactive before migration 0029, their last change)."""
    wanted = sorted(set(sis_ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        found.update(db.execute(
            f"SELECT sis_id, coalesce(inactive_since, updated_at) FROM students WHERE sis_id IN "
            f"({','.join('?' * len(chunk))}) AND enrollment_status = 'inactive'", chunk,
        ).fetchall())  # fmt: skip
    return found


# Every column that names a student here by SIS id, and so follows the student when the SIS renumbers them
# (renumber): their records, match keys, what was sent or disclosed of them, requests and codes naming them, and
# decisions an import has still to carry out. tests/storage check that no such column is forgotten.
RENUMBERED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("documents", "student_sis_id"), ("cases", "student_sis_id"), ("assessment_results", "student_sis_id"),
    ("student_match_keys", "sis_id"), ("transfer_students", "sis_id"), ("disclosures", "student_sis_id"),
    ("imported_records", "student_sis_id"), ("records_requests", "student_sis_id"),
    ("transfer_codes_issued", "student_sis_id"), ("import_students", "proposed_sis_id"),
    ("import_students", "decided_sis_id"), ("purged_records", "student_sis_id"),
    ("former_sis_ids", "current_sis_id"),
)  # fmt: skip
# Columns that keep the number they hold: the other district's id of a student it sent, the import log's
# student as the import wrote to it (as its state id, username and e-mail there are kept as they were), and a
# student's former number (which is the point of keeping it: the current number beside it follows them).
KEPT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("import_students", "sender_sis_id"), ("import_students", "destination_sis_id"),
    ("former_sis_ids", "former_sis_id"),
)  # fmt: skip


def renumber(db: sqlite_utils.Database, old: str, new: str, *, now: str) -> None:
    """Give the student ``old`` the SIS id ``new`` (held by no one), everything that names them following
    (RENUMBERED_COLUMNS). Call inside a transaction: the student is under one number or the other, never both
    or neither.

    ``old`` is kept as the student's former number (former_sis_ids, see :func:`former`): other districts'
    copies still name the child by it. Renumbered again, every former number follows to the newest (its
    current_sis_id is a renumbered column); ``new`` stops being anyone's former number, as it is a current id
    now (the SIS gave a number back, or renumbered a child to a number they once held)."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(students)").fetchall() if row[1] != "sis_id"]
    listed = ", ".join(columns)
    # The new row first, the old one last: documents, cases and results reference the student.
    db.execute(f"INSERT INTO students (sis_id, {listed}) SELECT ?, {listed} FROM students WHERE sis_id = ?", [new, old])
    for table, column in RENUMBERED_COLUMNS:
        # OR IGNORE, then the leftovers go: a (key, SIS id) primary key the new number somehow holds already.
        db.execute(f"UPDATE OR IGNORE {table} SET {column} = ? WHERE {column} = ?", [new, old])
    db.execute("DELETE FROM student_match_keys WHERE sis_id = ?", [old])
    db.execute("DELETE FROM transfer_students WHERE sis_id = ?", [old])
    db.execute("UPDATE students SET updated_at = ? WHERE sis_id = ?", [now, new])
    db.execute("DELETE FROM students WHERE sis_id = ?", [old])
    db.execute("DELETE FROM former_sis_ids WHERE former_sis_id = ?", [new])
    db.execute(
        "INSERT OR REPLACE INTO former_sis_ids (former_sis_id, current_sis_id, renumbered_at) VALUES (?, ?, ?)",
        [old, new, now],
    )


@dataclass(frozen=True, slots=True)
class FormerNumber:
    """A SIS id a student held before the SIS renumbered them: ``current_sis_id`` is their number now."""

    former_sis_id: str
    current_sis_id: str
    renumbered_at: str

    def describe(self) -> str:
        return (f"SIS id {self.former_sis_id} is the former number of student {self.current_sis_id}, "
                f"renumbered on {self.renumbered_at[:10]}")  # fmt: skip


def former(db: sqlite_utils.Database, sis_ids: Iterable[str]) -> dict[str, FormerNumber]:
    """Which of ``sis_ids`` (at most a few thousand: a query per 500) are a student's former number, and whose.

    A number a student holds now is never read as a former one: the SIS gave it to a new child after
    renumbering the first one away, and the new child is who it names. Such a mapping is dropped when the
    number is given (:func:`upsert_merged`, :func:`renumber`); this check covers a student saved another way
    (an import from another district)."""
    wanted = sorted(set(sis_ids))
    found: dict[str, FormerNumber] = {}
    for start in range(0, len(wanted), _BATCH):
        chunk = wanted[start : start + _BATCH]
        rows = db.execute(
            "SELECT f.former_sis_id, f.current_sis_id, f.renumbered_at FROM former_sis_ids f "
            f"WHERE f.former_sis_id IN ({','.join('?' * len(chunk))}) "
            "AND NOT EXISTS (SELECT 1 FROM students s WHERE s.sis_id = f.former_sis_id)",
            chunk,
        ).fetchall()
        found.update((row[0], FormerNumber(*row)) for row in rows)
    return found


def former_of(db: sqlite_utils.Database, sis_id: str) -> list[FormerNumber]:
    """The former numbers of the student ``sis_id`` holds now, oldest first (the first is the number they had
    until its ``renumbered_at``, the next one from then until its own, and so on). A number a student holds now
    is never one (see :func:`former`)."""
    rows = db.execute(
        "SELECT f.former_sis_id, f.current_sis_id, f.renumbered_at FROM former_sis_ids f WHERE f.current_sis_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM students s WHERE s.sis_id = f.former_sis_id) ORDER BY f.renumbered_at",
        [sis_id],
    ).fetchall()
    return [FormerNumber(*row) for row in rows]


def get(db: sqlite_utils.Database, sis_id: str) -> StoredStudent | None:
    row = db.execute(
        f"SELECT {', '.join(_FIELDS)}, origin, created_at, updated_at FROM students WHERE sis_id = ?",
        [sis_id],
    ).fetchone()
    if row is None:
        return None
    n = len(_FIELDS)
    return StoredStudent(StudentRecord.from_stored(row[:n]), row[n], row[n + 1], row[n + 2])


def present(db: sqlite_utils.Database, sis_ids: Iterable[str]) -> set[str]:
    """Which of ``sis_ids`` (at most a few thousand: one query) are students here."""
    wanted = sorted(set(sis_ids))
    if not wanted:
        return set()
    marks = ",".join("?" * len(wanted))
    return {row[0] for row in db.execute(f"SELECT sis_id FROM students WHERE sis_id IN ({marks})", wanted)}


def require(db: sqlite_utils.Database, sis_id: str) -> StoredStudent:
    """The student ``sis_id``. A former number is refused like any unknown one, its hint naming the current
    number: whoever acts on a student (sends, files, releases) sees that the SIS renumbered them; reading
    commands resolve it with a note instead (:func:`resolve`)."""
    student = get(db, sis_id)
    if student is None:
        was = former(db, [sis_id]).get(sis_id)
        raise NotFound(
            f"no student with SIS id {sis_id!r}",
            field="student",
            hint=(f"{was.describe()}: use {was.current_sis_id}" if was is not None
                  else "find it with `satchel students search`"),
        )  # fmt: skip
    return student


def resolve(db: sqlite_utils.Database, sis_id: str) -> tuple[StoredStudent, FormerNumber | None]:
    """The student ``sis_id`` names, now or as a former number (then also which), for commands that only read;
    an id that names no one is refused as by :func:`require`."""
    student = get(db, sis_id)
    if student is None and (was := former(db, [sis_id]).get(sis_id)) is not None:
        return require(db, was.current_sis_id), was
    return require(db, sis_id), None


def search(
    db: sqlite_utils.Database,
    *,
    text: str | None = None,
    school: str | None = None,
    grade: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[StudentRecord]:
    where: list[str] = []
    args: list[object] = []
    if text:
        like = f"%{like_escaped(text.strip())}%"
        where.append(
            "(sis_id = ? OR state_id = ? OR given_name LIKE ? ESCAPE '\\' OR family_name LIKE ? ESCAPE '\\'"
            " OR preferred_name LIKE ? ESCAPE '\\' OR (given_name || ' ' || family_name) LIKE ? ESCAPE '\\')"
        )
        args += [text.strip(), text.strip(), like, like, like, like]
    if school:
        where.append("(school_id = ? OR school_name LIKE ? ESCAPE '\\')")
        args += [school, f"%{like_escaped(school)}%"]
    if grade:
        where.append("grade = ?")
        args.append(grade)
    sql = f"SELECT {', '.join(_FIELDS)} FROM students"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY family_name COLLATE NOCASE, given_name COLLATE NOCASE, sis_id LIMIT ? OFFSET ?"
    return [StudentRecord.from_stored(r) for r in db.execute(sql, [*args, limit, offset]).fetchall()]


def count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM students").fetchone()[0]
