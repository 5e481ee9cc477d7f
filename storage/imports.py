"""Imports of accepted transfers: the preview's matches, review decisions, and per-student results."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from protocol import NotFound
from storage.rows import insert_row, update_rows


@dataclass(frozen=True, slots=True)
class Import:
    import_id: str
    transfer_id: str
    source_domain: str
    source_name: str
    source_school: str
    school_id: str | None
    school_name: str | None
    owner: str | None
    status: str
    result: str | None
    reference: str | None
    students_total: int
    students_imported: int
    created_at: str
    created_by: str
    finished_at: str | None


@dataclass(frozen=True, slots=True)
class ImportStudent:
    import_id: str
    position: int
    sender_sis_id: str
    match_status: str
    proposed_sis_id: str | None
    score: int | None
    method: str
    candidates: list[list[Any]]
    reasons: list[str]
    decision: str | None
    decided_sis_id: str | None
    reviewed_by: str | None
    reviewed_at: str | None
    result: str | None
    result_reason: str | None
    destination_sis_id: str | None
    created_student: bool
    documents: int
    scores: int
    changed: bool
    finished_at: str | None
    # The student here as the import left it (None before it ran, or for rows no longer known, see migration
    # 0024_import_log_as_imported): the log shows these, not whatever the student holds now.
    destination_state_id: str | None
    destination_username: str | None
    destination_email: str | None
    # The student as the other district sent them, kept at preview for the log (None for students previewed
    # before migration 0024_import_log_as_imported: the log reads those from the stored manifest).
    sent_given_name: str | None
    sent_family_name: str | None
    sent_grade: str | None
    sent_state_id: str | None
    sent_username: str | None
    sent_email: str | None

    @property
    def reviewed(self) -> bool:
        return self.reviewed_by is not None

    @property
    def target(self) -> tuple[str, str | None]:
        """What the import will do: ('link', sis id) | ('new', None) | ('later', None)."""
        if self.decision == "link":
            return "link", self.decided_sis_id
        if self.decision in ("new", "later"):
            return self.decision, None
        if self.match_status == "matched":
            return "link", self.proposed_sis_id
        if self.match_status == "new":
            return "new", None
        return "later", None  # uncertain and not reviewed: a person must decide


_IMPORT_COLS = (
    "import_id, transfer_id, source_domain, source_name, source_school, school_id, school_name, owner, status,"
    " result, reference, students_total, students_imported, created_at, created_by, finished_at"
)
_STUDENT_COLS = (
    "import_id, position, sender_sis_id, match_status, proposed_sis_id, score, method, candidates, reasons,"
    " decision, decided_sis_id, reviewed_by, reviewed_at, result, result_reason, destination_sis_id,"
    " created_student, documents, scores, changed, finished_at, destination_state_id, destination_username,"
    " destination_email, sent_given_name, sent_family_name, sent_grade, sent_state_id, sent_username, sent_email"
)


def _student(row: tuple) -> ImportStudent:
    values = list(row)
    values[7], values[8] = json.loads(values[7]), json.loads(values[8])
    values[16], values[19] = bool(values[16]), bool(values[19])
    return ImportStudent(*values)


def get(db: sqlite_utils.Database, transfer_id: str) -> Import | None:
    row = db.execute(
        f"SELECT {_IMPORT_COLS} FROM imports WHERE transfer_id = ? OR import_id = ?",
        [transfer_id, transfer_id],
    ).fetchone()
    return Import(*row) if row else None


def require(db: sqlite_utils.Database, transfer_id: str) -> Import:
    found = get(db, transfer_id)
    if found is None:
        raise NotFound(f"no import for transfer {transfer_id}", field="ID",
                       hint="preview it first with `satchel import preview ID`")  # fmt: skip
    return found


# A student here as an import left it: (SIS id, state id, username, e-mail).
Destination = tuple[str, str, str, str]

# Bound parameters per IN (...) query: well under SQLite's limit on variables.
_IN_CHUNK = 500


def create(db: sqlite_utils.Database, **values: Any) -> None:
    insert_row(db, "imports", values)


def update(db: sqlite_utils.Database, import_id: str, **changes: Any) -> None:
    update_rows(db, "imports", changes, {"import_id": import_id})


def add_student(db: sqlite_utils.Database, **values: Any) -> None:
    values = {**values, "candidates": json.dumps(values.get("candidates", [])),
              "reasons": json.dumps(values.get("reasons", []))}  # fmt: skip
    insert_row(db, "import_students", values)


def students(db: sqlite_utils.Database, import_id: str) -> list[ImportStudent]:
    rows = db.execute(
        f"SELECT {_STUDENT_COLS} FROM import_students WHERE import_id = ? ORDER BY position", [import_id]
    ).fetchall()
    return [_student(r) for r in rows]


def update_student(db: sqlite_utils.Database, import_id: str, sender_sis_id: str, **changes: Any) -> None:
    changes = {k: json.dumps(v) if k in ("candidates", "reasons") else v for k, v in changes.items()}
    update_rows(db, "import_students", changes, {"import_id": import_id, "sender_sis_id": sender_sis_id})


def start_run(db: sqlite_utils.Database, import_id: str, token: str) -> None:
    """This run writes the import from now on; any other run of it stops at its next batch."""
    db.execute("UPDATE imports SET status = 'running', run_token = ? WHERE import_id = ?", [token, import_id])


def is_running(db: sqlite_utils.Database, import_id: str, token: str) -> bool:
    row = db.execute("SELECT status, run_token FROM imports WHERE import_id = ?", [import_id]).fetchone()
    return row is not None and row[0] == "running" and row[1] == token


def reset(db: sqlite_utils.Database, import_id: str) -> None:
    """A cancelled import: every result forgotten, the coordinators' review decisions kept for the next run."""
    db.execute(
        "UPDATE import_students SET result = NULL, result_reason = NULL, destination_sis_id = NULL,"
        " destination_state_id = NULL, destination_username = NULL, destination_email = NULL,"
        " created_student = 0, documents = 0, scores = 0, changed = 0, finished_at = NULL WHERE import_id = ?",
        [import_id],
    )
    db.execute(
        "UPDATE imports SET status = 'cancelled', result = NULL, reference = NULL, students_imported = 0,"
        " finished_at = NULL WHERE import_id = ?",
        [import_id],
    )


