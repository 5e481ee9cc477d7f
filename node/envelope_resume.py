"""Resuming an envelope upload that broke off (spec/transfer.md §4.1): how much is here, and the rest.

``GET /satchel/v1/envelopes/{id}/upload`` tells the envelope's sender how many bytes of it this node holds;
``PATCH /satchel/v1/envelopes/{id}`` appends the rest from ``Upload-Offset`` and, once the last byte is in,
checks the SHA-256 of the whole envelope (the kept bytes read back from disk, the new ones as they arrive)
against the signed ``Satchel-Envelope-Digest`` before it is received exactly as a whole upload is.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from aiohttp import web

from crypto import peek_unverified_sender
from node import district_state, partial_envelopes
from node.appkeys import NODE
from node.envelope_policy import open_policy
from node.home import Node
from node.offloop_writer import OffLoopWriter, finish_off_loop
from node.partial_envelopes import INTERRUPTED, UPLOADS, Uploads
from node.receiving import (
    RECEIVING,
    check_header,
    commit_received,
    redelivered,
    require_room,
    require_unlisted_room,
)
from node.signed_http import PEER, STREAM, SignedBodyStream
from node.transfer_files import pieces
from protocol import SatchelError
from protocol.content_digest import DigestMismatch
from protocol.envelope_errors import EnvelopeTruncated
from protocol.envelope_format import EnvelopeHeader, OpenPolicy, max_prefix_length
from protocol.envelope_upload import (
    ENVELOPE_DIGEST_HEADER,
    UPLOAD_OFFSET_HEADER,
    UPLOAD_STATE_TYPE,
    UploadInProgress,
    UploadOffsetMismatch,
    UploadState,
    UploadUnknown,
    encode_upload_state,
    parse_envelope_digest,
    parse_upload_offset,
)
from protocol.ids import parse_ulid
from protocol.transfer_states import TransfersDisabled
from storage import transfers as store
from storage.durable_files import replace_durably
from storage.temp_files import writer_gone

log = logging.getLogger("satchel.envelope_resume")


def _received_here(node: Node, envelope_id: str, sender: str) -> store.TransferRow | None:
    row = store.get(node.db, envelope_id, local_domain=node.config.node.domain)
    if row is None:
        return None
    if row.peer != sender or row.status.side.value != "receiver":
        raise UploadUnknown(f"no envelope {envelope_id} from {sender} here", field="envelope_id")
    return row


def _kept_header(node: Node, sender: str, envelope_id: str, partial: Path) -> EnvelopeHeader:
    """The verified header of what is kept of ``envelope_id`` for ``sender``. Another district asking learns
    nothing of it; a kept envelope that no longer passes (expired, its key revoked) is removed."""
    policy = open_policy(node.config)
    unknown = UploadUnknown(f"nothing of envelope {envelope_id} from {sender} is kept here", field="envelope_id")
    try:
        with partial.open("rb") as handle:
            prefix = handle.read(max_prefix_length(policy))
    except FileNotFoundError:
        raise unknown from None
    try:
        claimed_sender, _ = peek_unverified_sender(prefix)
    except SatchelError:
        claimed_sender = ""
    if claimed_sender != sender:
        raise unknown
    try:
        return check_header(node, sender, envelope_id, prefix, policy)
    except SatchelError:
        partial.unlink(missing_ok=True)
        raise


async def upload_state(request: web.Request) -> web.Response:
    node, peer = request.app[NODE], request[PEER]
    envelope_id = request.match_info["envelope_id"]
    parse_ulid(envelope_id, field="envelope_id")
    row = _received_here(node, envelope_id, peer.domain)
    if row is not None:
        length = row.envelope_length or 0
        state = UploadState(envelope_id, length, length)
    elif request.app[UPLOADS].arriving(envelope_id):  # what is kept of it is still changing
        raise UploadInProgress(f"envelope {envelope_id} is arriving in another upload now", field="envelope_id")
    else:
        partial = partial_envelopes.partial_path(node, envelope_id)
        header = _kept_header(node, peer.domain, envelope_id, partial)
        state = UploadState(envelope_id, partial.stat().st_size, header.envelope_length)
    return web.Response(body=encode_upload_state(state), content_type=UPLOAD_STATE_TYPE)


def _hash_kept(path: Path, length: int) -> Any:
    """A SHA-256 fed the first ``length`` bytes of ``path``, to be fed the rest as it arrives."""
    digest, fed = hashlib.sha256(), 0
    for piece in pieces(path, length=length):
        digest.update(piece)
        fed += len(piece)
    if fed != length:
        raise EnvelopeTruncated("the kept part of the envelope is shorter than it was", field="body")
    return digest


async def resume_envelope(request: web.Request) -> web.Response:
    node, peer = request.app[NODE], request[PEER]
    stream: SignedBodyStream = request[STREAM]  # type: ignore[assignment]
    if not district_state.transfers_enabled(node):
        raise TransfersDisabled(f"{node.config.node.domain} has switched transfers off", field="transfers")
    envelope_id = request.match_info["envelope_id"]
    parse_ulid(envelope_id, field="envelope_id")
    whole = parse_envelope_digest(request.headers.get(ENVELOPE_DIGEST_HEADER))
    row = _received_here(node, envelope_id, peer.domain)
    if row is not None:
        return redelivered(node, row, peer.domain, whole, stream)
    uploads = request.app[UPLOADS]
    with uploads.resumed(envelope_id):
        partial = partial_envelopes.partial_path(node, envelope_id)
        header = _kept_header(node, peer.domain, envelope_id, partial)
        length = header.envelope_length
        offset = parse_upload_offset(request.headers.get(UPLOAD_OFFSET_HEADER), length=length)
        held = partial.stat().st_size
        if held != offset:
            raise UploadOffsetMismatch(
                f"{node.config.node.domain} holds {held} bytes of envelope {envelope_id}, not {offset}",
                field=UPLOAD_OFFSET_HEADER,
            )
        require_room(node, partial.parent, length - offset, peer.domain)
        require_unlisted_room(node, length, peer.domain)
        loop = asyncio.get_running_loop()
        digest = await loop.run_in_executor(None, _hash_kept, partial, offset)
        intact = False
        try:
            with partial.open("r+b") as handle:
                handle.seek(offset)
                writer, hashing = OffLoopWriter(handle.write), OffLoopWriter(digest.update)
                try:
                    async for chunk in stream.chunks(limit=length - offset):
                        await writer.write(chunk)
                        await hashing.write(chunk)
                    await writer.drain()
                    await hashing.drain()
                except INTERRUPTED:
                    await writer.settle()
                    # Broken off again: what arrived stays, and the next try starts after it.
                    await finish_off_loop(partial_envelopes.sync, handle)
                    intact = True
                    raise
                finally:
                    await writer.settle()
                    await hashing.settle()
                stream.finish()
                if stream.length != length - offset:
                    raise EnvelopeTruncated(
                        f"the rest of the envelope is {length - offset} bytes from {offset}, not {stream.length}",
                        field="body",
                    )  # fmt: skip
                if digest.digest() != whole:
                    raise DigestMismatch(
                        f"the envelope {envelope_id} put together here is not the one {ENVELOPE_DIGEST_HEADER} names",
                        field=ENVELOPE_DIGEST_HEADER,
                        hint="what was kept is discarded: send the whole envelope again",
                    )  # fmt: skip
                await finish_off_loop(partial_envelopes.sync, handle)
            intact = True
            response = commit_received(node, peer.domain, envelope_id, header, whole, length, partial, stream)
            partial.unlink(missing_ok=True)  # named the envelope; or the same came whole meanwhile
            return response
        finally:
            if not intact:
                # Bytes that no digest vouches for (a body other than the one signed, a whole that does not
                # match): nothing of it can be trusted, so the sender starts over.
                partial.unlink(missing_ok=True)


def adopt_orphans(node: Node, uploads: Uploads) -> int:
    """At start: what this node was receiving when it was killed outright (a power cut, SIGKILL, the OOM
    killer) becomes the envelope's kept part, as for an upload that broke off, when it may be kept. Its last
    writes perhaps never reached the disk; the whole envelope's digest, checked when the rest arrives,
    catches that, and the sender then sends it whole. Returns how many were adopted."""
    inbox = node.config.envelopes_dir / "in"
    policy = open_policy(node.config)
    adopted = 0
    try:
        orphans = [e for e in os.scandir(inbox) if e.name.startswith(f"{RECEIVING}-") and writer_gone(e.name)]
    except FileNotFoundError:
        return 0
    for entry in orphans:
        try:
            target = _adoptable(node, uploads, Path(entry.path), policy)
            if target is not None:
                replace_durably(entry.path, target)
                adopted += 1
        except OSError as exc:
            log.warning("could not keep what arrived of an envelope before the node stopped: %s", exc)
    if adopted:
        log.info("kept %d envelope(s) that were arriving when the node stopped, for their senders to resume",
                 adopted)  # fmt: skip
    return adopted


def _adoptable(node: Node, uploads: Uploads, path: Path, policy: OpenPolicy) -> Path | None:
    """Where an orphaned upload should be kept, fsynced first; None when it is not to be (the sweep removes
    it once it is an hour old)."""
    with path.open("rb") as handle:
        prefix = handle.read(max_prefix_length(policy))
        size = os.fstat(handle.fileno()).st_size
        try:
            sender, _ = peek_unverified_sender(prefix)
            header = check_header(node, sender, None, prefix, policy)
        except SatchelError:
            return None
        envelope_id = header.envelope_id
        if not partial_envelopes.may_keep(node, sender, size) or uploads.arriving(envelope_id):
            return None
        if store.get(node.db, envelope_id, local_domain=node.config.node.domain) is not None:
            return None  # it arrived whole after all
        target = partial_envelopes.partial_path(node, envelope_id)
        if target.exists() and target.stat().st_size >= size:
            return None
        os.fsync(handle.fileno())
    return target
