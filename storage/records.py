"""Records the district holds per student: documents, cases and assessment results."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import sqlite_utils

from protocol import Conflict, NotFound
from protocol.assessments_csv import AssessmentResult
from storage.rows import batched, like_escaped, update_rows

DOCUMENT_TYPES = ("iep", "504", "evaluation", "transcript", "discipline", "health", "other")


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    student_sis_id: str
    doc_type: str
    title: str
    filename: str
    media_type: str
    length: int
    sha256: str
    status: str
    origin: Mapping[str, Any]
    created_at: str
    created_by: str
    replaces: str | None = None  # the document this one is a newer version of
    superseded_by: str | None = None


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    case_number: str
    student_sis_id: str
    person_of_concern: str
    building: str
    team: str
    team_leader: str
    case_manager: str
    notes: str
    status: str
    origin: Mapping[str, Any]
    created_at: str
    created_by: str


_DOC_COLS = ", ".join(f.name for f in fields(Document))
_CASE_COLS = ", ".join(f.name for f in fields(Case))


def _doc(row: tuple) -> Document:
    values = list(row)
    values[9] = json.loads(values[9])
    return Document(*values)


def _case(row: tuple) -> Case:
    values = list(row)
    values[10] = json.loads(values[10])
    return Case(*values)


def _row(item: Document | Case) -> list[Any]:
    return [
        json.dumps(dict(item.origin)) if f.name == "origin" else getattr(item, f.name) for f in fields(item)
    ]


def add_document(db: sqlite_utils.Database, doc: Document) -> Document:
    db.execute(
        f"INSERT INTO documents ({_DOC_COLS}) VALUES ({','.join('?' * len(fields(Document)))})",
        _row(doc),
    )
    return doc


def add_documents(db: sqlite_utils.Database, docs: Iterable[Document]) -> None:
    db.conn.executemany(
        f"INSERT INTO documents ({_DOC_COLS}) VALUES ({','.join('?' * len(fields(Document)))})",
        [_row(doc) for doc in docs],
    )


def get_document(db: sqlite_utils.Database, doc_id: str) -> Document:
    row = db.execute(f"SELECT {_DOC_COLS} FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
    if row is None:
        raise NotFound(
            f"no document {doc_id!r}", field="document", hint="see `satchel documents list STUDENT`"
        )
    return _doc(row)


def update_document(db: sqlite_utils.Database, doc_id: str, **changes: Any) -> None:
    update_rows(db, "documents", changes, {"doc_id": doc_id})


def documents_with_blob(db: sqlite_utils.Database, sha256: str) -> int:
    """How many documents not purged still use these bytes (content addressing shares blobs)."""
    return db.execute(
        "SELECT count(*) FROM documents WHERE sha256 = ? AND status != 'purged'", [sha256]
    ).fetchone()[0]


def list_documents(db: sqlite_utils.Database, student_sis_id: str | None = None) -> list[Document]:
    sql, args = f"SELECT {_DOC_COLS} FROM documents WHERE status != 'purged'", []
    if student_sis_id is not None:
        sql += " AND student_sis_id = ?"
        args.append(student_sis_id)
    return [_doc(r) for r in db.execute(sql + " ORDER BY created_at, doc_id", args).fetchall()]


def add_case(db: sqlite_utils.Database, case: Case) -> Case:
    if db.execute("SELECT 1 FROM cases WHERE case_number = ?", [case.case_number]).fetchone():
        raise Conflict(f"case number {case.case_number!r} already exists", field="case_number")
    db.execute(
        f"INSERT INTO cases ({_CASE_COLS}) VALUES ({','.join('?' * len(fields(Case)))})",
        _row(case),
    )
    return case


def get_case(db: sqlite_utils.Database, case_id: str) -> Case:
    row = db.execute(
        f"SELECT {_CASE_COLS} FROM cases WHERE case_id = ? OR case_number = ?", [case_id, case_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"no case {case_id!r}", field="case", hint="see `satchel cases list`")
    return _case(row)


def move_case(db: sqlite_utils.Database, case_id: str, student_sis_id: str) -> None:
    db.execute("UPDATE cases SET student_sis_id = ? WHERE case_id = ?", [student_sis_id, case_id])


def delete_case(db: sqlite_utils.Database, case_id: str) -> None:
    db.execute("DELETE FROM cases WHERE case_id = ?", [case_id])


def list_cases(
    db: sqlite_utils.Database, *, student_sis_id: str | None = None, text: str | None = None
) -> list[Case]:
    where, args = [], []
    if student_sis_id:
        where.append("student_sis_id = ?")
        args.append(student_sis_id)
    if text:
        like = f"%{like_escaped(text)}%"
        where.append("(" + " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in (
            "case_number", "person_of_concern", "building", "team", "team_leader", "case_manager")) + ")")  # fmt: skip
        args += [like] * 6
    sql = f"SELECT {_CASE_COLS} FROM cases"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [_case(r) for r in db.execute(sql + " ORDER BY case_number", args).fetchall()]


_RESULT_FIELDS = (
    "result_id", "student_sis_id", "assessment", "subject", "date",
    "score", "scale_score", "percentile", "benchmark_category",
)  # fmt: skip


_RESULT_BATCH = 2000


AssessmentRow = tuple[str, ...]  # the values of _RESULT_FIELDS, in that order, None written as ""


def assessment_row(result: AssessmentResult) -> AssessmentRow:
    """The row a result is stored as; plain strings, so a scratch file can hold it between checking and saving."""
    return tuple("" if (value := getattr(result, f)) is None else str(value) for f in _RESULT_FIELDS)


def upsert_assessment_rows(
    db: sqlite_utils.Database, rows: Iterable[AssessmentRow], *, now: str
) -> tuple[int, int, int]:
    """Returns (inserted, updated, unchanged); keyed by result id, so re-importing a file is a no-op. The ids
    are distinct (the CSV reader refuses a second row of a result). ``rows`` (see :func:`assessment_row`) are
    taken in batches: one look-up and one write of each kind per batch, however many there are."""
    inserted = updated = unchanged = 0
    cols = ", ".join(_RESULT_FIELDS)
    insert = f"INSERT INTO assessment_results ({cols}, created_at) VALUES ({','.join('?' * len(_RESULT_FIELDS))}, ?)"
    update = f"UPDATE assessment_results SET {', '.join(f'{f} = ?' for f in _RESULT_FIELDS[1:])} WHERE result_id = ?"
    for batch in batched(rows, _RESULT_BATCH):
        by_id = {values[0]: values for values in batch}
        marks = ",".join("?" * len(by_id))
        found = db.execute(f"SELECT {cols} FROM assessment_results WHERE result_id IN ({marks})", list(by_id))
        old = {row[0]: tuple(row) for row in found}
        new = [(*values, now) for key, values in by_id.items() if key not in old]
        changed = [(*values[1:], key) for key, values in by_id.items() if key in old and old[key] != values]
        db.conn.executemany(insert, new)
        db.conn.executemany(update, changed)
        inserted, updated = inserted + len(new), updated + len(changed)
        unchanged += len(by_id) - len(new) - len(changed)
    return inserted, updated, unchanged


def add_assessment_results(
    db: sqlite_utils.Database, results: Iterable[tuple[str, str, Mapping[str, Any], str]], *, now: str
) -> None:
    """Results received from another district, kept with where they came from: (result id, student sis id,
    fields, origin as JSON text) each. The caller encodes the origin: an import writes 10,000 at a time."""
    values = _RESULT_FIELDS[2:]
    db.conn.executemany(
        f"INSERT INTO assessment_results ({', '.join(_RESULT_FIELDS)}, origin, created_at)"
        f" VALUES ({','.join('?' * (len(_RESULT_FIELDS) + 2))})",
        [
            (result_id, sis_id, *[str(fields.get(f) or "") for f in values], origin_json, now)
            for result_id, sis_id, fields, origin_json in results
        ],
    )


def get_assessment_result(db: sqlite_utils.Database, result_id: str) -> dict[str, str]:
    row = db.execute(
        f"SELECT {', '.join(_RESULT_FIELDS)} FROM assessment_results WHERE result_id = ?", [result_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"no assessment result {result_id!r}", field="ID",
                       hint="`satchel assessments list STUDENT` shows the ids")  # fmt: skip
    return dict(zip(_RESULT_FIELDS, row, strict=True))


def move_assessment_result(db: sqlite_utils.Database, result_id: str, student_sis_id: str) -> None:
    db.execute("UPDATE assessment_results SET student_sis_id = ? WHERE result_id = ?", [student_sis_id, result_id])


def delete_assessment_result(db: sqlite_utils.Database, result_id: str) -> None:
    db.execute("DELETE FROM assessment_results WHERE result_id = ?", [result_id])


def list_assessment_results(db: sqlite_utils.Database, student_sis_id: str) -> list[dict[str, str]]:
    cols = ", ".join(_RESULT_FIELDS)
    rows = db.execute(
        f"SELECT {cols} FROM assessment_results WHERE student_sis_id = ? ORDER BY date, assessment",
        [student_sis_id],
    ).fetchall()
    return [dict(zip(_RESULT_FIELDS, r, strict=True)) for r in rows]
