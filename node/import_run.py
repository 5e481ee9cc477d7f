"""`satchel import run|cancel`: each student lands all or nothing, exactly once.

Accepting the transfer already opened its documents into the blob store (held there for the transfer, see
storage.received_blobs), so importing moves no bytes, only rows. Students are written in batches: one
transaction per batch (at most ``imports.batch_students`` students, or about BATCH_SECONDS, so progress
shows and the write lock is held briefly), each table written with one ``executemany``. A student that cannot be placed
(needs review, an SIS id that is taken) is skipped with the reason before anything is written; should the
batch's rows break a constraint, the batch is written again student by student, each under its own
SAVEPOINT, and only the student whose rows fail is skipped. A crash leaves every student either fully
imported or untouched; running the import again finishes the rest, and records already imported are
recognised by (sender, record id).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from json.encoder import encode_basestring_ascii
from typing import Any

from node import legacy_staging
from node.blob_holds import drop_unused
from node.clock import new_ids, now_iso
from node.gc_pause import gc_paused
from node.home import Node
from node.import_preview import sex_and_grade, transfer_for_import, verified_manifest
from node.operators import authorize, record, record_many, still_allowed
from node.progress import Progress
from node.transfer_engine import step
from protocol import InvalidInput, SatchelError
from protocol.ids import parse_ulid
from protocol.manifest import Manifest, ManifestRecord, ManifestStudent, metadata_text, metadata_texts
from protocol.receipts import ImportCounts, SkippedStudents
from protocol.roster import StudentRecord
from protocol.transfer_states import Actor, ImportFailed, ImportFinished, ReceiverState, TransferEvent
from storage import imports, match_index, received_blobs, records, students
from storage import transfers as store
from storage.database import write_transaction
from storage.errors import BlobMissing
from storage.imports import Import, ImportStudent
from storage.records import Case, Document
from storage.transfers import TransferRow

BATCH_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class RunResult:
    result: str
    reference: str | None
    imported: int
    total: int
    skipped: list[tuple[str, str]]  # (sender sis id, reason)
    # (sender sis id, what differs here) of students "imported with changes"
    changes: list[tuple[str, str]] = field(default_factory=list)


def reference_for(import_id: str) -> str:
    """A short code a person can quote on the phone, e.g. IMP-7K2Q-9XDR."""
    digest = hashlib.sha256(b"satchel/v1/import-reference\x00" + import_id.encode()).digest()
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = int.from_bytes(digest[:5], "big")
    chars = "".join(alphabet[(value >> (5 * i)) & 31] for i in range(8))
    return f"IMP-{chars[:4]}-{chars[4:]}"


@dataclass(slots=True)
class _Run:
    """What every student of one run shares."""

    node: Node
    found: Import
    manifest: Manifest
    actor: str
    now: str
    # (kind, local id, still here) of the sender's records imported here before, this run's included. One
    # whose copy is gone (deleted, purged) is imported again; a correction still names the copy it corrects.
    done: dict[str, tuple[str, str, bool]]
    batch: int  # most students per transaction
    origin_json: Callable[[str], str]  # record id -> its origin, as JSON text (see origin_json_for)
    claimed: set[str] = field(default_factory=set)  # SIS ids of students this run creates
    # Record id -> (versions apart, doc id) of the nearest active document here that is a newer version of it
    # (imported before, or by this run): storage.records.corrections_of
    corrected: dict[str, tuple[int, str]] = field(default_factory=dict)
    token: str = ""  # which run of the import this is (imports.start_run)


@dataclass(slots=True)
class _Plan:
    """The rows one student writes, worked out before anything is written."""

    student: ImportStudent
    sis_id: str
    new_student: StudentRecord | None
    documents: list[Document] = field(default_factory=list)
    # (id, sis id, values of storage.records.RESULT_VALUE_FIELDS, origin as JSON text) of each assessment result
    results: list[tuple[str, str, tuple[str, ...], str]] = field(default_factory=list)
    cases: list[tuple[Case, str]] = field(default_factory=list)  # (case, sender domain for a clash)
    supersedes: list[tuple[str, str]] = field(default_factory=list)  # (old doc id, new doc id)
    remembered: list[tuple] = field(default_factory=list)  # imported_records rows
    gone: list[tuple[str, str, str]] = field(default_factory=list)  # (sender, record id, local id) to forget
    held: list[tuple[str, str]] = field(default_factory=list)  # (kind, local id) of its records held here already
    corrected_held: list[str] = field(default_factory=list)  # doc ids held here of the versions its corrections replace
    newer: list[tuple[str, str]] = field(default_factory=list)  # (doc id here, the older version it replaces)
    corrected: dict[str, tuple[int, str]] = field(default_factory=dict)  # as _Run.corrected, its own docs
    versions: dict[str, str] = field(default_factory=dict)  # record id -> doc id, of its own documents
    changes: str | None = None  # what a conflict with this district's record changed ("imported with changes")
    linked: StudentRecord | None = None  # the student here it links to (the import changes none of its values)

    @property
    def destination(self) -> imports.Destination:
        """The student here as this import leaves it, kept for the log: a student changed, detached or purged
        since must not change what the log says was imported."""
        s = self.new_student or self.linked
        assert s is not None  # _plan sets one or the other
        return self.sis_id, s.state_id or "", s.username or "", s.email or ""

    @property
    def record_count(self) -> int:
        return len(self.remembered)


class ImportCancelledWhileRunning(SatchelError):
    """Another coordinator cancelled the import, or ran it again, while this run was writing it; this run
    stopped (a cancellation removed what it had written; a second run carries on from where it stopped)."""

    code = "import.cancelled"
    default_hint = "see `satchel import log ID`; run the import again when the coordinators agree it should"


def _still_running(run: _Run) -> None:
    """Inside a write transaction: refuse to write more of an import that was cancelled, or taken over by
    another run of it, since this run began (cancel removes what the batches before wrote; its transaction,
    another run's start and each batch take the same write lock, so one comes wholly before the other)."""
    if not imports.is_running(run.node.db, run.found.import_id, run.token):
        raise ImportCancelledWhileRunning(
            f"the import of transfer {run.found.transfer_id} was cancelled, or run again elsewhere, while this "
            f"run was writing it", field="ID",
        )  # fmt: skip


def _still_allowed(run: _Run) -> None:
    """Inside a batch's write transaction: an operator disabled, or made a viewer, while the run writes stops it
    between students; what the batches before wrote stays imported, as a run stopped any other way leaves it."""

    def stopped() -> str:
        rows = imports.students(run.node.db, run.found.import_id)
        done = sum(1 for s in rows if s.result == "imported")
        return (f"the import of transfer {run.found.transfer_id} stopped after {done} of {len(rows)} students, who "
                "stay imported")  # fmt: skip

    still_allowed(run.node, run.actor, "transfers.act", stopped=stopped,
                  hint=f"another coordinator or admin carries on from there: `satchel import run "
                       f"{run.found.transfer_id} --as THEM`")  # fmt: skip


def run(node: Node, *, actor: str | None, transfer_id: str, progress: Progress | None = None) -> RunResult:
    """``progress`` hears how many of the students still to import are done, after each batch."""
    with gc_paused():  # a grade is some 300,000 small objects, none of them cyclic
        return _run(node, actor=actor, transfer_id=transfer_id, progress=progress)


def _run(node: Node, *, actor: str | None, transfer_id: str, progress: Progress | None) -> RunResult:
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
    token = new_ids(1)[0]
    with write_transaction(node.db):
        resumed = row.status.state is ReceiverState.IMPORTING
        if not resumed:
            _coordinator_step(node, row, TransferEvent.START_IMPORT, user.username)
        imports.start_run(node.db, found.import_id, token)
        # Read again now that this run holds the import: what another run of it wrote until now is done.
        every = imports.students(node.db, found.import_id)
        pending = [s for s in every if s.result != "imported"]
        # Who started the run, from the moment the transfer is `importing`: a run killed before its first batch
        # committed leaves no import.student entry, and one killed later no import.run.
        record(node, user.username, "import.start", transfer_id, {
            "from": manifest.sender_domain, "students": len(pending), "imported_before": len(every) - len(pending),
            "resumed": resumed,
        })  # fmt: skip
    by_sis = {s.sis_id: s for s in manifest.students}
    # Records a purge here erased from the manifest (node.purged_content): whether this transfer imported them
    # before (an import cancelled and run again since) or not yet, it does not bring them back (their content
    # is gone; only a transfer the sender sends after the purge, a redo, brings them).
    erased = set((store.manifest_redaction(node.db, transfer_id) or {}).get("records", ()))
    records_of: dict[str, list[ManifestRecord]] = {}
    for rec in manifest.records:
        if rec.record_id not in erased:
            records_of.setdefault(rec.student_sis_id, []).append(rec)
    wanted = [r.record_id for r in manifest.records] + [i for r in manifest.records if r.corrects for i in _lineage(r)]
    done = imports.imported_among(node.db, manifest.sender_domain, wanted)
    now = now_iso()
    context = _Run(node, found, manifest, user.username, now, done, node.config.imports.batch_students,
                   origin_json_for(manifest.sender_domain, found.transfer_id, now), token=token,
                   corrected=records.corrections_of(node.db, manifest.sender_domain))  # fmt: skip
    queue = deque(pending)
    while queue:
        _import_batch(context, queue, by_sis, records_of)
        if progress is not None:
            progress(len(pending) - len(queue), len(pending))
    return _finish(context)


def _import_batch(
    run: _Run, queue: deque[ImportStudent], by_sis: dict[str, ManifestStudent],
    records_of: dict[str, list[ManifestRecord]],
) -> None:  # fmt: skip
    """Take students off ``queue`` and import them in one transaction (see the module's docstring)."""
    db = run.node.db
    with write_transaction(db):
        started = time.monotonic()  # once the write lock is held: waiting for it is not planning
        _still_running(run)
        _still_allowed(run)
        existing = _existing(run, islice(queue, run.batch), by_sis)
        plans: list[_Plan] = []
        skipped: list[tuple[ImportStudent, str]] = []
        # At least one student a batch, however slow the look-up was: a batch that took none would repeat.
        while queue and len(plans) + len(skipped) < run.batch and (
            (not plans and not skipped) or time.monotonic() - started < BATCH_SECONDS
        ):
            student = queue.popleft()
            try:
                plans.append(_plan(run, by_sis[student.sender_sis_id], records_of.get(student.sender_sis_id, []),
                                   student, existing))  # fmt: skip
            except SatchelError as exc:
                skipped.append((student, exc.message))
        _held_elsewhere(run, plans)
        try:
            with write_transaction(db):  # a SAVEPOINT: the batch's rows together…
                _write(run, plans)
            written = plans
        except (SatchelError, sqlite3.IntegrityError):
            written = []  # …or, when some rows break a constraint, student by student to find whose
            for plan in plans:
                try:
                    with write_transaction(db):
                        _write(run, [plan])
                    written.append(plan)
                except (SatchelError, sqlite3.IntegrityError) as exc:
                    skipped.append((plan.student, _reason(exc)))
        for plan in written:
            run.done.update({r[1]: (r[2], r[3], True) for r in plan.remembered})
            records.merge_versions(run.corrected, plan.corrected)
        imports.finish_students(
            db, run.found.import_id, now=run.now,
            imported=[(p.student.sender_sis_id, p.destination, int(p.new_student is not None),
                       len(p.documents), len(p.results), p.changes) for p in written],
            skipped=[(s.sender_sis_id, reason) for s, reason in skipped],
        )  # fmt: skip
        record_many(run.node, run.actor, "import.student", [
            (p.sis_id, {"transfer": run.found.transfer_id, "from": run.manifest.sender_domain,
                        "records": p.record_count, "created": p.new_student is not None})
            for p in written
        ])  # fmt: skip


_MOVE = {"document": "documents", "case": "cases", "assessment": "assessments"}


def _held_elsewhere(run: _Run, plans: list[_Plan]) -> None:
    """A record the sender sent before is imported once (spec/transfer.md §6): while its copy here is held, it is
    not imported again. When that copy is on another student than the one this import gives the record to (it
    landed on the wrong child, and the sender redid the transfer for the right one), the student is "imported
    with changes" and the change names each such copy and how to move it, instead of leaving it unnoticed on the
    other child (one look-up for the batch). So does the version a correction replaces, when it is held on
    another student than the one the correction goes to."""
    holders = imports.held_by(run.node.db, [held for plan in plans for held in plan.held]
                              + [("document", doc_id) for plan in plans for doc_id in plan.corrected_held])  # fmt: skip
    for plan in plans:
        elsewhere: dict[str, list[tuple[str, str]]] = {}
        for kind, local_id in plan.held:
            holder = holders.get(local_id)
            if holder is not None and holder != plan.sis_id:
                elsewhere.setdefault(holder, []).append((kind, local_id))
        notes = [
            f"{len(held)} record(s) {run.manifest.sender_domain} sent before are held here on student {holder}, "
            f"not {plan.sis_id}, and were not imported again: "
            + ", ".join(f"{kind} {local_id}" for kind, local_id in held)
            + "; if they belong to " + plan.sis_id + ", move them with "
            + ", ".join(f"`satchel {_MOVE[kind]} move {local_id} --to {plan.sis_id}`" for kind, local_id in held)
            for holder, held in sorted(elsewhere.items())
        ]  # fmt: skip
        # A correction replaces the version held here wherever it is; on another child, that child keeps it.
        notes += [
            f"document {doc_id}, the version a correction of this import replaces, is held here on student "
            f"{holders[doc_id]}, not {plan.sis_id}; if it belongs to {plan.sis_id}, move it with "
            f"`satchel documents move {doc_id} --to {plan.sis_id}`"
            for doc_id in plan.corrected_held if holders.get(doc_id, plan.sis_id) != plan.sis_id
        ]  # fmt: skip
        if notes:
            plan.changes = "; ".join([*filter(None, [plan.changes]), *notes])


def _existing(
    run: _Run, upcoming: Iterable[ImportStudent], by_sis: dict[str, ManifestStudent]
) -> dict[str, StudentRecord]:
    """The local students a batch links to or whose SIS ids it would create, in one look-up (read inside the
    batch's transaction, so they stay true while it plans and writes)."""
    wanted = []
    for student in upcoming:
        action, sis_id = student.target
        if action == "link" and sis_id is not None:
            wanted.append(sis_id)
        elif action == "new":
            wanted.append(_new_sis_id(run.found, by_sis[student.sender_sis_id]))
    return match_index.lookup_sis_ids(run.node.db, wanted)


_NEEDS_REVIEW = "needs review: the match is uncertain"
_SET_ASIDE = "needs review: set aside for later by a coordinator"
# What the signed `imported` receipt says of skipped students. The reasons kept here name this district's own
# students ("SIS id 100234 already belongs to Ana Diaz") and database errors; the other district gets the
# kind of problem only, never data of students it did not send.
_SENDER_WORDS = (
    ("needs review", "needs review at the receiving district"),
    ("already belongs to", "its SIS id is already taken at the receiving district"),
    ("is asked for by another student", "its SIS id is asked for by another student of the transfer"),
    ("no student with SIS id", "the student it was matched to is no longer held at the receiving district"),
    ("missing from the blob store", "a document's content is missing at the receiving district"),
)


def _told_to_sender(reason: str) -> str:
    return next((words for phrase, words in _SENDER_WORDS if phrase in reason),
                "not imported at the receiving district (its import log says why)")  # fmt: skip


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, SatchelError) else f"could not be written: {exc}"


