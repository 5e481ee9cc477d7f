"""The floor of goal 2a: the per-byte work of a transfer, and nothing else, in one process.

What no transfer between two Satchel nodes can skip, on the same bytes as the baseline (the grade's documents
back to back, one document): sealing them into an envelope (``crypto.seal_envelope``, Argon2id at its
production cost as the nodes run it), one copy of the envelope (what arrives at the receiver: here a file copy,
where the nodes send it over HTTP), and opening it (``crypto.open_envelope``, every document's SHA-256
checked) into one file. With ``synced``, each of the three files is synced to disk before the next step, as the
nodes sync each copy before they act on it or answer for it ("nothing lost"); without, the same work left in
the page cache.

No process starts, no HTTP, no database, no import, no blob store of a thousand files: whatever the nodes do
beyond this floor is orchestration. The floor's ratio to ``age -e`` then ``age -d`` is the most any transfer
that seals, carries and opens an envelope this way can reach on this machine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import BinaryIO

from crypto import EncryptionKey, IdentityKey, generate_code, open_envelope, seal_envelope
from protocol.envelope_format import DEFAULT_ARGON2, DEFAULT_POLICY
from tests.bench.common import drop_file
from tests.bench.goal_envelope import Parties, one_document_manifest
from tests.bench.workloads import Doc


def document(path: Path) -> Doc:
    """``path`` as one document, hashed as the blob store hashes documents when they are stored (untimed)."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return Doc(path, path.stat().st_size, digest.digest())


class Floor:
    """One sender, one recipient and one code for every run (key generation is not per byte)."""

    def __init__(self, folder: Path, doc: Doc) -> None:
        self.folder, self.doc = folder, doc
        self.parties = Parties(IdentityKey.generate(), EncryptionKey.generate())
        self.code = generate_code()

    def seconds(self, *, synced: bool) -> float:
        sealed, carried, opened = (self.folder / name for name in ("floor.env", "floor-copy.env", "floor.out"))
        for path in (sealed, carried, opened):
            drop_file(path)
        parties, now = self.parties, int(time.time())
        try:
            started = time.perf_counter()
            with self.doc.path.open("rb") as source, sealed.open("wb") as sink:
                seal_envelope(
                    source, sink, manifest=one_document_manifest(parties, self.doc, now), sender_key=parties.sender,
                    recipient_key=parties.recipient.public_key, code=self.code, now=now, expires=now + 86400,
                    argon2=DEFAULT_ARGON2,
                )  # fmt: skip
                _done(sink, synced)
            with sealed.open("rb") as source, carried.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
                _done(sink, synced)
            with carried.open("rb") as source, opened.open("wb") as sink:
                open_envelope(
                    source, sink, code=self.code, sender_key=parties.sender.public_key,
                    recipient_key=parties.recipient, recipient_domain="b.example.org", now=time.time(),
                    policy=DEFAULT_POLICY,
                )  # fmt: skip
                _done(sink, synced)
            return time.perf_counter() - started
        finally:
            for path in (sealed, carried, opened):
                path.unlink(missing_ok=True)


def _done(sink: BinaryIO, synced: bool) -> None:
    sink.flush()
    if synced:
        os.fsync(sink.fileno())
