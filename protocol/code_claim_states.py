"""The transfer-code life cycle at the node that made the code, and the throttle on guesses
(spec/codes.md §7.3-7.5).

A code is ``active`` for 30 days. A destination that proves it knows the code (the proof is crypto's;
here it is an event) ``claim``s it: the source seals the records to that destination and the code is
``claimed``. The destination's import ``consume``s it (``used``, for good); cancelling the import
``release``s it back to ``active`` so it can be entered again. The source may ``revoke`` an active code.
The claimed code follows its transfer to the end (:func:`follow_transfer`): a transfer the source cancelled
(and the destination confirmed) or that was locked by wrong codes ``withdraw``s it (``revoked``); one that
expired or could not be delivered ``lapse``s it back to ``active``, to be entered again while it is valid.

Two limits on guessing, with different lifetimes: failed claims against one code are part of the code's
state and lock it for good at the limit (like wrong codes lock a transfer); failed claims from one peer
are a rate, kept by the caller as timestamps and judged by :class:`Throttle` (sliding window plus
exponential backoff), which forgets them as time passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from protocol.errors import InvalidInput, SatchelError
from protocol.receipts import check_domain, check_text, check_time, check_ulid
from protocol.transfer_code import CodeSameNode

DEFAULT_VALIDITY = timedelta(days=30)
DEFAULT_MAX_FAILED_CLAIMS = 5
MAX_CODE_ID = 128


class CodeState(StrEnum):
    ACTIVE = "active"
    CLAIMED = "claimed"
    USED = "used"
    REVOKED = "revoked"
    EXPIRED = "expired"
    LOCKED = "locked"


class CodeEvent(StrEnum):
    CLAIM = "claim"
    CLAIM_FAILED = "claim_failed"
    LOCK_OUT = "lock_out"  # the failed claim that reaches the limit
    RELEASE = "release"
    CONSUME = "consume"
    REVOKE = "revoke"
    EXPIRE = "expire"
    WITHDRAW = "withdraw"  # the code's transfer was cancelled or locked
    LAPSE = "lapse"  # the code's transfer expired or could not be delivered


class CodeActor(StrEnum):
    SOURCE_COORDINATOR = "source_coordinator"
    DESTINATION_NODE = "destination_node"
    SOURCE_NODE = "source_node"  # following the code's transfer to its end
    TIMER = "timer"


C, Ev = CodeState, CodeEvent
TRANSITIONS: dict[tuple[CodeState, CodeEvent], CodeState] = {
    (C.ACTIVE, Ev.CLAIM): C.CLAIMED,
    (C.ACTIVE, Ev.CLAIM_FAILED): C.ACTIVE,
    (C.ACTIVE, Ev.LOCK_OUT): C.LOCKED,
    (C.ACTIVE, Ev.REVOKE): C.REVOKED,
    (C.ACTIVE, Ev.EXPIRE): C.EXPIRED,
    (C.CLAIMED, Ev.CLAIM): C.CLAIMED,  # the same destination asking again gets the same answer
    (C.CLAIMED, Ev.RELEASE): C.ACTIVE,
    (C.CLAIMED, Ev.CONSUME): C.USED,
    (C.CLAIMED, Ev.WITHDRAW): C.REVOKED,
    (C.CLAIMED, Ev.LAPSE): C.ACTIVE,
    (C.USED, Ev.CONSUME): C.USED,
}
ACTORS: dict[CodeEvent, CodeActor] = {
    Ev.CLAIM: CodeActor.DESTINATION_NODE,
    Ev.CLAIM_FAILED: CodeActor.DESTINATION_NODE,
    Ev.LOCK_OUT: CodeActor.DESTINATION_NODE,
    Ev.RELEASE: CodeActor.DESTINATION_NODE,
    Ev.CONSUME: CodeActor.DESTINATION_NODE,
    Ev.REVOKE: CodeActor.SOURCE_COORDINATOR,
    Ev.EXPIRE: CodeActor.TIMER,
    Ev.WITHDRAW: CodeActor.SOURCE_NODE,
    Ev.LAPSE: CodeActor.SOURCE_NODE,
}
PLAIN_EVENTS = (Ev.REVOKE, Ev.EXPIRE, Ev.WITHDRAW, Ev.LAPSE)  # events that carry no data


class CodeTransitionNotAllowed(SatchelError):
    """The event cannot happen in the transfer code's state; ``state`` and ``event`` say which."""

    code = "code.transition_not_allowed"
    default_hint = "`satchel codes list` shows the code's state; spec/codes.md §7.3 says what can happen in it"

    def __init__(self, message: str, *, state: str = "", event: str = "", hint: str | None = None) -> None:
        super().__init__(message, field="state", hint=hint)
        self.state = state
        self.event = event


