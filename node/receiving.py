"""The receiving side of a push transfer: envelopes in, signed `delivered` receipts out; later receipts.

Before a byte is stored the node checks that transfers are on, that the envelope's signed header is the
sender's, names this node as recipient, and fits the limits. The body streams to a temp file while its
digest is computed; only when the whole envelope arrived and matched the signed Content-Digest is it
renamed into the inbox, in the same step as the transfer row is written.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from crypto import IdentityPublicKey, peek_unverified_sender, verify_envelope_header
from node import district_state, partial_envelopes
from node.appkeys import NODE
from node.clock import new_id, now_iso
from node.envelope_policy import open_policy
from node.home import Node
from node.offloop_writer import OffLoopWriter, finish_off_loop
from node.operators import record
from node.partial_envelopes import INTERRUPTED, UPLOADS, Arrival, Uploads
from node.signed_http import BODY, PEER, STREAM, SignedBodyStream
from node.transfer_delivery import ENVELOPE_ID_HEADER, accept_receipt
from node.transfer_engine import RECEIPT_TYPE, resolve_peer_key, step, stored_receipt_now
from protocol import InvalidInput, NotFound, SatchelError
from protocol.content_digest import DigestUnsupportedAlgorithm, parse_content_digest
from protocol.envelope_errors import EnvelopeMalformed, EnvelopeSignatureInvalid, EnvelopeTruncated
from protocol.envelope_format import EnvelopeHeader, OpenPolicy, max_prefix_length
from protocol.ids import parse_ulid
from protocol.receipts import ReceiptKind, verify_receipt
from protocol.transfer_states import (
    Actor,
    EnvelopeReceived,
    TransferEnvelopeConflict,
    TransfersDisabled,
    new_incoming,
)
from storage import peers
from storage import transfers as store
from storage.database import write_transaction
from storage.durable_files import replace_durably
from storage.errors import StorageFull
from storage.free_space import check_room, size_text
from storage.temp_files import temp_prefix

log = logging.getLogger("satchel.receiving")
RECEIVING = ".receiving"  # the kind of temp file (storage.temp_files) an envelope arrives into


def _sender_key(node: Node, domain: str, key_id: str) -> IdentityPublicKey:
    key = peers.key_by_id(node.db, key_id, domain=domain)
    if key is None or key.domain != domain or key.use != "identity" or key.status == "revoked":
        raise EnvelopeSignatureInvalid(
            f"the envelope is signed by {key_id}, not a key of {domain}", field="sender"
        )
    return IdentityPublicKey(key.public_key)


async def receive_envelope(request: web.Request) -> web.Response:
    node = request.app[NODE]
    peer = request[PEER]
    stream: SignedBodyStream = request[STREAM]  # type: ignore[assignment]
    if not district_state.transfers_enabled(node):
        raise TransfersDisabled(f"{node.config.node.domain} has switched transfers off", field="transfers")
    envelope_id = request.headers.get(ENVELOPE_ID_HEADER, "")
    parse_ulid(envelope_id, field=ENVELOPE_ID_HEADER)
    claimed = parse_content_digest(request.headers.get("Content-Digest")).get("sha-256")
    existing = store.get(node.db, envelope_id, local_domain=node.config.node.domain)
    if existing is not None:
        return redelivered(node, existing, peer.domain, claimed, stream)
    uploads = request.app[UPLOADS]
    policy = open_policy(node.config)
    inbox = node.config.envelopes_dir / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    temp = inbox / f"{temp_prefix(RECEIVING)}{new_id()}"
    prefix_needed = max_prefix_length(policy)
    prefix = bytearray()
    header = None
    try:
        with uploads.whole(envelope_id) as arrival, temp.open("wb") as handle:
            writer = OffLoopWriter(handle.write)
            try:
                async for chunk in stream.chunks(limit=policy.max_payload_length * 2 + prefix_needed):
                    if header is None:
                        prefix += chunk
                        if len(prefix) < prefix_needed:
                            continue
                        header = check_header(node, peer.domain, envelope_id, bytes(prefix), policy)
                        require_room(node, inbox, header.envelope_length, peer.domain)
                        _hold_unlisted_room(node, uploads, arrival, header.envelope_length, peer.domain)
                        chunk, prefix = bytes(prefix), bytearray()
                    await writer.write(chunk)
                if header is None:  # a short envelope: the whole of it is the prefix
                    header = check_header(node, peer.domain, envelope_id, bytes(prefix), policy)
                    require_room(node, inbox, header.envelope_length, peer.domain)
                    _hold_unlisted_room(node, uploads, arrival, header.envelope_length, peer.domain)
                    await writer.write(bytes(prefix))
                await writer.drain()
            except INTERRUPTED:
                await writer.settle()
                if header is not None:  # its sender is known: what arrived is kept for it to send the rest
                    await partial_envelopes.keep(node, uploads, envelope_id=envelope_id, sender=peer.domain,
                                                 temp=temp, handle=handle)  # fmt: skip
                raise
            finally:
                await writer.settle()
            stream.finish()
            digest = stream.sha256()
            if digest is None:
                raise DigestUnsupportedAlgorithm("envelopes are sent with a sha-256 Content-Digest",
                                                 field="Content-Digest")  # fmt: skip
            if stream.length != header.envelope_length:
                raise EnvelopeTruncated(
                    "the envelope's length is not the one its header announces", field="body"
                )
            await finish_off_loop(partial_envelopes.sync, handle)  # a gigabyte's fsync takes seconds
        response = commit_received(
            node, peer.domain, envelope_id, header, digest, stream.length, temp, stream
        )
        partial_envelopes.discard(node, uploads, envelope_id)
        return response
    finally:
        temp.unlink(missing_ok=True)


def commit_received(
    node: Node, sender: str, envelope_id: str, header: EnvelopeHeader, digest: bytes, length: int, source: Path,
    stream: SignedBodyStream,
) -> web.Response:  # fmt: skip
    """The whole envelope is in ``source``, fsynced, its digest checked: name it and apply
    ``envelope_received`` in one step; answer with the signed ``delivered`` receipt."""
    inbox = source.parent
    final = inbox / f"{envelope_id}.env"
    local = node.config.node.domain
    if store.get(node.db, envelope_id, local_domain=local) is not None:
        # The same envelope came in twice at once (a retry overlapped): answer as for a redelivery.
        return redelivered(node, store.require(node.db, envelope_id, local_domain=local), sender, digest, stream,
                           nonce_stored=True)  # fmt: skip
    with write_transaction(node.db):
        status = new_incoming(transfer_id=envelope_id, sender_domain=sender, receiver_domain=local)
        store.insert(node.db, status, now=now_iso(), kind=header.kind, envelope_path=str(final),
                     envelope_length=length)  # fmt: skip
        row = store.require(node.db, envelope_id, local_domain=local)
        expires = datetime.fromtimestamp(header.expires, UTC)
        outcome = step(node, row, EnvelopeReceived(envelope_digest=digest, expires=expires),
                       actor=Actor.SENDER_NODE, actor_name=sender)  # fmt: skip
        replace_durably(source, final)  # named on disk before the commit and the receipt
        record(node, sender, "transfer.received", envelope_id, {"from": sender, "bytes": length})
    return web.Response(body=outcome.signed_receipts[0], content_type=RECEIPT_TYPE)


def require_room(node: Node, inbox: Path, length: int, sender: str) -> None:
    """Refuse an envelope that would fill the disk before writing a byte of it: the sender's node keeps it and
    tries again later (507 is not a final refusal), while this node's operator reads why in the log."""
    short = check_room(inbox, length, reserve=node.config.storage.reserve_bytes)
    if short is None:
        return
    log.warning(
        "no room for a %s envelope from %s: %s free on the disk of %s, %s kept in reserve (storage.reserve_mib);"
        " free %s there", size_text(length), sender, size_text(short.free), inbox, size_text(short.reserve),
        size_text(short.missing),
    )  # fmt: skip
    raise StorageFull(
        f"{node.config.node.domain} has no room for a {size_text(length)} envelope now",
        hint="your node keeps the envelope and tries again later; its operator has been told in the node's log",
    )


