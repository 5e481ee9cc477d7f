"""Sealing and opening a 256 MiB stream keeps traced Python memory under 32 MiB (issue acceptance)."""

from __future__ import annotations

import hashlib
import io
import time
import tracemalloc
from pathlib import Path

import pytest
from envelope_fixtures import (
    CODE,
    EXPIRES,
    FAST,
    NOW,
    POLICY,
    RECIPIENT,
    RECIPIENT_DOMAIN,
    SENDER,
    make_manifest,
)

from crypto import open_envelope, seal_envelope
from protocol import ManifestRecord

SIZE = 256 << 20
LIMIT = 32 << 20


class Generated(io.RawIOBase):
    """``size`` deterministic bytes produced on the fly: nothing the size of the stream is ever held."""

    def __init__(self, size: int) -> None:
        block = hashlib.shake_256(b"satchel memory test").digest(1 << 18)
        self._double = memoryview(block + block)
        self._block = len(block)
        self._left = size
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(self._left if n < 0 else n, self._left, self._block)
        piece = bytes(self._double[self._offset : self._offset + n])
        self._offset = (self._offset + n) % self._block
        self._left -= n
        return piece


class HashingSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.length = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.length += len(data)
        return len(data)


@pytest.mark.slow
def test_256_mib_stream_seals_and_opens_in_bounded_memory(tmp_path: Path) -> None:
    digest = hashlib.sha256()
    source = Generated(SIZE)
    while piece := source.read(1 << 18):
        digest.update(piece)
    big = ManifestRecord(
        kind="document", record_id="big", student_sis_id="S1", length=SIZE, sha256=digest.digest(),
        media_type="application/octet-stream", title="generated",
    )  # fmt: skip
    manifest = make_manifest([], extra_records=[big])
    path = tmp_path / "envelope.bin"
    started = time.monotonic()
    tracemalloc.start()
    try:
        with path.open("wb") as out:
            seal_envelope(
                Generated(SIZE), out, manifest=manifest, sender_key=SENDER, recipient_key=RECIPIENT.public_key,
                code=CODE, now=NOW, expires=EXPIRES, argon2=FAST,
            )  # fmt: skip
        sink = HashingSink()
        with path.open("rb") as source_file:
            opened = open_envelope(
                source_file, sink, code=CODE, sender_key=SENDER.public_key, recipient_key=RECIPIENT,
                recipient_domain=RECIPIENT_DOMAIN, now=NOW + 1, policy=POLICY,
            )  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.length == SIZE and sink.hash.digest() == digest.digest()
    assert opened.header.envelope_length == path.stat().st_size
    print(f"peak traced memory {peak / 2**20:.2f} MiB")
    assert peak < LIMIT, f"peak traced memory {peak / 2**20:.1f} MiB"
    assert time.monotonic() - started < 60
