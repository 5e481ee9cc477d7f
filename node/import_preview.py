"""Before anything is written: who the incoming students are here (preview), and people's decisions (review)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections import Counter
from dataclasses import dataclass

from crypto import IdentityPublicKey, verify_manifest
from node.clock import now_iso
from node.home import Node
from node.matching import match_students
from node.operators import authorize, record
from protocol import InvalidInput, NotFound, SatchelError
from protocol.envelope_errors import ManifestSignatureInvalid
from protocol.manifest import Manifest, ManifestStudent, parse_checked_manifest, parse_manifest
from protocol.matching import IncomingStudent, flag_inactive
from protocol.roster import normalize_grade, normalize_sex
from protocol.transfer_states import Side
from storage import imports, manifest_checks, peers, received_blobs, users
from storage import students as student_store
from storage import transfers as store
from storage.database import write_transaction
from storage.imports import Import, ImportStudent
from storage.transfers import TransferRow

IMPORTABLE = received_blobs.WAITING_STATES


class NotImportable(SatchelError):
    """The transfer is not in a state its records can be imported from."""

    code = "import.not_ready"
    default_hint = "accept the transfer with its code first: `satchel accept ID --code CODE`"


@dataclass(frozen=True, slots=True)
class InactiveMatch:
    """An incoming student not imported yet whose local student (proposed, or chosen by a person) is marked
    inactive here: the coordinator checks this is the same child returning (spec: protocol.matching rule 5)."""

    sender_sis_id: str
    local_sis_id: str
    inactive_since: str
    confirmed: bool  # a person linked them (`satchel import match --to`): the import will


@dataclass(frozen=True, slots=True)
class Preview:
    import_row: Import
    counts: dict[str, int]
    students: list[ImportStudent]
    # Why the documents have no owner although the sending district named one (it names nobody here, or an
    # operator whose account is disabled), for the coordinator to choose one with --owner; None otherwise.
    owner_note: str | None = None
    inactive: tuple[InactiveMatch, ...] = ()


def transfer_for_import(node: Node, transfer_id: str) -> TransferRow:
    row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
    if row.status.side is not Side.RECEIVER or row.status.state not in IMPORTABLE:
        raise NotImportable(f"transfer {transfer_id} is {row.state}; only accepted transfers can be imported")
    return row


def verified_manifest(node: Node, row: TransferRow) -> Manifest:
    """The sender's signed manifest as stored at acceptance, verified again before it is believed.

    The signature is always verified, against the sender's identity key that verified it when the transfer was
    accepted (kept with it), never against the keys held now: a re-pin forgets the sender's old keys, and a key
    revoked after acceptance does not undo what it signed before (spec/envelope.md §5.3). Bytes that passed
    every structural check before (at accept, see storage.manifest_checks) are not checked again.
    """
    data, signature = _stored_manifest(node, row)
    checked = manifest_checks.passed(node.db, data)
    redaction = store.manifest_redaction(node.db, row.transfer_id)
    if redaction is not None:
        return _redacted(data, redaction, row, checked=checked)
    signer = store.manifest_signer(node.db, row.transfer_id)
    if signer is not None:
        return verify_manifest(data, signature, IdentityPublicKey(signer[1]), checked=checked)
    return _verified_by_a_held_key(node, row, data, signature, checked=checked)


def _verified_by_a_held_key(
    node: Node, row: TransferRow, data: bytes, signature: bytes, *, checked: bool
) -> Manifest:
    """A transfer accepted before Satchel kept the key that verified its manifest: the sender's keys held now are
    tried (as then), and the one that verifies it is kept from now on."""
    for key in peers.keys(node.db, row.peer):
        if key.use != "identity":
            continue
        try:
            manifest = verify_manifest(data, signature, IdentityPublicKey(key.public_key), checked=checked)
        except SatchelError:
            continue
        with write_transaction(node.db):
            store.record_manifest_signer(node.db, row.transfer_id, key.key_id, key.public_key)
        return manifest
    raise ManifestSignatureInvalid(
        f"no key of {row.peer} held here verifies the manifest of transfer {row.transfer_id} (accepted before "
        f"Satchel kept the key that verified it): the stored manifest was altered, or the key that signed it was "
        f"forgotten since (a re-pin)",
        field="manifest", hint=f"ask {row.peer} to send the records again (a new transfer); or restore the home from "
                               f"a backup made before the re-pin, which holds the key",
    )  # fmt: skip


def _redacted(data: bytes, redaction: dict, row: TransferRow, *, checked: bool) -> Manifest:
    """A manifest a purge erased records from (node.purged_content): the sender's signature covers the bytes as
    received, which are gone; these were written from the manifest that signature verified, and their SHA-256
    is recorded with the erasure and in the purge's audit entry."""
    if hashlib.sha256(data).hexdigest() != redaction.get("sha256"):
        raise ManifestSignatureInvalid(
            f"the manifest of transfer {row.transfer_id} was changed since a purge erased records from it",
            field="manifest", hint="restore the home from the latest backup; `satchel audit` lists the purges",
        )  # fmt: skip
    manifest = parse_checked_manifest(data) if checked else parse_manifest(data)
    if manifest.sender_domain != row.peer:
        raise ManifestSignatureInvalid(f"the manifest of transfer {row.transfer_id} names another sender",
                                       field="sender_domain")  # fmt: skip
    return manifest