class UnlistedInboxFull(SatchelError):
    """Envelopes waiting for a code from districts known only from their own web site fill what this node keeps
    for them (envelope.unlisted_inbox_mib)."""

    code = "transfer.unlisted_inbox_full"
    default_hint = (
        "your node keeps the envelope and tries again later; to be received at once, have the receiving "
        "district pin your node (`satchel peers add URL`) or join a directory it trusts"
    )


def _hold_unlisted_room(node: Node, uploads: Uploads, arrival: Arrival, length: int, sender: str) -> None:
    if require_unlisted_room(node, length, sender, arriving=uploads.unlisted_bytes):
        uploads.count_unlisted(arrival, length)


def require_unlisted_room(node: Node, length: int, sender: str, *, arriving: int = 0) -> bool:
    """Anyone holding an https host in a domain can send envelopes here: bound what such senders may keep
    waiting (stored, and ``arriving`` now), so that they cannot fill the disk against the districts this
    node knows. True when the sender is such a district (and there was room)."""
    peer = peers.get(node.db, sender)
    if peer is None or peer.trust != "web":
        return False
    waiting = store.waiting_from_unlisted(node.db) + arriving
    limit = node.config.envelope.unlisted_inbox_bytes
    if waiting + length <= limit:
        return True
    log.warning("refused a %s envelope from %s, known only from its own web site: %s from such districts already"
                " wait for a code or are arriving (envelope.unlisted_inbox_mib: %s)", size_text(length), sender,
                size_text(waiting), size_text(limit))  # fmt: skip
    raise UnlistedInboxFull(
        f"{node.config.node.domain} keeps at most {size_text(limit)} of envelopes waiting from districts it knows "
        f"only from their own web site, and {size_text(waiting)} already wait or are arriving", field="envelope",
    )  # fmt: skip


