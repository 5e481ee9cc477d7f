"""Fixing cases and assessment results that landed on the wrong student (MISSION.md, fixing mistakes):
a coordinator moves one to the right student; an admin erases one for good. Documents have the same, with
a delete that can be undone first (node.documents_admin).

Both students' trails name a move, so either record shows what happened. A purge removes the row; its audit
entry keeps what it was (ids, never content). Should the sender send the record again after the purge (a redo
for the right student), it is imported again: its copy here is gone (storage.imports.imported_among); a
transfer already here does not bring it back (node.purged_content). A moved result stays moved when the
district's nightly assessments CSV still names the first student, and a purged one stays purged
(node.assessment_import) unless an admin lifts the purge (:func:`unpurge_assessment`).
"""

from __future__ import annotations

from node.clock import now_iso
from node.home import Node
from node.operators import authorize, record
from node.purged_content import Purge, erase_old_pages, erase_purged, purge_of
from protocol import InvalidInput, NotFound
from storage import purges, records, students
from storage.database import write_transaction
from storage.records import Case


def audit_move(
    node: Node, username: str, *, action: str, label: str, details: dict[str, str], current: str, to: str
) -> None:
    """What every move of a record (document, case, result) to another student checks and records, inside
    its transaction: not onto the student it is on; then both students' trails name it, so either record
    shows what happened."""
    if current == to:
        raise InvalidInput(f"{label} is already on {to}", field="--to",
                           hint="give the SIS id of the student it belongs to")  # fmt: skip
    record(node, username, action, current, details | {"to": to})
    record(node, username, action, to, details | {"from": current})


def move_case(node: Node, *, actor: str | None, record_id: str, to: str) -> Case:
    """``record_id``: the case's id or its number."""
    with write_transaction(node.db):
        user = authorize(node, actor, "records.write")
        case = records.get_case(node.db, record_id)
        students.require(node.db, to)
        audit_move(node, user.username, action="case.move", label=f"case {case.case_number}",
                   details={"case_id": case.case_id, "case_number": case.case_number},
                   current=case.student_sis_id, to=to)  # fmt: skip
        records.move_case(node.db, case.case_id, to)
    return records.get_case(node.db, case.case_id)


def purge_case(node: Node, *, actor: str | None, record_id: str) -> Purge:
    with write_transaction(node.db):
        user = authorize(node, actor, "records.recover")
        case = records.get_case(node.db, record_id)
        records.delete_case(node.db, case.case_id)
        erased = erase_purged(node, case.origin, kind="case", local_id=case.case_id,
                              student_sis_id=case.student_sis_id, by=user.username, now=now_iso())  # fmt: skip
        record(node, user.username, "case.purge", case.student_sis_id,
               {"case_id": case.case_id, "case_number": case.case_number, **erased})  # fmt: skip
    erase_old_pages(node)
    return purge_of(case.student_sis_id, case.origin, erased)


def move_assessment(node: Node, *, actor: str | None, record_id: str, to: str) -> dict[str, str]:
    with write_transaction(node.db):
        user = authorize(node, actor, "records.write")
        result = records.get_assessment_result(node.db, record_id)
        students.require(node.db, to)
        audit_move(node, user.username, action="assessment.move", label=f"result {record_id}",
                   details={"result_id": record_id}, current=result["student_sis_id"], to=to)  # fmt: skip
        records.move_assessment_result(node.db, record_id, to, by=user.username)
    return records.get_assessment_result(node.db, record_id)


def purge_assessment(node: Node, *, actor: str | None, record_id: str) -> Purge:
    with write_transaction(node.db):
        user = authorize(node, actor, "records.recover")
        result = records.get_assessment_result(node.db, record_id)
        origin = records.assessment_origin(node.db, record_id)
        records.delete_assessment_result(node.db, record_id)
        erased = erase_purged(node, origin, kind="assessment", local_id=record_id,
                              student_sis_id=result["student_sis_id"], by=user.username, now=now_iso())  # fmt: skip
        record(node, user.username, "assessment.purge", result["student_sis_id"],
               {"result_id": record_id, **erased})  # fmt: skip
    erase_old_pages(node)
    return purge_of(result["student_sis_id"], origin, erased)


def unpurge_assessment(node: Node, *, actor: str | None, record_id: str) -> purges.Purged:
    """Lift the purge of a result of the district's own (admins), so that the next assessments CSV that lists it
    adds it again: its content is gone from here, only the file brings it back. Returns the purge lifted."""
    with write_transaction(node.db):
        user = authorize(node, actor, "records.recover")
        was = purges.among(node.db, purges.OWN, [record_id]).get(record_id)
        if was is None or was.kind not in ("assessment", None):
            raise NotFound(
                f"no assessment result {record_id} of this district was purged here", field="ID",
                hint="`satchel audit` lists the purges (action assessment.purge) with the result ids; a result "
                     "received from another district comes again when it sends it again",
            )  # fmt: skip
        purges.forget(node.db, purges.OWN, record_id)
        record(node, user.username, "assessment.unpurge", was.student_sis_id or "",
               {"result_id": record_id, "purged_at": was.purged_at, "purged_by": was.purged_by})  # fmt: skip
    return was
