"""The transfer state machines: what the sender's node and the receiver's node each hold (spec/transfer.md §3).

Two tables and one engine. The nodes keep different things (the sender its outbox entry and the code; the
receiver the sealed envelope, the wrong-code counter and the staging area), pass through different states
and take events from different actors, so one table with a side parameter would be two tables interleaved.
What they share (actor checks, expiry, coded refusals, receipt numbering) is :func:`apply`.

Each side is authoritative about its own acts: a receipt saying the receiver accepted moves the sender to
``accepted`` even from ``cancel_requested`` or ``expired`` (the messages crossed; the receiver acted
first). Late and repeated receipts are explicit self-loops that only record the receipt.

The vocabulary sits in two small modules, re-exported here so ``from protocol.transfer_states import X``
works for all of it: :mod:`protocol.transfer_status` (sides, states, what a node stores) and
:mod:`protocol.transfer_events` (the events the engine takes and the effects it returns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from protocol.errors import InvalidInput, SatchelError
from protocol.receipts import Receipt, ReceiptDigestMismatch, ReceiptKind, Role, check_receipt_for, check_time
from protocol.transfer_events import (
    PLAIN_EVENTS,
    Action,
    Cancel,
    CountWrongCode,
    DeliveryRefused,
    Effect,
    EnvelopeReceived,
    Event,
    ImportFailed,
    ImportFinished,
    NotifyCoordinators,
    ReceiptArrived,
    RecordReceipt,
    Reject,
    ResendReceipt,
    SendMessage,
    SendReceipt,
    TransferEvent,
    TransferWrongCode,
)
from protocol.transfer_status import (
    DEFAULT_MAX_WRONG_CODES,
    FINAL_STATES,
    ReceiverState,
    SenderState,
    Side,
    TransferStatus,
    new_incoming,
    new_outgoing,
)

__all__ = [
    "ACTORS", "DEFAULT_MAX_WRONG_CODES", "EXPIRABLE", "FINAL_STATES", "INITIAL", "PLAIN_EVENTS",
    "RECEIVER_ACTORS", "RECEIVER_TRANSITIONS", "RETRYABLE_CODES", "RETRY_BASE_SECONDS", "RETRY_CAP_SECONDS",
    "SENDER_ACTORS", "SENDER_TRANSITIONS", "TRANSITIONS", "Action", "Actor", "Cancel", "CountWrongCode",
    "DeliveryRefused", "Effect", "EnvelopeReceived", "Event", "ImportFailed", "ImportFinished",
    "NotifyCoordinators", "ReceiptArrived", "ReceiverState", "RecordReceipt", "Reject", "ResendReceipt",
    "SendMessage", "SendReceipt", "SenderState", "Side", "State", "TransferActorNotAllowed",
    "TransferAlreadyAccepted", "TransferCancelled", "TransferEnvelopeConflict", "TransferEvent",
    "TransferExpired", "TransferLocked", "TransferRejected", "TransferStatus", "TransferWrongCode",
    "TransfersDisabled", "Transition", "TransitionNotAllowed", "allowed_events", "apply", "check",
    "check_receipt_belongs",
    "due_events", "event_name", "final_states", "is_permanent_refusal", "new_incoming", "new_outgoing",
    "retry_delay", "transitions",
]  # fmt: skip


class Actor(StrEnum):
    SENDER_COORDINATOR = "sender_coordinator"
    RECEIVER_COORDINATOR = "receiver_coordinator"
    SENDER_NODE = "sender_node"
    RECEIVER_NODE = "receiver_node"
    TIMER = "timer"


S, R, E, A = SenderState, ReceiverState, TransferEvent, Actor
State = SenderState | ReceiverState


def _table(*parts: Mapping[tuple[Any, TransferEvent], Any]) -> dict[tuple[Any, TransferEvent], Any]:
    merged: dict[tuple[Any, TransferEvent], Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in merged:
                raise AssertionError(f"transition {key} defined twice")
            merged[key] = value
    return merged


def _stay(state: Any, *events: TransferEvent) -> dict[tuple[Any, TransferEvent], Any]:
    return {(state, event): state for event in events}


# What a receipt from the receiver proves, whatever the sender believed before it arrived.
_RECEIVER_SAYS = {
    E.RECEIPT_ACCEPTED: S.ACCEPTED,
    E.RECEIPT_REJECTED: S.REJECTED,
    E.RECEIPT_LOCKED: S.LOCKED,
    E.RECEIPT_IMPORTED: S.IMPORTED,
    E.RECEIPT_PARTIALLY_IMPORTED: S.PARTIALLY_IMPORTED,
    E.RECEIPT_FAILED: S.IMPORT_FAILED,
}
_RECEIVER_SAYS_BEFORE_IMPORT = (E.RECEIPT_DELIVERED, E.RECEIPT_ACCEPTED)
_THREAD = (E.SEND_MESSAGE, E.MESSAGE_RECEIVED)

SENDER_TRANSITIONS: dict[tuple[SenderState, TransferEvent], SenderState] = _table(
    {
        (s, e): t
        for s in (S.SEALED, S.DELIVERED, S.CANCEL_REQUESTED, S.EXPIRED)
        for e, t in _RECEIVER_SAYS.items()
    },
    {
        (S.SEALED, E.RECEIPT_DELIVERED): S.DELIVERED,
        (S.SEALED, E.CANCEL): S.CANCEL_REQUESTED,
        (S.SEALED, E.DELIVERY_REFUSED): S.UNDELIVERABLE,
        (S.SEALED, E.EXPIRE): S.EXPIRED,
        (S.DELIVERED, E.CANCEL): S.CANCEL_REQUESTED,
        (S.DELIVERED, E.EXPIRE): S.EXPIRED,
        (S.CANCEL_REQUESTED, E.RECEIPT_CANCELLED): S.CANCELLED,
        (S.CANCEL_REQUESTED, E.EXPIRE): S.EXPIRED,
        (S.EXPIRED, E.RECEIPT_CANCELLED): S.CANCELLED,
        (S.ACCEPTED, E.RECEIPT_REJECTED): S.REJECTED,
        (S.ACCEPTED, E.RECEIPT_IMPORTED): S.IMPORTED,
        (S.ACCEPTED, E.RECEIPT_PARTIALLY_IMPORTED): S.PARTIALLY_IMPORTED,
        (S.ACCEPTED, E.RECEIPT_FAILED): S.IMPORT_FAILED,
        (S.IMPORT_FAILED, E.RECEIPT_IMPORTED): S.IMPORTED,
        (S.IMPORT_FAILED, E.RECEIPT_PARTIALLY_IMPORTED): S.PARTIALLY_IMPORTED,
        (S.IMPORT_FAILED, E.RECEIPT_REJECTED): S.REJECTED,
        (S.PARTIALLY_IMPORTED, E.RECEIPT_IMPORTED): S.IMPORTED,
        (S.PARTIALLY_IMPORTED, E.RECEIPT_REJECTED): S.REJECTED,  # its import cancelled, then the records refused
    },
    # Late and repeated receipts: recorded in the timeline, the state stays.
    _stay(S.DELIVERED, E.RECEIPT_DELIVERED),
    _stay(S.CANCEL_REQUESTED, E.RECEIPT_DELIVERED),
    _stay(S.ACCEPTED, E.RECEIPT_DELIVERED, E.RECEIPT_ACCEPTED),
    _stay(S.IMPORT_FAILED, E.RECEIPT_DELIVERED, E.RECEIPT_ACCEPTED, E.RECEIPT_FAILED),
    _stay(
        S.PARTIALLY_IMPORTED, *_RECEIVER_SAYS_BEFORE_IMPORT, E.RECEIPT_PARTIALLY_IMPORTED, E.RECEIPT_FAILED
    ),
    # An import that failed or was partial, then ran again (or was cancelled and the transfer rejected): the
    # receipts travel apart and the earlier one may come last.
    _stay(S.IMPORTED, *_RECEIVER_SAYS_BEFORE_IMPORT, E.RECEIPT_IMPORTED, E.RECEIPT_PARTIALLY_IMPORTED,
          E.RECEIPT_FAILED),
    _stay(S.REJECTED, *_RECEIVER_SAYS_BEFORE_IMPORT, E.RECEIPT_REJECTED, E.RECEIPT_PARTIALLY_IMPORTED,
          E.RECEIPT_FAILED),
    _stay(S.LOCKED, E.RECEIPT_DELIVERED, E.RECEIPT_LOCKED),
    _stay(S.CANCELLED, E.RECEIPT_DELIVERED, E.RECEIPT_CANCELLED),
    _stay(S.EXPIRED, E.RECEIPT_DELIVERED),
    # The message thread stays open in every state the receiver can know of.
    {(s, e): s for s in S if s is not S.UNDELIVERABLE for e in _THREAD},
)

RECEIVER_TRANSITIONS: dict[tuple[ReceiverState, TransferEvent], ReceiverState] = _table(
    {
        (R.ABSENT, E.ENVELOPE_RECEIVED): R.RECEIVED,
        (R.ABSENT, E.CANCEL_RECEIVED): R.CANCELLED,  # a tombstone: the envelope is refused if it comes later
        (R.RECEIVED, E.ACCEPT): R.ACCEPTED,
        (R.RECEIVED, E.WRONG_CODE): R.RECEIVED,
        (R.RECEIVED, E.LOCK_OUT): R.LOCKED,
        (R.RECEIVED, E.REJECT): R.REJECTED,
        (R.RECEIVED, E.CANCEL_RECEIVED): R.CANCELLED,
        (R.RECEIVED, E.EXPIRE): R.EXPIRED,
        (R.ACCEPTED, E.START_IMPORT): R.IMPORTING,
        (R.ACCEPTED, E.REJECT): R.REJECTED,
        (R.IMPORTING, E.IMPORT_SUCCEEDED): R.IMPORTED,
        (R.IMPORTING, E.IMPORT_PARTIAL): R.PARTIALLY_IMPORTED,
        (R.IMPORTING, E.IMPORT_FAILED): R.IMPORT_FAILED,
        (R.IMPORTING, E.CANCEL_IMPORT): R.ACCEPTED,
        (R.PARTIALLY_IMPORTED, E.START_IMPORT): R.IMPORTING,
        (R.IMPORT_FAILED, E.START_IMPORT): R.IMPORTING,
        (R.IMPORT_FAILED, E.REJECT): R.REJECTED,
        (R.CANCELLED, E.CANCEL_RECEIVED): R.CANCELLED,
    },
    # A redelivered envelope changes nothing and gets the answer it got the first time.
    {(s, E.ENVELOPE_RECEIVED): s for s in R if s is not R.ABSENT},
    {(s, e): s for s in R if s is not R.ABSENT for e in _THREAD},
)

_RECEIVER_COORDINATOR_EVENTS = (
    E.SEND_MESSAGE, E.ACCEPT, E.WRONG_CODE, E.LOCK_OUT, E.REJECT, E.START_IMPORT, E.CANCEL_IMPORT,
)  # fmt: skip
_RECEIPT_EVENTS = (E.RECEIPT_DELIVERED, *_RECEIVER_SAYS, E.RECEIPT_CANCELLED)
SENDER_ACTORS: dict[TransferEvent, Actor] = {
    E.CANCEL: A.SENDER_COORDINATOR,
    E.SEND_MESSAGE: A.SENDER_COORDINATOR,
    E.DELIVERY_REFUSED: A.SENDER_NODE,
    E.MESSAGE_RECEIVED: A.RECEIVER_NODE,
    **{e: A.RECEIVER_NODE for e in _RECEIPT_EVENTS},
    E.EXPIRE: A.TIMER,
}
RECEIVER_ACTORS: dict[TransferEvent, Actor] = {
    E.ENVELOPE_RECEIVED: A.SENDER_NODE,
    E.CANCEL_RECEIVED: A.SENDER_NODE,
    E.MESSAGE_RECEIVED: A.SENDER_NODE,
    **{e: A.RECEIVER_COORDINATOR for e in _RECEIVER_COORDINATOR_EVENTS},
    **{e: A.RECEIVER_NODE for e in (E.IMPORT_SUCCEEDED, E.IMPORT_PARTIAL, E.IMPORT_FAILED)},
    E.EXPIRE: A.TIMER,
}
TRANSITIONS: dict[Side, dict[tuple[Any, TransferEvent], Any]] = {
    Side.SENDER: SENDER_TRANSITIONS,
    Side.RECEIVER: RECEIVER_TRANSITIONS,
}
ACTORS: dict[Side, dict[TransferEvent, Actor]] = {Side.SENDER: SENDER_ACTORS, Side.RECEIVER: RECEIVER_ACTORS}
INITIAL: dict[Side, Any] = {Side.SENDER: S.SEALED, Side.RECEIVER: R.ABSENT}
# A coordinator may not act on these after ``expires``; the timer's ``expire`` closes them.
EXPIRABLE: dict[Side, frozenset[Any]] = {
    Side.SENDER: frozenset({S.SEALED, S.DELIVERED, S.CANCEL_REQUESTED}),
    Side.RECEIVER: frozenset({R.RECEIVED}),
}
# The code is worth nothing any more (spec/transfer.md §3.4): the sender's node erases its copy.
_CODE_GONE = frozenset(S) - {S.SEALED, S.DELIVERED}
_SENDER_NOTIFY = frozenset(S) - {S.SEALED, S.DELIVERED, S.CANCEL_REQUESTED}


def final_states(side: Side) -> frozenset[Any]:
    """States with no way out but self-loops."""
    table = TRANSITIONS[side]
    moving = {state for (state, _), target in table.items() if target != state}
    return frozenset(s for s in (S if side is Side.SENDER else R) if s not in moving)


# transfer_status.FINAL_STATES is written out (that module cannot import the tables): they must agree.
if any(final_states(side) != FINAL_STATES[side] for side in Side):
    raise AssertionError("transfer_status.FINAL_STATES disagrees with the tables")


# ---------------------------------------------------------------------------------------------- errors


class TransitionNotAllowed(SatchelError):
    """The event cannot happen in the transfer's current state; ``state`` and ``event`` say which."""

    code = "transfer.transition_not_allowed"
    default_hint = "`satchel transfers show ID` lists what can be done next (spec/transfer.md §3)"

    def __init__(self, message: str, *, state: str = "", event: str = "", hint: str | None = None) -> None:
        super().__init__(message, field="state", hint=hint)
        self.state = state
        self.event = event


