"""`satchel send`: seal one envelope per transfer, keep it in the durable outbox, show the code once.

Everything that must happen together happens in one transaction (transfer row, code, outbox job,
disclosures, audit, notification); the sealed file is written and renamed into place before it, so a
crash at any point leaves either nothing or a complete pending transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from crypto import Code, EncryptionPublicKey, generate_code, seal_envelope
from node import district_state
from node.clock import iso, new_id, now_iso
from node.envelope_policy import sealing_argon2
from node.gc_pause import gc_paused
from node.home import Node
from node.manifest_builder import ConcatReader, Contents, Selection, build
from node.operators import authorize, record
from node.progress import CountingReader, Progress
from node.transfer_engine import ENVELOPE_JOB, envelope_job_id, notify_topic, utcnow
from protocol import EnvelopeHeader, InvalidInput, SatchelError
from protocol.descriptor import Contact
from protocol.envelope_errors import EnvelopeTooLarge
from protocol.manifest import DEFAULT_MAX_MANIFEST_LENGTH, Manifest, encode_manifest
from protocol.transfer_states import TransfersDisabled, new_outgoing
from storage import outbox, peers
from storage import transfers as store
from storage.audit import disclosure_digest
from storage.database import write_transaction
from storage.durable_files import replace_durably
from storage.free_space import require_room
from storage.peers import Peer
from storage.temp_files import temp_prefix

ENVELOPE_TYPE = "application/vnd.satchel.envelope"
SEALING = ".sealing"  # the kind of temp file (storage.temp_files) an envelope is sealed into


class PeerUnknown(SatchelError):
    """The destination district is not known to this node."""

    code = "transfer.peer_unknown"
    default_hint = "find it with `satchel directory search`, or add it with `satchel peers add URL`"


class PeerUntrusted(SatchelError):
    """The destination is known only from its own web site, neither pinned nor vetted by a directory."""

    code = "transfer.peer_untrusted"
    default_hint = "confirm its fingerprint by phone and pin it with `satchel peers add URL`"


class TransferTooLarge(SatchelError):
    """The students chosen carry more records than one envelope's manifest may list."""

    code = "transfer.too_large"
    default_hint = "send the students in smaller groups"


class PeerTransfersOff(SatchelError):
    """The destination district shows transfers switched off."""

    code = "transfer.peer_disabled"
    default_hint = (
        "ask the district's coordinator to switch transfers on, then `satchel peers refresh DOMAIN`"
    )


@dataclass(frozen=True, slots=True)
class Sent:
    transfer_id: str
    code: str
    peer: Peer
    contact: Contact | None
    students: int
    documents: int
    records: int
    envelope_length: int
    expires_at: str


class _HashingWriter:
    """Writes through to a file while hashing, so the sealed envelope is never read back to digest it.

    The hash of each piece runs on a thread of its own while this thread writes it (hashlib and file
    writes both release the GIL): with the sealing worker encrypting the next batch meanwhile, the three
    passes over a gigabyte overlap instead of two of them taking turns on this thread. One piece is
    hashed at a time, in order; :meth:`digest` waits for the last.
    """

    def __init__(self, out: BinaryIO, hasher: ThreadPoolExecutor) -> None:
        self._out = out
        self._sha256 = hashlib.sha256()
        self._hasher = hasher
        self._hashing: Future[None] | None = None
        self.length = 0

    def write(self, data: bytes | memoryview) -> int:
        if self._hashing is not None:
            self._hashing.result()
        self._hashing = self._hasher.submit(self._sha256.update, data)
        self.length += len(data)
        return self._out.write(data)

    def digest(self) -> bytes:
        if self._hashing is not None:
            self._hashing.result()
            self._hashing = None
        return self._sha256.digest()


def destination(node: Node, domain: str) -> Peer:
    if domain.strip().lower() == node.config.node.domain:
        raise InvalidInput(f"{domain} is this district itself", field="--to",
                           hint="give the domain of the district the records go to (`satchel peers list`)")  # fmt: skip
    peer = peers.get(node.db, domain)
    if peer is None:
        raise PeerUnknown(f"no known district {domain}", field="--to")
    if peer.trust == "web":
        raise PeerUntrusted(f"{domain} is neither pinned nor listed by a trusted directory", field="--to")
    if not peer.transfers_enabled:
        raise PeerTransfersOff(f"{domain} has transfers switched off", field="--to")
    return peer