def _plan(
    run: _Run, incoming: ManifestStudent, mine: list[ManifestRecord], student: ImportStudent,
    existing: dict[str, StudentRecord],
) -> _Plan:  # fmt: skip
    sis_id, create = _destination(run.node, run.found, incoming, student, run.claimed, existing)
    if create:
        run.claimed.add(sis_id)
    plan = _Plan(student, sis_id, _new_student(run.found, incoming, sis_id) if create else None)
    if not create:
        plan.linked = existing[sis_id]  # _destination found it
        plan.changes = _kept_here(plan.linked, incoming)
    manifest, found = run.manifest, run.found
    origin_of = _origins(found, manifest, run.now)
    for rec, local_id in zip(mine, new_ids(len(mine)), strict=True):
        before = run.done.get(rec.record_id)
        if before is not None:
            if before[2]:
                plan.held.append((before[0], before[1]))
                continue
            plan.gone.append((manifest.sender_domain, rec.record_id, before[1]))  # imported again: its copy is gone
        if rec.kind == "assessment":
            values = metadata_texts(rec.metadata, records.RESULT_VALUE_FIELDS)
            plan.results.append((local_id, sis_id, values, run.origin_json(rec.record_id)))
        elif rec.kind == "document":
            origin = origin_of(rec)
            sha = (rec.sha256 or b"").hex()
            if not run.node.blobs.exists(sha):
                raise BlobMissing(f"the content of document {rec.record_id} is missing from the blob store")
            replaced, newer = _versions(run, plan, rec)
            plan.documents.append(Document(
                doc_id=local_id, student_sis_id=sis_id, doc_type=rec.document_type or "other", title=rec.title or "",
                filename=metadata_text(rec.metadata, "filename", rec.title or local_id),
                media_type=rec.media_type or "",
                length=rec.length or 0, sha256=sha, status="active", origin=origin, created_at=run.now,
                created_by=found.owner or run.actor, replaces=replaced, superseded_by=newer,
            ))  # fmt: skip
            if replaced:
                plan.supersedes.append((replaced, local_id))
            if newer:
                plan.newer.append((newer, local_id))
            plan.versions[rec.record_id] = local_id
            records.note_versions(plan.corrected, _lineage(rec), local_id)
        else:  # a case
            origin, meta = origin_of(rec), rec.metadata
            plan.cases.append((Case(
                case_id=local_id, case_number=metadata_text(meta, "case_number") or rec.record_id,
                student_sis_id=sis_id, person_of_concern=metadata_text(meta, "person_of_concern"),
                building=metadata_text(meta, "building"), team=metadata_text(meta, "team"),
                team_leader=metadata_text(meta, "team_leader"), case_manager=metadata_text(meta, "case_manager"),
                notes=metadata_text(meta, "notes"), status="open",
                origin=origin, created_at=run.now, created_by=run.actor,
            ), manifest.sender_domain))  # fmt: skip
        plan.remembered.append((manifest.sender_domain, rec.record_id, rec.kind, local_id, found.import_id,
                                found.transfer_id, sis_id))  # fmt: skip
    return plan