class TransferAlreadyAccepted(TransitionNotAllowed):
    """The receiving district already opened the transfer: it can no longer be cancelled, accepted or locked."""

    code = "transfer.already_accepted"
    default_hint = "the receiving district has opened it; send a message or a correction instead"


class TransferLocked(TransitionNotAllowed):
    """Too many wrong codes were tried; the transfer is locked for good."""

    code = "transfer.locked"
    default_hint = "too many wrong codes were tried; ask the sender to send the records again"


class TransferExpired(TransitionNotAllowed):
    """The transfer passed its expiry before it was accepted."""

    code = "transfer.expired"
    default_hint = "the transfer passed its expiry date; ask the sender to send the records again"


class TransferRejected(TransitionNotAllowed):
    """The receiving district rejected the transfer."""

    code = "transfer.rejected"
    default_hint = "the receiving district rejected it; the sender can send a new transfer"


class TransferCancelled(TransitionNotAllowed):
    """The sending district cancelled the transfer (or asked to)."""

    code = "transfer.cancelled"
    default_hint = "the sender cancelled it; ask them to send the records again if they are still needed"


class TransferActorNotAllowed(SatchelError):
    """This party may not cause this event on this side of a transfer."""

    code = "transfer.actor_not_allowed"
    default_hint = "only the party named in spec/transfer.md §3.3 may cause this event"