def encryption_key(node: Node, peer: Peer) -> EncryptionPublicKey:
    """The peer's newest valid encryption key as held here, to seal to."""
    now = now_iso()
    usable = [k for k in peers.keys(node.db, peer.domain) if k.use == "encryption" and k.valid_at(now)]
    if not usable:
        raise PeerUntrusted(f"{peer.domain} publishes no valid encryption key", field="--to",
                            hint=f"refresh it with `satchel peers refresh {peer.domain}`")  # fmt: skip
    return EncryptionPublicKey(max(usable, key=lambda k: k.not_before).public_key)


def send(
    node: Node,
    *,
    actor: str | None,
    to: str,
    selection: Selection,
    note: str = "",
    purpose: str = "",
    owner: str | None = None,
    expires_days: int | None = None,
    kind: str = "transfer",
    request_id: str | None = None,
    code: Code | None = None,
    in_transaction: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> Sent:
    """Seal and queue a transfer. ``in_transaction(transfer_id)`` runs inside the commit, for a caller whose
    own state must change with it (a release answering a request, a claimed transfer code). ``progress``
    hears how many of the documents' bytes are sealed. ``purpose`` is what the record of disclosures gives as
    the reason (the note when not given)."""
    with gc_paused():  # a grade's manifest and disclosures are some 300,000 small acyclic objects
        plan = _prepare(node, actor=actor, to=to, selection=selection, note=note, purpose=purpose, owner=owner,
                        expires_days=expires_days, kind=kind, request_id=request_id, code=code)  # fmt: skip
        return _commit(node, plan, _seal_plan(node, plan, progress), in_transaction)


async def send_from_loop(
    node: Node,
    *,
    actor: str | None,
    to: str,
    selection: Selection,
    note: str = "",
    purpose: str = "",
    kind: str = "transfer",
    in_transaction: Callable[[str], None] | None = None,
) -> Sent:
    """:func:`send` for the serving node's event loop: the sealing (seconds for a grade: every byte encrypted,
    hashed and synced) runs on a worker thread, which touches no database, while the loop serves other
    peers; what reads and writes the database runs on the loop, as everything else there does."""
    with gc_paused():
        plan = _prepare(node, actor=actor, to=to, selection=selection, note=note, purpose=purpose, owner=None,
                        expires_days=None, kind=kind, request_id=None, code=None)  # fmt: skip
        sealed = await asyncio.to_thread(_seal_plan, node, plan, None)
        return _commit(node, plan, sealed, in_transaction)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a transfer will be, read from the database before sealing."""

    user: str
    peer: Peer
    recipient_key: EncryptionPublicKey
    now: datetime
    expires: datetime
    contents: Contents
    code: Code
    kind: str
    note: str
    purpose: str
    owner: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class _Sealed:
    path: Path
    header: EnvelopeHeader
    digest: bytes
    length: int
    manifest: bytes  # its encoding, kept to seal it again from (node.envelope_reseal)


def _prepare(
    node: Node,
    *,
    actor: str | None,
    to: str,
    selection: Selection,
    note: str,
    purpose: str,
    owner: str | None,
    expires_days: int | None,
    kind: str,
    request_id: str | None,
    code: Code | None,
) -> _Plan:
    user = authorize(node, actor, "transfers.act")
    if not district_state.transfers_enabled(node):
        raise TransfersDisabled("transfers are switched off on this node", field="transfers",
                                hint="switch them on with `satchel transfers enable`")  # fmt: skip
    days = expires_days if expires_days is not None else node.config.envelope.default_expiry_days
    if not 1 <= days <= 365:
        raise InvalidInput(f"--expires must be 1 to 365 days, not {days}", field="--expires",
                           hint="a transfer stays open at most a year; 30 days is the default")  # fmt: skip
    peer = destination(node, to)
    recipient_key = encryption_key(node, peer)
    now = utcnow()
    contents = build(node, selection, recipient_domain=peer.domain, notes=note, owner=owner,
                     created=int(now.timestamp()))  # fmt: skip
    return _Plan(user.username, peer, recipient_key, now, now + timedelta(days=days), contents,
                 code or generate_code(), kind, note, purpose, owner, request_id)  # fmt: skip


def _seal_plan(node: Node, plan: _Plan, progress: Progress | None) -> _Sealed:
    """Seal into the outbox's folder, on disk before the row that will name it (no database here)."""
    try:
        path, header, digest, length, manifest = _seal(node, plan.contents, plan.recipient_key, plan.code,
                                             plan.now.timestamp(), plan.expires.timestamp(), plan.kind,
                                             progress)  # fmt: skip
    except EnvelopeTooLarge as exc:
        if exc.field != "manifest":
            raise
        raise _too_large(plan.contents.manifest) from None
    final = node.config.envelopes_dir / "out" / f"{header.envelope_id}.env"
    try:
        replace_durably(path, final)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return _Sealed(final, header, digest, length, manifest)


def _commit(node: Node, plan: _Plan, sealed: _Sealed, in_transaction: Callable[[str], None] | None) -> Sent:
    transfer_id, final, contents, peer = sealed.header.envelope_id, sealed.path, plan.contents, plan.peer
    status = new_outgoing(transfer_id=transfer_id, sender_domain=node.config.node.domain, receiver_domain=peer.domain,
                          expires=plan.expires, envelope_digest=sealed.digest)  # fmt: skip
    stamp = now_iso()
    documents = len(contents.documents)
    with _unlinked_unless_kept(final), write_transaction(node.db):
        store.insert(
            node.db, status, now=stamp, kind=plan.kind, created_by=plan.user, note=plan.note, owner=plan.owner,
            students=len(contents.manifest.students), documents=documents, records=len(contents.manifest.records),
            envelope_path=str(final), envelope_length=sealed.length, request_id=plan.request_id,
        )  # fmt: skip
        store.set_code(node.db, transfer_id, plan.code.reveal(), stamp)
        store.keep_outgoing_manifest(node.db, transfer_id, sealed.manifest)
        store.add_students(node.db, transfer_id, [s.sis_id for s in contents.manifest.students])
        disclosed = _disclose(node, contents, transfer_id, peer, plan.user, _purpose(plan), stamp)
        outbox.enqueue(
            node.db, job_id=envelope_job_id(transfer_id), kind=ENVELOPE_JOB, peer=peer.domain,
            url=peer.base_url + "/satchel/v1/envelopes", payload=transfer_id.encode(), content_type=ENVELOPE_TYPE,
            now=stamp, expires_at=iso(status.expires) if status.expires else None,
        )  # fmt: skip
        store.add_event(node.db, transfer_id, at=stamp, direction="local", kind="sealed", actor=plan.user,
                        detail={"students": len(contents.manifest.students), "records": len(contents.manifest.records),
                                "bytes": sealed.length})  # fmt: skip
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        notify_topic(node, row, "transfer.sent")
        if in_transaction is not None:
            in_transaction(transfer_id)
        record(node, plan.user, "transfer.send", transfer_id,
               {"to": peer.domain, "to_name": peer.name, "students": [s.sis_id for s in contents.manifest.students],
                "records": len(contents.manifest.records), "disclosed": disclosed})  # fmt: skip
    return Sent(
        transfer_id,
        plan.code.reveal(),
        peer,
        _contact(peer),
        len(contents.manifest.students),
        documents,
        len(contents.manifest.records),
        sealed.length,
        iso(row.status.expires) if row.status.expires else "",
    )


@contextlib.contextmanager
def _unlinked_unless_kept(envelope: Path) -> Iterator[None]:
    """The sealed envelope goes again when the transaction that would name it does not commit (say a
    cancellation crossed a release while it was sealed): no row would ever point at it."""
    try:
        yield
    except BaseException:
        envelope.unlink(missing_ok=True)
        raise


def _seal(
    node: Node, contents: Contents, recipient_key: EncryptionPublicKey, code: Code, now: float, expires: float,
    kind: str, progress: Progress | None = None,
) -> tuple[Path, EnvelopeHeader, bytes, int, bytes]:  # fmt: skip
    manifest = encode_manifest(contents.manifest)  # once: sealed, and kept
    temp, header, digest, length = seal_to_file(
        node, contents.manifest, [node.blobs.path_for(d.sha256) for d in contents.documents], recipient_key, code,
        now=now, expires=expires, kind=kind, what="sealing the transfer", progress=progress, manifest_bytes=manifest,
    )  # fmt: skip
    return temp, header, digest, length, manifest


def seal_to_file(
    node: Node, manifest: Manifest, documents: list[Path], recipient_key: EncryptionPublicKey, code: Code, *,
    now: float, expires: float, kind: str, what: str, progress: Progress | None = None,
    envelope_id: str | None = None, manifest_bytes: bytes | None = None,
) -> tuple[Path, EnvelopeHeader, bytes, int]:  # fmt: skip
    """Seal ``documents`` (blob files, in the manifest's order) into a temporary file of envelopes/out, synced:
    (its path, the header, its SHA-256, its length). ``envelope_id``: sealed again under the id it had
    (node.envelope_reseal). The caller renames the file or removes it."""
    out_dir = node.config.envelopes_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    # The envelope is the documents plus a few percent; the reserve covers the few percent.
    require_room(out_dir, manifest.documents_length, reserve=node.config.storage.reserve_bytes, what=what)
    temp = out_dir / f"{temp_prefix(SEALING)}{new_id()}"
    reader = ConcatReader(documents)
    payload = reader if progress is None else CountingReader(reader, manifest.documents_length, progress)
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envelope-digest")
    try:
        with temp.open("wb") as handle:
            writer = _HashingWriter(handle, hasher)
            header = seal_envelope(
                payload, writer, manifest=manifest, sender_key=node.current_keys().identity,  # type: ignore[arg-type]
                recipient_key=recipient_key, code=code, now=now, expires=expires, kind=kind,
                argon2=sealing_argon2(node.config), envelope_id=envelope_id, manifest_bytes=manifest_bytes,
            )  # fmt: skip
            digest = writer.digest()
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        hasher.shutdown()  # waits for a hash still running when sealing failed
        reader.close()
    return temp, header, digest, writer.length


def _too_large(manifest: Manifest) -> TransferTooLarge:
    """Said before anything is stored or sent: how many students of this kind one transfer can carry."""
    size, students = len(encode_manifest(manifest)), len(manifest.students)
    fits = max(1, int(students * DEFAULT_MAX_MANIFEST_LENGTH * 0.9 / size))
    return TransferTooLarge(
        f"the {students:,} students chosen carry {len(manifest.records):,} records, a manifest of"
        f" {size / 2**20:.1f} MiB; a receiving district accepts at most {DEFAULT_MAX_MANIFEST_LENGTH >> 20} MiB",
        field="students", hint=f"send them in groups of at most about {fits:,} students (split the students"
        " file and send each part; each transfer gets its own code)",
    )  # fmt: skip


def _purpose(plan: _Plan) -> str:
    """The reason each student's record of disclosures gives, which their parents may read. The note is written
    to the receiving coordinator and may be about any of the students: it is the reason only when it is about
    the one student sent; otherwise the reason given for all of them (--purpose), or the default."""
    if plan.purpose:
        return plan.purpose
    return plan.note if len(plan.contents.manifest.students) == 1 else ""


def _disclose(
    node: Node, contents: Contents, transfer_id: str, peer: Peer, by: str, purpose: str, at: str
) -> dict[str, str]:
    """FERPA record of disclosures: per student, what went to whom, when and why. Returns each row's digest by
    student, for the transfer's audit entry (storage.audit checks the record against it)."""
    # Grouped in one pass: a grade is 500 students and 11,000 records, and scanning every record for
    # every student took half a second there (and grows with the square of the transfer's size).
    disclosed: dict[str, list[dict[str, str]]] = {s.sis_id: [] for s in contents.manifest.students}
    for r in contents.manifest.records:
        disclosed[r.student_sis_id].append(
            {"kind": r.kind, "id": r.record_id, "title": r.title or r.metadata.get("case_number")
             or r.metadata.get("assessment") or ""}
        )  # fmt: skip
    digests = {}
    reason = purpose or "records transfer to the student's new district"
    for student in contents.manifest.students:
        records = [{"kind": "demographics", "id": "", "title": ""}, *disclosed[student.sis_id]]
        store.add_disclosure(
            node.db, disclosure_id=new_id(), student_sis_id=student.sis_id, transfer_id=transfer_id,
            to_domain=peer.domain, to_name=peer.name, records=records, disclosed_by=by, at=at, purpose=reason,
        )  # fmt: skip
        digests[student.sis_id] = disclosure_digest(to_domain=peer.domain, to_name=peer.name, records=records,
                                                    disclosed_by=by, at=at, purpose=reason)  # fmt: skip
    return digests


def _contact(peer: Peer) -> Contact | None:
    c = peer.coordinator
    return (
        Contact(name=c["name"], title=c.get("title", ""), email=c["email"], phone=c.get("phone", ""))
        if c
        else None
    )
