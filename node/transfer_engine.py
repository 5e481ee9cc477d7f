"""Carrying out the transfer state machine's decisions (protocol.transfer_states) inside one transaction.

protocol/ decides; this module stores the new status, signs and queues receipts, writes the timeline,
notifies coordinators, and returns the file work (deleting a sealed envelope, keeping or discarding a
staging area) to do once the transaction has committed: a crash between commit and file work leaves at
most an orphan file, never a row that points at nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from crypto import IdentityPublicKey
from node.clock import iso, now_iso, utc_now
from node.home import Node
from node.issued_codes import follow_transfer
from node.message_thread import coordinator_words
from node.notify import notify_coordinators
from node.own_signatures import job_payload_now, signed_now
from node.request_answers import follow_transfer as follow_release
from protocol.receipts import PURPOSE as RECEIPT_PURPOSE
from protocol.receipts import Receipt, ReceiptKind, receipt_path, sign_receipt
from protocol.transfer_states import (
    Action,
    Actor,
    CountWrongCode,
    Event,
    NotifyCoordinators,
    ReceiptArrived,
    RecordReceipt,
    ResendReceipt,
    SenderState,
    SendReceipt,
    Side,
    Transition,
    apply,
)
from storage import outbox, peers
from storage import transfers as store
from storage.transfers import TransferRow

RECEIPT_JOB = "receipt"
ENVELOPE_JOB = "envelope"


def envelope_job_id(transfer_id: str) -> str:
    """The outbox job that delivers an outgoing transfer's envelope."""
    return f"envelope-{transfer_id}"


RECEIPT_TYPE = "application/satchel-receipt+json"
RECEIPT_RETRY_DAYS = 30  # spec/transfer.md §7: receipts are retried for 30 days

TOPICS = {
    "transfer.received": "New incoming transfer {id} from {peer}",
    "transfer.accepted": "Transfer {id} was accepted by {peer}",
    "transfer.rejected": "Transfer {id} was rejected by {peer}",
    "transfer.locked": "Transfer {id} is locked after too many wrong codes",
    "transfer.cancelled": "Transfer {id} was cancelled",
    "transfer.expired": "Transfer {id} expired",
    "transfer.imported": "Transfer {id} was imported by {peer}",
    "transfer.partially_imported": "Transfer {id} was partly imported by {peer}",
    "transfer.import_failed": "The import of transfer {id} failed",
    "transfer.message": "New message about transfer {id}",
    "transfer.sent": "Transfer {id} to {peer} is pending",
    "transfer.undeliverable": "Transfer {id} could not be delivered to {peer}",
}
# The receiving side accepts and imports itself: "accepted by {peer}" would name the sender as the one who did.
RECEIVER_TOPICS = {
    "transfer.accepted": "Transfer {id} from {peer} was accepted here",
    "transfer.imported": "Transfer {id} from {peer} was imported here",
    "transfer.partially_imported": "Transfer {id} from {peer} was partly imported here",
}