class TransferEnvelopeConflict(SatchelError):
    """Different envelope bytes arrived under an envelope id already received."""

    code = "transfer.envelope_conflict"
    default_hint = "a different envelope already arrived under this id; the sender must use a new id"


class TransfersDisabled(SatchelError):
    """The receiving district has switched transfers off."""

    code = "transfer.disabled"
    default_hint = "the receiving district has switched transfers off; ask its coordinator to switch them on"


# Refusals people meet most often get their own code; everything else is transition_not_allowed.
_STATE_ERRORS: dict[str, type[TransitionNotAllowed]] = {
    "accepted": TransferAlreadyAccepted,
    "importing": TransferAlreadyAccepted,
    "imported": TransferAlreadyAccepted,
    "partially_imported": TransferAlreadyAccepted,
    "import_failed": TransferAlreadyAccepted,
    "locked": TransferLocked,
    "expired": TransferExpired,
    "rejected": TransferRejected,
    "cancelled": TransferCancelled,
    "cancel_requested": TransferCancelled,
}
_USER_MISTAKES = frozenset({E.CANCEL, E.CANCEL_RECEIVED, E.ACCEPT, E.WRONG_CODE, E.LOCK_OUT, E.REJECT})


def _refusal(side: Side, state: Any, event: TransferEvent) -> TransitionNotAllowed:
    cls = (
        _STATE_ERRORS.get(state.value, TransitionNotAllowed)
        if event in _USER_MISTAKES
        else TransitionNotAllowed
    )
    if cls is not TransitionNotAllowed:
        # A coordinator's mistake (or a race with another coordinator): said the way they would say it, with
        # the table's names for the record.
        said = (cls.__doc__ or "").split("\n")[0].rstrip(".")
        return cls(f"{said} ({event.value!r} is not possible in state {state.value!r})", state=state.value,
                   event=event.value)  # fmt: skip
    return cls(
        f"event {event.value!r} is not allowed in state {state.value!r} ({side.value} side of the transfer)",
        state=state.value,
        event=event.value,
    )


