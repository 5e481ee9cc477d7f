"""Records the district holds per student: documents, cases and assessment results."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlite_utils

from protocol import Conflict, NotFound
from protocol.assessments_csv import AssessmentResult, derive_result_id
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


def unlink_versions(db: sqlite_utils.Database, removed: Mapping[str, tuple[str | None, str | None]]) -> None:
    """After the documents ``removed`` ({doc id: (replaces, superseded_by)} as they were) were deleted: the
    versions on either side of a removed one are linked to each other (v3 replaces v1 once v2 is gone: it did
    through v2). Otherwise those they replaced are superseded by the newest other version that replaces them, or
    by none; those that replaced them replace none."""
    gone = json.dumps(list(removed))
    for older, newer in {_beyond(removed, doc_id) for doc_id in removed}:
        if older is not None and newer is not None:
            db.execute("UPDATE documents SET superseded_by = ? WHERE doc_id = ? AND superseded_by IN"
                       " (SELECT value FROM json_each(?))", [newer, older, gone])  # fmt: skip
            db.execute("UPDATE documents SET replaces = ? WHERE doc_id = ? AND replaces IN"
                       " (SELECT value FROM json_each(?))", [older, newer, gone])  # fmt: skip
    for chunk in batched(removed, 500):
        marks = ",".join("?" * len(chunk))
        db.execute(
            "UPDATE documents SET superseded_by = (SELECT newer.doc_id FROM documents newer"
            " WHERE newer.replaces = documents.doc_id ORDER BY newer.created_at DESC, newer.doc_id DESC LIMIT 1)"
            f" WHERE superseded_by IN ({marks})", list(chunk),
        )  # fmt: skip
        db.execute(f"UPDATE documents SET replaces = NULL WHERE replaces IN ({marks})", list(chunk))


def _beyond(
    removed: Mapping[str, tuple[str | None, str | None]], doc_id: str
) -> tuple[str | None, str | None]:
    """The nearest versions before and after ``doc_id`` that were not removed (a chain may lose several)."""
    ends: list[str | None] = []
    for side in (0, 1):
        current, seen = removed[doc_id][side], {doc_id}
        while current is not None and current in removed and current not in seen:
            seen.add(current)
            current = removed[current][side]
        ends.append(None if current is None or current in removed else current)
    return ends[0], ends[1]


# A manifest's metadata holds at most 256 entries in a list (spec/envelope.md §5.1).
MAX_EARLIER_VERSIONS = 256


def earlier_versions(db: sqlite_utils.Database, doc_id: str) -> list[str]:
    """Ids of the versions document ``doc_id`` replaces, nearest first (the one it replaces, the one that one
    replaces, ...), at most :data:`MAX_EARLIER_VERSIONS`."""
    rows = db.execute(
        "WITH RECURSIVE chain(doc_id, depth) AS (SELECT replaces, 1 FROM documents WHERE doc_id = ?"
        " AND replaces IS NOT NULL UNION ALL SELECT d.replaces, c.depth + 1 FROM documents d JOIN chain c"
        " ON d.doc_id = c.doc_id WHERE d.replaces IS NOT NULL AND c.depth < ?)"
        " SELECT doc_id FROM chain ORDER BY depth",
        [doc_id, MAX_EARLIER_VERSIONS],
    ).fetchall()
    return [i for i in dict.fromkeys(r[0] for r in rows) if i != doc_id]


def lineage(corrects: str | None, earlier: object) -> list[str]:
    """The record ids a received correction is a newer version of, nearest first: the one it ``corrects``, then
    the ``earlier_versions`` its sender named (spec/transfer.md §8); anything else there is ignored."""
    if not corrects:
        return []
    more = [i for i in earlier if isinstance(i, str)] if isinstance(earlier, list | tuple) else []
    return list(dict.fromkeys([corrects, *more]))


def corrections_of(db: sqlite_utils.Database, sender: str) -> dict[str, tuple[int, str]]:
    """Record id -> (how many versions apart, doc id) of the nearest active document received from ``sender`` as
    a newer version of that record."""
    rows = db.execute(
        "SELECT json_extract(origin, '$.corrects'), json_extract(origin, '$.earlier_versions'), doc_id"
        " FROM documents WHERE status = 'active' AND json_extract(origin, '$.corrects') IS NOT NULL"
        " AND json_extract(origin, '$.sender') = ? ORDER BY created_at, doc_id",
        [sender],
    )
    found: dict[str, tuple[int, str]] = {}
    for corrects, earlier, doc_id in rows.fetchall():
        note_versions(found, lineage(corrects, json.loads(earlier) if earlier else None), doc_id)
    return found


def note_versions(found: dict[str, tuple[int, str]], versions: list[str], doc_id: str) -> None:
    """Record in ``found`` (as :func:`corrections_of` returns) that ``doc_id`` is a newer version of each of
    ``versions`` (nearest first); of two at the same distance, the later noted."""
    merge_versions(found, {record_id: (distance, doc_id) for distance, record_id in enumerate(versions)})


def merge_versions(found: dict[str, tuple[int, str]], more: Mapping[str, tuple[int, str]]) -> None:
    """Add ``more`` to ``found`` (both as :func:`corrections_of` returns), keeping the nearest version of each."""
    for record_id, (distance, doc_id) in more.items():
        if record_id not in found or distance <= found[record_id][0]:
            found[record_id] = (distance, doc_id)


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
RESULT_VALUE_FIELDS = _RESULT_FIELDS[2:]  # what a result says, after its id and its student


_RESULT_BATCH = 2000


AssessmentRow = tuple[str, ...]  # the values of _RESULT_FIELDS, in that order, None written as ""


def assessment_row(result: AssessmentResult) -> AssessmentRow:
    """The row a result is stored as; plain strings, so a scratch file can hold it between checking and saving."""
    return tuple("" if (value := getattr(result, f)) is None else str(value) for f in _RESULT_FIELDS)


@dataclass(frozen=True, slots=True)
class MovedKept:
    """A result a coordinator moved to ``student_sis_id`` that an import's row still lists under
    ``listed_under``: it stays where the coordinator put it."""

    result_id: str
    assessment: str
    subject: str
    date: str
    student_sis_id: str
    listed_under: str
    moved_by: str


def upsert_assessment_rows(
    db: sqlite_utils.Database, rows: Iterable[AssessmentRow], *, now: str
) -> tuple[int, int, int, list[MovedKept]]:
    """Returns (inserted, updated, unchanged, kept); keyed by result id, so re-importing a file is a no-op. The
    ids are distinct (the CSV reader refuses a second row of a result). ``rows`` (see :func:`assessment_row`)
    are taken in batches: one look-up and one write of each kind per batch, however many there are.

    A result a coordinator moved (:func:`move_assessment_result`) stays on its student: a district's export
    that still names the student it was moved off would otherwise undo the fix each night. Its other fields
    are updated; ``kept`` lists the rows that named another student, for the caller to report."""
    inserted = updated = unchanged = 0
    kept: list[MovedKept] = []
    cols = ", ".join(_RESULT_FIELDS)
    insert = f"INSERT INTO assessment_results ({cols}, created_at) VALUES ({','.join('?' * len(_RESULT_FIELDS))}, ?)"
    update = f"UPDATE assessment_results SET {', '.join(f'{f} = ?' for f in _RESULT_FIELDS[1:])} WHERE result_id = ?"
    for batch in batched(rows, _RESULT_BATCH):
        by_id = {values[0]: values for values in batch}
        marks = ",".join("?" * len(by_id))
        found = db.execute(f"SELECT {cols}, moved_by FROM assessment_results WHERE result_id IN ({marks})", list(by_id))
        held = {row[0]: tuple(row) for row in found}
        held |= _moved_under_new_id(db, by_id, held)
        old = {key: row[:-1] for key, row in held.items()}
        for key, (*_, moved_by) in held.items():
            values = by_id[key]
            if moved_by is not None and values[1] != old[key][1]:
                assessment, subject, date = values[2:5]
                kept.append(MovedKept(key, assessment, subject, date, student_sis_id=old[key][1],
                                      listed_under=values[1], moved_by=moved_by))  # fmt: skip
                by_id[key] = (key, old[key][1], *values[2:])
        new = [(*values, now) for key, values in by_id.items() if key not in old]
        changed = [(*values[1:], key) for key, values in by_id.items() if key in old and old[key] != values]
        db.conn.executemany(insert, new)
        db.conn.executemany(update, changed)
        inserted, updated = inserted + len(new), updated + len(changed)
        unchanged += len(by_id) - len(new) - len(changed)
    return inserted, updated, unchanged, kept


def _moved_under_new_id(
    db: sqlite_utils.Database, by_id: dict[str, AssessmentRow], held: Mapping[str, tuple]
) -> dict[str, tuple]:
    """The moved results that rows new here are, keyed in ``by_id`` by the result's id instead of the row's.

    A row without a result_id has an id derived from its student, so once the export is fixed to name the
    student a coordinator moved the result to, it comes with another id than the result's (derived from the
    student it was moved off): the same assessment, subject and date on the same student is that result, not
    a second one."""
    new = {key: values for key, values in by_id.items() if key not in held}
    sis_ids = sorted({values[1] for values in new.values()})
    if not sis_ids:
        return {}
    found = db.execute(
        f"SELECT {', '.join(_RESULT_FIELDS)}, moved_by FROM assessment_results"
        f" WHERE moved_by IS NOT NULL AND student_sis_id IN ({','.join('?' * len(sis_ids))})", sis_ids,
    )  # fmt: skip
    moved = {tuple(row[1:5]): tuple(row) for row in found}
    results = {}
    for key, values in new.items() if moved else ():
        result = moved.pop(tuple(values[1:5]), None)  # popped: one row is one result
        # Listed in the batch under its own id too (the export names both students): that row is the result.
        if result is not None and result[0] not in by_id and key == derive_result_id(*values[1:5]):
            by_id[result[0]] = (result[0], *by_id.pop(key)[1:])
            results[result[0]] = result
    return results


def add_assessment_results(
    db: sqlite_utils.Database, results: Iterable[tuple[str, str, Sequence[str], str]], *, now: str
) -> None:
    """Results received from another district, kept with where they came from: (result id, student sis id,
    the values of RESULT_VALUE_FIELDS in that order, origin as JSON text) each. The caller encodes the origin
    and lays out the values: an import writes 10,000 at a time."""
    db.conn.executemany(
        f"INSERT INTO assessment_results ({', '.join(_RESULT_FIELDS)}, origin, created_at)"
        f" VALUES ({','.join('?' * (len(_RESULT_FIELDS) + 2))})",
        [(result_id, sis_id, *values, origin_json, now) for result_id, sis_id, values, origin_json in results],
    )


def get_assessment_result(db: sqlite_utils.Database, result_id: str) -> dict[str, str]:
    row = db.execute(
        f"SELECT {', '.join(_RESULT_FIELDS)} FROM assessment_results WHERE result_id = ?", [result_id]
    ).fetchone()
    if row is None:
        raise NotFound(f"no assessment result {result_id!r}", field="ID",
                       hint="`satchel assessments list STUDENT` shows the ids")  # fmt: skip
    return dict(zip(_RESULT_FIELDS, row, strict=True))


def assessment_origin(db: sqlite_utils.Database, result_id: str) -> dict[str, Any]:
    """Where a result came from: {"kind": "import", "sender": ..., "record_id": ...} for a received one."""
    row = db.execute("SELECT origin FROM assessment_results WHERE result_id = ?", [result_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def move_assessment_result(db: sqlite_utils.Database, result_id: str, student_sis_id: str, *, by: str) -> None:
    """``by``: the coordinator, kept so that an import does not move the result back (upsert_assessment_rows)."""
    db.execute("UPDATE assessment_results SET student_sis_id = ?, moved_by = ? WHERE result_id = ?",
               [student_sis_id, by, result_id])  # fmt: skip


def delete_assessment_result(db: sqlite_utils.Database, result_id: str) -> None:
    db.execute("DELETE FROM assessment_results WHERE result_id = ?", [result_id])


def list_assessment_results(db: sqlite_utils.Database, student_sis_id: str) -> list[dict[str, str]]:
    cols = ", ".join(_RESULT_FIELDS)
    rows = db.execute(
        f"SELECT {cols} FROM assessment_results WHERE student_sis_id = ? ORDER BY date, assessment",
        [student_sis_id],
    ).fetchall()
    return [dict(zip(_RESULT_FIELDS, r, strict=True)) for r in rows]
