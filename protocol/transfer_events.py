"""What goes into the transfer state machine and what comes out of it (spec/transfer.md §3).

Events say what happened (a coordinator cancelled, an envelope or a receipt arrived, an import finished);
effects are what :func:`protocol.transfer_states.apply` asks node/ to carry out (send or record a receipt,
notify the coordinators, count a wrong code). Both are plain values. The tables and the engine that turn
one into the other are in :mod:`protocol.transfer_states`, which re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from protocol.errors import InvalidInput, SatchelError
from protocol.receipts import (
    MAX_MESSAGE,
    MAX_REASON,
    ImportCounts,
    Receipt,
    ReceiptKind,
    check_text,
    check_time,
)


class TransferEvent(StrEnum):
    CANCEL = "cancel"
    SEND_MESSAGE = "send_message"
    ACCEPT = "accept"
    WRONG_CODE = "wrong_code"
    LOCK_OUT = "lock_out"  # the wrong code that reaches the limit
    REJECT = "reject"
    START_IMPORT = "start_import"
    CANCEL_IMPORT = "cancel_import"
    IMPORT_SUCCEEDED = "import_succeeded"
    IMPORT_PARTIAL = "import_partial"
    IMPORT_FAILED = "import_failed"
    ENVELOPE_RECEIVED = "envelope_received"
    CANCEL_RECEIVED = "cancel_received"
    MESSAGE_RECEIVED = "message_received"
    DELIVERY_REFUSED = "delivery_refused"
    RECEIPT_DELIVERED = "receipt_delivered"
    RECEIPT_ACCEPTED = "receipt_accepted"
    RECEIPT_REJECTED = "receipt_rejected"
    RECEIPT_LOCKED = "receipt_locked"
    RECEIPT_CANCELLED = "receipt_cancelled"
    RECEIPT_IMPORTED = "receipt_imported"
    RECEIPT_PARTIALLY_IMPORTED = "receipt_partially_imported"
    RECEIPT_FAILED = "receipt_failed"
    EXPIRE = "expire"


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    reason: str | None = None

    def __post_init__(self) -> None:
        check_text(self.reason, "reason", MAX_REASON, required=False, error=InvalidInput)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessage:
    text: str

    def __post_init__(self) -> None:
        check_text(self.text, "text", MAX_MESSAGE, required=True, error=InvalidInput)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    reason: str

    def __post_init__(self) -> None:
        check_text(self.reason, "reason", MAX_REASON, required=True, error=InvalidInput)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportFinished:
    counts: ImportCounts


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportFailed:
    reference: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeReceived:
    """The node verified the envelope (signature, recipient, limits) and holds its bytes, not yet stored."""

    envelope_digest: bytes
    expires: datetime

    def __post_init__(self) -> None:
        if type(self.envelope_digest) is not bytes or len(self.envelope_digest) != 32:
            raise InvalidInput("envelope_digest is a SHA-256 digest (32 bytes)", field="envelope_digest")
        check_time(self.expires, "expires", InvalidInput)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRefused:
    """The receiving node refused the envelope for good (see transfer_states.is_permanent_refusal)."""

    error_code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptArrived:
    """A receipt from the peer, already verified with protocol.receipts.verify_receipt."""

    receipt: Receipt


# Events without data are the TransferEvent members themselves: ACCEPT (the node opened the envelope
# into staging with the typed code), WRONG_CODE (a code with a valid check character did not open it;
# typos never get here), START_IMPORT, CANCEL_IMPORT and EXPIRE.
PLAIN_EVENTS = frozenset({
    TransferEvent.ACCEPT, TransferEvent.WRONG_CODE, TransferEvent.START_IMPORT, TransferEvent.CANCEL_IMPORT,
    TransferEvent.EXPIRE,
})  # fmt: skip
Event = (
    TransferEvent | Cancel | SendMessage | Reject | ImportFinished | ImportFailed | EnvelopeReceived
    | DeliveryRefused | ReceiptArrived
)  # fmt: skip


# ---------------------------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True, kw_only=True)
class SendReceipt:
    """Sign, store and send this receipt (POST to the path protocol.receipts.receipt_path gives; a
    delivered receipt is instead the body of the answer to the envelope POST)."""

    receipt: Receipt


@dataclass(frozen=True, slots=True, kw_only=True)
class ResendReceipt:
    """Answer with the signed receipt of this kind this node issued before for the transfer, byte for byte."""

    kind: ReceiptKind


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordReceipt:
    """Store the peer's signed receipt in the timeline (once per issuer and sequence number)."""

    receipt: Receipt


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyCoordinators:
    topic: str


class TransferWrongCode(SatchelError):
    """A wrong code (with a valid check character) was tried and counted."""

    code = "transfer.wrong_code"
    default_hint = "check the code with the sender's coordinator by phone before trying again"


@dataclass(frozen=True, slots=True, kw_only=True)
class CountWrongCode:
    attempts: int
    remaining: int

    def error(self) -> TransferWrongCode:
        """What to tell the person who typed the code, once the new count is stored."""
        if self.remaining == 0:
            return TransferWrongCode("wrong code: the transfer is now locked and the sender has been told")
        return TransferWrongCode(f"wrong code: {self.remaining} more attempt(s) before the transfer locks")


class Action(StrEnum):
    """Effects without data."""

    ERASE_CODE = "erase_code"  # sender: forget the code, it opens nothing any more
    DROP_FROM_OUTBOX = "drop_from_outbox"  # sender: stop (re)delivering the envelope
    STORE_SEALED_ENVELOPE = "store_sealed_envelope"  # receiver: keep the verified bytes, still sealed
    DELETE_SEALED_ENVELOPE = "delete_sealed_envelope"
    COMMIT_STAGING = "commit_staging"  # receiver: keep what the code opened as the staging area
    DISCARD_STAGING = "discard_staging"
    RUN_IMPORT = "run_import"  # start or resume the import job; it reports ImportFinished/ImportFailed
    STOP_IMPORT = "stop_import"  # after the student in progress (each student is one transaction)


Effect = Action | SendReceipt | ResendReceipt | RecordReceipt | NotifyCoordinators | CountWrongCode