def _stored_manifest(node: Node, row: TransferRow) -> tuple[bytes, bytes]:
    stored = store.manifest_of(node.db, row.transfer_id)
    if stored is None:
        raise NotImportable(f"transfer {row.transfer_id} has no stored manifest")
    return stored


def sex_and_grade(student: ManifestStudent) -> tuple[str | None, str | None]:
    """A foreign district's spelling of sex and grade in Satchel's code sets; an unknown one is dropped
    rather than refusing the student (matching then has less to compare, and the record leaves it blank)."""
    sex = grade = None
    with contextlib.suppress(SatchelError):
        sex = normalize_sex(student.sex or "")
    with contextlib.suppress(SatchelError):
        grade = normalize_grade(student.grade or "")
    return sex, grade


def incoming(student: ManifestStudent) -> IncomingStudent:
    sex, grade = sex_and_grade(student)
    return IncomingStudent(
        sender_sis_id=student.sis_id, given_name=student.given_name, family_name=student.family_name,
        middle_name=student.middle_name or "", birth_date=student.birth_date, sex=sex, grade=grade,
        state_id=student.state_id or "", receiving_sis_id=student.recipient_sis_id, school_name=student.school or "",
    )  # fmt: skip


def preview(
    node: Node, *, actor: str | None, transfer_id: str, school: str | None = None, owner: str | None = None
) -> Preview:
    """Match every incoming student (nothing is imported). Re-running keeps the decisions already made."""
    user = authorize(node, actor, "transfers.act")
    row = transfer_for_import(node, transfer_id)
    manifest = verified_manifest(node, row)
    outcomes = match_students(node.db, [incoming(s) for s in manifest.students])
    # Rule 5 (protocol.matching): a student inactive here is never linked without a person.
    outcomes = flag_inactive(outcomes, student_store.inactive_since(node.db, (o.local_sis_id for o in outcomes
                                                                               if o.local_sis_id)))  # fmt: skip
    school_id, school_name = _school(node, school)
    owner_name = _owner(node, owner or manifest.recipient_owner, explicit=owner is not None)
    peer = peers.get(node.db, row.peer)
    source_school = Counter(s.school for s in manifest.students if s.school).most_common(1)
    now = now_iso()
    with write_transaction(node.db):
        existing = imports.get(node.db, transfer_id)
        if existing is not None and existing.status == "completed":
            raise InvalidInput(f"transfer {transfer_id} was already imported", field="ID",
                               hint="see `satchel import log ID`")  # fmt: skip
        if existing is None:
            imports.create(
                node.db, import_id=transfer_id, transfer_id=transfer_id, source_domain=row.peer,
                source_name=peer.name if peer else row.peer, source_school=source_school[0][0] if source_school else "",
                school_id=school_id, school_name=school_name, owner=owner_name, status="previewed",
                students_total=len(manifest.students), created_at=now, created_by=user.username,
            )  # fmt: skip
        else:
            changes = {k: v for k, v in (("school_id", school_id), ("school_name", school_name),
                                         ("owner", owner_name)) if v is not None}  # fmt: skip
            if existing.status == "cancelled":
                changes["status"] = "previewed"
            if changes:
                imports.update(node.db, transfer_id, **changes)
        known = {s.sender_sis_id: s for s in imports.students(node.db, transfer_id)}
        for position, (student, outcome) in enumerate(zip(manifest.students, outcomes, strict=True)):
            values = {"match_status": outcome.status, "proposed_sis_id": outcome.local_sis_id, "score": outcome.score,
                      "method": outcome.method, "candidates": [list(c) for c in outcome.candidates],
                      "reasons": list(outcome.reasons), **sent_values(student)}  # fmt: skip
            if student.sis_id in known:  # matched again: the reasons and candidates shown beside a decision too
                imports.update_student(node.db, transfer_id, student.sis_id, **values)
            else:
                imports.add_student(node.db, import_id=transfer_id, position=position, sender_sis_id=student.sis_id,
                                    **values)  # fmt: skip
        # A transfer accepted before manifest checks were remembered: its bytes have now passed.
        manifest_checks.remember(node.db, _stored_manifest(node, row)[0], now=now)
        record(node, user.username, "import.preview", transfer_id, {"students": len(manifest.students)})
    found = summary(node, transfer_id)
    asked = manifest.recipient_owner
    if asked and found.import_row.owner is None:
        why = "who is not an operator here" if users.find(node.db, asked) is None else "whose account here is disabled"
        return dataclasses.replace(found, owner_note=f"the sending district named {asked}, {why}")
    return found