def _lineage(rec: ManifestRecord) -> list[str]:
    """The records ``rec`` is a newer version of, nearest first (storage.records.lineage)."""
    return records.lineage(rec.corrects, rec.metadata.get("earlier_versions"))


def _versions(run: _Run, plan: _Plan, rec: ManifestRecord) -> tuple[str | None, str | None]:
    """(the document here that ``rec`` corrects, the one here that corrects ``rec``), either None. Each may have
    come before (an earlier transfer) or with it (this transfer sends both versions of a replaced document, as
    `--all-records` does), and a correction may be imported before the document it corrects: whichever came
    first, the two are linked as versions, so that the older never looks current. Versions this district never
    received are stepped over: the nearest version received before ``rec`` (a correction names every version
    before it, spec/transfer.md §8) and the nearest held after it, so that a chain is whole whatever order its
    versions arrive in, or whichever of them never do."""
    replaced = None
    for record_id in _lineage(rec):
        if record_id in plan.versions:  # imported with it
            replaced = plan.versions[record_id]
            break
        before = run.done.get(record_id)
        if before is not None:  # imported before; its copy may be gone since, and still names the version
            replaced = before[1]
            if before[2]:
                plan.corrected_held.append(before[1])
            break
    newer = min(filter(None, (plan.corrected.get(rec.record_id), run.corrected.get(rec.record_id))),
                key=lambda found: found[0], default=None)  # fmt: skip
    return replaced, newer[1] if newer else None


