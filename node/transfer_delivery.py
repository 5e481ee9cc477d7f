"""Delivering what the transfer machine queued: envelopes (streamed) and receipts, from the outbox."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path

from node.clock import now_iso
from node.delivery_status import DeliveryDeferred, deliveries
from node.envelope_reseal import reseal_for_refusal, reseal_if_needed
from node.home import Node
from node.operators import authorize, record
from node.peer_client import PeerClient, PeerRefused, PeerResponse
from node.peers import PeerUnreachable
from node.sending import ENVELOPE_TYPE
from node.transfer_engine import (
    envelope_job_id,
    receipt_job_id,
    receipt_job_payload,
    receipt_key,
    record_received,
    resolve_peer_key,
    step,
)
from node.transfer_files import SealedEnvelopeMissing, carry_out, envelope_file, pieces
from protocol import InvalidInput, SatchelError
from protocol.content_digest import ContentDigester, DigestMismatch
from protocol.envelope_errors import EnvelopeNotRecipient
from protocol.envelope_upload import (
    ENVELOPE_DIGEST_HEADER,
    RESUMABLE_LENGTH,
    UPLOAD_OFFSET_HEADER,
    UploadInProgress,
    UploadOffsetMismatch,
    UploadUnknown,
    parse_upload_state,
)
from protocol.receipts import PURPOSE as RECEIPT_PURPOSE
from protocol.receipts import ReceiptConflict, ReceiptKind, verify_receipt
from protocol.signed_document import verify_document
from protocol.threads import check_room
from protocol.transfer_states import (
    Actor,
    DeliveryRefused,
    ReceiptArrived,
    SenderState,
    check_receipt_belongs,
    is_permanent_refusal,
)
from storage import outbox
from storage import transfers as store
from storage.database import write_transaction
from storage.transfers import TransferRow

ENVELOPE_PATH = "/satchel/v1/envelopes"
ENVELOPE_ID_HEADER = "Satchel-Envelope-Id"


def pending_delivery(node: Node, row: TransferRow) -> outbox.Job | None:
    """The outbox job still trying to deliver an outgoing transfer's envelope (attempts, last answer, next
    try), or None once it is delivered, refused or cancelled: what a coordinator asks of a transfer stuck
    in ``sealed``."""
    if row.status.state is not SenderState.SEALED:
        return None
    job = outbox.get(node.db, envelope_job_id(row.transfer_id))
    return job if job is not None and job.status == "pending" else None


def sent_deliveries(node: Node, transfer_id: str, timeline: list[dict]) -> dict[int, dict[str, object]]:
    """Where each receipt and message this node sent about a transfer stands, by its timeline ``seq``
    (node.delivery_status). A ``delivered`` receipt travels as the envelope's answer and has no job: it is
    absent, as are the events that are not this node's receipts."""
    return deliveries(node.db, {e["seq"]: receipt_job_id(transfer_id, e["receipt_id"]) for e in timeline
                                if e["direction"] == "sent" and e["receipt_id"]})  # fmt: skip


def retry_now(node: Node, *, actor: str | None, transfer_id: str) -> outbox.Job:
    """Waive the backoff of an outgoing transfer's delivery, so the next delivery pass (the command's own)
    tries it at once: for when the other district says it is back, or has made room."""
    user = authorize(node, actor, "transfers.act")
    with write_transaction(node.db):
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        job = pending_delivery(node, row)
        if job is None:
            raise InvalidInput(
                f"transfer {transfer_id} is not waiting for delivery (state {row.state})", field="ID",
                hint="only an outgoing transfer still sealed can be retried; `satchel transfers show ID` says more",
            )  # fmt: skip
        outbox.make_due(node.db, job.job_id, now_iso())
        record(node, user.username, "transfer.retry", transfer_id, {"attempts": job.attempts})
    return job


