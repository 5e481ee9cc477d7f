"""Verifying and opening an envelope (spec/envelope.md §8.2): verify first, then decrypt chunk by chunk."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import closing
from typing import Any, BinaryIO, Protocol, TypeVar, runtime_checkable

from cryptography.exceptions import InvalidTag
from nacl.bindings import crypto_secretstream_xchacha20poly1305_state

from crypto._codes import Code
from crypto._envelope_kdf import (
    HPKE_SECRET_LENGTH,
    HPKE_SUITE,
    PURPOSE_ENVELOPE,
    code_key,
    hpke_info,
    payload_keys,
)
from crypto._envelope_stream import batch_length, batched, decrypt_batch, new_state, pipelined, read_exact
from crypto._keys import EncryptionKey, EncryptionPublicKey, IdentityPublicKey
from crypto._manifest_sig import verify_manifest
from protocol.envelope_errors import (
    EnvelopeDocumentDigestMismatch,
    EnvelopeManifestMismatch,
    EnvelopeSignatureInvalid,
    EnvelopeTrailingBytes,
    EnvelopeWrongCodeOrKey,
)
from protocol.envelope_format import (
    CHUNK_OVERHEAD,
    DEFAULT_POLICY,
    MANIFEST_SIGNATURE_LENGTH,
    MAX_HEADER_LENGTH,
    EnvelopeHeader,
    OpenedEnvelope,
    OpenPolicy,
    UnverifiedPrefix,
    check_header,
    check_manifest,
    max_prefix_length,
    parse_header_map,
    parse_unverified_prefix,
    parse_unverified_sender,
)
from protocol.errors import SatchelError, SignatureInvalid
from protocol.manifest import Manifest, ManifestRecord

PEEK_LENGTH = 329
_Key = TypeVar("_Key", EncryptionKey, EncryptionPublicKey)


def peek_unverified_sender(data: bytes) -> tuple[str, str]:
    """The (sender domain, sender key id) an envelope CLAIMS, read from its first bytes (329 suffice).

    Unverified: use it only to look up the sender's identity key, then pass that key to
    :func:`verify_envelope_header` or :func:`open_envelope`, which verify the signature before anything else.
    """
    return parse_unverified_sender(bytes(data[:PEEK_LENGTH]))


def peek_unverified_recipient(data: bytes) -> tuple[str, str]:
    """The (recipient domain, recipient key id) an envelope's header names, read from its first bytes
    (``max_prefix_length()`` suffice) without verifying its signature or opening it.

    For a sender reading back an envelope it sealed and kept (to tell whether it is still sealed to its
    receiver's current encryption key); a receiver checks the header with :func:`verify_envelope_header`.
    """
    prefix = parse_unverified_prefix(bytes(data[: max_prefix_length()]), max_header_length=MAX_HEADER_LENGTH)
    header = parse_header_map(prefix)
    return header.recipient_domain, header.recipient_key_id


def _keys(given: Any, kind: type[_Key]) -> list[_Key]:
    keys = [given] if isinstance(given, kind) else list(given)
    if not keys or not all(isinstance(key, kind) for key in keys):
        raise TypeError(f"recipient_key must be an {kind.__name__} or a non-empty sequence of them")
    return keys


def _verified_header(
    prefix: UnverifiedPrefix,
    *,
    sender_key: IdentityPublicKey,
    recipient_domain: str,
    recipient_key_ids: Collection[str],
    now: float,
    policy: OpenPolicy,
) -> EnvelopeHeader:
    if not isinstance(sender_key, IdentityPublicKey):
        raise TypeError("sender_key must be an IdentityPublicKey")
    if sender_key.key_id != prefix.sender_key_id:
        raise EnvelopeSignatureInvalid("the envelope names another sender key", field="sender_key_id")
    try:
        sender_key.verify(PURPOSE_ENVELOPE, prefix.signed_part, prefix.signature)
    except SignatureInvalid:
        raise EnvelopeSignatureInvalid("the sender's signature does not verify", field="signature") from None
    header = parse_header_map(prefix)
    check_header(
        header, recipient_domain=recipient_domain, recipient_key_ids=recipient_key_ids, now=now, policy=policy
    )
    return header


def verify_envelope_header(
    data: bytes,
    *,
    sender_key: IdentityPublicKey,
    recipient_key: EncryptionPublicKey | Sequence[EncryptionPublicKey],
    recipient_domain: str,
    now: float,
    policy: OpenPolicy = DEFAULT_POLICY,
) -> EnvelopeHeader:
    """Verify an envelope's signature and header from its first bytes, without the code.

    ``data`` holds at least the prefix (``protocol.envelope_format.max_prefix_length(policy)`` bytes always
    suffice; more are ignored). Checks everything but the code and the body: framing, signature, that this
    node is the recipient, lengths against ``policy``, Argon2id cost bounds, creation time and expiry.
    A node runs it when an envelope arrives, to refuse bad ones before storing them. ``recipient_key`` may
    be a sequence of this node's keys (during a rotation); the header's ``recipient_key_id`` says which.
    """
    prefix = parse_unverified_prefix(
        bytes(data[: max_prefix_length(policy)]), max_header_length=policy.max_header_length
    )
    return _verified_header(
        prefix,
        sender_key=sender_key,
        recipient_domain=recipient_domain,
        recipient_key_ids=[key.key_id for key in _keys(recipient_key, EncryptionPublicKey)],
        now=now,
        policy=policy,
    )


class _Body:
    """The envelope's body: bytes read past the prefix first, then the source."""

    __slots__ = ("_pending", "_source")

    def __init__(self, pending: bytes, source: BinaryIO) -> None:
        self._pending = pending
        self._source = source

    def read(self, n: int) -> bytes:
        if not self._pending:
            return read_exact(self._source, n)
        head, self._pending = self._pending[:n], self._pending[n:]
        return head + read_exact(self._source, n - len(head)) if len(head) < n else head


@runtime_checkable
class DocumentSink(Protocol):
    """Where :func:`open_envelope` puts each document's bytes, in ``manifest.documents()`` order.

    ``begin`` announces the next document, ``write`` gives its authenticated plaintext piece by piece (the
    buffer is only valid during the call), and ``end`` comes only once the document's SHA-256 matched the
    signed manifest: a sink can name what it keeps by that digest without hashing again. A document that
    fails its check gets no ``end``; the exception propagates and the caller throws away what it received.
    """

    def begin(self, record: ManifestRecord) -> None: ...

    def write(self, data: memoryview) -> None: ...

    def end(self, record: ManifestRecord) -> None: ...


class _OneStream:
    """The documents back to back into one writable file: the sink of callers that want a single stream."""

    __slots__ = ("write",)
    write: Callable[[memoryview], Any]  # the file's own method: no call in between per chunk

    def __init__(self, out: BinaryIO) -> None:
        self.write = out.write

    def begin(self, record: ManifestRecord) -> None:
        pass

    def end(self, record: ManifestRecord) -> None:
        pass


class _Plaintext:
    """Routes decrypted bytes: manifest signature and manifest first, then each document to ``out``."""

    def __init__(
        self, header: EnvelopeHeader, sender_key: IdentityPublicKey, out: DocumentSink, policy: OpenPolicy
    ):
        self._header = header
        self._sender_key = sender_key
        self._out = out
        self._policy = policy
        self._head = bytearray()
        self._head_length = MANIFEST_SIGNATURE_LENGTH + header.manifest_length
        self._manifest: Manifest | None = None
        self._documents: list[ManifestRecord] = []
        self._remaining = 0
        self._hash = hashlib.sha256()
        self._signature = b""
        self._manifest_bytes = b""

    def feed(self, plaintext: bytes | memoryview) -> None:
        view = memoryview(plaintext)
        if self._manifest is None:
            take = self._head_length - len(self._head)
            self._head += view[:take]
            view = view[take:]
            if len(self._head) == self._head_length:
                self._open_manifest()
        while view:
            if not self._remaining:
                raise EnvelopeManifestMismatch(
                    "the payload is longer than its documents", field="payload_length"
                )
            take = min(self._remaining, len(view))
            piece = view[:take]
            self._hash.update(piece)
            self._out.write(piece)
            self._remaining -= take
            view = view[take:]
            self._next_document()

    def _open_manifest(self) -> None:
        signature = bytes(self._head[:MANIFEST_SIGNATURE_LENGTH])
        manifest_bytes = bytes(self._head[MANIFEST_SIGNATURE_LENGTH:])
        if not hmac.compare_digest(hashlib.sha256(manifest_bytes).digest(), self._header.payload_digest):
            raise EnvelopeManifestMismatch(
                "the manifest does not match the header's digest", field="payload_digest"
            )
        manifest = verify_manifest(
            manifest_bytes, signature, self._sender_key, max_length=self._policy.max_manifest_length
        )
        check_manifest(self._header, manifest)
        self._manifest = manifest
        self._signature = signature
        self._manifest_bytes = manifest_bytes
        self._documents = list(reversed(manifest.documents()))
        self._start_document()
        self._next_document()

    def _start_document(self) -> None:
        if self._documents:
            self._remaining = self._documents[-1].length or 0
            self._hash = hashlib.sha256()
            self._out.begin(self._documents[-1])

    def _next_document(self) -> None:
        while self._documents and self._remaining == 0:
            record = self._documents.pop()
            if not hmac.compare_digest(self._hash.digest(), record.sha256 or b""):
                raise EnvelopeDocumentDigestMismatch(
                    f"document {record.record_id} does not match its SHA-256 digest", field="records"
                )
            self._out.end(record)
            self._start_document()

    def finish(self) -> OpenedEnvelope:
        if self._manifest is None or self._documents or self._remaining:
            raise EnvelopeManifestMismatch("the payload ended inside a document", field="payload_length")
        return OpenedEnvelope(
            header=self._header,
            manifest=self._manifest,
            manifest_bytes=self._manifest_bytes,
            manifest_signature=self._signature,
        )


def _confirmed_payload_key(
    prefix: UnverifiedPrefix, header: EnvelopeHeader, code: Code, key: EncryptionKey
) -> bytes:
    """§8.2 steps 13-16: the payload key, once the key check proves the code and the key right."""
    # Argon2id runs before decapsulation so that both failure paths cost the same time.
    secret_code = code_key(code, header.envelope_id_bytes, header.argon2)
    preamble = prefix.signed_part[: prefix.preamble_length]
    try:
        hpke_secret = HPKE_SUITE.decrypt(prefix.encapsulation, key.hpke_key(), info=hpke_info(preamble))
    except (InvalidTag, ValueError):
        hpke_secret = b""
    payload_key, key_check = payload_keys(
        hpke_secret, secret_code, prefix.signed_part[: prefix.encapsulation_end]
    )
    if len(hpke_secret) != HPKE_SECRET_LENGTH or not hmac.compare_digest(key_check, prefix.key_check):
        raise EnvelopeWrongCodeOrKey(
            "the code or the recipient key does not open this envelope", field="code"
        )
    return payload_key


def open_envelope(
    source: BinaryIO,
    out: BinaryIO | DocumentSink,
    *,
    code: Code,
    sender_key: IdentityPublicKey,
    recipient_key: EncryptionKey | Sequence[EncryptionKey],
    recipient_domain: str,
    now: float,
    policy: OpenPolicy = DEFAULT_POLICY,
) -> OpenedEnvelope:
    """Verify and decrypt the envelope read from ``source``; write its documents to ``out``.

    ``out`` is a :class:`DocumentSink` (told where each document starts and that its digest matched), or a
    writable file that gets the documents back to back. Returns only after the final chunk authenticated,
    every digest matched and no byte followed: only then may the caller make what it wrote visible (fsync
    and rename temp files; delete them on any exception). Bytes written before an exception are authentic
    but incomplete.

    ``sender_key`` is the identity key named by :func:`peek_unverified_sender`; ``recipient_key`` is this
    node's encryption key, or a sequence of them during a key rotation. ``code`` comes from
    :func:`parse_code`. A wrong code and a key that cannot decapsulate both raise the one error
    ``envelope.wrong_code_or_key``; every other failure has its own code (spec/envelope.md §7).
    """
    if not isinstance(code, Code):
        raise TypeError("code must be a Code (see parse_code)")
    keys = {key.public_key.key_id: key for key in _keys(recipient_key, EncryptionKey)}
    data = read_exact(source, max_prefix_length(policy))
    prefix = parse_unverified_prefix(data, max_header_length=policy.max_header_length)
    header = _verified_header(
        prefix,
        sender_key=sender_key,
        recipient_domain=recipient_domain,
        recipient_key_ids=keys,
        now=now,
        policy=policy,
    )
    payload_key = _confirmed_payload_key(prefix, header, code, keys[header.recipient_key_id])
    body = _Body(data[prefix.length :], source)
    sink = out if isinstance(out, DocumentSink) else _OneStream(out)
    plaintext = _Plaintext(header, sender_key, sink, policy)
    decrypt = _Decryptor(body, new_state(payload_key, prefix.stream_header))
    per_batch = batch_length(header.chunk_size)
    # A worker thread reads and decrypts the next batch while this one hashes and writes the previous
    # (see crypto._envelope_stream): the two halves take about the same time. Results come back in
    # order, so errors surface in the order they would chunk by chunk, and only authenticated plaintext
    # ever reaches ``out``. ``source`` is read by one thread at a time: the worker until the batches
    # are done (closing() waits for it), then this one.
    with closing(
        pipelined(_batches(header, per_batch), decrypt, threaded=header.chunk_count > per_batch)
    ) as results:
        for opened, error in results:
            if opened:
                plaintext.feed(opened)
            if error is not None:
                raise error
    if body.read(1):
        raise EnvelopeTrailingBytes("bytes follow the final chunk", field="body")
    return plaintext.finish()


def _batches(header: EnvelopeHeader, per_batch: int) -> Iterator[tuple[list[int], list[bool]]]:
    """The chunks' ciphertext lengths, batch by batch, and which chunk is the final one."""
    last = header.chunk_count - 1
    for batch in batched(range(header.chunk_count), per_batch):
        lengths = [
            min(header.chunk_size, header.payload_length - index * header.chunk_size) + CHUNK_OVERHEAD
            for index in batch
        ]
        yield lengths, [index == last for index in batch]


class _Decryptor:
    """Reads and opens batches of chunks in order. After a failure it reads and opens nothing more.

    One read per batch: a source that ends early gives a short batch, and decryption reports the first
    chunk it cuts as truncated, as reading chunk by chunk would.
    """

    def __init__(self, body: _Body, state: crypto_secretstream_xchacha20poly1305_state) -> None:
        self._body = body
        self._state = state
        self._failed = False

    def __call__(self, batch: tuple[list[int], list[bool]]) -> tuple[memoryview, SatchelError | None]:
        """The plaintext of the chunks that authenticated, and the error of the first that did not."""
        if self._failed:
            return memoryview(b""), None
        lengths, finals = batch
        plaintext, error = decrypt_batch(self._state, self._body.read(sum(lengths)), lengths, finals)
        self._failed = error is not None
        return plaintext, error