_COMPARED = (("given_name", "given name"), ("family_name", "family name"), ("birth_date", "birth date"),
             ("state_id", "state id"))


def _kept_here(local: StudentRecord, incoming: ManifestStudent) -> str | None:
    """Where the student this district already holds disagrees with what was sent: its own values stay (the
    records are linked, never the demographics overwritten), and the import says so, "imported with changes"
    in the vendor's words for a conflict with information already on the site."""
    kept = []
    for name, words in _COMPARED:
        sent = str(getattr(incoming, name) or "")
        mine = str(getattr(local, name) or "")
        if sent and mine and sent.casefold() != mine.casefold():
            kept.append(f"{words} {mine!r} kept (sent {sent!r})")
    return "; ".join(kept) or None


def _origins(found: Import, manifest: Manifest, now: str):
    def origin(rec: ManifestRecord) -> dict[str, Any]:
        # A correction keeps the ids of the records it is a newer version of: they may come after it (_versions).
        versions = _lineage(rec)
        corrects: dict[str, Any] = {"corrects": rec.corrects} if rec.corrects else {}
        if len(versions) > 1:
            corrects["earlier_versions"] = versions
        return {"kind": "import", "sender": manifest.sender_domain, "envelope": found.transfer_id,
                "record_id": rec.record_id, "received": now, **corrects}  # fmt: skip

    return origin