_SIMPLE: dict[type, TransferEvent] = {
    Cancel: E.CANCEL, SendMessage: E.SEND_MESSAGE, Reject: E.REJECT, ImportFailed: E.IMPORT_FAILED,
    EnvelopeReceived: E.ENVELOPE_RECEIVED, DeliveryRefused: E.DELIVERY_REFUSED,
}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    previous: SenderState | ReceiverState
    event: TransferEvent
    status: TransferStatus
    effects: tuple[Effect, ...]

    @property
    def changed(self) -> bool:
        return self.previous != self.status.state


# ---------------------------------------------------------------------------------------------- engine


def event_name(status: TransferStatus, event: Event) -> TransferEvent:
    """The table's name for ``event`` here (wrong codes and import results depend on the status/data)."""
    if isinstance(event, TransferEvent):
        if event not in PLAIN_EVENTS:
            raise InvalidInput(f"{event.value!r} carries data: pass its event class", field="event")
        if event is E.WRONG_CODE and status.wrong_codes + 1 >= status.max_wrong_codes:
            return E.LOCK_OUT
        return event
    if type(event) in _SIMPLE:
        return _SIMPLE[type(event)]
    if isinstance(event, ImportFinished):
        return E.IMPORT_SUCCEEDED if event.counts.complete else E.IMPORT_PARTIAL
    if isinstance(event, ReceiptArrived):
        receipt = event.receipt
        if receipt.kind is ReceiptKind.MESSAGE:
            return E.MESSAGE_RECEIVED
        if status.side is Side.RECEIVER:
            return (
                E.CANCEL_RECEIVED if receipt.kind is ReceiptKind.CANCELLED else E(f"receipt_{receipt.kind}")
            )
        if (
            receipt.kind is ReceiptKind.IMPORTED
            and receipt.counts is not None
            and not receipt.counts.complete
        ):
            return E.RECEIPT_PARTIALLY_IMPORTED
        return E(f"receipt_{receipt.kind}")
    raise InvalidInput(f"{type(event).__name__} is not a transfer event", field="event")


