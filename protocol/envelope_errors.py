"""Errors of the envelope and its manifest (spec/envelope.md §7, "What a receiver MUST reject").

Messages name fields, never values: an envelope carries children's records and a code, and errors end up
in logs and in HTTP bodies. Authentication failures caused by the code or the recipient key are one opaque
error (:class:`EnvelopeWrongCodeOrKey`) so a person guessing codes learns nothing else from it.
"""

from __future__ import annotations

from protocol.errors import MalformedMessage, SatchelError, SignatureInvalid


class EnvelopeMalformed(MalformedMessage):
    """The envelope's framing or header does not follow spec/envelope.md."""

    code = "envelope.malformed"
    default_hint = "the sending node produced an invalid envelope; ask its operator to upgrade or report it"


class EnvelopeTruncated(EnvelopeMalformed):
    """The envelope ends before the length its signed header announces."""

    code = "envelope.truncated"
    default_hint = "the envelope was cut short in transit or storage; fetch it again"


class EnvelopeTrailingBytes(EnvelopeMalformed):
    """Bytes follow the final chunk."""

    code = "envelope.trailing_bytes"
    default_hint = "the envelope was altered in transit or storage; fetch it again"


class EnvelopeUnsupportedVersion(EnvelopeMalformed):
    """The format version byte is not one this node implements."""

    code = "envelope.unsupported_version"
    default_hint = "the sender uses a newer envelope format; upgrade this node"


class EnvelopeUnsupportedSuite(EnvelopeMalformed):
    """The cipher suite byte is not one this node implements or accepts."""

    code = "envelope.unsupported_suite"
    default_hint = "the sender used a cipher suite this node does not accept"


class EnvelopeUnsupportedContent(EnvelopeMalformed):
    """The header's content type is not one this node can open."""

    code = "envelope.unsupported_content_type"
    default_hint = "the sender uses a newer payload format; upgrade this node"


class EnvelopeTooLarge(SatchelError):
    """A length in the header is above the receiver's limit (header, manifest, payload or chunk size)."""

    code = "envelope.too_large"
    default_hint = "ask the sender to split the transfer into smaller envelopes"


class EnvelopeSignatureInvalid(SignatureInvalid):
    """The sender's signature over the envelope prefix does not verify with the sender's key."""

    code = "envelope.signature_invalid"
    default_hint = "the envelope was altered or was not made by the named sender; it was not opened"


class EnvelopeNotRecipient(SatchelError):
    """The signed header names another recipient domain or encryption key."""

    code = "envelope.not_recipient"
    default_hint = "this envelope is addressed to another district or to a retired key of this node"


class EnvelopeExpired(SatchelError):
    """The current time is at or after the header's expiry."""

    code = "envelope.expired"
    default_hint = "ask the sender to send the records again"


class EnvelopeNotYetValid(SatchelError):
    """The header's creation time is further in the future than the allowed clock skew."""

    code = "envelope.not_yet_valid"
    default_hint = "check the clocks of both nodes (NTP)"


class EnvelopeWeakKdfParams(SatchelError):
    """The Argon2id cost parameters are below the receiver's minimum."""

    code = "envelope.weak_kdf_params"
    default_hint = "the sender protects the code too weakly; ask its operator to raise the Argon2id cost"


class EnvelopeExcessiveKdfParams(SatchelError):
    """The Argon2id cost parameters are above the receiver's maximum (a memory or CPU exhaustion guard)."""

    code = "envelope.excessive_kdf_params"
    default_hint = "the sender asks for more Argon2id memory or time than this node allows"


class EnvelopeWrongCodeOrKey(SatchelError):
    """The code, or the recipient's private key, does not open the envelope. Deliberately one error."""

    code = "envelope.wrong_code_or_key"
    default_hint = "check the code with the sending coordinator; every wrong code counts toward the lock"


class EnvelopeCorrupt(SatchelError):
    """A chunk failed to authenticate, or chunk tags are out of place, after the code was confirmed."""

    code = "envelope.corrupt"
    default_hint = "the envelope was damaged after sealing; fetch it again (the code was right)"


class EnvelopeManifestMismatch(EnvelopeCorrupt):
    """The decrypted manifest disagrees with the signed header (digest, parties or lengths)."""

    code = "envelope.manifest_mismatch"
    default_hint = "the sending node built an inconsistent envelope; ask its operator to report it"


class EnvelopeDocumentDigestMismatch(EnvelopeCorrupt):
    """A document's bytes do not match the length and SHA-256 digest its manifest entry gives."""

    code = "envelope.document_digest_mismatch"
    default_hint = "a document changed after the sender hashed it; ask the sender to send it again"


class EnvelopePayloadLengthMismatch(SatchelError, ValueError):
    """While sealing, the payload stream was shorter or longer than the manifest's documents."""

    code = "envelope.payload_length_mismatch"
    default_hint = "a document file changed while it was being sealed; discard the output and seal again"


class ManifestMalformed(MalformedMessage):
    """A manifest does not follow the schema of spec/envelope.md §5."""

    code = "manifest.malformed"


class ManifestSignatureInvalid(SignatureInvalid):
    """The sender's signature over a manifest does not verify."""

    code = "manifest.signature_invalid"
    default_hint = "the stored manifest or its signature was altered, or another key signed it"
