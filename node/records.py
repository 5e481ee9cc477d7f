"""Adding the district's own records: documents (into the blob store), cases and assessment results."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from node.clock import new_id, now_iso
from node.home import Node
from node.operators import authorize, record
from protocol import InvalidInput, SatchelError
from protocol.assessments_csv import ISO_DATES, US_DATES, parse_assessments_csv
from protocol.csv_rows import RowError
from storage import records, students
from storage.database import write_transaction
from storage.records import DOCUMENT_TYPES, Case, Document


class AssessmentRowsInvalid(SatchelError):
    code = "assessments.rows_invalid"
    default_hint = "fix the rows listed, or re-run with --skip-invalid to import the valid rows only"

    def __init__(self, message: str, rows: tuple, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.rows = rows


def add_document(
    node: Node, *, actor: str | None, student_sis_id: str, path: Path, doc_type: str, title: str | None
) -> Document:
    if doc_type not in DOCUMENT_TYPES:
        raise InvalidInput(f"document type must be one of {', '.join(DOCUMENT_TYPES)}", field="--type")
    user = authorize(node, actor, "records.write")
    students.require(node.db, student_sis_id)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a readable file", field="FILE")
    # The bytes are written and fsynced before the transaction, and renamed into place inside it, with the
    # row: a crash leaves at worst an unreferenced blob, never a row pointing at missing bytes; and a purge
    # of the last document with the same bytes (which deletes the blob under the same write lock) runs
    # wholly before the rename or sees the new row.
    with path.open("rb") as handle, node.blobs.stage_file(handle) as staged:
        blob = staged.blob
        doc = Document(
            doc_id=new_id(),
            student_sis_id=student_sis_id,
            doc_type=doc_type,
            title=(title or path.stem).strip(),
            filename=path.name,
            media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            length=blob.length,
            sha256=blob.sha256,
            status="active",
            origin={"kind": "local"},
            created_at=now_iso(),
            created_by=user.username,
        )
        with write_transaction(node.db):
            staged.publish()
            records.add_document(node.db, doc)
            record(
                node,
                user.username,
                "document.add",
                student_sis_id,
                {"doc_id": doc.doc_id, "sha256": doc.sha256},
            )
    return doc


def add_case(
    node: Node,
    *,
    actor: str | None,
    student_sis_id: str,
    case_number: str,
    person_of_concern: str,
    building: str = "",
    team: str = "",
    team_leader: str = "",
    case_manager: str = "",
    notes: str = "",
) -> Case:
    if not case_number.strip():
        raise InvalidInput("the case number must not be empty", field="--case-number")
    with write_transaction(node.db):
        user = authorize(node, actor, "records.write")
        student = students.require(node.db, student_sis_id).record
        case = Case(
            case_id=new_id(),
            case_number=case_number.strip(),
            student_sis_id=student_sis_id,
            person_of_concern=person_of_concern.strip() or f"{student.given_name} {student.family_name}",
            building=building.strip(),
            team=team.strip(),
            team_leader=team_leader.strip(),
            case_manager=case_manager.strip(),
            notes=notes,
            status="open",
            origin={"kind": "local"},
            created_at=now_iso(),
            created_by=user.username,
        )
        records.add_case(node.db, case)
        record(
            node,
            user.username,
            "case.add",
            student_sis_id,
            {"case_id": case.case_id, "number": case.case_number},
        )
    return case


def import_assessments(
    node: Node, *, actor: str | None, path: Path, skip_invalid: bool, dates: str = ISO_DATES
) -> dict[str, int]:
    user = authorize(node, actor, "records.write")
    parsed = parse_assessments_csv(path.read_bytes(), file=path.name, dates=dates)
    # (file, no line, field, reason) for rows that parsed but name no student here: see below
    errors: list[RowError | tuple[str, None, str, str]] = list(parsed.errors)
    known = []
    for result in parsed.results:
        if students.get(node.db, result.student_sis_id) is None:
            # The parser keeps no line numbers for valid rows; the result id identifies the row instead.
            reason = f"no student with SIS id {result.student_sis_id!r} (result {result.result_id})"
            errors.append((path.name, None, "student_sis_id", reason))
        else:
            known.append(result)
    if errors and not skip_invalid:
        raise AssessmentRowsInvalid(
            f"{len(errors)} row(s) of {path.name} are invalid; nothing was imported", tuple(errors),
            hint=f"its dates are written month/day/year, as Excel saves them: re-run with --dates {US_DATES}"
            if parsed.us_dates_refused else None,
        )  # fmt: skip
    with write_transaction(node.db):
        inserted, updated, unchanged = records.upsert_assessment_results(node.db, known, now=now_iso())
        counts = {"inserted": inserted, "updated": updated, "unchanged": unchanged, "skipped": len(errors)}
        if inserted or updated:
            record(node, user.username, "assessments.import", path.name, counts)
    return counts
