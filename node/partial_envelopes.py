"""What arrived of an envelope whose upload was cut off, kept so that its sender sends only the rest.

An envelope upload that breaks off (the link dropped, the sender's node stopped, nothing arrived for
``server.body_idle_seconds``, this node was stopped) after its signed header was verified leaves its bytes,
fsynced, under ``envelopes/in/.partial-{id}``; the sender's next try asks how much is there and sends the rest
(spec/transfer.md §4.1, node.envelope_resume). One file per envelope, so a second upload of the same
envelope never writes under the first: :class:`Uploads` knows which are arriving right now.

Kept only from districts pinned here or listed by a trusted directory (a district known only from its own
web site starts over: it could otherwise leave gigabytes that no bound here counts), only when at least
a MiB arrived, and for ``envelope.partial_keep_hours`` after the last byte came (then swept).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from node.bounded_read import BodyIncomplete, BodyStalled
from node.home import Node
from node.offloop_writer import finish_off_loop
from protocol.envelope_upload import RESUMABLE_LENGTH, UploadInProgress
from storage import peers
from storage.durable_files import replace_durably

log = logging.getLogger("satchel.partial_envelopes")
# How an upload breaks off: the link dropped or the sender stopped, nothing arrived for a while, or this
# node is shutting down (aiohttp cancels a request still running when its grace ends).
INTERRUPTED = (BodyIncomplete, BodyStalled, asyncio.CancelledError)
PARTIAL_PREFIX = ".partial-"  # a dot: backups skip it (it is not a record, and it changes)


def partial_path(node: Node, envelope_id: str) -> Path:
    return node.config.envelopes_dir / "in" / f"{PARTIAL_PREFIX}{envelope_id}"


class Arrival:
    """One whole upload arriving: what it holds of the bound on districts known only from their web site."""

    __slots__ = ("unlisted_bytes",)

    def __init__(self) -> None:
        self.unlisted_bytes = 0


class Uploads:
    """The envelopes arriving right now, by id: whole (POST, any number at once, as a retry may overlap the
    try it repeats) and resumed (PATCH, one at a time and never beside a whole one: both write the same
    partial file). Also the bytes announced by uploads arriving from districts known only from their own web
    site, which count against ``envelope.unlisted_inbox_mib`` as the envelopes stored do: otherwise many
    uploads at once would each find the bound not yet reached."""

    def __init__(self) -> None:
        self._whole: Counter[str] = Counter()
        self._resuming: set[str] = set()
        self.unlisted_bytes = 0

    def arriving(self, envelope_id: str) -> bool:
        return envelope_id in self._resuming or self._whole[envelope_id] > 0

    def resuming(self, envelope_id: str) -> bool:
        return envelope_id in self._resuming

    @contextmanager
    def whole(self, envelope_id: str) -> Iterator[Arrival]:
        arrival = Arrival()
        self._whole[envelope_id] += 1
        try:
            yield arrival
        finally:
            self.unlisted_bytes -= arrival.unlisted_bytes
            self._whole[envelope_id] -= 1
            if not self._whole[envelope_id]:
                del self._whole[envelope_id]

    def count_unlisted(self, arrival: Arrival, length: int) -> None:
        """``arrival`` is from a district known only from its web site: hold ``length`` until it ends."""
        arrival.unlisted_bytes += length
        self.unlisted_bytes += length

    @contextmanager
    def resumed(self, envelope_id: str) -> Iterator[None]:
        if self.arriving(envelope_id):
            raise UploadInProgress(f"envelope {envelope_id} is arriving in another upload now", field="envelope_id")
        self._resuming.add(envelope_id)
        try:
            yield
        finally:
            self._resuming.discard(envelope_id)


UPLOADS = web.AppKey("uploads", Uploads)


def may_keep(node: Node, sender: str, received: int) -> bool:
    """Whether what arrived of an envelope from ``sender`` is worth keeping, and may be kept."""
    if node.config.envelope.partial_keep_hours == 0 or received < RESUMABLE_LENGTH:
        return False
    peer = peers.get(node.db, sender)
    return peer is not None and peer.trust != "web"


def sync(handle: BinaryIO) -> int:
    """Flush and fsync an open file; its size."""
    handle.flush()
    os.fsync(handle.fileno())
    return os.fstat(handle.fileno()).st_size


async def keep(
    node: Node, uploads: Uploads, *, envelope_id: str, sender: str, temp: Path, handle: BinaryIO
) -> None:
    """After a whole upload broke off: make what arrived in ``temp`` the envelope's partial file, unless a
    resumed upload is writing that file now or it already holds more. Never raises: the upload's own
    error is what the sender hears."""
    try:
        received = await finish_off_loop(sync, handle)
        if uploads.resuming(envelope_id) or not may_keep(node, sender, received):
            return
        target = partial_path(node, envelope_id)
        try:
            held = target.stat().st_size
        except FileNotFoundError:
            held = 0
        if held >= received:
            return
        replace_durably(temp, target)
        log.info(
            "kept %d bytes of envelope %s from %s for its sender to resume", received, envelope_id, sender
        )
    except OSError as exc:
        log.warning("could not keep what arrived of envelope %s: %s", envelope_id, exc)


def discard(node: Node, uploads: Uploads, envelope_id: str) -> None:
    """The envelope arrived whole, or what was kept of it is of no use: remove its partial file (unless a
    resumed upload is writing it, which finds the transfer stored and removes it itself)."""
    if not uploads.resuming(envelope_id):
        partial_path(node, envelope_id).unlink(missing_ok=True)


def kept(node: Node) -> list[os.DirEntry[str]]:
    """The partial envelopes kept now (their names carry the envelope ids)."""
    try:
        return [e for e in os.scandir(node.config.envelopes_dir / "in") if e.name.startswith(PARTIAL_PREFIX)]
    except FileNotFoundError:
        return []


def sweep(node: Node, uploads: Uploads, *, now: float | None = None) -> int:
    """Remove partial envelopes untouched for ``envelope.partial_keep_hours`` (none arriving now); returns how
    many went."""
    now = time.time() if now is None else now
    keep_seconds = node.config.envelope.partial_keep_hours * 3600
    removed = 0
    for entry in kept(node):
        if uploads.arriving(entry.name.removeprefix(PARTIAL_PREFIX)):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < keep_seconds:
                continue
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            continue
    if removed:
        log.info("removed %d partial envelope(s) nobody resumed within %d hours", removed,
                 node.config.envelope.partial_keep_hours)  # fmt: skip
    return removed