def apply(status: TransferStatus, event: Event, *, actor: Actor, now: datetime) -> Transition:
    """Apply ``event`` caused by ``actor`` at ``now``; return the new status and the effects node/ carries out.

    Raises a TransitionNotAllowed subclass (naming state and event) when the event cannot happen now,
    TransferActorNotAllowed when ``actor`` may not cause it, ReceiptMismatch for another transfer's receipt.
    """
    check_time(now, "now", InvalidInput)
    name = event_name(status, event)
    side, state = status.side, status.state
    actors = ACTORS[side]
    if name not in actors:
        raise _refusal(side, state, name)
    if actors[name] is not actor:
        raise TransferActorNotAllowed(
            f"{actor} may not cause {name.value!r} on the {side.value} side (only {actors[name].value})",
            field="actor",
        )
    target = TRANSITIONS[side].get((state, name))
    if target is None:
        raise _refusal(side, state, name)
    if (
        actor in (A.SENDER_COORDINATOR, A.RECEIVER_COORDINATOR)
        and name is not E.SEND_MESSAGE
        and state in EXPIRABLE[side]
        and status.expires is not None
        and now >= status.expires
    ):
        raise TransferExpired(
            f"event {name.value!r} is not allowed in state 'expired' (the transfer expired; it was {state.value!r})",
            state="expired",
            event=name.value,
        )
    if isinstance(event, ReceiptArrived):
        check_receipt_belongs(status, event.receipt)
    if isinstance(event, EnvelopeReceived) and status.envelope_digest not in (None, event.envelope_digest):
        raise TransferEnvelopeConflict(
            "a different envelope was already received under this id", field="envelope_id"
        )
    builder = _Effects(status, now)
    if side is Side.SENDER:
        _sender_effects(builder, event, name, state, target)
    else:
        _receiver_effects(builder, event, name, state, target)
    changes: dict[str, Any] = {"state": target, "receipts_issued": builder.issued}
    if name in (E.WRONG_CODE, E.LOCK_OUT):
        changes["wrong_codes"] = status.wrong_codes + 1
    if isinstance(event, EnvelopeReceived) and state is R.ABSENT:
        changes |= {"envelope_digest": event.envelope_digest, "expires": event.expires}
    return Transition(
        previous=state, event=name, status=replace(status, **changes), effects=tuple(builder.effects)
    )