def origin_json_for(sender: str, envelope: str, received: str) -> Callable[[str], str]:
    """record id -> ``json.dumps`` of the origin ``_origins`` makes, the same text: only the record id varies,
    so the rest is encoded once rather than for each of a grade's 10,000 results."""
    head = json.dumps({"kind": "import", "sender": sender, "envelope": envelope})[:-1] + ', "record_id": '
    tail = ', "received": ' + json.dumps(received) + "}"
    return lambda record_id: head + encode_basestring_ascii(record_id) + tail  # what json.dumps does to a str


def _write(run: _Run, plans: list[_Plan]) -> None:
    db = run.node.db
    new = [p.new_student for p in plans if p.new_student is not None]
    if new:
        students.upsert(db, new, now=run.now, origin="import")
    records.add_documents(db, [d for p in plans for d in p.documents])
    records.add_assessment_results(db, [r for p in plans for r in p.results], now=run.now)
    for plan in plans:
        for case, sender in plan.cases:
            if db.execute("SELECT 1 FROM cases WHERE case_number = ?", [case.case_number]).fetchone():
                case = dataclasses.replace(case, case_number=f"{case.case_number} ({sender})")
            records.add_case(db, case)
        for old, new_doc in plan.supersedes:
            records.update_document(db, old, superseded_by=new_doc)
        for newer, old in plan.newer:
            records.update_document(db, newer, replaces=old)
    imports.forget_gone(db, [g for p in plans for g in p.gone])
    imports.remember_records(db, [r for p in plans for r in p.remembered])