def check_header(
    node: Node, sender: str, envelope_id: str | None, prefix: bytes, policy: OpenPolicy
) -> EnvelopeHeader:
    """The envelope's header, verified: signed by ``sender``, for this node, within its limits, and (unless
    ``envelope_id`` is None) carrying that id."""
    domain, key_id = peek_unverified_sender(prefix)
    if domain != sender:
        raise EnvelopeSignatureInvalid(
            f"an envelope from {domain} cannot be delivered by {sender}", field="sender"
        )
    header = verify_envelope_header(
        prefix, sender_key=_sender_key(node, domain, key_id),
        recipient_key=[k.public_key for k in node.current_keys().encryption_by_id.values()],
        recipient_domain=node.config.node.domain, now=time.time(), policy=policy,
    )  # fmt: skip
    if envelope_id is not None and header.envelope_id != envelope_id:
        raise EnvelopeMalformed(
            "the envelope id does not match the Satchel-Envelope-Id header", field="envelope_id"
        )
    return header


def redelivered(
    node: Node,
    row: store.TransferRow,
    sender: str,
    claimed: bytes | None,
    stream: SignedBodyStream,
    *,
    nonce_stored: bool = False,
) -> web.Response:
    """The same envelope again: the same receipt, and nothing changes. Other bytes under its id: refused."""
    if row.peer != sender or row.status.side.value != "receiver":
        raise TransferEnvelopeConflict(
            "another transfer already uses this envelope id", field=ENVELOPE_ID_HEADER
        )
    with write_transaction(node.db):
        outcome = step(
            node, row, EnvelopeReceived(envelope_digest=claimed or b"\0" * 32,
                                        expires=row.status.expires or datetime.now(UTC)),
            actor=Actor.SENDER_NODE, actor_name=sender,
        )  # fmt: skip
        receipt = outcome.resent or stored_receipt_now(node, row.transfer_id, ReceiptKind.DELIVERED)
    if not nonce_stored:
        stream.remember_nonce()
    if receipt is None:
        raise NotFound("no receipt to send again for this envelope")
    return web.Response(body=receipt, content_type=RECEIPT_TYPE)


async def receive_receipt(request: web.Request) -> web.Response:
    """Receipts, messages and cancellations from the peer about a transfer (signed twice: HTTP and document)."""
    node = request.app[NODE]
    peer = request[PEER]
    transfer_id = request.match_info["transfer_id"]
    parse_ulid(transfer_id, field="transfer_id")
    signed = request[BODY]
    receipt = verify_receipt(signed, resolve_peer_key(node))
    if receipt.from_domain != peer.domain or receipt.transfer_id != transfer_id:
        raise InvalidInput(
            "the receipt is not from the calling district about this transfer", field="receipt"
        )
    if store.get(node.db, transfer_id, local_domain=node.config.node.domain) is None:
        if receipt.kind is not ReceiptKind.CANCELLED:
            raise NotFound(f"no transfer {transfer_id} here", field="transfer_id")
        with write_transaction(node.db):
            # The cancellation overtook the envelope: keep a tombstone so a late envelope is refused.
            status = new_incoming(transfer_id=transfer_id, sender_domain=peer.domain,
                                  receiver_domain=node.config.node.domain)  # fmt: skip
            store.insert(node.db, status, now=now_iso())
    accept_receipt(node, transfer_id, signed)
    row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
    return web.json_response({"transfer_id": transfer_id, "state": row.state})
