"""Resuming an envelope upload that was cut off (spec/transfer.md §4.1): the headers, the state answer, the
refusals. Pure values: the node keeps the bytes, this module says what the messages about them mean.

A district's link can drop in the middle of a gigabyte envelope, and on a link that drops every ten
minutes an upload that restarts from zero never ends. The receiver keeps what arrived of an envelope whose
signed header it verified; the sender asks how much that is, then sends only the rest, with the digest of
the whole envelope so that the receiver checks every byte it ends up with, old and new.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocol.content_digest import DigestUnsupportedAlgorithm, parse_content_digest
from protocol.errors import InvalidInput, SatchelError
from protocol.json_strict import dumps_canonical, loads_object

UPLOAD_OFFSET_HEADER = "Upload-Offset"
ENVELOPE_DIGEST_HEADER = "Satchel-Envelope-Digest"
# Both are covered by the request's signature, or the request is refused: a proxy must not move the
# offset, nor swap the digest the receiver checks the finished envelope against.
RESUME_COMPONENTS = ("upload-offset", "satchel-envelope-digest")
UPLOAD_STATE_TYPE = "application/json"
# Receivers keep what arrived of an upload once this much did; senders ask about envelopes at least this long.
RESUMABLE_LENGTH = 1 << 20
_DIGITS = re.compile(r"[0-9]{1,19}")


class UploadUnknown(SatchelError):
    """The receiver holds nothing of this envelope from this sender: send it whole."""

    code = "transfer.upload_unknown"
    default_hint = "send the whole envelope again (POST /satchel/v1/envelopes)"


class UploadOffsetMismatch(SatchelError):
    """The rest of an envelope was sent from another offset than the one the receiver holds."""

    code = "transfer.upload_offset_mismatch"
    default_hint = "ask the receiver how much it holds (GET .../upload) and send the rest from there"


class UploadInProgress(SatchelError):
    """Another upload of the same envelope is still arriving; two must not write the same bytes at once."""

    code = "transfer.upload_in_progress"
    default_hint = "try again in a minute: the other upload ends or times out first"


@dataclass(frozen=True, slots=True)
class UploadState:
    """What a receiver holds of one envelope: ``received`` of ``length`` bytes, on its disk."""

    envelope_id: str
    received: int
    length: int

    @property
    def complete(self) -> bool:
        return self.received == self.length


def parse_upload_offset(value: str | None, *, length: int) -> int:
    """The ``Upload-Offset`` of a resumed upload: a decimal count of bytes, more than 0 and less than the
    envelope's ``length`` (an upload from 0 is a plain POST; one from the end has nothing to send)."""
    if value is None:
        raise InvalidInput(f"{UPLOAD_OFFSET_HEADER} is missing", field=UPLOAD_OFFSET_HEADER,
                           hint="a resumed upload names the byte it starts from")  # fmt: skip
    if not _DIGITS.fullmatch(value):
        raise InvalidInput(f"{UPLOAD_OFFSET_HEADER} must be a decimal number of bytes, not {value[:40]!r}",
                           field=UPLOAD_OFFSET_HEADER)  # fmt: skip
    offset = int(value)
    if not 0 < offset < length:
        raise InvalidInput(
            f"{UPLOAD_OFFSET_HEADER} {offset} is outside the envelope's {length} bytes (it must be more than 0"
            " and less than the length)", field=UPLOAD_OFFSET_HEADER,
        )  # fmt: skip
    return offset


def parse_envelope_digest(value: str | None) -> bytes:
    """The SHA-256 of the whole envelope from ``Satchel-Envelope-Digest`` (Content-Digest's syntax)."""
    try:
        members = parse_content_digest(value)
    except SatchelError as exc:
        exc.field = ENVELOPE_DIGEST_HEADER
        raise
    digest = members.get("sha-256")
    if digest is None or len(digest) != 32:
        raise DigestUnsupportedAlgorithm(
            f"{ENVELOPE_DIGEST_HEADER} must carry the envelope's sha-256", field=ENVELOPE_DIGEST_HEADER
        )
    return digest


def encode_upload_state(state: UploadState) -> bytes:
    return dumps_canonical({"envelope_id": state.envelope_id, "received": state.received, "length": state.length,
                            "complete": state.complete})  # fmt: skip


def parse_upload_state(data: bytes, *, envelope_id: str) -> UploadState:
    """A receiver's answer about ``envelope_id``; refused when it is about another envelope or impossible."""
    obj = loads_object(data, what="upload state")
    received, length = obj.get("received"), obj.get("length")
    if obj.get("envelope_id") != envelope_id:
        raise InvalidInput("the upload state is about another envelope", field="envelope_id")
    if type(received) is not int or type(length) is not int or not 0 <= received <= length:
        raise InvalidInput("the upload state's received and length must be byte counts, received <= length",
                           field="received")  # fmt: skip
    return UploadState(envelope_id, received, length)