def _new_sis_id(found: Import, incoming: ManifestStudent) -> str:
    return incoming.recipient_sis_id or _sis_id_prefix(found.import_id) + incoming.sis_id


@functools.lru_cache(maxsize=16)
def _sis_id_prefix(import_id: str) -> str:
    """Students an import creates without a SIS id chosen for them get the import's, e.g. T123456-: parsed once
    per import, not per student."""
    return f"T{parse_ulid(import_id)[0] % 10**6:06d}-"


def _destination(
    node: Node, found: Import, incoming: ManifestStudent, student: ImportStudent, claimed: set[str],
    existing: dict[str, StudentRecord],
) -> tuple[str, bool]:  # fmt: skip
    action, sis_id = student.target
    if action == "later":
        raise InvalidInput(_SET_ASIDE if student.decision == "later" else _NEEDS_REVIEW, field="match",
                           hint="decide with `satchel import match ID STUDENT --to SIS_ID | --new`")  # fmt: skip
    if action == "link":
        assert sis_id is not None
        if sis_id not in existing:
            existing[sis_id] = students.require(node.db, sis_id).record  # or the usual not-found error
        if student.decision != "link" and existing[sis_id].enrollment_status == "inactive":
            # Marked inactive since the preview matched them (the roster ran): never linked without a person
            # (protocol.matching rule 5).
            raise InvalidInput(f"needs review: local student {sis_id} is marked inactive here", field="match",
                               hint="decide with `satchel import match ID STUDENT --to SIS_ID | --new`")  # fmt: skip
        return sis_id, False
    new_id_here = _new_sis_id(found, incoming)
    if new_id_here in claimed:
        raise InvalidInput(f"SIS id {new_id_here} is asked for by another student of this import", field="sis_id",
                           hint="link one of them to another record with `satchel import match`")  # fmt: skip
    clash = existing.get(new_id_here)
    if clash is not None:
        raise InvalidInput(
            f"SIS id {new_id_here} already belongs to {clash.given_name} {clash.family_name}",
            field="sis_id", hint="link the student to that record, or to another, with `satchel import match`",
        )  # fmt: skip
    return new_id_here, True


def _new_student(found: Import, s: ManifestStudent, sis_id: str) -> StudentRecord:
    sex, grade = sex_and_grade(s)
    return StudentRecord(
        sis_id=sis_id, source_id=f"import:{found.source_domain}:{s.sis_id}", given_name=s.given_name,
        family_name=s.family_name, middle_name=s.middle_name or "", birth_date=s.birth_date, sex=sex, grade=grade,
        state_id=s.state_id or "", username="", email="", school_id=found.school_id or "",
        school_name=found.school_name or "", enrollment_start=None, enrollment_status="active",
    )  # fmt: skip


def _coordinator_step(node: Node, row: TransferRow, event: TransferEvent, actor: str) -> None:
    step(node, row, event, actor=Actor.RECEIVER_COORDINATOR, actor_name=actor)


