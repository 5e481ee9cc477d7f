"""Sealing an envelope (spec/envelope.md §8.1): one pass, memory bounded by the chunk size."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

from crypto._codes import Code
from crypto._envelope_kdf import (
    HPKE_SECRET_LENGTH,
    HPKE_SUITE,
    PURPOSE_ENVELOPE,
    code_key,
    hpke_info,
    payload_keys,
)
from crypto._envelope_stream import encrypt_stream
from crypto._keys import EncryptionPublicKey, IdentityKey
from crypto._manifest_sig import sign_manifest
from protocol.envelope_errors import EnvelopeTooLarge
from protocol.envelope_format import (
    DEFAULT_ARGON2,
    MANIFEST_SIGNATURE_LENGTH,
    STREAM_HEADER_LENGTH,
    SUITE_MLKEM768_X25519,
    VERSION,
    Argon2Params,
    EnvelopeHeader,
    encode_encapsulation,
    encode_preamble,
    ulid_bytes,
    ulid_text,
)
from protocol.errors import InvalidInput
from protocol.manifest import DEFAULT_MAX_MANIFEST_LENGTH, Manifest, encode_manifest

DEFAULT_CHUNK_SIZE = 1 << 16
_ULID_RANDOM_LENGTH = 10


def seal_envelope(
    payload: BinaryIO,
    out: BinaryIO,
    *,
    manifest: Manifest,
    sender_key: IdentityKey,
    recipient_key: EncryptionPublicKey,
    code: Code,
    now: float,
    expires: float,
    kind: str = "transfer",
    argon2: Argon2Params = DEFAULT_ARGON2,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    envelope_id: str | None = None,
    manifest_bytes: bytes | None = None,
) -> EnvelopeHeader:
    """Seal ``manifest`` and the documents read from ``payload`` into an envelope written to ``out``.

    ``payload`` yields the documents' bytes back to back, in ``manifest.documents()`` order, exactly
    ``manifest.documents_length`` bytes; their lengths and SHA-256 digests in the manifest are trusted
    (documents are hashed when stored, so sealing does not hash them again). ``recipient_key`` is the
    recipient node's published encryption key; ``code`` is shown to the sending coordinator with
    ``code.reveal()``. ``now`` and ``expires`` are Unix times in seconds.

    ``envelope_id`` seals again an envelope that was sealed before (its sender's key revoked before it was
    delivered, spec/envelope.md §8.1): the id it had, whose salt makes the code's key, so that the ``code``
    given out for it opens the new one. Everything else random is drawn afresh (a new HPKE secret, so a new
    payload key: no stream nonce is used twice under one key). None: a new id.

    ``manifest_bytes``: ``encode_manifest(manifest)`` when the caller made it already (a sender keeps it, to seal
    again from; a grade's takes a second to encode), trusted as the documents' digests are. None: encoded here.

    Returns the signed header. On any error ``out`` holds a partial envelope that MUST be discarded
    (``envelope.payload_length_mismatch`` when ``payload`` is shorter or longer than announced).
    """
    randomness = os.urandom(_ULID_RANDOM_LENGTH + HPKE_SECRET_LENGTH + STREAM_HEADER_LENGTH)
    millis = int(now * 1000)
    if not 0 <= millis < 1 << 48:
        raise InvalidInput("now must be a Unix time in seconds", field="now")
    given_id = None if envelope_id is None else ulid_bytes(envelope_id)
    if manifest_bytes is not None and len(manifest_bytes) > DEFAULT_MAX_MANIFEST_LENGTH:
        raise EnvelopeTooLarge(
            f"the manifest is {len(manifest_bytes):,} bytes, over the {DEFAULT_MAX_MANIFEST_LENGTH:,} a receiver"
            " accepts", field="manifest",
        )  # fmt: skip
    return _seal_from_parts(
        payload,
        out,
        manifest=manifest,
        sender_key=sender_key,
        recipient_key=recipient_key,
        code=code,
        now=now,
        expires=expires,
        kind=kind,
        argon2=argon2,
        chunk_size=chunk_size,
        envelope_id=given_id or millis.to_bytes(6, "big") + randomness[:_ULID_RANDOM_LENGTH],
        hpke_secret=randomness[_ULID_RANDOM_LENGTH : _ULID_RANDOM_LENGTH + HPKE_SECRET_LENGTH],
        stream_header=randomness[_ULID_RANDOM_LENGTH + HPKE_SECRET_LENGTH :],
        manifest_bytes=manifest_bytes,
    )


def _seal_from_parts(
    payload: BinaryIO,
    out: BinaryIO,
    *,
    manifest: Manifest,
    sender_key: IdentityKey,
    recipient_key: EncryptionPublicKey,
    code: Code,
    now: float,
    expires: float,
    kind: str,
    argon2: Argon2Params,
    chunk_size: int,
    envelope_id: bytes,
    hpke_secret: bytes,
    stream_header: bytes,
    encapsulation: bytes | None = None,
    manifest_bytes: bytes | None = None,
    header_map: bytes | None = None,
) -> EnvelopeHeader:
    """Seal with every random value given. For the vector generator and tests only.

    ``encapsulation`` is HPKE's output (enc || ct) for ``hpke_secret``; cryptography's HPKE draws its
    ephemeral randomness internally, so vectors store that output as a part. When None, it is computed.
    ``manifest_bytes`` and ``header_map`` replace the canonical encodings, so vectors can carry envelopes
    that are validly signed yet wrong inside (the opener must still refuse them).
    """
    if not isinstance(sender_key, IdentityKey) or not isinstance(recipient_key, EncryptionPublicKey):
        raise InvalidInput(
            "sender_key is an IdentityKey and recipient_key an EncryptionPublicKey", field="key"
        )
    if not isinstance(code, Code) or not isinstance(manifest, Manifest):
        raise InvalidInput("code is a Code and manifest a Manifest", field="code")
    sender_public = sender_key.public_key
    if manifest.sender_key_id != sender_public.key_id:
        raise InvalidInput("the manifest names another signing key", field="manifest.sender_key_id")
    if not int(now) < int(expires):
        raise InvalidInput("expires must be later than now", field="expires")
    if manifest_bytes is None:
        manifest_bytes = encode_manifest(manifest)
        if len(manifest_bytes) > DEFAULT_MAX_MANIFEST_LENGTH:  # every receiver would refuse it unopened
            raise EnvelopeTooLarge(
                f"the manifest is {len(manifest_bytes):,} bytes, over the {DEFAULT_MAX_MANIFEST_LENGTH:,} a"
                " receiver accepts", field="manifest",
            )  # fmt: skip
    header = EnvelopeHeader(
        version=VERSION,
        suite=SUITE_MLKEM768_X25519,
        envelope_id=ulid_text(envelope_id),
        kind=kind,
        sender_domain=manifest.sender_domain,
        sender_key_id=sender_public.key_id,
        recipient_domain=manifest.recipient_domain,
        recipient_key_id=recipient_key.key_id,
        created=int(now),
        expires=int(expires),
        payload_length=MANIFEST_SIGNATURE_LENGTH + len(manifest_bytes) + manifest.documents_length,
        manifest_length=len(manifest_bytes),
        payload_digest=hashlib.sha256(manifest_bytes).digest(),
        chunk_size=chunk_size,
        argon2=argon2,
    )
    preamble = encode_preamble(header, header_map)
    if encapsulation is None:
        encapsulation = HPKE_SUITE.encrypt(hpke_secret, recipient_key.hpke_key(), info=hpke_info(preamble))
    secret_code = code_key(code, envelope_id, argon2)
    transcript = preamble + encode_encapsulation(encapsulation)
    payload_key, key_check = payload_keys(hpke_secret, secret_code, transcript)
    signed = transcript + stream_header + key_check
    out.write(signed)
    out.write(sender_key.sign(PURPOSE_ENVELOPE, signed))
    encrypt_stream(
        payload_key,
        stream_header,
        head=sign_manifest(manifest_bytes, sender_key) + manifest_bytes,
        payload=payload,
        documents_length=manifest.documents_length,
        chunk_size=chunk_size,
        write=out.write,
    )
    return header
