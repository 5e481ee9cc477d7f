"""`satchel import run|cancel`: each student lands in its own transaction, exactly once.

Accepting the transfer already opened its documents into the blob store (held there for the transfer, see
storage.received_blobs), so importing moves no bytes: one transaction writes the student (when new), the
records and the per-student result. A crash leaves every student either fully imported or untouched;
running the import again finishes the rest, and records already imported are recognised by (sender,
record id).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

from node import legacy_staging
from node.blob_holds import drop_unused
from node.clock import new_id, now_iso
from node.home import Node
from node.import_preview import sex_and_grade, transfer_for_import, verified_manifest
from node.operators import authorize, record
from node.transfer_engine import step
from protocol import InvalidInput, SatchelError
from protocol.ids import parse_ulid
from protocol.manifest import Manifest, ManifestRecord, ManifestStudent
from protocol.receipts import ImportCounts, SkippedStudents
from protocol.roster import StudentRecord
from protocol.transfer_states import Actor, ImportFailed, ImportFinished, ReceiverState, TransferEvent
from storage import imports, records, students
from storage import transfers as store
from storage.database import write_transaction
from storage.errors import BlobMissing
from storage.imports import Import, ImportStudent
from storage.records import Case, Document


@dataclass(frozen=True, slots=True)
class RunResult:
    result: str
    reference: str | None
    imported: int
    total: int
    skipped: list[tuple[str, str]]  # (sender sis id, reason)


def reference_for(import_id: str) -> str:
    """A short code a person can quote on the phone, e.g. IMP-7K2Q-9XDR."""
    digest = hashlib.sha256(b"satchel/v1/import-reference\x00" + import_id.encode()).digest()
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = int.from_bytes(digest[:5], "big")
    chars = "".join(alphabet[(value >> (5 * i)) & 31] for i in range(8))
    return f"IMP-{chars[:4]}-{chars[4:]}"


def run(node: Node, *, actor: str | None, transfer_id: str) -> RunResult:
    user = authorize(node, actor, "transfers.act")
    row = transfer_for_import(node, transfer_id)
    manifest = verified_manifest(node, row)
    legacy_staging.adopt(node, row, manifest)
    found = imports.require(node.db, transfer_id)
    pending = [s for s in imports.students(node.db, found.import_id) if s.result != "imported"]
    if any(s.target[0] == "new" for s in pending) and not found.school_id:
        raise InvalidInput(
            "some students are new here and need a school to be enrolled in", field="--school",
            hint=f"choose it with `satchel import preview {transfer_id} --school SCHOOL`",
        )  # fmt: skip
    with write_transaction(node.db):
        if row.status.state is not ReceiverState.IMPORTING:
            step(
                node,
                row,
                TransferEvent.START_IMPORT,
                actor=Actor.RECEIVER_COORDINATOR,
                actor_name=user.username,
            )
        imports.update(node.db, found.import_id, status="running")
    by_sis = {s.sis_id: s for s in manifest.students}
    records_of: dict[str, list[ManifestRecord]] = {}
    for rec in manifest.records:
        records_of.setdefault(rec.student_sis_id, []).append(rec)
    for student in pending:
        try:
            _import_student(
                node, found, manifest, by_sis[student.sender_sis_id], records_of.get(student.sender_sis_id, []),
                student, user.username,
            )  # fmt: skip
        except SatchelError as exc:
            with write_transaction(node.db):
                imports.update_student(node.db, found.import_id, student.sender_sis_id, result="skipped",
                                       result_reason=exc.message, finished_at=now_iso())  # fmt: skip
    return _finish(node, found, user.username)


def _destination(
    node: Node, found: Import, incoming: ManifestStudent, student: ImportStudent
) -> tuple[str, bool]:
    action, sis_id = student.target
    if action == "later":
        raise InvalidInput("needs review: the match is uncertain", field="match",
                           hint="decide with `satchel import match ID STUDENT --to SIS_ID | --new`")  # fmt: skip
    if action == "link":
        assert sis_id is not None
        students.require(node.db, sis_id)
        return sis_id, False
    new_id_here = (
        incoming.recipient_sis_id or f"T{parse_ulid(found.import_id)[0] % 10**6:06d}-{incoming.sis_id}"
    )
    clash = students.get(node.db, new_id_here)
    if clash is not None:
        raise InvalidInput(
            f"SIS id {new_id_here} already belongs to {clash.record.given_name} {clash.record.family_name}",
            field="sis_id", hint="link the student to that record, or to another, with `satchel import match`",
        )  # fmt: skip
    return new_id_here, True


def _import_student(
    node: Node, found: Import, manifest: Manifest, incoming: ManifestStudent, mine: list[ManifestRecord],
    student: ImportStudent, actor: str,
) -> None:  # fmt: skip
    sis_id, create = _destination(node, found, incoming, student)
    todo = [r for r in mine if imports.imported_record(node.db, manifest.sender_domain, r.record_id) is None]
    for rec in todo:
        if rec.kind == "document" and not node.blobs.exists((rec.sha256 or b"").hex()):
            raise BlobMissing(f"the content of document {rec.record_id} is missing from the blob store")
    now = now_iso()
    with write_transaction(node.db):
        if create:
            students.upsert(node.db, [_new_student(found, incoming, sis_id)], now=now, origin="import")
        documents = scores = 0
        for rec in todo:
            local_id = _write_record(node, found, manifest, rec, sis_id, actor, now)
            imports.remember_record(
                node.db, source_domain=manifest.sender_domain, source_record_id=rec.record_id, kind=rec.kind,
                local_id=local_id, import_id=found.import_id, transfer_id=found.transfer_id, student_sis_id=sis_id,
            )  # fmt: skip
            documents += rec.kind == "document"
            scores += rec.kind == "assessment"
        imports.update_student(
            node.db, found.import_id, incoming.sis_id, result="imported", result_reason=None,
            destination_sis_id=sis_id, created_student=int(create), documents=documents, scores=scores,
            changed=int(create or bool(todo)), finished_at=now,
        )  # fmt: skip
        record(node, actor, "import.student", sis_id,
               {"transfer": found.transfer_id, "from": manifest.sender_domain, "records": len(todo),
                "created": create})  # fmt: skip


def _new_student(found: Import, s: ManifestStudent, sis_id: str) -> StudentRecord:
    sex, grade = sex_and_grade(s)
    return StudentRecord(
        sis_id=sis_id, source_id=f"import:{found.source_domain}:{s.sis_id}", given_name=s.given_name,
        family_name=s.family_name, middle_name=s.middle_name or "", birth_date=s.birth_date, sex=sex, grade=grade,
        state_id=s.state_id or "", username="", email="", school_id=found.school_id or "",
        school_name=found.school_name or "", enrollment_start=None, enrollment_status="active",
    )  # fmt: skip


def _origin(found: Import, manifest: Manifest, rec: ManifestRecord) -> dict[str, str]:
    return {"kind": "import", "sender": manifest.sender_domain, "envelope": found.transfer_id,
            "record_id": rec.record_id, "received": now_iso()}  # fmt: skip


def _write_record(
    node: Node, found: Import, manifest: Manifest, rec: ManifestRecord, sis_id: str, actor: str, now: str
) -> str:
    local_id = new_id()
    origin = _origin(found, manifest, rec)
    if rec.kind == "document":
        replaced = (
            imports.imported_record(node.db, manifest.sender_domain, rec.corrects) if rec.corrects else None
        )
        records.add_document(node.db, Document(
            doc_id=local_id, student_sis_id=sis_id, doc_type=rec.document_type or "other", title=rec.title or "",
            filename=str(rec.metadata.get("filename", rec.title or local_id)), media_type=rec.media_type or "",
            length=rec.length or 0, sha256=(rec.sha256 or b"").hex(), status="active", origin=origin,
            created_at=now, created_by=found.owner or actor, replaces=replaced[1] if replaced else None,
        ))  # fmt: skip
        if replaced:
            records.update_document(node.db, replaced[1], superseded_by=local_id)
    elif rec.kind == "case":
        meta = rec.metadata
        number = str(meta.get("case_number") or rec.record_id)
        if node.db.execute("SELECT 1 FROM cases WHERE case_number = ?", [number]).fetchone():
            number = f"{number} ({manifest.sender_domain})"
        records.add_case(node.db, Case(
            case_id=local_id, case_number=number, student_sis_id=sis_id,
            person_of_concern=str(meta.get("person_of_concern", "")), building=str(meta.get("building", "")),
            team=str(meta.get("team", "")), team_leader=str(meta.get("team_leader", "")),
            case_manager=str(meta.get("case_manager", "")), notes=str(meta.get("notes", "")), status="open",
            origin=origin, created_at=now, created_by=actor,
        ))  # fmt: skip
    else:
        records.add_assessment_result(node.db, result_id=local_id, student_sis_id=sis_id,
                                      fields=dict(rec.metadata), origin=origin, now=now)  # fmt: skip
    return local_id


def _finish(node: Node, found: Import, actor: str) -> RunResult:
    rows = imports.students(node.db, found.import_id)
    imported = [s for s in rows if s.result == "imported"]
    skipped = [(s.sender_sis_id, s.result_reason or "skipped") for s in rows if s.result != "imported"]
    total = len(rows)
    changed = sum(1 for s in imported if s.changed)
    reference = None
    if len(imported) == total:
        result = "imported with changes" if changed else "imported with no changes"
    elif imported:
        result = f"partial ({len(imported)} of {total})"
        reference = reference_for(found.import_id)
    else:
        result = "failed"
        reference = reference_for(found.import_id)
    reasons = Counter(reason for _, reason in skipped)
    counts = ImportCounts(
        students_total=total, students_imported=len(imported), students_with_changes=changed,
        documents=sum(s.documents for s in imported), scores=sum(s.scores for s in imported),
        skipped=tuple(SkippedStudents(reason=r[:200], count=n) for r, n in reasons.most_common(10)),
    )  # fmt: skip
    with write_transaction(node.db):
        row = store.require(node.db, found.transfer_id, local_domain=node.config.node.domain)
        event = (
            ImportFinished(counts=counts)
            if imported
            else ImportFailed(reference=reference or "", reason=result)
        )
        step(node, row, event, actor=Actor.RECEIVER_NODE, actor_name=actor)
        imports.update(node.db, found.import_id, status="completed" if len(imported) == total else "previewed",
                       result=result, reference=reference, students_imported=len(imported),
                       finished_at=now_iso())  # fmt: skip
        record(node, actor, "import.run", found.transfer_id, {"result": result, "reference": reference})
    return RunResult(result, reference, len(imported), total, skipped)


def cancel(node: Node, *, actor: str | None, transfer_id: str) -> int:
    """Undo an import that is not complete: everything it wrote goes, and it can be started again."""
    user = authorize(node, actor, "transfers.act")
    found = imports.require(node.db, transfer_id)
    if found.status == "completed":
        raise InvalidInput(
            "a completed import cannot be cancelled", field="ID",
            hint="fix records with `satchel documents move|delete` and `satchel purge`",
        )  # fmt: skip
    blobs: set[str] = set()
    with write_transaction(node.db):
        written = imports.records_of_import(node.db, found.import_id)
        for kind, local_id, _sis, _source in written:
            if kind == "document":
                doc = records.get_document(node.db, local_id)
                blobs.add(doc.sha256)
                node.db.execute("DELETE FROM documents WHERE doc_id = ?", [local_id])
            elif kind == "case":
                node.db.execute("DELETE FROM cases WHERE case_id = ?", [local_id])
            else:
                node.db.execute("DELETE FROM assessment_results WHERE result_id = ?", [local_id])
        for student in imports.students(node.db, found.import_id):
            if student.created_student and student.destination_sis_id:
                node.db.execute(
                    "DELETE FROM student_match_keys WHERE sis_id = ?", [student.destination_sis_id]
                )
                node.db.execute("DELETE FROM students WHERE sis_id = ?", [student.destination_sis_id])
        imports.forget_records(node.db, found.import_id)
        imports.delete(node.db, found.import_id)
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        if row.status.state in (ReceiverState.PARTIALLY_IMPORTED, ReceiverState.IMPORT_FAILED):
            step(
                node,
                row,
                TransferEvent.START_IMPORT,
                actor=Actor.RECEIVER_COORDINATOR,
                actor_name=user.username,
            )
            row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        if row.status.state is ReceiverState.IMPORTING:
            step(
                node,
                row,
                TransferEvent.CANCEL_IMPORT,
                actor=Actor.RECEIVER_COORDINATOR,
                actor_name=user.username,
            )
        record(node, user.username, "import.cancel", transfer_id, {"records_removed": len(written)})
    # The transfer is accepted again and still holds its blobs for the next run; only blobs of documents
    # that came from elsewhere and are no longer used go.
    drop_unused(node, blobs)
    return len(written)
