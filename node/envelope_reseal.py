"""An outgoing envelope not delivered yet, sealed again before it goes when its receiver would refuse it for
good (spec/envelope.md §8.1, Sealing again; spec/transfer.md §3.8): signed with an identity key this node then
revoked (``envelope.signature_invalid``), or sealed to an encryption key its receiver has replaced since
(``envelope.not_recipient``: the receiver rotated, and revoked the old key, while the envelope waited here).

The receiver learns of a revocation of ours from the very request that delivers the envelope; of the
receiver's, this node learns from its descriptor: checked before each delivery against what is stored, and
fetched again when the receiver refuses an envelope as not for it (:func:`reseal_for_refusal`). The sender
cannot read its own envelope (it is encrypted to the receiver), so it seals again from the manifest it kept
(storage.transfers.keep_outgoing_manifest) and the documents in its blob store, streamed one chunk at a time as
the first sealing did: under the same envelope id (the transfer's id), whose salt makes the code's key, with the
code its coordinator gave out, so that code opens the new envelope. The new file replaces the old in the same
transaction as the digest and length the delivery announces; an upload of the old bytes that broke off is sent
whole again (the receiver's kept part no longer adds up: transfer_delivery._send_rest).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path

from crypto import (
    Code,
    EncryptionPublicKey,
    parse_code,
    peek_unverified_recipient,
    peek_unverified_sender,
)
from node.clock import new_id, now_iso
from node.home import Node
from node.operators import record
from node.own_signatures import revoked_here
from node.peer_client import PeerClient
from node.peers import PeerUnreachable
from node.sending import encryption_key, seal_to_file
from protocol import SatchelError
from protocol.envelope_format import max_prefix_length
from protocol.manifest import Manifest, parse_manifest
from protocol.transfer_states import SenderState
from storage import peers
from storage import transfers as store
from storage.database import write_transaction
from storage.durable_files import replace_durably
from storage.transfers import TransferRow

log = logging.getLogger("satchel.envelope_reseal")

# Why an envelope was sealed again: the timeline's `resealed` event and the audit entry say it.
SENDER_KEY_REVOKED = "sender_key_revoked"
RECIPIENT_KEY_REPLACED = "recipient_key_replaced"


def signed_by_revoked_key(node: Node, envelope: Path) -> bool:
    with envelope.open("rb") as handle:
        _, signer = peek_unverified_sender(handle.read(4096))
    return revoked_here(node, signer)


def sealed_to(envelope: Path) -> str:
    """The receiver's encryption key id the envelope is sealed to (this node sealed it: read, not verified)."""
    with envelope.open("rb") as handle:
        return peek_unverified_recipient(handle.read(max_prefix_length()))[1]


def _current_recipient_key(node: Node, row: TransferRow) -> EncryptionPublicKey | None:
    """The receiver's newest valid encryption key as stored here, or None when none is (nothing to seal to)."""
    peer = peers.get(node.db, row.peer)
    if peer is None:
        return None
    try:
        return encryption_key(node, peer)
    except SatchelError:
        return None


def _held_valid(node: Node, row: TransferRow, key_id: str) -> bool:
    """Whether ``key_id`` is an encryption key of the receiver's still valid (not revoked) as stored here."""
    now = now_iso()
    return any(k.key_id == key_id and k.use == "encryption" and k.valid_at(now)
               for k in peers.keys(node.db, row.peer))  # fmt: skip


async def reseal_if_needed(node: Node, row: TransferRow, envelope: Path) -> TransferRow:
    """``row``, or the row as it is once its envelope was sealed again: when a revoked key of this node signed
    it, or the receiver's key it is sealed to is revoked or no longer valid as far as this node knows (a
    receiver's key merely rotated away from still opens what is sealed to it). When that cannot be done (sealed
    by a version that kept no manifest; a document gone from the blob store) it goes as it is and is refused:
    the transfer becomes undeliverable and the coordinators are told, as before."""
    if signed_by_revoked_key(node, envelope):
        return await _reseal(node, row, envelope, why=SENDER_KEY_REVOKED)
    if _current_recipient_key(node, row) is not None and not _held_valid(node, row, sealed_to(envelope)):
        return await _reseal(node, row, envelope, why=RECIPIENT_KEY_REPLACED)
    return row