@dataclass
class Outcome:
    transition: Transition
    signed_receipts: list[bytes] = field(default_factory=list)  # what this side signed, in order
    resent: bytes | None = None  # a stored receipt to answer with again, byte for byte
    wrong_code: CountWrongCode | None = None
    after_commit: set[Action] = field(default_factory=set)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def step(
    node: Node,
    row: TransferRow,
    event: Event,
    *,
    actor: Actor,
    actor_name: str,
    now: datetime | None = None,
    queue_receipts: bool = True,
    **columns: object,
) -> Outcome:
    """Apply ``event`` and carry out its effects. Call inside a write transaction."""
    moment = now or utcnow()
    transition = apply(row.status, event, actor=actor, now=moment)
    outcome = Outcome(transition)
    stamp = now_iso()
    if row.status.state is SenderState.SEALED and transition.status.state is not SenderState.SEALED:
        store.drop_outgoing_manifest(node.db, row.transfer_id)  # sealed again only while not delivered
    for effect in transition.effects:
        if isinstance(effect, SendReceipt):
            signed = sign_receipt(effect.receipt, node.current_keys().identity)
            outcome.signed_receipts.append(signed)
            _record(node, row, effect.receipt, signed, "sent", actor_name, stamp)
            # A delivered receipt travels as the answer to the envelope POST; the rest go by the outbox.
            if queue_receipts and effect.receipt.kind is not ReceiptKind.DELIVERED:
                _queue_receipt(node, row, effect.receipt, signed, stamp)
        elif isinstance(effect, RecordReceipt):
            pass  # recorded by the caller, who holds the signed bytes (receive_receipt)
        elif isinstance(effect, ResendReceipt):
            outcome.resent = stored_receipt_now(node, row.transfer_id, effect.kind)
        elif isinstance(effect, NotifyCoordinators):
            notify_topic(node, row, effect.topic)
        elif isinstance(effect, CountWrongCode):
            outcome.wrong_code = effect
        elif effect is Action.ERASE_CODE:
            store.erase_code(node.db, row.transfer_id)
        elif effect is Action.DROP_FROM_OUTBOX:
            outbox.cancel(node.db, envelope_job_id(row.transfer_id), stamp)
            held_back = receipt_job_id(row.transfer_id, "")  # the prefix of all of its receipts' jobs
            if transition.status.state is SenderState.UNDELIVERABLE:
                # The receiver will never know this transfer: its messages have nowhere to go.
                outbox.cancel_prefixed(node.db, held_back, stamp)
            else:
                # Receipts and messages held back behind the envelope (transfer.deferred) backed off while it
                # waited; they go now rather than up to an hour later.
                outbox.make_due_prefixed(node.db, held_back, stamp)
            # Delivered or over: the sender's sealed copy has no further use.
            outcome.after_commit.add(Action.DELETE_SEALED_ENVELOPE)
        else:
            outcome.after_commit.add(effect)
    if transition.changed or transition.status != row.status or columns:
        store.save_status(node.db, transition.status, now=stamp, **columns)
    if transition.changed:
        detail = {"from": transition.previous.value, "event": transition.event.value}
        store.add_event(node.db, row.transfer_id, at=stamp, direction="local",
                        kind=f"state.{transition.status.state}", actor=actor_name, detail=detail)  # fmt: skip
        if transition.status.side is Side.SENDER:
            # A transfer a transfer code's claim started: the code is used, freed or revoked with it.
            follow_transfer(node, row.transfer_id, transition.status.state.value,
                            previous=transition.previous.value, actor=actor_name)  # fmt: skip
            # A release that ended unopened: its records request is open again, at both districts.
            # The receiver's reason, should its receipt refuse the records: the requester is told it.
            reason = event.receipt.reason if isinstance(event, ReceiptArrived) else ""
            follow_release(node, row.transfer_id, transition.status.state.value, actor=actor_name, reason=reason or "")
    return outcome


def _detail(receipt: Receipt) -> dict[str, object]:
    detail: dict[str, object] = {"sequence": receipt.sequence}
    for name in ("reason", "text", "reference"):
        if getattr(receipt, name):
            detail[name] = getattr(receipt, name)
    if receipt.counts is not None:
        c = receipt.counts
        detail["counts"] = {"students_total": c.students_total, "students_imported": c.students_imported,
                            "students_with_changes": c.students_with_changes, "documents": c.documents,
                            "scores": c.scores, "skipped": {s.reason: s.count for s in c.skipped}}  # fmt: skip
    return detail


def _record(
    node: Node, row: TransferRow, receipt: Receipt, signed: bytes, direction: str, actor: str, at: str
) -> None:
    store.add_event(node.db, row.transfer_id, at=at, direction=direction, kind=receipt.kind.value, actor=actor,
                    detail=_detail(receipt), receipt=signed, receipt_id=receipt_key(receipt))  # fmt: skip


def stored_receipt_now(node: Node, transfer_id: str, kind: ReceiptKind) -> bytes | None:
    """This node's latest receipt of ``kind`` about the transfer, to send again as kept: signed again first when
    this node revoked the key that signed it (node.own_signatures). Inside a write transaction."""
    kept = store.stored_receipt(node.db, transfer_id, kind.value)
    return None if kept is None else receipt_signed_now(node, transfer_id, kept)


def receipt_signed_now(node: Node, transfer_id: str, signed: bytes) -> bytes:
    """``signed``, a receipt of this node's about the transfer, as it is to leave now (node.own_signatures); the
    timeline keeps what this returns. Inside a write transaction."""
    fresh = signed_now(node, signed, purpose=RECEIPT_PURPOSE)
    if fresh != signed:
        store.replace_sent_receipt(node.db, transfer_id, old=signed, new=fresh)
    return fresh


def receipt_job_payload(node: Node, transfer_id: str, job: outbox.Job) -> bytes:
    """What the outbox job of a receipt about the transfer sends now (node.own_signatures.job_payload_now)."""
    return job_payload_now(
        node, job, purpose=RECEIPT_PURPOSE,
        keep=lambda old, new: store.replace_sent_receipt(node.db, transfer_id, old=old, new=new),
    )  # fmt: skip


def receipt_key(receipt: Receipt) -> str:
    """What identifies a receipt within its transfer (spec/transfer.md §6): its issuer and sequence."""
    return f"{receipt.issuer.value}:{receipt.sequence}"