def sent_values(student: ManifestStudent) -> dict[str, str]:
    """What the import log shows of the student as sent, kept while the manifest is verified here: the log
    then reads the same whatever becomes of the sender's keys (a re-pin after a key change forgets them)."""
    return {"sent_given_name": student.given_name, "sent_family_name": student.family_name,
            "sent_grade": student.grade or "", "sent_state_id": student.state_id or "",
            "sent_username": student.username or "", "sent_email": student.email or ""}  # fmt: skip


def summary(node: Node, transfer_id: str) -> Preview:
    found = imports.require(node.db, transfer_id)
    rows = imports.students(node.db, found.import_id)
    counts = Counter(s.match_status for s in rows)
    return Preview(found, {k: counts.get(k, 0) for k in ("new", "matched", "uncertain")}, rows,
                   inactive=_inactive_matches(node, rows))  # fmt: skip


def _inactive_matches(node: Node, rows: list[ImportStudent]) -> tuple[InactiveMatch, ...]:
    """The students still to import whose local student (a person's choice, else the proposal) is inactive now:
    read at each look, as the roster may have marked one since the preview."""
    local = {s.sender_sis_id: s.target[1] if s.decision == "link" else s.proposed_sis_id
             for s in rows if s.result != "imported" and s.decision not in ("new", "later")}  # fmt: skip
    since = student_store.inactive_since(node.db, (sis_id for sis_id in local.values() if sis_id))
    return tuple(
        InactiveMatch(s.sender_sis_id, sis_id, since[sis_id], s.decision == "link")
        for s in rows if (sis_id := local.get(s.sender_sis_id)) is not None and sis_id in since
    )  # fmt: skip


def _school(node: Node, school: str | None) -> tuple[str | None, str | None]:
    if school is None:
        return None, None
    row = node.db.execute(
        "SELECT school_id, school_name FROM students WHERE school_id = ? OR school_name = ? COLLATE NOCASE"
        " GROUP BY school_id LIMIT 1",
        [school, school],
    ).fetchone()
    if row is None:
        raise NotFound(f"no school {school!r} in this district's roster", field="--school",
                       hint="use a school id or name that `satchel students list` shows")  # fmt: skip
    return row[0], row[1]


def _owner(node: Node, wanted: str | None, *, explicit: bool) -> str | None:
    if not wanted:
        return None
    user = users.find(node.db, wanted)
    if user is None:
        if explicit:
            raise NotFound(f"no operator {wanted!r} here", field="--owner", hint="see `satchel users list`")
        return None  # the sender's suggestion does not exist here: preview says so (Preview.owner_note)
    if not user.active:
        # Documents owned by someone who left would reach no one.
        if explicit:
            raise InvalidInput(f"operator {user.username} is disabled", field="--owner",
                               hint="choose an active operator (`satchel users list`)")  # fmt: skip
        return None
    return user.username


