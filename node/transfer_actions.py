"""What coordinators do to a transfer: accept with the code, reject, cancel, write, and the expiry timer."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crypto import IdentityPublicKey, open_envelope, parse_code, peek_unverified_sender
from node.blob_holds import drop_unused
from node.clock import now_iso
from node.envelope_policy import open_policy
from node.gc_pause import gc_paused
from node.home import Node, revoked_encryption_keys
from node.message_thread import check_own_room, checked_text
from node.operators import TIMER, authorize, record
from node.progress import Progress, ProgressFile
from node.purged_content import (
    ErasedAtAcceptance,
    erase_at_acceptance,
    erase_before_rejecting,
    erase_old_pages,
)
from node.transfer_engine import Outcome, step, utcnow
from node.transfer_files import SealedEnvelopeMissing, carry_out, envelope_file
from protocol import InvalidInput, SatchelError
from protocol.envelope_errors import EnvelopeNotRecipient, EnvelopeSignatureInvalid, EnvelopeWrongCodeOrKey
from protocol.manifest import Manifest, ManifestRecord
from protocol.receipts import MAX_MESSAGE
from protocol.transfer_states import (
    Actor,
    Cancel,
    Event,
    Reject,
    SendMessage,
    Side,
    TransferEvent,
    check,
    due_events,
)
from storage import manifest_checks, peers, received_blobs
from storage import transfers as store
from storage.database import write_transaction
from storage.free_space import require_room
from storage.incoming_blobs import IncomingBlobs
from storage.transfers import TransferRow


@dataclass(frozen=True, slots=True)
class Accepted:
    transfer_id: str
    manifest: Manifest
    blobs: int  # documents opened into the blob store
    purged: tuple[str, ...] = ()  # the sender's ids of records purged here, erased from it: it will not import them


class _BlobSink:
    """Opens each document of the envelope straight into the blob store (a crypto.DocumentSink)."""

    def __init__(self, incoming: IncomingBlobs) -> None:
        self._incoming = incoming
        self.write = incoming.write

    def begin(self, record: ManifestRecord) -> None:
        self._incoming.begin()

    def end(self, record: ManifestRecord) -> None:
        # The opener calls this only once the bytes matched the digest the sender signed.
        self._incoming.end((record.sha256 or b"").hex())


def _row(node: Node, transfer_id: str) -> TransferRow:
    return store.require(node.db, transfer_id, local_domain=node.config.node.domain)


def _coordinator(row: TransferRow) -> Actor:
    return Actor.SENDER_COORDINATOR if row.status.side is Side.SENDER else Actor.RECEIVER_COORDINATOR


def _apply(
    node: Node,
    transfer_id: str,
    event: Event,
    *,
    actor_name: str,
    action: str,
    inside: Callable[[TransferRow], None] | None = None,
    **columns: Any,
) -> Outcome:
    """One event in one write transaction; ``inside`` runs in it first (work that must commit with it)."""
    with write_transaction(node.db):
        row = _row(node, transfer_id)
        if inside is not None:
            inside(row)
        outcome = step(node, row, event, actor=_coordinator(row), actor_name=actor_name, **columns)
        record(node, actor_name, action, transfer_id, {"state": outcome.transition.status.state.value})
    for effect in outcome.after_commit:
        carry_out(node, row, effect)
    return outcome


def accept(
    node: Node, *, actor: str | None, transfer_id: str, code_text: str, progress: Progress | None = None
) -> Accepted:
    """Open the envelope with the code, its documents straight into the blob store, where they wait for the
    import. A typo costs nothing; a wrong code counts. ``progress`` hears how much of the envelope is read."""
    with gc_paused():  # the manifest of a grade is some 200,000 small acyclic objects
        return _accept(node, actor=actor, transfer_id=transfer_id, code_text=code_text, progress=progress)


def _accept(
    node: Node, *, actor: str | None, transfer_id: str, code_text: str, progress: Progress | None
) -> Accepted:
    user = authorize(node, actor, "transfers.act")
    code = parse_code(code_text)
    row = _row(node, transfer_id)
    check(row.status, TransferEvent.ACCEPT, actor=Actor.RECEIVER_COORDINATOR, now=utcnow())
    envelope = envelope_file(node, row)
    assert envelope is not None
    if not envelope.is_file():  # before the code is tried: a lost file costs no attempt
        raise SealedEnvelopeMissing(
            f"the sealed envelope of transfer {transfer_id} is gone from {envelope.parent}", field="envelope",
            hint="restore envelopes/in from a backup (`satchel check` lists what is missing) and accept again; or "
                 "ask the sending district to cancel the transfer and send it again",
        )  # fmt: skip
    # The documents come out a little smaller than their envelope: room for the envelope is room enough.
    require_room(node.config.blobs_dir, row.envelope_length or 0, reserve=node.config.storage.reserve_bytes,
                 what="opening the transfer")  # fmt: skip
    # The envelope's signature and recipient were checked on arrival (receiving.check_header) against keys not
    # revoked then. A key revoked since, the sender's identity key (_sender_key) or this node's encryption
    # key, is used for nothing new; it still opens what it verified or was sealed to before, which the code
    # the sending coordinator reads out vouches for as well (spec/descriptor.md, Revoking a key).
    revoked, unreadable = revoked_encryption_keys(node.config, node.db)
    with IncomingBlobs(node.blobs) as incoming:  # on any exception: the temp files go, nothing else
        try:
            with envelope.open("rb") if progress is None else ProgressFile(envelope, progress) as source:
                domain, key_id = peek_unverified_sender(source.read(4096))
                source.seek(0)
                sender_key = _sender_key(node, row.peer, domain, key_id)
                opened = open_envelope(
                    source, _BlobSink(incoming), code=code, sender_key=sender_key,
                    recipient_key=[*node.current_keys().encryption_by_id.values(), *revoked],
                    recipient_domain=node.config.node.domain, now=time.time(), policy=open_policy(node.config),
                )  # fmt: skip
            incoming.sync()
        except EnvelopeNotRecipient as exc:
            if not unreadable or exc.field != "recipient_key_id":
                raise
            raise EnvelopeNotRecipient(
                f"{exc.message}, which can only be a key this node revoked after the envelope arrived, and the key "
                f"files of revoked keys cannot be read: {'; '.join(unreadable)}", field=exc.field,
                hint=f"put the key file back from a backup (`satchel backup` copies keys/) and accept again; or "
                     f"reject the transfer (`satchel reject {transfer_id} --reason ...`) so that the sending "
                     f"district sends the records again",
            ) from None  # fmt: skip
        except EnvelopeWrongCodeOrKey:
            incoming.discard()
            outcome = _apply(node, transfer_id, TransferEvent.WRONG_CODE, actor_name=user.username,
                             action="transfer.wrong_code")  # fmt: skip
            assert outcome.wrong_code is not None
            raise outcome.wrong_code.error() from None
        documents = [(r.record_id, (r.sha256 or b"").hex()) for r in opened.manifest.documents()]
        erased: list[ErasedAtAcceptance] = []

        def publish(row: TransferRow) -> None:
            # In the transaction that accepts: blob deletions take the same write lock (node.blob_holds),
            # so none can remove a blob between its rename here and the commit of the transfer's hold.
            incoming.publish()
            received_blobs.remember(node.db, transfer_id, documents)
            # With the key that verified it: the manifest is checked against that key from now on, whatever
            # becomes of the sender's keys here (spec/envelope.md §5.3).
            store.save_manifest(node.db, transfer_id, opened.manifest_bytes, opened.manifest_signature,
                                signer=(sender_key.key_id, sender_key.raw))  # fmt: skip
            manifest_checks.remember(node.db, opened.manifest_bytes, now=now_iso())  # open_envelope parsed it
            erased.append(erase_at_acceptance(node, row, opened.manifest, now=now_iso()))

        try:
            # What came: the receiver could not count it while the envelope was sealed (transfers list|show).
            _apply(node, transfer_id, TransferEvent.ACCEPT, actor_name=user.username, action="transfer.accept",
                   inside=publish, students=len(opened.manifest.students), records=len(opened.manifest.records),
                   documents=len(documents))  # fmt: skip
        except BaseException:
            # Renamed but not held (say another coordinator accepted first): whole verified blobs, which
            # go unless something else uses them. Best effort: a left-over blob is harmless.
            with contextlib.suppress(Exception):
                drop_unused(node, [sha for _, sha in documents])
            raise
    envelope.unlink(missing_ok=True)  # opened: the sealed copy has served its purpose
    purged = erased[-1] if erased else ErasedAtAcceptance()
    if purged.record_ids:  # records purged here: opened, and not to be imported
        drop_unused(node, list(purged.document_sha256))
        erase_old_pages(node)
    return Accepted(transfer_id, opened.manifest, len(documents), purged.record_ids)


def _sender_key(node: Node, peer: str, domain: str, key_id: str) -> IdentityPublicKey:
    key = peers.key_by_id(node.db, key_id, domain=peer)
    if (
        domain != peer
        or key is None
        or key.domain != peer
        or key.use != "identity"
    ):
        raise EnvelopeSignatureInvalid(f"the envelope is not signed by a key of {peer}", field="sender")
    return IdentityPublicKey(key.public_key)


def reject(node: Node, *, actor: str | None, transfer_id: str, reason: str) -> Outcome:
    user = authorize(node, actor, "transfers.act")
    erased = []

    def erase(row: TransferRow) -> None:  # rolled back with the rejection if the transfer cannot be rejected
        erased.append(erase_before_rejecting(node, row, now=now_iso()))

    outcome = _apply(node, transfer_id, Reject(reason=reason), actor_name=user.username, action="transfer.reject",
                     inside=erase)  # fmt: skip
    if any(erased):
        erase_old_pages(node)
    return outcome


def cancel(node: Node, *, actor: str | None, transfer_id: str, reason: str | None) -> Outcome:
    user = authorize(node, actor, "transfers.act")
    return _apply(
        node, transfer_id, Cancel(reason=reason), actor_name=user.username, action="transfer.cancel"
    )


def message(node: Node, *, actor: str | None, transfer_id: str, text: str) -> Outcome:
    """Write to the other district's coordinators about a transfer (a signed `message` receipt)."""
    user = authorize(node, actor, "transfers.act")
    text = checked_text(text, limit=MAX_MESSAGE)

    def room(row: TransferRow) -> None:
        check_own_room(node, held=store.message_count(node.db, transfer_id), about=f"transfer {transfer_id}",
                       peer=row.peer)  # fmt: skip

    return _apply(node, transfer_id, SendMessage(text=text), actor_name=user.username, action="transfer.message",
                  inside=room)  # fmt: skip


