"""The payload stream (spec/envelope.md §6): libsodium secretstream XChaCha20-Poly1305 in fixed-size chunks.

Chunk boundaries follow from two signed header fields (``payload_length`` and ``chunk_size``): every chunk
holds ``chunk_size`` plaintext bytes except the last, which holds the rest and is the only one tagged
FINAL. Secretstream's internal counter makes reordering, duplication and dropping chunks fail
authentication; the FINAL tag and the signed length make truncation and extension visible.

Both directions start from ``init_pull(header, key)``: libsodium's ``init_push`` only draws the 24-byte
header at random and then runs exactly the same derivation, so a sealer that draws the header itself (and
vectors that fix it) produce standard secretstream output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

import nacl.exceptions
from nacl.bindings import (
    crypto_secretstream_xchacha20poly1305_init_pull,
    crypto_secretstream_xchacha20poly1305_pull,
    crypto_secretstream_xchacha20poly1305_push,
    crypto_secretstream_xchacha20poly1305_state,
    crypto_secretstream_xchacha20poly1305_TAG_FINAL,
    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
)

from protocol.envelope_errors import EnvelopeCorrupt, EnvelopePayloadLengthMismatch, EnvelopeTruncated

TAG_MESSAGE = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = crypto_secretstream_xchacha20poly1305_TAG_FINAL


def new_state(key: bytes, stream_header: bytes) -> crypto_secretstream_xchacha20poly1305_state:
    state = crypto_secretstream_xchacha20poly1305_state()
    crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, key)
    return state


def read_exact(source: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at end of stream (raw streams may return short reads)."""
    data = source.read(n)
    if data is None:
        data = b""
    if len(data) == n or not data:
        return bytes(data)
    parts = [data]
    have = len(data)
    while have < n:
        more = source.read(n - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


def _plaintext_chunks(
    head: bytes, payload: BinaryIO, documents_length: int, chunk_size: int
) -> Iterator[bytes]:
    total = len(head) + documents_length
    offset = 0
    while offset < len(head):
        piece = head[offset : offset + chunk_size]
        wanted = min(chunk_size, total - offset) - len(piece)
        if wanted > 0:
            more = read_exact(payload, wanted)
            if len(more) != wanted:
                raise EnvelopePayloadLengthMismatch("the payload ended early", field="payload")
            piece += more
        offset += len(piece)
        yield piece
    while offset < total:
        wanted = min(chunk_size, total - offset)
        piece = read_exact(payload, wanted)
        if len(piece) != wanted:
            raise EnvelopePayloadLengthMismatch("the payload ended early", field="payload")
        offset += wanted
        yield piece
    if read_exact(payload, 1):
        raise EnvelopePayloadLengthMismatch("the payload is longer than its documents", field="payload")


def encrypt_stream(
    key: bytes,
    stream_header: bytes,
    *,
    head: bytes,
    payload: BinaryIO,
    documents_length: int,
    chunk_size: int,
    write: Callable[[bytes], object],
) -> None:
    """Encrypt ``head`` (manifest block) then ``documents_length`` bytes of ``payload`` chunk by chunk."""
    state = new_state(key, stream_header)
    total = len(head) + documents_length
    last = -(-total // chunk_size) - 1
    for index, plaintext in enumerate(_plaintext_chunks(head, payload, documents_length, chunk_size)):
        tag = TAG_FINAL if index == last else TAG_MESSAGE
        write(crypto_secretstream_xchacha20poly1305_push(state, plaintext, None, tag))


def decrypt_chunk(
    state: crypto_secretstream_xchacha20poly1305_state,
    ciphertext: bytes,
    *,
    expected_length: int,
    final: bool,
) -> bytes:
    """Open one chunk of known ciphertext length; raise unless it authenticates with the expected tag."""
    if len(ciphertext) != expected_length:
        raise EnvelopeTruncated("the envelope ends before its last chunk", field="body")
    try:
        plaintext, tag = crypto_secretstream_xchacha20poly1305_pull(state, ciphertext, None)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError) as exc:
        raise EnvelopeCorrupt("a chunk of the envelope does not authenticate", field="body") from exc
    if tag != (TAG_FINAL if final else TAG_MESSAGE):
        raise EnvelopeCorrupt("a chunk of the envelope carries the wrong tag", field="body")
    return plaintext
