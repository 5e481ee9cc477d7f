"""Satchel's cryptography: a small public API over PyNaCl and ``cryptography``. No I/O.

Keys: :class:`IdentityKey` (Ed25519, signs) and :class:`EncryptionKey` (ML-KEM-768 + X25519, receives).
Envelopes (spec/envelope.md): :func:`seal_envelope` (its sender reads back whom to with
:func:`peek_unverified_recipient`); on receipt :func:`peek_unverified_sender` then
:func:`verify_envelope_header`; with the code :func:`open_envelope` (into a :class:`DocumentSink`); later
:func:`verify_manifest` for provenance. Codes (spec/codes.md): :func:`generate_code`, :func:`parse_code`,
:class:`Code`; transfer-code claims: :func:`transfer_code_credentials`, :func:`transfer_code_proof`,
:func:`check_transfer_code_proof`. Signed-HTTP sessions (spec/request-signing.md §11): :class:`SessionShare`
makes :class:`SessionKeys`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562): every `satchel` command opens the node and needs the key classes, but
# only some seal or open envelopes; the envelope modules cost tens of milliseconds of start-up.
_WHERE = {
    "check_transfer_code_proof": "_claims", "transfer_code_credentials": "_claims", "transfer_code_proof": "_claims",
    "Code": "_codes", "generate_code": "_codes", "parse_code": "_codes",
    "DocumentSink": "_envelope_open", "open_envelope": "_envelope_open",
    "peek_unverified_recipient": "_envelope_open", "peek_unverified_sender": "_envelope_open",
    "verify_envelope_header": "_envelope_open",
    "seal_envelope": "_envelope_seal",
    "EncryptionKey": "_keys", "EncryptionPublicKey": "_keys", "IdentityKey": "_keys",
    "IdentityPublicKey": "_keys", "fingerprint": "_keys",
    "verify_manifest": "_manifest_sig",
    "SessionKey": "_sessions", "SessionKeys": "_sessions", "SessionShare": "_sessions",
}  # fmt: skip

if TYPE_CHECKING:
    from crypto._claims import check_transfer_code_proof, transfer_code_credentials, transfer_code_proof
    from crypto._codes import Code, generate_code, parse_code
    from crypto._envelope_open import (
        DocumentSink,
        open_envelope,
        peek_unverified_recipient,
        peek_unverified_sender,
        verify_envelope_header,
    )
    from crypto._envelope_seal import seal_envelope
    from crypto._keys import EncryptionKey, EncryptionPublicKey, IdentityKey, IdentityPublicKey, fingerprint
    from crypto._manifest_sig import verify_manifest
    from crypto._sessions import SessionKey, SessionKeys, SessionShare


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'crypto' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"crypto.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Code",
    "DocumentSink",
    "EncryptionKey",
    "EncryptionPublicKey",
    "IdentityKey",
    "IdentityPublicKey",
    "SessionKey",
    "SessionKeys",
    "SessionShare",
    "check_transfer_code_proof",
    "fingerprint",
    "generate_code",
    "open_envelope",
    "parse_code",
    "peek_unverified_recipient",
    "peek_unverified_sender",
    "seal_envelope",
    "transfer_code_credentials",
    "transfer_code_proof",
    "verify_envelope_header",
    "verify_manifest",
]
