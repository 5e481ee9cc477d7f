"""What one node stores about one transfer: its side, its state and its counters (spec/transfer.md §3).

The states are the rows of the tables in :mod:`protocol.transfer_states`, which re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from protocol.errors import InvalidInput
from protocol.receipts import Role, check_domain, check_time, check_ulid

DEFAULT_MAX_WRONG_CODES = 5


class Side(StrEnum):
    SENDER = "sender"
    RECEIVER = "receiver"


class SenderState(StrEnum):
    SEALED = "sealed"
    DELIVERED = "delivered"
    CANCEL_REQUESTED = "cancel_requested"
    ACCEPTED = "accepted"
    IMPORTED = "imported"
    PARTIALLY_IMPORTED = "partially_imported"
    IMPORT_FAILED = "import_failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    LOCKED = "locked"
    EXPIRED = "expired"
    UNDELIVERABLE = "undeliverable"


class ReceiverState(StrEnum):
    ABSENT = "absent"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    IMPORTING = "importing"
    IMPORTED = "imported"
    PARTIALLY_IMPORTED = "partially_imported"
    IMPORT_FAILED = "import_failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    LOCKED = "locked"
    EXPIRED = "expired"


# States with no way out but self-loops. Written out because this module cannot import the tables;
# protocol.transfer_states checks on import that its tables agree (see final_states there).
FINAL_STATES: dict[Side, frozenset[SenderState | ReceiverState]] = {
    Side.SENDER: frozenset({
        SenderState.IMPORTED, SenderState.REJECTED, SenderState.CANCELLED, SenderState.LOCKED,
        SenderState.UNDELIVERABLE,
    }),
    Side.RECEIVER: frozenset({
        ReceiverState.IMPORTED, ReceiverState.REJECTED, ReceiverState.CANCELLED, ReceiverState.LOCKED,
        ReceiverState.EXPIRED,
    }),
}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferStatus:
    """What one node stores about one transfer; the machine's whole memory."""

    side: Side
    state: SenderState | ReceiverState
    transfer_id: str
    local_domain: str
    peer_domain: str
    expires: datetime | None = None
    envelope_digest: bytes | None = None
    wrong_codes: int = 0
    max_wrong_codes: int = DEFAULT_MAX_WRONG_CODES
    receipts_issued: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.side, Side):
            raise InvalidInput("side must be a Side", field="side")
        if (
            self.state not in (SenderState if self.side is Side.SENDER else ReceiverState)
            or type(self.state) is str
        ):
            raise InvalidInput(f"{self.state!r} is not a {self.side.value} state", field="state")
        check_ulid(self.transfer_id, "transfer_id", InvalidInput)
        check_domain(self.local_domain, "local_domain", InvalidInput)
        check_domain(self.peer_domain, "peer_domain", InvalidInput)
        if self.local_domain == self.peer_domain:
            raise InvalidInput("a transfer goes to another district", field="peer_domain")
        if self.expires is not None:
            check_time(self.expires, "expires", InvalidInput)
        if self.envelope_digest is not None and (
            type(self.envelope_digest) is not bytes or len(self.envelope_digest) != 32
        ):
            raise InvalidInput("envelope_digest is 32 bytes", field="envelope_digest")
        if self.side is Side.SENDER and (self.envelope_digest is None or self.expires is None):
            raise InvalidInput(
                "the sender knows the digest and expiry of what it sealed", field="envelope_digest"
            )
        if type(self.max_wrong_codes) is not int or not 1 <= self.max_wrong_codes <= 100:
            raise InvalidInput("max_wrong_codes must be 1 to 100", field="max_wrong_codes")
        if type(self.wrong_codes) is not int or not 0 <= self.wrong_codes <= self.max_wrong_codes:
            raise InvalidInput("wrong_codes must be 0 to max_wrong_codes", field="wrong_codes")
        if type(self.receipts_issued) is not int or self.receipts_issued < 0:
            raise InvalidInput("receipts_issued must be 0 or more", field="receipts_issued")

    @property
    def role(self) -> Role:
        return Role.SENDER if self.side is Side.SENDER else Role.RECEIVER

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES[self.side]


def new_outgoing(
    *, transfer_id: str, sender_domain: str, receiver_domain: str, expires: datetime, envelope_digest: bytes
) -> TransferStatus:
    """The sender's status once the envelope is sealed and written to the outbox."""
    return TransferStatus(
        side=Side.SENDER, state=SenderState.SEALED, transfer_id=transfer_id, local_domain=sender_domain,
        peer_domain=receiver_domain, expires=expires, envelope_digest=envelope_digest,
    )  # fmt: skip


def new_incoming(
    *,
    transfer_id: str,
    sender_domain: str,
    receiver_domain: str,
    max_wrong_codes: int = DEFAULT_MAX_WRONG_CODES,
) -> TransferStatus:
    """The receiver's status before anything about the transfer is stored (``absent``)."""
    return TransferStatus(
        side=Side.RECEIVER, state=ReceiverState.ABSENT, transfer_id=transfer_id, local_domain=receiver_domain,
        peer_domain=sender_domain, max_wrong_codes=max_wrong_codes,
    )  # fmt: skip