@dataclass(frozen=True, slots=True)
class Decided:
    student: ImportStudent
    # Other incoming students of the import that are (or will be) linked to the same local student. Matching
    # never does that by itself (one local student receives records once, spec rule 4); a person may, when the
    # sender holds one child twice, so it is said rather than refused.
    shared_with: tuple[str, ...] = ()
    # Those of them already imported there: only the others (or this one) can be decided again.
    shared_imported: tuple[str, ...] = ()
    # Since when the student linked to is marked inactive here, if it is (the person chose them all the same).
    inactive_since: str | None = None


def decide(
    node: Node, *, actor: str | None, transfer_id: str, sender_sis_id: str, link_to: str | None = None,
    new: bool = False, later: bool = False,
) -> Decided:  # fmt: skip
    """Record a person's decision for one incoming student: link to a local student, create new, or later."""
    if sum((link_to is not None, new, later)) != 1:
        raise InvalidInput("give exactly one of --to SIS_ID, --new or --later", field="--to")
    user = authorize(node, actor, "transfers.act")
    with write_transaction(node.db):
        found = open_for_review(node, transfer_id)
        rows = imports.students(node.db, found.import_id)
        return record_decision(node, user.username, found, rows, sender_sis_id,
                               "link" if link_to is not None else "new" if new else "later", link_to)  # fmt: skip


def open_for_review(node: Node, transfer_id: str) -> Import:
    """The import whose students a person decides for (in the caller's write transaction): not complete."""
    found = imports.require(node.db, transfer_id)
    if found.status == "completed":
        raise InvalidInput("this import is complete; fix records with `satchel documents move`", field="ID")
    return found


def record_decision(
    node: Node, username: str, found: Import, rows: list[ImportStudent], sender_sis_id: str, decision: str,
    link_to: str | None,
) -> Decided:  # fmt: skip
    """Record one decision, with its `import.review` audit entry, in the caller's write transaction. ``rows`` are
    the import's students as they stand (the one decided is replaced in it by what was recorded, so that a
    caller deciding several in one transaction sees each decision in the next one's warnings)."""
    index = next((i for i, s in enumerate(rows) if s.sender_sis_id == sender_sis_id), None)
    if index is None:
        raise NotFound(f"no incoming student {sender_sis_id} in this import", field="STUDENT",
                       hint="see `satchel import review ID`")  # fmt: skip
    if rows[index].result == "imported":
        raise InvalidInput(f"student {sender_sis_id} is already imported", field="STUDENT",
                           hint="move their records with `satchel documents move`")  # fmt: skip
    inactive = None
    if link_to is not None:
        student_store.require(node.db, link_to)
        inactive = student_store.inactive_since(node.db, [link_to]).get(link_to)
    reviewed_at = now_iso()
    imports.update_student(node.db, found.import_id, sender_sis_id, decision=decision, decided_sis_id=link_to,
                           reviewed_by=username, reviewed_at=reviewed_at)  # fmt: skip
    rows[index] = dataclasses.replace(rows[index], decision=decision, decided_sis_id=link_to, reviewed_by=username,
                                      reviewed_at=reviewed_at)  # fmt: skip
    shared, shared_imported = sharing(node, rows, sender_sis_id, link_to)
    record(node, username, "import.review", found.transfer_id,
           {"student": sender_sis_id, "decision": decision, "to": link_to}
           | ({"shared_with": list(shared)} if shared else {})
           | ({"to_inactive_since": inactive} if inactive else {}))  # fmt: skip
    return Decided(rows[index], shared, shared_imported, inactive)


def sharing(
    node: Node, rows: list[ImportStudent], sender_sis_id: str, link_to: str | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The other incoming students of the import (of ``rows``) linked, or imported, to ``link_to``; and which of
    them are imported already."""
    if link_to is None:
        return (), ()
    others = [s for s in rows if s.sender_sis_id != sender_sis_id]
    # The log keeps the number a student was imported onto; the SIS may have renumbered them since.
    now_named = {n.former_sis_id: n.current_sis_id for n in student_store.former(
        node.db, [s.destination_sis_id for s in others if s.result == "imported" and s.destination_sis_id]
    ).values()}  # fmt: skip
    linked = [
        s for s in others
        if (now_named.get(s.destination_sis_id or "", s.destination_sis_id) if s.result == "imported"
            else s.target[1]) == link_to
    ]  # fmt: skip
    return tuple(s.sender_sis_id for s in linked), tuple(s.sender_sis_id for s in linked if s.result == "imported")
