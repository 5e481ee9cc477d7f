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
from storage.free_space import require_room
from storage.records import DOCUMENT_TYPES, Case, Document


def add_document(
    node: Node, *, actor: str | None, student_sis_id: str, path: Path, doc_type: str, title: str | None,
    replaces: str | None = None,
) -> Document:  # fmt: skip
    """``replaces``: the id of the active document this one is a corrected version of; both are linked in the
    transaction that adds it, so two coordinators replacing the same document at once make one version."""
    if doc_type not in DOCUMENT_TYPES:
        raise InvalidInput(f"document type must be one of {', '.join(DOCUMENT_TYPES)}", field="--type")
    user = authorize(node, actor, "records.write")
    students.require(node.db, student_sis_id)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a readable file", field="FILE")
    # Before a byte is copied: a file larger than the room left (a mistaken disk image) would otherwise
    # fill the disk the node runs on, and the reserve is there for its other work.
    require_room(node.config.blobs_dir, path.stat().st_size, reserve=node.config.storage.reserve_bytes,
                 what=f"storing {path.name}")  # fmt: skip
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
            if replaces is not None:
                replaceable(node, replaces)
            staged.publish()
            records.add_document(node.db, doc)
            if replaces is not None:
                records.update_document(node.db, doc.doc_id, replaces=replaces)
                records.update_document(node.db, replaces, superseded_by=doc.doc_id)
            record(
                node,
                user.username,
                "document.add",
                student_sis_id,
                {"doc_id": doc.doc_id, "sha256": doc.sha256},
            )
    return doc


def not_active(doc: Document, *, field: str, doing: str) -> InvalidInput:
    """The refusal to ``doing`` (say, "move") a document that is deleted or purged, saying what can be done."""
    if doc.status == "purged":
        return InvalidInput(f"document {doc.doc_id} was purged: its content is gone for good, there is nothing to "
                            f"{doing}", field=field,
                            hint="`satchel audit` shows who purged it; add it again from a copy with `satchel "
                                 "documents add`, or ask the district that sent it to send it again")  # fmt: skip
    return InvalidInput(f"document {doc.doc_id} is {doc.status}: restore it before you {doing} it", field=field,
                        hint=f"an admin can restore it: `satchel documents restore {doc.doc_id}`")  # fmt: skip


def replaceable(node: Node, doc_id: str) -> Document:
    """The document ``doc_id``, if a new version of it may be added: it is active and not replaced yet."""
    doc = records.get_document(node.db, doc_id)
    if doc.status != "active":
        raise InvalidInput(
            f"document {doc_id} is {doc.status}: there is nothing to replace", field="ID",
            hint="add the new version as a document of its own with `satchel documents add`",
        )  # fmt: skip
    if doc.superseded_by:
        raise InvalidInput(
            f"document {doc_id} was already replaced by {doc.superseded_by}", field="ID",
            hint=f"replace the newest version instead: `satchel documents replace {doc.superseded_by} FILE`",
        )  # fmt: skip
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