def check(status: TransferStatus, event: Event, *, actor: Actor, now: datetime) -> None:
    """Raise what :func:`apply` would raise; call before costly work (opening an envelope with Argon2id)."""
    apply(status, event, actor=actor, now=now)


def allowed_events(status: TransferStatus) -> frozenset[TransferEvent]:
    """Events the table allows in the current state (for showing what can be done next)."""
    return frozenset(e for (s, e) in TRANSITIONS[status.side] if s == status.state)


def due_events(status: TransferStatus, *, now: datetime) -> tuple[Event, ...]:
    """Timer events that are due: ``Expire`` once ``now`` reaches ``expires`` in an expirable state."""
    if status.state in EXPIRABLE[status.side] and status.expires is not None and now >= status.expires:
        return (E.EXPIRE,)
    return ()


def check_receipt_belongs(status: TransferStatus, receipt: Receipt) -> None:
    """Refuse a receipt about another transfer, between other districts, from this side's own role, or (at the
    sender) naming other envelope bytes (spec/transfer.md §5.3 step 5)."""
    peer_role = Role.RECEIVER if status.side is Side.SENDER else Role.SENDER
    check_receipt_for(
        receipt, transfer_id=status.transfer_id, from_domain=status.peer_domain, to_domain=status.local_domain,
        issuer=peer_role,
    )  # fmt: skip
    if (
        status.side is Side.SENDER
        and receipt.envelope_digest is not None
        and receipt.envelope_digest != status.envelope_digest
    ):
        raise ReceiptDigestMismatch(
            "the receipt names other envelope bytes than were sealed", field="envelope_sha256"
        )


class _Effects:
    def __init__(self, status: TransferStatus, now: datetime) -> None:
        self.status = status
        self.now = now
        self.issued = status.receipts_issued
        self.effects: list[Effect] = []

    def add(self, *effects: Effect) -> None:
        self.effects.extend(effects)

    def send(self, kind: ReceiptKind, *, bind: bool = True, **fields: Any) -> None:
        self.issued += 1
        digest = fields.pop("envelope_digest", self.status.envelope_digest) if bind else None
        self.add(SendReceipt(receipt=Receipt(
            kind=kind, transfer_id=self.status.transfer_id, issuer=self.status.role,
            from_domain=self.status.local_domain, to_domain=self.status.peer_domain, sequence=self.issued,
            created=self.now, envelope_digest=digest, **fields,
        )))  # fmt: skip


def _sender_effects(out: _Effects, event: Event, name: TransferEvent, state: Any, target: Any) -> None:
    if isinstance(event, ReceiptArrived):
        out.add(RecordReceipt(receipt=event.receipt))
    if state is S.SEALED and target is not S.SEALED:
        out.add(Action.DROP_FROM_OUTBOX)
    if target in _CODE_GONE and state not in _CODE_GONE:
        out.add(Action.ERASE_CODE)
    if isinstance(event, Cancel):
        out.send(ReceiptKind.CANCELLED, reason=event.reason)
    elif isinstance(event, SendMessage):
        out.send(ReceiptKind.MESSAGE, bind=False, text=event.text)
    if target is not state and target in _SENDER_NOTIFY:
        out.add(NotifyCoordinators(topic=f"transfer.{target.value}"))
    elif name is E.MESSAGE_RECEIVED:
        out.add(NotifyCoordinators(topic="transfer.message"))


