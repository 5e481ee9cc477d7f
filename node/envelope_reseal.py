"""An outgoing envelope sealed and signed with an identity key this node then revoked, sealed again with its
current key before it is delivered (spec/envelope.md §8.1, Sealing again; spec/descriptor.md, Revoking a key).

Its receiver refuses for good what a revoked key signs (``envelope.signature_invalid``), and learns of the
revocation from the very request that delivers it. The sender cannot read its own envelope (it is encrypted to
the receiver), so it seals again from the manifest it kept (storage.transfers.keep_outgoing_manifest) and the
documents in its blob store, streamed one chunk at a time as the first sealing did: under the same envelope id
(the transfer's id), whose salt makes the code's key, with the code its coordinator gave out, so that code
opens the new envelope. The new file replaces the old in the same transaction as the digest and length the
delivery announces; an upload of the old bytes that broke off is sent whole again (the receiver's kept part
no longer adds up: transfer_delivery._send_rest).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from crypto import Code, EncryptionPublicKey, parse_code, peek_unverified_sender, seal_envelope
from node.clock import new_id, now_iso
from node.envelope_policy import sealing_argon2
from node.home import Node
from node.manifest_builder import ConcatReader
from node.operators import record
from node.own_signatures import revoked_here
from node.sending import SEALING, _encryption_key, _HashingWriter
from protocol.manifest import Manifest, parse_manifest
from protocol.transfer_states import SenderState
from storage import peers
from storage import transfers as store
from storage.database import write_transaction
from storage.durable_files import replace_durably
from storage.free_space import require_room
from storage.temp_files import temp_prefix
from storage.transfers import TransferRow

log = logging.getLogger("satchel.envelope_reseal")


def signed_by_revoked_key(node: Node, envelope: Path) -> bool:
    with envelope.open("rb") as handle:
        _, signer = peek_unverified_sender(handle.read(4096))
    return revoked_here(node, signer)


async def reseal_if_revoked(node: Node, row: TransferRow, envelope: Path) -> TransferRow:
    """``row``, or the row as it is once its envelope was sealed again when a revoked key of this node signed it.
    When that cannot be done (sealed by a version that kept no manifest; a document gone from the blob store) it
    goes as it is and is refused: the transfer becomes undeliverable and the coordinators are told, as before
    (`satchel keys revoke` named it: cancel it and send the records again). The sealing (every byte encrypted,
    hashed and synced) runs on a worker thread that touches no database."""
    if not signed_by_revoked_key(node, envelope):
        return row
    tid = row.transfer_id
    kept, code = store.outgoing_manifest(node.db, tid), store.get_code(node.db, tid)
    peer = peers.get(node.db, row.peer)
    if kept is None or code is None or peer is None:
        log.warning("transfer %s: signed by a revoked key, and not sealed again (no manifest kept)", tid)
        return row
    key = node.current_keys().identity
    manifest = replace(parse_manifest(kept), sender_key_id=key.public_key.key_id)
    documents = [node.blobs.path_for(d.sha256.hex()) for d in manifest.documents() if d.sha256 is not None]
    if not all(path.is_file() for path in documents):
        log.warning("transfer %s: signed by a revoked key, and not sealed again (a document is gone)", tid)
        return row
    recipient = _encryption_key(node, peer)
    path, digest, length = await asyncio.to_thread(
        _seal_again, node, row, manifest, documents, parse_code(code), recipient
    )
    try:
        with write_transaction(node.db):
            fresh = store.require(node.db, tid, local_domain=node.config.node.domain)
            if fresh.status.state is not SenderState.SEALED or fresh.envelope_path != row.envelope_path:
                path.unlink(missing_ok=True)
                return fresh  # cancelled, delivered or sealed again by another deliverer meanwhile
            store.save_status(node.db, replace(fresh.status, envelope_digest=digest), now=now_iso(),
                              envelope_path=str(path), envelope_length=length)  # fmt: skip
            by, signer = node.config.node.domain, key.public_key.key_id
            store.add_event(node.db, tid, at=now_iso(), direction="local", kind="resealed", actor=by,
                            detail={"key": signer, "bytes": length})  # fmt: skip
            record(node, by, "transfer.resealed", tid, {"key": signer})
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
    out_dir = node.config.envelopes_dir / "out"
    require_room(out_dir, manifest.documents_length, reserve=node.config.storage.reserve_bytes,
                 what="sealing the transfer again")  # fmt: skip
    temp = out_dir / f"{temp_prefix(SEALING)}{new_id()}"
    final = out_dir / f"{row.transfer_id}.{new_id()}.env"
    reader = ConcatReader(documents)
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envelope-digest")
    assert row.status.expires is not None  # an outgoing transfer always expires
    try:
        with temp.open("wb") as handle:
            writer = _HashingWriter(handle, hasher)
            seal_envelope(
                reader, writer, manifest=manifest, sender_key=node.current_keys().identity,  # type: ignore[arg-type]
                recipient_key=recipient_key, code=code, now=time.time(), expires=row.status.expires.timestamp(),
                kind=row.kind, argon2=sealing_argon2(node.config), envelope_id=row.transfer_id,
            )  # fmt: skip
            digest = writer.digest()
            handle.flush()
            os.fsync(handle.fileno())
        replace_durably(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        hasher.shutdown()
        reader.close()
    return final, digest, writer.length