def _finish(run: _Run) -> RunResult:
    node, found, actor = run.node, run.found, run.actor
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
    reasons = Counter(_told_to_sender(reason) for _, reason in skipped)
    counts = ImportCounts(
        students_total=total, students_imported=len(imported), students_with_changes=changed,
        documents=sum(s.documents for s in imported), scores=sum(s.scores for s in imported),
        skipped=tuple(SkippedStudents(reason=r[:200], count=n) for r, n in reasons.most_common(10)),
    )  # fmt: skip
    with write_transaction(node.db):
        _still_running(run)
        row = store.require(node.db, found.transfer_id, local_domain=node.config.node.domain)
        event = (
            ImportFinished(counts=counts)
            if imported
            else ImportFailed(reference=reference or "", reason=result)
        )
        step(node, row, event, actor=Actor.RECEIVER_NODE, actor_name=actor)
        if len(imported) == total:  # every document now has its documents row to keep its blob
            received_blobs.forget(node.db, found.transfer_id)
        imports.update(node.db, found.import_id, status="completed" if len(imported) == total else "previewed",
                       result=result, reference=reference, students_imported=len(imported),
                       finished_at=now_iso())  # fmt: skip
        record(node, actor, "import.run", found.transfer_id, {"result": result, "reference": reference})
    changes = [(s.sender_sis_id, s.result_reason) for s in imported if s.changed and s.result_reason]
    return RunResult(result, reference, len(imported), total, skipped, changes)


@dataclass(frozen=True, slots=True)
class Cancelled:
    records_removed: int
    # Students the import created that stay: a record added here since names them, or the SIS roster has
    # taken them over (they are this district's own students now).
    students_kept: tuple[str, ...] = ()


def _removable(node: Node, sis_id: str, source_id: str) -> bool:
    """Whether a student an import created is still only that import's (its records were removed just now)."""
    row = node.db.execute("SELECT source_id FROM students WHERE sis_id = ?", [sis_id]).fetchone()
    if row is None or row[0] != source_id:
        return False
    return not any(
        node.db.execute(f"SELECT 1 FROM {table} WHERE student_sis_id = ? LIMIT 1", [sis_id]).fetchone()
        for table in ("documents", "cases", "assessment_results")
    )


def cancel(node: Node, *, actor: str | None, transfer_id: str) -> Cancelled:
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
        removed_docs: dict[str, tuple[str | None, str | None]] = {}  # doc id -> (replaces, superseded_by)
        for kind, local_id, _sis, _source in written:
            if kind == "document":
                doc = records.get_document(node.db, local_id)
                blobs.add(doc.sha256)
                removed_docs[local_id] = (doc.replaces, doc.superseded_by)
                node.db.execute("DELETE FROM documents WHERE doc_id = ?", [local_id])
            elif kind == "case":
                node.db.execute("DELETE FROM cases WHERE case_id = ?", [local_id])
            else:
                node.db.execute("DELETE FROM assessment_results WHERE result_id = ?", [local_id])
        kept = []
        for student in imports.students(node.db, found.import_id):
            if student.created_student and student.destination_sis_id:
                sis_id = student.destination_sis_id
                if not _removable(node, sis_id, f"import:{found.source_domain}:{student.sender_sis_id}"):
                    kept.append(sis_id)
                    continue
                node.db.execute("DELETE FROM student_match_keys WHERE sis_id = ?", [sis_id])
                node.db.execute("DELETE FROM students WHERE sis_id = ?", [sis_id])
        # Versions the import linked its documents to (a correction it brought, or one held here that corrects
        # a document it brought) no longer name them: the versions on either side of one are linked instead.
        records.unlink_versions(node.db, removed_docs)
        imports.forget_records(node.db, found.import_id)
        imports.reset(node.db, found.import_id)  # "later" and every other decision stays decided
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        if row.status.state in (ReceiverState.PARTIALLY_IMPORTED, ReceiverState.IMPORT_FAILED):
            _coordinator_step(node, row, TransferEvent.START_IMPORT, user.username)
            row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        if row.status.state is ReceiverState.IMPORTING:
            _coordinator_step(node, row, TransferEvent.CANCEL_IMPORT, user.username)
        record(node, user.username, "import.cancel", transfer_id,
               {"records_removed": len(written), "students_kept": kept})  # fmt: skip
    # The transfer is accepted again and still holds its blobs for the next run; only blobs of documents
    # that came from elsewhere and are no longer used go.
    drop_unused(node, blobs)
    return Cancelled(len(written), tuple(kept))