def read_code(node: Node, *, actor: str | None, transfer_id: str) -> str:
    """The code of a transfer this node sent, shown again to a coordinator or admin to read by phone. It is all
    the other district needs to open the student's records, so each read is audited: who, when, which transfer."""
    user = authorize(node, actor, "transfers.act")
    with write_transaction(node.db):
        row = _row(node, transfer_id)
        code = store.get_code(node.db, transfer_id)
        if code is None:
            raise InvalidInput(
                f"transfer {transfer_id} has no code to show (state {row.state})", field="--code",
                hint="codes are erased once a transfer is accepted, cancelled or expired",
            )  # fmt: skip
        record(node, user.username, "transfer.code_shown", transfer_id)
    return code


def expire_due(node: Node) -> list[str]:
    """The timer: every open transfer past its expiry moves on (codes erased, sealed copies deleted)."""
    expired = []
    now = utcnow()
    for row in store.list_rows(node.db, local_domain=node.config.node.domain):
        for event in due_events(row.status, now=now):
            try:
                with write_transaction(node.db):
                    fresh = _row(node, row.transfer_id)
                    outcome = step(node, fresh, event, actor=Actor.TIMER, actor_name=TIMER, now=now)
                    record(node, TIMER, "transfer.expire", row.transfer_id,
                           {"state": outcome.transition.status.state.value})  # fmt: skip
                for effect in outcome.after_commit:
                    carry_out(node, fresh, effect)
                expired.append(row.transfer_id)
            except SatchelError:
                continue  # something else moved it first; the next pass sees the new state
    return expired