def _receiver_effects(out: _Effects, event: Event, name: TransferEvent, state: Any, target: Any) -> None:
    if isinstance(event, ReceiptArrived):
        out.add(RecordReceipt(receipt=event.receipt))
    if isinstance(event, EnvelopeReceived):
        if state is R.ABSENT:
            out.add(Action.STORE_SEALED_ENVELOPE)
            out.send(ReceiptKind.DELIVERED, envelope_digest=event.envelope_digest)
            out.add(NotifyCoordinators(topic="transfer.received"))
        else:
            tombstone = state is R.CANCELLED and out.status.envelope_digest is None
            out.add(ResendReceipt(kind=ReceiptKind.CANCELLED if tombstone else ReceiptKind.DELIVERED))
    elif name in (E.WRONG_CODE, E.LOCK_OUT):
        attempts = out.status.wrong_codes + 1
        out.add(CountWrongCode(attempts=attempts, remaining=out.status.max_wrong_codes - attempts))
        if name is E.LOCK_OUT:
            out.add(Action.DELETE_SEALED_ENVELOPE)
            out.send(ReceiptKind.LOCKED)
            out.add(NotifyCoordinators(topic="transfer.locked"))
    elif name is E.ACCEPT:
        out.add(Action.COMMIT_STAGING)
        out.send(ReceiptKind.ACCEPTED)
        out.add(NotifyCoordinators(topic="transfer.accepted"))
    elif isinstance(event, Reject):
        out.add(Action.DELETE_SEALED_ENVELOPE if state is R.RECEIVED else Action.DISCARD_STAGING)
        out.send(ReceiptKind.REJECTED, reason=event.reason)
    elif name is E.CANCEL_RECEIVED:
        if state is R.CANCELLED:
            out.add(ResendReceipt(kind=ReceiptKind.CANCELLED))
            return
        if state is R.RECEIVED:
            out.add(Action.DELETE_SEALED_ENVELOPE)
        out.send(ReceiptKind.CANCELLED)
        out.add(NotifyCoordinators(topic="transfer.cancelled"))
    elif name is E.START_IMPORT:
        out.add(Action.RUN_IMPORT)
    elif name is E.CANCEL_IMPORT:
        out.add(Action.STOP_IMPORT)
    elif isinstance(event, ImportFinished):
        out.send(ReceiptKind.IMPORTED, counts=event.counts)
        out.add(NotifyCoordinators(topic=f"transfer.{target.value}"))
    elif isinstance(event, ImportFailed):
        out.send(ReceiptKind.FAILED, reference=event.reference, reason=event.reason)
        out.add(NotifyCoordinators(topic="transfer.import_failed"))
    elif name is E.EXPIRE:
        out.add(Action.DELETE_SEALED_ENVELOPE, NotifyCoordinators(topic="transfer.expired"))
    elif isinstance(event, SendMessage):
        out.send(ReceiptKind.MESSAGE, bind=False, text=event.text)
    elif name is E.MESSAGE_RECEIVED:
        out.add(NotifyCoordinators(topic="transfer.message"))


# ---------------------------------------------------------------------------------------------- delivery

# spec/transfer.md §7: exponential backoff with full jitter, base 2 s, cap 1 h, until the transfer expires.
RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 3600.0
# Refusals that can heal by themselves: the district may switch transfers back on, a key cache refresh,
# a clock corrected, a busy database.
RETRYABLE_CODES = frozenset({
    "transfer.disabled", "signature.expired", "signature.not_yet_valid", "signature.key_unknown",
    "signature.replayed", "storage.busy", "transfer.upload_in_progress",
})  # fmt: skip


def retry_delay(
    attempt: int, *, jitter: float, base: float = RETRY_BASE_SECONDS, cap: float = RETRY_CAP_SECONDS
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): ``jitter * min(cap, base * 2**attempt)``.

    ``jitter`` is the caller's uniform random number in [0, 1) ("full jitter"), so this stays pure.
    """
    if type(attempt) is not int or attempt < 0:
        raise InvalidInput("attempt must be 0 or more", field="attempt")
    if not 0.0 <= jitter < 1.0:
        raise InvalidInput("jitter must be in [0, 1)", field="jitter")
    return jitter * min(cap, base * 2.0 ** min(attempt, 64))


def is_permanent_refusal(status: int, code: str | None) -> bool:
    """Whether an HTTP answer to a delivery means "never" (feed DeliveryRefused) rather than "later"."""
    if status in (408, 425, 429) or status >= 500 or status < 400:
        return False
    return code not in RETRYABLE_CODES


def transitions(side: Side) -> Iterable[tuple[Any, TransferEvent, Any, Actor]]:
    """(state, event, next state, actor) rows, table order: what spec/tools/diagrams.py renders."""
    actors = ACTORS[side]
    for (state, event), target in TRANSITIONS[side].items():
        yield state, event, target, actors[event]
