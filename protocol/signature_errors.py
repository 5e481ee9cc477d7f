"""The coded errors of the RFC 9421 request-signing profile (``spec/request-signing.md``)."""

from __future__ import annotations

from protocol.errors import MalformedMessage, SatchelError

# Seconds between created and expires; bounds how long a replay store keeps nonces. Defined here because
# SignatureLifetimeTooLong quotes it; protocol.http_signatures re-exports it as a profile constant.

MAX_LIFETIME = 300


class SignatureMissing(SatchelError):
    code = "signature.missing"
    default_hint = (
        "sign every request between nodes with RFC 9421 (Signature-Input and Signature, label sig1)"
    )


class SignatureMalformed(MalformedMessage):
    code = "signature.malformed"
    default_hint = "see spec/request-signing.md for the Signature-Input the Satchel profile accepts"


class SignatureComponentsMissing(SatchelError):
    code = "signature.components_missing"
    default_hint = (
        "cover @method, @target-uri, satchel-origin, and content-digest and content-type when sent"
        " (responses: @status and the request's signature)"
    )


class SignatureAlgorithmUnsupported(SatchelError):
    code = "signature.algorithm_unsupported"
    default_hint = 'node keys sign with alg="ed25519", sessions (keyid hs-...) with alg="hmac-sha256"'


class SignatureExpired(SatchelError):
    code = "signature.expired"
    default_hint = "sign each request just before sending it and check the sender's clock"


class SignatureNotYetValid(SatchelError):
    code = "signature.not_yet_valid"
    default_hint = "the sender's clock is ahead of ours by more than the allowed skew"


class SignatureLifetimeTooLong(SatchelError):
    code = "signature.lifetime_too_long"
    default_hint = f"expires may be at most {MAX_LIFETIME} seconds after created"


class SignatureKeyUnknown(SatchelError):
    code = "signature.key_unknown"
    default_hint = "the keyid is not a key this node knows for any peer; check the directory entry"


class SignatureKeyRevoked(SignatureKeyUnknown):
    code = "signature.key_revoked"
    default_hint = "the key was revoked; sign with the node's current key"


class SignatureKeyLookupLimited(SignatureKeyUnknown):
    """The receiver is looking up as many unknown keys a minute as it allows itself (§7.1, *Bounding discovery*).

    The request may be sent again after ``Retry-After`` seconds."""

    code = "signature.key_lookup_limited"
    default_hint = (
        "this node looks up only so many unknown keys a minute; send again later, or have its operator pin "
        "your node (`satchel peers add URL`)"
    )

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class SignatureWrongDestination(SatchelError):
    code = "signature.wrong_destination"
    default_hint = "the request was signed for another node"


class SignatureReplayed(SatchelError):
    """Raised by the node's replay store: the pair (keyid, nonce) was already seen inside its window."""

    code = "signature.replayed"
    default_hint = "use a fresh random nonce for every request"
