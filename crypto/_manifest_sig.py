"""Manifest signatures: provenance that outlives the envelope (spec/envelope.md §5.3)."""

from __future__ import annotations

from crypto._envelope_kdf import PURPOSE_MANIFEST
from crypto._keys import IdentityKey, IdentityPublicKey
from protocol.envelope_errors import ManifestSignatureInvalid
from protocol.errors import SignatureInvalid
from protocol.manifest import DEFAULT_MAX_MANIFEST_LENGTH, Manifest, parse_checked_manifest, parse_manifest


def sign_manifest(manifest_bytes: bytes, sender_key: IdentityKey) -> bytes:
    return sender_key.sign(PURPOSE_MANIFEST, manifest_bytes)


def verify_manifest(
    manifest_bytes: bytes,
    signature: bytes,
    sender_key: IdentityPublicKey,
    *,
    max_length: int = DEFAULT_MAX_MANIFEST_LENGTH,
    checked: bool = False,
) -> Manifest:
    """Verify a stored manifest's signature, then parse it; return the verified :class:`Manifest`.

    Use it to prove an imported record's provenance long after the envelope is gone: which district
    (``sender_domain``, key ``sender_key_id``) sent which records and documents (with their SHA-256) when.
    Raises ``manifest.signature_invalid`` before parsing anything, or ``manifest.malformed`` /
    ``msgpack.*`` for a signed but invalid manifest.

    ``checked=True`` says these exact bytes passed :func:`protocol.manifest.parse_manifest` before (the
    caller knows their SHA-256): the signature is still verified, only the parse skips its checks.
    """
    if not isinstance(sender_key, IdentityPublicKey):
        raise TypeError("sender_key must be an IdentityPublicKey")
    try:
        sender_key.verify(PURPOSE_MANIFEST, bytes(manifest_bytes), bytes(signature))
    except SignatureInvalid:
        raise ManifestSignatureInvalid(
            "the manifest's signature does not verify", field="signature"
        ) from None
    parse = parse_checked_manifest if checked else parse_manifest
    manifest = parse(bytes(manifest_bytes), max_length=max_length)
    if manifest.sender_key_id != sender_key.key_id:
        raise ManifestSignatureInvalid("the manifest names another signing key", field="sender_key_id")
    return manifest