async def deliver_envelope(node: Node, client: PeerClient, job: outbox.Job) -> None:
    transfer_id = job.payload.decode()
    local = node.config.node.domain
    row = store.require(node.db, transfer_id, local_domain=local)
    envelope = envelope_file(node, row)
    if row.status.state is not SenderState.SEALED or envelope is None:
        return  # cancelled, expired or already delivered: nothing left to send
    if not envelope.is_file():
        raise SealedEnvelopeMissing(
            f"the sealed envelope of transfer {transfer_id} is gone from {envelope.parent}", field="envelope",
            hint="restore envelopes/out from a backup (`satchel check` lists what is missing) and it is sent on "
                 "the next try; or cancel the transfer (`satchel cancel ID`) and send the records again",
        )  # fmt: skip
    sealed_as = row.envelope_path
    row = await reseal_if_needed(node, row, envelope)
    envelope = envelope_file(node, row)
    if row.status.state is not SenderState.SEALED or envelope is None:
        return
    try:
        response = await _send_envelope(client, job, row, envelope, resumable=row.envelope_path == sealed_as)
    except PeerRefused as exc:
        if exc.peer_code != EnvelopeNotRecipient.code:
            _refused_if_for_good(node, job, row, exc)
            raise
        # Sealed to a key the receiver has replaced (it rotated and revoked it while the envelope waited here):
        # sealed again to its current one, at most once per key it publishes, and sent at once.
        resealed = await reseal_for_refusal(node, client, row, envelope)
        if resealed is None:
            _refused_if_for_good(node, job, row, exc)
            raise
        row, envelope = resealed, envelope_file(node, resealed)
        if row.status.state is not SenderState.SEALED or envelope is None:
            return  # cancelled or expired meanwhile
        try:
            response = await _send_envelope(client, job, row, envelope, resumable=False)
        except PeerRefused as again:
            _refused_if_for_good(node, job, row, again)
            raise
    base = job.url[: -len(ENVELOPE_PATH)]
    with contextlib.suppress(SatchelError):  # not a signed document: accept_receipt says why
        signer = verify_document(response.body, purpose=RECEIPT_PURPOSE).signer.key_id
        await client.learn_key(signer, base_url=base, domain=row.peer)
    accept_receipt(node, transfer_id, response.body)


async def _send_envelope(
    client: PeerClient, job: outbox.Job, row: TransferRow, envelope: Path, *, resumable: bool
) -> PeerResponse:
    """Send ``row``'s envelope (the rest of it, after an upload of the same bytes broke off)."""
    # Sealed again: nothing the receiver kept of an upload of the old bytes is part of the new envelope.
    resumable = resumable and (row.envelope_length or 0) >= RESUMABLE_LENGTH
    digest = "sha-256=:" + base64.b64encode(row.status.envelope_digest or b"").decode() + ":"
    base = job.url[: -len(ENVELOPE_PATH)]
    response = None
    if job.attempts > 0 and resumable:
        response = await _send_rest(client, base, row, envelope, digest)
    if response is None:
        response = await client.call(
            base, "POST", ENVELOPE_PATH, content_type=ENVELOPE_TYPE, expect_domain=row.peer,
            body_file=envelope, body_digest=digest,
            extra_headers=((ENVELOPE_ID_HEADER, row.transfer_id),),
        )  # fmt: skip
    return response


def _refused_if_for_good(node: Node, job: outbox.Job, row: TransferRow, exc: PeerRefused) -> None:
    if is_permanent_refusal(exc.status, exc.peer_code):
        _refused_for_good(node, job, row, exc)


def _refused_for_good(node: Node, job: outbox.Job, row: TransferRow, exc: PeerRefused) -> None:
    """The receiver will never take this envelope: the transfer becomes ``undeliverable`` (its coordinators are
    told), the refusal is kept on the job and in the timeline, and the sealed copy goes."""
    error = f"{exc.peer_code}: {exc.message}"
    with write_transaction(node.db):
        fresh = store.require(node.db, row.transfer_id, local_domain=node.config.node.domain)
        if fresh.status.state is not SenderState.SEALED:
            return  # cancelled or expired while it was on its way: nothing is left to refuse
        # Failed before the machine withdraws the job (DROP_FROM_OUTBOX), so the job keeps why.
        outbox.mark_failed(node.db, job.job_id, error=error, now=now_iso())
        outcome = step(node, fresh, DeliveryRefused(error_code=exc.peer_code), actor=Actor.SENDER_NODE,
                       actor_name=row.peer)  # fmt: skip
        store.add_event(node.db, row.transfer_id, at=now_iso(), direction="local", kind="refused", actor=row.peer,
                        detail={"error": error[:500]})  # fmt: skip
        record(node, row.peer, "transfer.refused", row.transfer_id,
               {"state": outcome.transition.status.state.value, "error": exc.peer_code})  # fmt: skip
    for action in outcome.after_commit:
        carry_out(node, fresh, action)


# Answers to a resumed upload after which the whole envelope is the thing to send: nothing (or no longer the
# same bytes) is kept there, or what was kept did not add up to the envelope and was discarded.
_SEND_WHOLE = frozenset({UploadUnknown.code, UploadOffsetMismatch.code, DigestMismatch.code})


