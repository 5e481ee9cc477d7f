"""Sans-IO protocol: message formats, validation and state machines. Bytes and values in, values out."""

from protocol.envelope_format import (
    Argon2Params,
    EnvelopeHeader,
    OpenedEnvelope,
    OpenPolicy,
)
from protocol.errors import (
    Conflict,
    InvalidInput,
    MalformedMessage,
    NotFound,
    SatchelError,
    SignatureInvalid,
    all_error_classes,
)
from protocol.manifest import Manifest, ManifestRecord, ManifestStudent

__all__ = [
    "Argon2Params",
    "Conflict",
    "EnvelopeHeader",
    "InvalidInput",
    "MalformedMessage",
    "Manifest",
    "ManifestRecord",
    "ManifestStudent",
    "NotFound",
    "OpenPolicy",
    "OpenedEnvelope",
    "SatchelError",
    "SignatureInvalid",
    "all_error_classes",
]
