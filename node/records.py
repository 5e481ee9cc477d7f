"""Adding the district's own records: documents (into the blob store) and cases (assessment results:
node.assessment_import)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from node.clock import new_id, now_iso
from node.home import Node
from node.operators import authorize, record
from protocol import InvalidInput
from storage import records, students
from storage.database import write_transaction
from storage.records import DOCUMENT_TYPES, Case, Document


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
