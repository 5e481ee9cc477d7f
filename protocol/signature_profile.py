"""The Satchel profile's rules on signature parameters, and what a checked signature is (spec §3, §7).

Shared by the general RFC 9421 code (``protocol.http_signatures``) and its fast path
(``protocol.signature_fast``): the key ids and algorithms, nonces, times, and the results of checking.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from protocol.errors import InvalidInput, SignatureInvalid
from protocol.signature_base import Component
from protocol.signature_errors import (
    SignatureAlgorithmUnsupported,
    SignatureExpired,
    SignatureKeyUnknown,
    SignatureLifetimeTooLong,
    SignatureMalformed,
    SignatureNotYetValid,
    SignatureWrongDestination,
)

# RFC 9421 §4.1 / §4.2: the two fields carrying signatures (names compared case-insensitively).
SIGNATURE_INPUT = "signature-input"
SIGNATURE = "signature"
ALGORITHM = "ed25519"  # RFC 9421 §3.3.6
SESSION_ALGORITHM = "hmac-sha256"  # RFC 9421 §3.3.3, keyed per session (spec/request-signing.md §11)
DEFAULT_LABEL = "sig1"
DEFAULT_MAX_SKEW = 60
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,128}")  # >= 128 bits of base64url, no padding
KEY_ID_PATTERN = re.compile(r"ed25519-[0-9a-hjkmnp-tv-z]{16}")  # crypto._keys._key_id
SESSION_KEY_ID_PATTERN = re.compile(r"hs-[A-Za-z0-9_-]{22}")  # 16 random bytes, base64url
# MAX_LIFETIME (300 s, the longest created-to-expires span) lives in protocol.signature_errors.


class VerifyKeyLike(Protocol):
    """What ``resolve_key`` returns: ``crypto.IdentityPublicKey`` fits."""

    def verify_raw(self, message: bytes, signature: bytes) -> bytes: ...


# Not frozen: two of these are built for every signed request a node answers, and a frozen dataclass sets each
# of its eleven fields through object.__setattr__ (3 us against 1 us; goal 5 of issue 8). Nothing changes them.
@dataclass(slots=True, kw_only=True)
class _SignatureFields:
    label: str
    key_id: str
    created: int
    expires: int
    nonce: str
    components: tuple[Component, ...]
    signature: bytes
    # The covered Content-Digest value; None means the message may carry no body at all.
    content_digest: str | None
    # Keep (key_id, nonce) in the replay store at least until this instant; later the signature is expired.
    replay_until: int


@dataclass(slots=True, kw_only=True)
class VerifiedSignature(_SignatureFields):
    """A signature that verified under the Satchel profile. Replay and body digest are still to check."""


@dataclass(slots=True, kw_only=True)
class UnverifiedSignature(_SignatureFields):
    """A signature that passed every check needing no key; the signature itself is NOT verified yet."""

    signature_base: bytes
    misaddressed: bool
    # The message's combined Signature field, which holds this signature: a request's answer is signed over it.
    signature_field: str | None

    def verify(self, key: VerifyKeyLike | None) -> VerifiedSignature:
        """Finish verification with the key for ``key_id`` (None means the key is unknown)."""
        if key is None:
            raise SignatureKeyUnknown(f"unknown key {self.key_id}", field="Signature-Input")
        try:
            key.verify_raw(self.signature_base, self.signature)
        except SignatureInvalid as exc:
            raise SignatureInvalid(
                "the signature does not verify",
                field="Signature",
                hint="a covered component changed in transit, or the message was signed with another key",
            ) from exc
        # Reported only for authentic requests, so a 421 always means a real peer is misconfigured.
        if self.misaddressed:
            raise SignatureWrongDestination(
                "the request is addressed to another node", field="Signature-Input"
            )
        return VerifiedSignature(
            label=self.label, key_id=self.key_id, created=self.created, expires=self.expires, nonce=self.nonce,
            components=self.components, signature=self.signature, content_digest=self.content_digest,
            replay_until=self.replay_until,
        )  # fmt: skip


def algorithm_for(key_id: str) -> str:
    """The one algorithm a key id may sign with: node keys are Ed25519, session keys HMAC-SHA256."""
    return SESSION_ALGORITHM if key_id.startswith("hs-") else ALGORITHM


def profile_values(created: int, expires: int, nonce: str, keyid: str) -> tuple[int, int, str, str]:
    if not NONCE_PATTERN.fullmatch(nonce):
        raise SignatureMalformed("nonce is not 22 to 128 base64url characters", field="Signature-Input")
    if not _is_key_id(keyid):
        raise SignatureMalformed("keyid is not a Satchel node or session key id", field="Signature-Input")
    if expires <= created:
        raise SignatureMalformed("expires is not after created", field="Signature-Input")
    return created, expires, nonce, keyid


@lru_cache(maxsize=1024)  # every request of a session, and every answer a node signs, names the same few keys
def _is_key_id(keyid: str) -> bool:
    return bool(KEY_ID_PATTERN.fullmatch(keyid) or SESSION_KEY_ID_PATTERN.fullmatch(keyid))


def check_algorithm(keyid: str, alg: str | None) -> None:
    # The key id, not the message, decides the algorithm (RFC 9421 §3.2 step 6): no key confusion.
    allowed = (SESSION_ALGORITHM,) if algorithm_for(keyid) == SESSION_ALGORITHM else (None, ALGORITHM)
    if alg not in allowed:
        raise SignatureAlgorithmUnsupported(
            f"the signature algorithm is not {algorithm_for(keyid)}, the one key {keyid} signs with",
            field="Signature-Input",
        )


def check_times(created: int, expires: int, *, now: int, max_skew: int, max_lifetime: int) -> None:
    if expires - created > max_lifetime:
        raise SignatureLifetimeTooLong(
            f"the signature is valid for {expires - created} s, more than {max_lifetime} s",
            field="Signature-Input",
        )
    if created > now + max_skew:
        raise SignatureNotYetValid(
            f"created is {created - now} s in the future, more than the {max_skew} s allowed",
            field="Signature-Input",
        )
    if expires < now - max_skew:
        raise SignatureExpired(f"the signature expired {now - expires} s ago", field="Signature-Input")


def encode_nonce(random_bytes: bytes) -> str:
    """A nonce from 16 to 96 bytes of the caller's randomness: base64url without padding."""
    if not 16 <= len(random_bytes) <= 96:
        raise InvalidInput("a nonce is made from 16 to 96 random bytes", field="nonce")
    return base64.urlsafe_b64encode(random_bytes).rstrip(b"=").decode("ascii")