def list_imports(db: sqlite_utils.Database, *, status: str | None = None) -> list[Import]:
    sql, args = f"SELECT {_IMPORT_COLS} FROM imports", []
    if status:
        sql += " WHERE status = ?"
        args.append(status)
    return [Import(*r) for r in db.execute(sql + " ORDER BY created_at DESC", args).fetchall()]


# Whether the local copy of an imported record is still here: a document deleted or purged, or a row
# removed, no longer is, so the sender's redo of the transfer (MISSION.md, fixing mistakes) brings it again.
_STILL_HERE = """CASE kind
    WHEN 'document' THEN EXISTS (SELECT 1 FROM documents WHERE doc_id = local_id AND status = 'active')
    WHEN 'assessment' THEN EXISTS (SELECT 1 FROM assessment_results WHERE result_id = local_id)
    WHEN 'case' THEN EXISTS (SELECT 1 FROM cases WHERE case_id = local_id)
    ELSE 1 END"""


def imported_among(
    db: sqlite_utils.Database, source_domain: str, record_ids: Iterable[str]
) -> dict[str, tuple[str, str, bool]]:
    """Record id -> (kind, local id, still here) for those of ``record_ids`` imported from ``source_domain``."""
    found: dict[str, tuple[str, str, bool]] = {}
    ids = list(dict.fromkeys(record_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        rows = db.execute(
            f"SELECT source_record_id, kind, local_id, {_STILL_HERE} FROM imported_records"
            f" WHERE source_domain = ? AND source_record_id IN ({','.join('?' * len(chunk))})",
            [source_domain, *chunk],
        ).fetchall()
        found.update({record_id: (kind, local_id, bool(here)) for record_id, kind, local_id, here in rows})
    return found


_HOLDERS = {"document": ("documents", "doc_id"), "case": ("cases", "case_id"),
            "assessment": ("assessment_results", "result_id")}  # fmt: skip


def held_by(db: sqlite_utils.Database, records: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Local id -> the SIS id of the student it is on now, for (kind, local id) of records held here."""
    by_kind: dict[str, list[str]] = {}
    for kind, local_id in records:
        by_kind.setdefault(kind, []).append(local_id)
    found: dict[str, str] = {}
    for kind, ids in by_kind.items():
        table, key = _HOLDERS[kind]
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT {key}, student_sis_id FROM {table} WHERE {key} IN ({marks})", chunk)
            found.update(dict(rows.fetchall()))
    return found


def remember_records(
    db: sqlite_utils.Database, rows: Iterable[tuple[str, str, str, str, str, str, str]]
) -> None:
    """(source domain, source record id, kind, local id, import id, transfer id, student sis id) each. A record
    imported again because its earlier copy is gone: forget_gone first (a second import of the same record
    meanwhile then breaks the primary key, and its student is skipped rather than holding it twice)."""
    db.conn.executemany(
        "INSERT INTO imported_records (source_domain, source_record_id, kind, local_id, import_id,"
        " transfer_id, student_sis_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def hold_again(db: sqlite_utils.Database, row: tuple[str, str, str, str, str, str, str]) -> None:
    """A row as remember_records takes it, in place of the copy remembered for its record (one that is gone,
    or none): a restored document is the copy here again, which the next redo must find."""
    db.execute(
        "INSERT OR REPLACE INTO imported_records (source_domain, source_record_id, kind, local_id, import_id,"
        " transfer_id, student_sis_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        row,
    )


def forget_gone(db: sqlite_utils.Database, rows: Iterable[tuple[str, str, str]]) -> None:
    """(source domain, source record id, local id) of records whose copy here is gone (see imported_among)."""
    db.conn.executemany(
        "DELETE FROM imported_records WHERE source_domain = ? AND source_record_id = ? AND local_id = ?", rows
    )


def finish_students(
    db: sqlite_utils.Database,
    import_id: str,
    *,
    now: str,
    imported: Iterable[tuple[str, Destination, int, int, int, str | None]],
    skipped: Iterable[tuple[str, str]],
) -> None:
    """The per-student results of a batch: imported (sender sis id, the student here as the import left it,
    created student, documents, scores, the changes a conflict made or None) and skipped (sender sis id,
    reason)."""
    db.conn.executemany(
        "UPDATE import_students SET result = 'imported', result_reason = ?, destination_sis_id = ?,"
        " destination_state_id = ?, destination_username = ?, destination_email = ?,"
        " created_student = ?, documents = ?, scores = ?, changed = ?, finished_at = ?"
        " WHERE import_id = ? AND sender_sis_id = ?",
        [(changes, *dest, created, docs, scores, int(changes is not None), now, import_id, sender)
         for sender, dest, created, docs, scores, changes in imported],
    )  # fmt: skip
    db.conn.executemany(
        # Never over a student imported already (by a run of the same import that ran alongside this one).
        "UPDATE import_students SET result = 'skipped', result_reason = ?, finished_at = ?"
        " WHERE import_id = ? AND sender_sis_id = ? AND result IS NOT 'imported'",
        [(reason, now, import_id, sender) for sender, reason in skipped],
    )


def records_of_import(db: sqlite_utils.Database, import_id: str) -> list[tuple[str, str, str, str]]:
    """(kind, local id, student sis id, source record id) of everything an import wrote."""
    rows = db.execute(
        "SELECT kind, local_id, student_sis_id, source_record_id FROM imported_records WHERE import_id = ?",
        [import_id],
    ).fetchall()
    return [tuple(r) for r in rows]


def forget_records(db: sqlite_utils.Database, import_id: str) -> None:
    db.execute("DELETE FROM imported_records WHERE import_id = ?", [import_id])