class CodeUsed(CodeTransitionNotAllowed):
    """The transfer code was already used."""

    code = "code.used"
    default_hint = "a transfer code works once; ask the source district for a new code"


class CodeExpired(CodeTransitionNotAllowed):
    """The transfer code's validity (30 days) is over."""

    code = "code.expired"
    default_hint = "transfer codes work for 30 days; ask the source district for a new code"


class CodeRevoked(CodeTransitionNotAllowed):
    """The source district withdrew the transfer code."""

    code = "code.revoked"
    default_hint = "the source district withdrew this code; ask it for a new one"


class CodeLocked(CodeTransitionNotAllowed):
    """Too many failed claims were made against this transfer code; it is locked for good."""

    code = "code.locked"
    default_hint = "too many wrong guesses were made for this code; ask the source district for a new one"


class CodeInUse(CodeTransitionNotAllowed):
    """Another district holds a claim on this transfer code."""

    code = "code.in_use"
    default_hint = "another district is importing with this code; it can be entered again if they cancel"


class CodeWrongDestination(SatchelError):
    """The transfer code is bound to another destination district."""

    code = "code.wrong_destination"
    default_hint = "the source district made this code for another district; ask it for a code for yours"


class CodeUnknown(SatchelError):
    """No code matches, or the proof does not verify: one answer for both, so guessing teaches nothing."""

    code = "code.unknown"
    default_hint = "check the code with the source district's coordinator; a few wrong tries lock it"


class CodeNoStudents(SatchelError):
    """The transfer code is valid, but none of the students in its scope is enrolled at the source any more."""

    code = "code.no_students"
    default_hint = (
        "call the source district's coordinator: the student may have left or been renumbered there; the code "
        "is not used up and works again if a student in its scope is enrolled again"
    )