async def _send_rest(
    client: PeerClient, base: str, row: TransferRow, envelope: Path, digest: str
) -> PeerResponse | None:
    """After an upload of this envelope broke off: ask the receiver how much of it it kept and send only the
    rest (spec/transfer.md §4.1). None when the whole envelope is to be sent: nothing is kept there, or the
    receiver does not resume uploads (a node from before, another implementation)."""
    tid = row.transfer_id
    try:
        answer = await client.call(base, "GET", f"{ENVELOPE_PATH}/{tid}/upload", expect_domain=row.peer)
        state = parse_upload_state(answer.body, envelope_id=tid)
    except PeerRefused as exc:
        if exc.peer_code == UploadInProgress.code:
            raise  # an earlier try is still arriving there: retried later
        return None
    except PeerUnreachable:
        raise  # retried later, like the upload itself
    except SatchelError:
        return None  # an answer that makes no sense: the whole envelope is never wrong
    if state.length != row.envelope_length or not 0 < state.received < state.length:
        return None  # complete there (a POST gets the receipt), or nothing usable
    rest = await asyncio.to_thread(digest_from, envelope, state.received)
    try:
        return await client.call(
            base, "PATCH", f"{ENVELOPE_PATH}/{tid}", content_type=ENVELOPE_TYPE, expect_domain=row.peer,
            body_file=envelope, body_offset=state.received, body_digest=rest,
            extra_headers=((UPLOAD_OFFSET_HEADER, str(state.received)), (ENVELOPE_DIGEST_HEADER, digest)),
        )  # fmt: skip
    except PeerRefused as exc:
        if exc.peer_code in _SEND_WHOLE:
            return None
        raise


def digest_from(path: Path, offset: int) -> str:
    """The Content-Digest header of a file's bytes from ``offset`` to its end."""
    digester = ContentDigester()
    for piece in pieces(path, start=offset):
        digester.update(piece)
    return digester.header_value()


def accept_receipt(node: Node, transfer_id: str, signed: bytes) -> None:
    """Verify a receipt from the peer and move this side's machine; repeated receipts change nothing."""
    receipt = verify_receipt(signed, resolve_peer_key(node))
    with write_transaction(node.db):
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        check_receipt_belongs(row.status, receipt)  # spec/transfer.md §5.3: step 5 before step 6
        kept = store.receipt_bytes(node.db, transfer_id, receipt_key(receipt))
        if kept is not None and _same_receipt(kept, signed):
            return  # delivered again (its answer was lost): kept and acted on the first time, told once
        if kept is not None:
            raise ReceiptConflict(f"another receipt numbered {receipt.sequence} from the {receipt.issuer.value} "
                                  f"is recorded for transfer {transfer_id}", field="sequence")  # fmt: skip
        if receipt.kind is ReceiptKind.MESSAGE:
            check_room(store.message_count(node.db, transfer_id), about=f"transfer {transfer_id}")
        peer_actor = Actor.RECEIVER_NODE if row.status.side.value == "sender" else Actor.SENDER_NODE
        outcome = step(node, row, ReceiptArrived(receipt=receipt), actor=peer_actor, actor_name=row.peer)
        record_received(node, row, receipt, signed)
        # The other district moved this side's transfer (or wrote about it): its node did it, as the timeline says.
        record(node, row.peer, "transfer.receipt", transfer_id,
               {"kind": receipt.kind.value, "state": outcome.transition.status.state.value})  # fmt: skip
    for action in outcome.after_commit:
        carry_out(node, row, action)


def _same_receipt(kept: bytes, signed: bytes) -> bool:
    """The same receipt: the same bytes, or the same payload signed again by its issuer after it revoked the key
    that signed it first (node.own_signatures; ``signed`` verified against the issuer's keys already)."""
    if kept == signed:
        return True
    kept_payload = verify_document(kept, purpose=RECEIPT_PURPOSE).payload
    return kept_payload == verify_document(signed, purpose=RECEIPT_PURPOSE).payload


async def deliver_receipt(node: Node, client: PeerClient, job: outbox.Job) -> None:
    transfer_id = job.url.split("/satchel/v1/transfers/", 1)[1].split("/", 1)[0]
    row = store.get(node.db, transfer_id, local_domain=node.config.node.domain)
    if row is not None and row.status.state is SenderState.SEALED:
        raise DeliveryDeferred(f"transfer {transfer_id} is not delivered yet")
    payload = receipt_job_payload(node, transfer_id, job)
    base, _, path = job.url.partition("/satchel/")
    await client.call(base, "POST", "/satchel/" + path, body=payload, content_type=job.content_type,
                      expect_domain=job.peer)  # fmt: skip
