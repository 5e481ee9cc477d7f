"""What a transfer carries: the chosen students and records as a manifest, and their documents' bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from node.home import Node
from node.records import not_active
from protocol import InvalidInput, NotFound
from protocol.manifest import Manifest, ManifestRecord, ManifestStudent
from storage import records, students
from storage.records import Document


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """What the coordinator picked: students, and which of their records (demographics always go)."""

    students: tuple[str, ...]
    documents: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()
    assessments: bool = False
    all_records: bool = False
    receiving_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Contents:
    manifest: Manifest
    documents: tuple[Document, ...]  # in manifest order: their bytes follow one another in the payload


def build(
    node: Node, selection: Selection, *, recipient_domain: str, notes: str, owner: str | None, created: int
) -> Contents:
    if not selection.students:
        raise InvalidInput("choose at least one student", field="--student")
    wanted = list(dict.fromkeys(selection.students))
    unknown_receiving = set(selection.receiving_ids) - set(wanted)
    if unknown_receiving:
        raise InvalidInput(
            f"--receiving-sis-id names {sorted(unknown_receiving)[0]}, who is not being sent",
            field="--receiving-sis-id",
        )
    manifest_students = [_student(node, sis_id, selection.receiving_ids.get(sis_id)) for sis_id in wanted]
    docs, case_list, results = _records(node, selection, set(wanted))
    manifest_records = [
        _document(d, records.earlier_versions(node.db, d.doc_id) if d.replaces else ()) for d in docs
    ]
    manifest_records += [_case(c) for c in case_list]
    manifest_records += [_assessment(r) for r in results]
    manifest = Manifest(
        sender_domain=node.config.node.domain,
        sender_key_id=node.current_keys().identity.public_key.key_id,
        recipient_domain=recipient_domain,
        created=created,
        students=tuple(manifest_students),
        records=tuple(manifest_records),
        notes=notes,
        recipient_owner=owner,
    )
    return Contents(manifest, tuple(docs))


def _student(node: Node, sis_id: str, receiving_id: str | None) -> ManifestStudent:
    s = students.require(node.db, sis_id).record
    if not s.birth_date:
        raise InvalidInput(
            f"student {sis_id} has no birth date, which the receiving district needs to match them",
            field="--student", hint="add the birth date in the SIS and re-run `satchel roster import`",
        )  # fmt: skip
    return ManifestStudent(
        sis_id=s.sis_id, given_name=s.given_name, family_name=s.family_name, birth_date=s.birth_date,
        middle_name=s.middle_name or None, sex=s.sex, grade=s.grade, state_id=s.state_id or None,
        school=s.school_name or None, username=s.username or None, email=s.email or None,
        recipient_sis_id=receiving_id,
    )  # fmt: skip


def _records(
    node: Node, selection: Selection, wanted: set[str]
) -> tuple[list[Document], list[records.Case], list[dict[str, str]]]:
    docs: list[Document] = []
    case_list: list[records.Case] = []
    results: list[dict[str, str]] = []
    if selection.all_records:
        for sis_id in sorted(wanted):
            docs += [d for d in records.list_documents(node.db, sis_id) if d.status == "active"]
            case_list += records.list_cases(node.db, student_sis_id=sis_id)
            results += records.list_assessment_results(node.db, sis_id)
        return docs, case_list, results
    for doc_id in dict.fromkeys(selection.documents):
        doc = records.get_document(node.db, doc_id)
        _belongs(doc.student_sis_id, wanted, f"document {doc_id}", "--documents")
        if doc.status != "active":
            raise not_active(doc, field="--documents", doing="send")
        docs.append(doc)
    for case_id in dict.fromkeys(selection.cases):
        case = records.get_case(node.db, case_id)
        _belongs(case.student_sis_id, wanted, f"case {case.case_number}", "--cases")
        case_list.append(case)
    if selection.assessments:
        for sis_id in sorted(wanted):
            results += records.list_assessment_results(node.db, sis_id)
    return docs, case_list, results


def _belongs(owner: str, wanted: set[str], what: str, option: str) -> None:
    if owner not in wanted:
        raise InvalidInput(f"{what} belongs to student {owner}, who is not being sent", field=option,
                           hint="add that student with --student, or leave the record out")  # fmt: skip


def _document(doc: Document, earlier: Sequence[str]) -> ManifestRecord:
    # A correction of a correction names every version before it (spec/transfer.md §8): a receiver that never
    # got the one it corrects still knows which of those it holds are outdated.
    chain = {"earlier_versions": list(earlier)} if len(earlier) > 1 else {}
    return ManifestRecord(
        kind="document", record_id=doc.doc_id, student_sis_id=doc.student_sis_id,
        metadata={"filename": doc.filename, "created_at": doc.created_at, **_origin(doc.origin), **chain},
        length=doc.length, sha256=bytes.fromhex(doc.sha256), media_type=doc.media_type, title=doc.title,
        document_type=doc.doc_type, corrects=doc.replaces,
    )  # fmt: skip


def _case(case: records.Case) -> ManifestRecord:
    fields = ("case_number", "person_of_concern", "building", "team", "team_leader", "case_manager", "notes",
              "status", "created_at")  # fmt: skip
    return ManifestRecord(
        kind="case", record_id=case.case_id, student_sis_id=case.student_sis_id,
        metadata={f: getattr(case, f) for f in fields},
    )  # fmt: skip


def _assessment(result: dict[str, str]) -> ManifestRecord:
    return ManifestRecord(
        kind="assessment", record_id=result["result_id"], student_sis_id=result["student_sis_id"],
        metadata={k: v for k, v in result.items() if k not in ("result_id", "student_sis_id")},
    )  # fmt: skip


def _origin(origin: object) -> dict[str, str]:
    # A record the district itself received earlier says where it came from (provenance travels on).
    if isinstance(origin, dict) and origin.get("kind") == "import":
        return {"received_from": str(origin.get("sender", ""))}
    return {}


class ConcatReader:
    """The documents' bytes back to back, read from the blob store one chunk at a time."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(paths)
        self._current: BinaryIO | None = None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self._current is None:
                if not self._paths:
                    return b""
                try:
                    self._current = self._paths.pop(0).open("rb")
                except FileNotFoundError as exc:
                    raise NotFound(f"a document's stored bytes are missing: {exc.filename}",
                                   hint="restore the blob store from backup") from exc  # fmt: skip
            data = self._current.read(size if size > 0 else 1 << 20)
            if data:
                return data
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