async def reseal_for_refusal(
    node: Node, client: PeerClient, row: TransferRow, envelope: Path
) -> TransferRow | None:
    """After the receiver refused the envelope as not for it (``envelope.not_recipient``): its descriptor fetched
    again, the row as it is once the envelope was sealed again to the receiver's current encryption key; None
    when the refusal stands (the envelope is sealed to that key already, so sealing again would change nothing,
    or it cannot be sealed again). A descriptor that cannot be fetched now is tried again later
    (``peer.unreachable``), not taken for a refusal for good."""
    try:
        await client.refresh_peer(row.peer)
    except SatchelError as exc:
        raise PeerUnreachable(
            f"{row.peer} refused the envelope of transfer {row.transfer_id} as sealed to a key it does not hold, and "
            f"its descriptor could not be fetched to learn its current key ({exc.code}: {exc.message})",
            field="url", hint="Satchel tries again by itself; if it lasts, tell the other district's IT",
        ) from exc  # fmt: skip
    current = _current_recipient_key(node, row)
    if current is None or current.key_id == sealed_to(envelope):
        return None
    resealed = await _reseal(node, row, envelope, why=RECIPIENT_KEY_REPLACED)
    return resealed if resealed.envelope_path != row.envelope_path else None


async def _reseal(node: Node, row: TransferRow, envelope: Path, *, why: str) -> TransferRow:
    """The row once its envelope was sealed again with this node's current identity key, to the receiver's
    current encryption key; ``row`` as it was when that cannot be done. The sealing (every byte encrypted,
    hashed and synced) runs on a worker thread that touches no database."""
    tid = row.transfer_id
    kept, code = store.outgoing_manifest(node.db, tid), store.get_code(node.db, tid)
    recipient = _current_recipient_key(node, row)
    if kept is None or code is None or recipient is None:
        log.warning("transfer %s: not sealed again (%s; no manifest kept)", tid, why)
        return row
    key = node.current_keys().identity
    manifest = replace(parse_manifest(kept), sender_key_id=key.public_key.key_id)
    documents = [node.blobs.path_for(d.sha256.hex()) for d in manifest.documents() if d.sha256 is not None]
    if not all(path.is_file() for path in documents):
        log.warning("transfer %s: not sealed again (%s; a document is gone)", tid, why)
        return row
    path, digest, length = await asyncio.to_thread(
        _seal_again, node, row, manifest, documents, parse_code(code), recipient
    )
    try:
        with write_transaction(node.db):
            fresh = store.require(node.db, tid, local_domain=node.config.node.domain)
            if fresh.status.state is not SenderState.SEALED or fresh.envelope_path != row.envelope_path:
                path.unlink(missing_ok=True)
                return fresh  # cancelled, delivered or sealed again by another deliverer meanwhile
            if store.outgoing_manifest(node.db, tid) != kept:
                # A purge took the manifest while it was being sealed: what was just sealed holds the purged
                # record, and the transfer can no longer be sealed again (it goes as it is, and is refused).
                log.warning("transfer %s: not sealed again (%s; a purge took its manifest meanwhile)", tid, why)
                path.unlink(missing_ok=True)
                return fresh
            store.save_status(node.db, replace(fresh.status, envelope_digest=digest), now=now_iso(),
                              envelope_path=str(path), envelope_length=length)  # fmt: skip
            by, signer = node.config.node.domain, key.public_key.key_id
            detail = {"key": signer, "recipient_key": recipient.key_id, "reason": why}
            store.add_event(node.db, tid, at=now_iso(), direction="local", kind="resealed", actor=by,
                            detail={**detail, "bytes": length})  # fmt: skip
            record(node, by, "transfer.resealed", tid, detail)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    envelope.unlink(missing_ok=True)
    return store.require(node.db, tid, local_domain=node.config.node.domain)


def _seal_again(
    node: Node,
    row: TransferRow,
    manifest: Manifest,
    documents: list[Path],
    code: Code,
    recipient_key: EncryptionPublicKey,
) -> tuple[Path, bytes, int]:
    """The new envelope on disk (synced) under a name of its own, with its SHA-256 and length."""
    assert row.status.expires is not None  # an outgoing transfer always expires
    temp, _, digest, length = seal_to_file(
        node, manifest, documents, recipient_key, code, now=time.time(), expires=row.status.expires.timestamp(),
        kind=row.kind, what="sealing the transfer again", envelope_id=row.transfer_id,
    )  # fmt: skip
    final = node.config.envelopes_dir / "out" / f"{row.transfer_id}.{new_id()}.env"
    try:
        replace_durably(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final, digest, length