def receipt_job_id(transfer_id: str, key: str) -> str:
    """The outbox job carrying this node's receipt ``key`` (see receipt_key) about a transfer to the peer."""
    return f"receipt-{transfer_id}-{key.replace(':', '-')}"


def record_received(node: Node, row: TransferRow, receipt: Receipt, signed: bytes) -> bool:
    """Store a peer's signed receipt in the timeline; False when it was already there."""
    return store.add_event(
        node.db, row.transfer_id, at=now_iso(), direction="received", kind=receipt.kind.value,
        actor=receipt.from_domain, detail=_detail(receipt), receipt=signed, receipt_id=receipt_key(receipt),
    )  # fmt: skip


def _queue_receipt(node: Node, row: TransferRow, receipt: Receipt, signed: bytes, now: str) -> None:
    peer = peers.get(node.db, row.peer)
    base = peer.base_url if peer else f"https://{row.peer}"
    outbox.enqueue(
        node.db, job_id=receipt_job_id(row.transfer_id, receipt_key(receipt)), kind=RECEIPT_JOB,
        peer=row.peer, url=base + receipt_path(receipt), payload=signed, content_type=RECEIPT_TYPE, now=now,
        expires_at=iso(utc_now() + timedelta(days=RECEIPT_RETRY_DAYS)),
    )  # fmt: skip


# What the coordinators do next, by side and topic: the notice is where a records clerk starts from.
_SEND_AGAIN = "Send the records again in a new transfer, with a new code: satchel send --to {peer} ..."
NEXT_STEPS: dict[tuple[str, str], str] = {
    ("sender", "transfer.sent"): "Read its code to {who} by phone (never by e-mail); it shows again with: "
                                 "satchel transfers show {id} --code --as YOU",
    ("sender", "transfer.locked"): "Too many wrong codes were entered at {peer}: the records stay sealed for good.\n"
                                   + _SEND_AGAIN + "\nand read the new code to {who} slowly.",
    ("sender", "transfer.rejected"): "Their reason is in the timeline. If the records went to the wrong place or "
                                     "student: " + _SEND_AGAIN,
    ("sender", "transfer.expired"): "It was not opened in time. " + _SEND_AGAIN,
    ("sender", "transfer.undeliverable"): "It never reached them. Check that {peer} can be reached "
                                          "(satchel peers ping {peer}), then: " + _SEND_AGAIN,
    ("receiver", "transfer.received"): "It stays sealed until you enter the code {who} reads you by phone:\n"
                                       "satchel accept {id} --code CODE --as YOU\n"
                                       "or refuse it: satchel reject {id} --reason TEXT --as YOU",
    ("receiver", "transfer.accepted"): "Preview the import, then run it: satchel import preview {id} --as YOU",
    ("receiver", "transfer.partially_imported"): "The students not imported, and why: satchel import log {id}",
    ("receiver", "transfer.import_failed"): "What failed, and its reference: satchel import log {id}",
    ("receiver", "transfer.locked"): "Ask {who} to send the records again in a new transfer, with a new code.",
    ("receiver", "transfer.expired"): "Ask {who} to send the records again in a new transfer if you still need them.",
}


def notify_topic(node: Node, row: TransferRow, topic: str) -> None:
    own = RECEIVER_TOPICS if row.status.side.value == "receiver" else {}
    template = own.get(topic) or TOPICS.get(topic, "Transfer {id}: " + topic)
    subject = template.format(id=row.transfer_id, peer=row.peer)
    step_template = NEXT_STEPS.get((row.status.side.value, topic))
    if row.kind == "import" and topic == "transfer.received":
        step_template = None  # a transfer code's records: the node that claimed them opens them itself
    who = coordinator_words(node, row.peer)
    next_step = "" if step_template is None else step_template.format(
        id=row.transfer_id, peer=row.peer, who=f"{row.peer}'s transfer coordinator" + (f" ({who})" if who else "")
    ) + "\n"  # fmt: skip
    body = (
        f"{subject}.\n\n{next_step}See it with: satchel transfers show {row.transfer_id}\n"
        f"This message names no student; the records stay on the Satchel node.\n"
    )
    notify_coordinators(node, subject=subject, body=body, transfer_id=row.transfer_id)


def resolve_peer_key(node: Node) -> Callable[[str, str], IdentityPublicKey | None]:
    def resolve(domain: str, key_id: str) -> IdentityPublicKey | None:
        key = peers.key_by_id(node.db, key_id, domain=domain)
        if key is None or key.domain != domain or key.use != "identity" or key.status == "revoked":
            return None
        return IdentityPublicKey(key.public_key)

    return resolve
