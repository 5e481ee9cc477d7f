"""Signed JSON documents (descriptors, directory entries): a detached Ed25519 signature over exact bytes.

Wire form (spec/descriptor.md)::

    {"purpose": "satchel/v1/descriptor", "key_id": "...", "public_key": "<b64url>",
     "payload": "<b64url of the exact signed bytes>", "signature": "<b64url>"}

The signature covers ``purpose || 0x00 || payload``. The payload is parsed only after it verifies.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from crypto import IdentityKey, IdentityPublicKey
from protocol.errors import MalformedMessage
from protocol.json_strict import MAX_JSON_BYTES, dumps_canonical, loads_object, member_name, take


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_MEMBERS = frozenset({"purpose", "key_id", "public_key", "payload", "signature"})
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


def unb64url(text: str, *, field: str) -> bytes:
    """Decode unpadded base64url (RFC 4648 §5) in its one canonical form, as spec/README.md requires: Python's
    decoder alone drops characters outside the alphabet, takes '+' and '/' too and ignores the unused bits of
    the last character, so many texts would decode to the same bytes."""
    if not isinstance(text, str) or not _BASE64URL.match(text):
        raise MalformedMessage(f"{field} must be unpadded base64url (A-Z a-z 0-9 - _)", field=field)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"{field} is not base64url", field=field) from exc
    if b64url(raw) != text:
        raise MalformedMessage(f"{field} is not canonical base64url (its last character's unused bits are set)",
                               field=field)  # fmt: skip
    return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedDocument:
    purpose: str
    signer: IdentityPublicKey
    payload: bytes


def sign_document(purpose: str, payload: bytes, key: IdentityKey) -> bytes:
    public = key.public_key
    return dumps_canonical(
        {
            "purpose": purpose,
            "key_id": public.key_id,
            "public_key": b64url(public.raw),
            "payload": b64url(payload),
            "signature": b64url(key.sign(purpose.encode("ascii"), payload)),
        }
    )


def verify_document(data: bytes, *, purpose: str, max_bytes: int = MAX_JSON_BYTES) -> VerifiedDocument:
    """Check the signature with the key the document names; the caller must still decide to trust that key.

    ``max_bytes`` bounds the whole document; each kind's own limit is in its spec.
    """
    what = "signed document"
    outer = loads_object(data, what=what, max_bytes=max_bytes)
    extra = sorted(set(outer) - _MEMBERS)
    if extra:  # spec/descriptor.md: exactly these members; anything else would ride along unsigned
        raise MalformedMessage(f"a signed document has no member {extra[0][:40]!r}", field=member_name(extra[0]))
    got_purpose = take(outer, "purpose", str, what=what)
    if got_purpose != purpose:
        raise MalformedMessage(f"expected a {purpose} document, got {got_purpose[:80]!r}", field="purpose")
    key = IdentityPublicKey(unb64url(take(outer, "public_key", str, what=what), field="public_key"))
    if take(outer, "key_id", str, what=what) != key.key_id:
        raise MalformedMessage("key_id does not name public_key", field="key_id")
    payload = unb64url(take(outer, "payload", str, what=what), field="payload")
    signature = unb64url(take(outer, "signature", str, what=what), field="signature")
    key.verify(purpose.encode("ascii"), payload, signature)
    return VerifiedDocument(purpose=purpose, signer=key, payload=payload)


def sign_again(data: bytes, *, purpose: str, key: IdentityKey) -> bytes:
    """The payload of ``data`` (which must verify) signed by ``key`` instead: the same statement, byte for byte,
    under another of its signer's keys, for a node whose key that signed one of its own documents is revoked."""
    return sign_document(purpose, verify_document(data, purpose=purpose).payload, key)