class CodeThrottled(SatchelError):
    """Too many failed code claims from this district; try again after ``retry_after`` seconds."""

    code = "code.throttled"
    default_hint = "too many failed code claims from this district; wait and try again"

    def __init__(self, message: str, *, retry_after: timedelta) -> None:
        seconds = max(1, int(-(-retry_after.total_seconds() // 1)))
        super().__init__(message, field=None, hint=f"too many wrong codes; try again in {seconds} seconds")
        self.retry_after = seconds


class CodeActorNotAllowed(SatchelError):
    """This party may not cause this event on a transfer code."""

    code = "code.actor_not_allowed"
    default_hint = "only the party named in spec/codes.md §7.3 may cause this event"


_STATE_ERRORS: dict[CodeState, type[CodeTransitionNotAllowed]] = {
    C.USED: CodeUsed, C.EXPIRED: CodeExpired, C.REVOKED: CodeRevoked, C.LOCKED: CodeLocked, C.CLAIMED: CodeInUse,
}  # fmt: skip


def _refusal(state: CodeState, event: CodeEvent) -> CodeTransitionNotAllowed:
    cls = _STATE_ERRORS.get(state, CodeTransitionNotAllowed)
    return cls(
        f"event {event.value!r} is not allowed in state {state.value!r} (transfer code)",
        state=state.value,
        event=event.value,
    )


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """``destination`` proved the code; ``transfer_id`` is the id the source gives the transfer it seals."""

    destination: str
    transfer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimFailed:
    destination: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """The destination cancelled the import (it rejected the code's transfer); the code may be entered again."""

    destination: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Consume:
    """The destination imported the code's transfer (its ``imported`` receipt arrived)."""

    destination: str


CodeEventData = Claim | ClaimFailed | Release | Consume | CodeEvent
_NAMES: dict[type, CodeEvent] = {Claim: Ev.CLAIM, Release: Ev.RELEASE, Consume: Ev.CONSUME}


# ---------------------------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True, kw_only=True)
class SealTransfer:
    """Seal the code's records (one student or a grade) to ``destination`` as transfer ``transfer_id``."""

    destination: str
    transfer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerClaim:
    """Answer the claim with the transfer that carries the records (the same one on a repeated claim)."""

    transfer_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CountFailedClaim:
    failures: int
    remaining: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EraseVerifier:
    """Forget what verifies claims: the code opens nothing any more."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyCoordinators:
    topic: str


CodeEffect = SealTransfer | AnswerClaim | CountFailedClaim | EraseVerifier | NotifyCoordinators


# ---------------------------------------------------------------------------------------------- status


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeStatus:
    """What the source node stores about one transfer code (never the code itself in clear)."""

    code_id: str
    source_domain: str
    state: CodeState
    created: datetime
    expires: datetime
    bound_destination: str | None = None
    claimed_by: str | None = None
    transfer_id: str | None = None
    failed_claims: int = 0
    max_failed_claims: int = DEFAULT_MAX_FAILED_CLAIMS

    def __post_init__(self) -> None:
        check_text(self.code_id, "code_id", MAX_CODE_ID, required=True, error=InvalidInput)
        check_domain(self.source_domain, "source_domain", InvalidInput)
        if not isinstance(self.state, CodeState):
            raise InvalidInput("state must be a CodeState", field="state")
        check_time(self.created, "created", InvalidInput)
        check_time(self.expires, "expires", InvalidInput)
        if self.expires <= self.created:
            raise InvalidInput("a code expires after it is made", field="expires")
        for name in ("bound_destination", "claimed_by"):
            if getattr(self, name) is not None:
                check_domain(getattr(self, name), name, InvalidInput)
        if self.bound_destination == self.source_domain:
            raise CodeSameNode("a code cannot be bound to the node that makes it", field="bound_destination")
        if (self.claimed_by is None) != (self.state not in (C.CLAIMED, C.USED)):
            raise InvalidInput(
                "a claimed or used code names its destination, others none", field="claimed_by"
            )
        if self.transfer_id is not None:
            check_ulid(self.transfer_id, "transfer_id", InvalidInput)
        if type(self.max_failed_claims) is not int or not 1 <= self.max_failed_claims <= 100:
            raise InvalidInput("max_failed_claims must be 1 to 100", field="max_failed_claims")
        if type(self.failed_claims) is not int or not 0 <= self.failed_claims <= self.max_failed_claims:
            raise InvalidInput("failed_claims must be 0 to max_failed_claims", field="failed_claims")


def new_code(
    *,
    code_id: str,
    source_domain: str,
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
    bound_destination: str | None = None,
    max_failed_claims: int = DEFAULT_MAX_FAILED_CLAIMS,
) -> CodeStatus:
    return CodeStatus(
        code_id=code_id, source_domain=source_domain, state=C.ACTIVE, created=now, expires=now + validity,
        bound_destination=bound_destination, max_failed_claims=max_failed_claims,
    )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeTransition:
    previous: CodeState
    event: CodeEvent
    status: CodeStatus
    effects: tuple[CodeEffect, ...]


def event_name(status: CodeStatus, event: CodeEventData) -> CodeEvent:
    if isinstance(event, CodeEvent):
        if event not in PLAIN_EVENTS:
            raise InvalidInput(f"{event.value!r} carries data: pass its event class", field="event")
        return event
    if isinstance(event, ClaimFailed):
        return Ev.LOCK_OUT if status.failed_claims + 1 >= status.max_failed_claims else Ev.CLAIM_FAILED
    if type(event) in _NAMES:
        return _NAMES[type(event)]
    raise InvalidInput(f"{type(event).__name__} is not a transfer-code event", field="event")


def apply(status: CodeStatus, event: CodeEventData, *, actor: CodeActor, now: datetime) -> CodeTransition:
    """Apply ``event``; raise the coded error a destination or coordinator should see when it cannot happen."""
    check_time(now, "now", InvalidInput)
    name = event_name(status, event)
    if ACTORS[name] is not actor:
        raise CodeActorNotAllowed(f"{actor} may not cause {name.value!r} (only {ACTORS[name].value})")
    destination = getattr(event, "destination", None)
    if destination is not None:
        check_domain(destination, "destination", InvalidInput)
    if isinstance(event, Claim):
        _check_claim(status, event, now)
    target = TRANSITIONS.get((status.state, name))
    if target is None:
        raise _refusal(status.state, name)
    if isinstance(event, Release | Consume) and destination != status.claimed_by:
        raise CodeInUse(
            f"event {name.value!r} is not allowed in state {status.state.value!r}: another district holds the claim",
            state=status.state.value,
            event=name.value,
        )
    changes: dict[str, Any] = {"state": target}
    effects: list[CodeEffect] = []
    if isinstance(event, Claim):
        if status.state is C.ACTIVE:
            changes |= {"claimed_by": event.destination, "transfer_id": event.transfer_id}
            effects += [SealTransfer(destination=event.destination, transfer_id=event.transfer_id),
                        NotifyCoordinators(topic="code.claimed")]  # fmt: skip
        transfer_id = changes.get("transfer_id", status.transfer_id)
        assert transfer_id is not None  # an active code just claimed, or a claimed one: both name the transfer
        effects.append(AnswerClaim(transfer_id=transfer_id))
    elif name in (Ev.CLAIM_FAILED, Ev.LOCK_OUT):
        failures = status.failed_claims + 1
        changes["failed_claims"] = failures
        effects.append(CountFailedClaim(failures=failures, remaining=status.max_failed_claims - failures))
    elif name in (Ev.RELEASE, Ev.LAPSE):
        changes |= {"claimed_by": None, "transfer_id": None}
        effects.append(NotifyCoordinators(topic="code.released"))
    elif name is Ev.WITHDRAW:
        changes["claimed_by"] = None  # revoked: nobody holds it; the transfer it started stays named
    if target is not status.state and target in (C.USED, C.REVOKED, C.EXPIRED, C.LOCKED):
        effects += [EraseVerifier(), NotifyCoordinators(topic=f"code.{target.value}")]
    return CodeTransition(
        previous=status.state, event=name, status=replace(status, **changes), effects=tuple(effects)
    )


def _check_claim(status: CodeStatus, claim: Claim, now: datetime) -> None:
    check_ulid(claim.transfer_id, "transfer_id", InvalidInput)
    if claim.destination == status.source_domain:
        raise CodeSameNode("a transfer code cannot be used on the node that made it")
    if status.bound_destination is not None and claim.destination != status.bound_destination:
        raise CodeWrongDestination("this transfer code was made for another district", field="destination")
    if status.state is C.CLAIMED and claim.destination != status.claimed_by:
        raise _refusal(status.state, Ev.CLAIM)
    if status.state is C.ACTIVE and now >= status.expires:
        raise CodeExpired(
            "event 'claim' is not allowed in state 'expired' (the code's 30 days are over)",
            state=C.EXPIRED.value,
            event=Ev.CLAIM.value,
        )


# What the sender's side of the code's transfer reaching a state does to the code. States not named leave it
# claimed: the transfer is still on its way, or its import may run again (failed, partial).
_TRANSFER_ENDINGS: dict[str, CodeEvent] = {
    "imported": Ev.CONSUME,
    "rejected": Ev.RELEASE,
    "cancelled": Ev.WITHDRAW,
    "locked": Ev.WITHDRAW,
    "expired": Ev.LAPSE,  # withdraw, when it was being cancelled (see follow_transfer)
    "undeliverable": Ev.LAPSE,
}


def follow_transfer(
    status: CodeStatus, *, transfer_id: str, transfer_state: str, now: datetime, previous_state: str = ""
) -> tuple[CodeTransition, ...]:
    """The code's transitions when its transfer (``transfer_id``, the sender's side) reaches ``transfer_state``
    from ``previous_state``.

    Nothing when the code does not hold a claim for that transfer (a code released and claimed again holds
    another). A lapsed code past its 30 days expires in the same step. A transfer the source was cancelling
    when it expired withdraws the code: the coordinator wanted it stopped, whether or not the destination
    confirmed in time.
    """
    name = _TRANSFER_ENDINGS.get(transfer_state)
    if name is Ev.LAPSE and previous_state == "cancel_requested":
        name = Ev.WITHDRAW
    if name is None or status.state is not C.CLAIMED or status.transfer_id != transfer_id:
        return ()
    assert status.claimed_by is not None  # a claimed code names its destination (CodeStatus checks)
    event: CodeEventData = (
        Consume(destination=status.claimed_by) if name is Ev.CONSUME
        else Release(destination=status.claimed_by) if name is Ev.RELEASE
        else name
    )  # fmt: skip
    first = apply(status, event, actor=ACTORS[name], now=now)
    if not due_events(first.status, now=now):
        return (first,)
    # Released past its 30 days: it expires at once, and the coordinators hear that, not that it was freed.
    quiet = replace(first, effects=tuple(e for e in first.effects if not isinstance(e, NotifyCoordinators)))
    return quiet, apply(first.status, Ev.EXPIRE, actor=CodeActor.TIMER, now=now)


def due_events(status: CodeStatus, *, now: datetime) -> tuple[CodeEvent, ...]:
    """``expire`` once an active code reaches its expiry (a claimed code expires if it is released late)."""
    return (Ev.EXPIRE,) if status.state is C.ACTIVE and now >= status.expires else ()


# ---------------------------------------------------------------------------------------------- throttle


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottleDecision:
    allowed: bool
    retry_after: timedelta = timedelta(0)

    def raise_if_denied(self) -> None:
        if not self.allowed:
            raise CodeThrottled(
                "this district has made too many failed code claims", retry_after=self.retry_after
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Throttle:
    """Failed claims per peer: at most ``max_failures`` in any ``window``, and after ``free_failures`` in
    the window each further attempt waits ``base_delay * 2**k`` (capped) after the last failure."""

    max_failures: int = 20
    window: timedelta = timedelta(hours=1)
    free_failures: int = 2
    base_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if type(self.max_failures) is not int or self.max_failures < 1:
            raise InvalidInput("max_failures must be 1 or more", field="max_failures")
        if type(self.free_failures) is not int or not 0 <= self.free_failures < self.max_failures:
            raise InvalidInput("free_failures must be 0 to max_failures - 1", field="free_failures")
        for name in ("window", "base_delay", "max_delay"):
            if not isinstance(getattr(self, name), timedelta) or getattr(self, name) <= timedelta(0):
                raise InvalidInput(f"{name} must be a positive duration", field=name)

    def decide(self, *, now: datetime, peer_failures: Sequence[datetime]) -> ThrottleDecision:
        """Whether the peer may try a claim at ``now``, given the times of its earlier failed claims."""
        check_time(now, "now", InvalidInput)
        recent = sorted(t for t in peer_failures if now - self.window < t <= now)
        waits: list[timedelta] = []
        if len(recent) >= self.max_failures:
            # Allowed again once enough of the window's failures have aged out of it.
            waits.append(recent[len(recent) - self.max_failures] + self.window - now)
        extra = len(recent) - self.free_failures
        if extra > 0:
            delay = min(self.max_delay, self.base_delay * 2 ** min(extra - 1, 40))
            waits.append(recent[-1] + delay - now)
        wait = max(waits, default=timedelta(0))
        return (
            ThrottleDecision(allowed=True)
            if wait <= timedelta(0)
            else ThrottleDecision(allowed=False, retry_after=wait)
        )
