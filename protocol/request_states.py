"""The records-request state machine (spec/requests.md §2).

One table serves both districts: a request is ``requested`` until the releasing district ``released`` or
``rejected`` it or the requester ``cancelled`` it, and both nodes walk the same states. What differs is
who causes an event, so events done at one node and the same event arriving from the peer have distinct
names (``release`` at the releaser, ``released_received`` at the requester), each with one actor, and
each side accepts only its own subset. (Transfers need two tables because the two sides' states differ.)

The releasing district holds the records, so its answer wins a race: a ``released`` that crosses the
requester's cancellation moves the requester from ``cancelled`` to ``released``. A release is a transfer,
and a transfer can end without the records being opened (refused, locked, expired, withdrawn or never
delivered): the releaser's node then applies ``release_failed`` (:func:`follow_transfer`), tells the
requester, and the request is ``release_failed`` at both nodes, to be answered again (released in a new
transfer, or rejected) or cancelled. Being overdue is
derived from the dates (:func:`protocol.workdays.is_overdue`): the working days since the request was opened
while it is ``requested``, and since the day the release failed while it is ``release_failed`` (the releaser
owes an answer again, on a clock of its own); ``mark_overdue`` records the flag and tells the coordinators,
and while the request stays unanswered the timer applies it again every ``REMIND_WORKING_DAYS`` working
days, each time a reminder. A :class:`Message` between the coordinators
changes no state: it is written at either node in any state but ``absent`` and told to the other's
coordinators when it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from protocol.errors import InvalidInput, SatchelError
from protocol.receipts import check_domain, check_time, check_ulid
from protocol.records_request import (
    Person,
    RecordsRequest,
    RequestResponse,
    ResponseKind,
    check_release_allowed,
)
from protocol.transfer_status import SenderState
from protocol.workdays import (
    DEFAULT_WORKING_DAYS,
    MAX_WORKING_DAYS,
    due_date,
    is_overdue,
    working_days_between,
)

# An overdue request is told to its coordinators again each week of working days it stays unanswered.
REMIND_WORKING_DAYS = 5


class RequestSide(StrEnum):
    REQUESTER = "requester"
    RELEASER = "releaser"


class RequestActor(StrEnum):
    REQUESTER_COORDINATOR = "requester_coordinator"
    RELEASER_COORDINATOR = "releaser_coordinator"
    REQUESTER_NODE = "requester_node"
    RELEASER_NODE = "releaser_node"
    TIMER = "timer"


class RequestState(StrEnum):
    ABSENT = "absent"
    REQUESTED = "requested"
    RELEASED = "released"
    RELEASE_FAILED = "release_failed"  # the release's transfer ended unopened: to be answered again
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class RequestEvent(StrEnum):
    SUBMIT = "submit"
    REQUEST_RECEIVED = "request_received"
    RELEASE = "release"
    REJECT = "reject"
    CANCEL = "cancel"
    RELEASED_RECEIVED = "released_received"
    REJECTED_RECEIVED = "rejected_received"
    CANCELLED_RECEIVED = "cancelled_received"
    # The release's transfer ended without the records being opened: seen by the releaser's node, and the
    # same news arriving at the requester.
    RELEASE_FAILED = "release_failed"
    RELEASE_FAILED_RECEIVED = "release_failed_received"
    MARK_OVERDUE = "mark_overdue"
    # The coordinators' thread: a message written at one node, and the same message arriving at the other.
    MESSAGE_TO_RELEASER = "message_to_releaser"
    MESSAGE_TO_REQUESTER = "message_to_requester"
    MESSAGE_FROM_REQUESTER = "message_from_requester"
    MESSAGE_FROM_RELEASER = "message_from_releaser"


St, Ev, Ac = RequestState, RequestEvent, RequestActor
_ANSWERED = (St.RELEASED, St.REJECTED, St.CANCELLED)
# States in which this node has an answer to give again when the request is delivered again.
_RESENDING = (*_ANSWERED, St.RELEASE_FAILED)

# The ends of a release's transfer, at the releaser (spec/transfer.md §3, sender side), that leave the records
# unopened at the requester, and what each means, in the words the requester is sent.
RELEASE_ENDINGS: dict[SenderState, str] = {
    SenderState.REJECTED: "the requesting district refused the records",
    SenderState.LOCKED: "it was locked after too many wrong codes",
    SenderState.EXPIRED: "it expired before the records were opened",
    SenderState.CANCELLED: "the releasing district withdrew it",
    SenderState.UNDELIVERABLE: "it could not be delivered",
}

TRANSITIONS: dict[tuple[RequestState, RequestEvent], RequestState] = {
    (St.ABSENT, Ev.SUBMIT): St.REQUESTED,
    (St.ABSENT, Ev.REQUEST_RECEIVED): St.REQUESTED,
    (St.REQUESTED, Ev.RELEASE): St.RELEASED,
    (St.REQUESTED, Ev.REJECT): St.REJECTED,
    (St.REQUESTED, Ev.CANCEL): St.CANCELLED,
    (St.REQUESTED, Ev.RELEASED_RECEIVED): St.RELEASED,
    (St.REQUESTED, Ev.REJECTED_RECEIVED): St.REJECTED,
    (St.REQUESTED, Ev.CANCELLED_RECEIVED): St.CANCELLED,
    (St.REQUESTED, Ev.MARK_OVERDUE): St.REQUESTED,
    # A release that failed is owed an answer again, and is flagged and reminded of as one never answered.
    (St.RELEASE_FAILED, Ev.MARK_OVERDUE): St.RELEASE_FAILED,
    # The releaser's answer wins over a cancellation it had not seen yet.
    (St.CANCELLED, Ev.RELEASED_RECEIVED): St.RELEASED,
    (St.CANCELLED, Ev.REJECTED_RECEIVED): St.REJECTED,
    # The release's transfer ended unopened: the request is open again at both nodes, until answered anew.
    (St.RELEASED, Ev.RELEASE_FAILED): St.RELEASE_FAILED,
    (St.RELEASED, Ev.RELEASE_FAILED_RECEIVED): St.RELEASE_FAILED,
    # The release's own answer never arrived (its delivery given up), only the news that it failed.
    (St.REQUESTED, Ev.RELEASE_FAILED_RECEIVED): St.RELEASE_FAILED,
    (St.RELEASE_FAILED, Ev.RELEASE): St.RELEASED,
    (St.RELEASE_FAILED, Ev.REJECT): St.REJECTED,
    (St.RELEASE_FAILED, Ev.CANCEL): St.CANCELLED,
    (St.RELEASE_FAILED, Ev.RELEASED_RECEIVED): St.RELEASED,
    (St.RELEASE_FAILED, Ev.REJECTED_RECEIVED): St.REJECTED,
    (St.RELEASE_FAILED, Ev.CANCELLED_RECEIVED): St.CANCELLED,
    # Redeliveries change nothing.
    (St.REQUESTED, Ev.REQUEST_RECEIVED): St.REQUESTED,
    **{(s, Ev.REQUEST_RECEIVED): s for s in _RESENDING},
    (St.RELEASED, Ev.RELEASED_RECEIVED): St.RELEASED,
    (St.REJECTED, Ev.REJECTED_RECEIVED): St.REJECTED,
    (St.CANCELLED, Ev.CANCELLED_RECEIVED): St.CANCELLED,
    # The news that a release failed, delivered again, or arriving once the requester cancelled or the
    # releaser rejected after all: it changes nothing.
    **{(s, Ev.RELEASE_FAILED_RECEIVED): s for s in (St.RELEASE_FAILED, St.REJECTED, St.CANCELLED)},
    # Messages change nothing, before an answer and after it (a question about what was released, say).
    **{(s, e): s for s in (St.REQUESTED, *_RESENDING) for e in (Ev.MESSAGE_TO_RELEASER, Ev.MESSAGE_TO_REQUESTER,
                                                                Ev.MESSAGE_FROM_REQUESTER, Ev.MESSAGE_FROM_RELEASER)},
}
ACTORS: dict[RequestEvent, RequestActor] = {
    Ev.SUBMIT: Ac.REQUESTER_COORDINATOR,
    Ev.REQUEST_RECEIVED: Ac.REQUESTER_NODE,
    Ev.RELEASE: Ac.RELEASER_COORDINATOR,
    Ev.REJECT: Ac.RELEASER_COORDINATOR,
    Ev.CANCEL: Ac.REQUESTER_COORDINATOR,
    Ev.RELEASED_RECEIVED: Ac.RELEASER_NODE,
    Ev.REJECTED_RECEIVED: Ac.RELEASER_NODE,
    Ev.CANCELLED_RECEIVED: Ac.REQUESTER_NODE,
    Ev.RELEASE_FAILED: Ac.RELEASER_NODE,
    Ev.RELEASE_FAILED_RECEIVED: Ac.RELEASER_NODE,
    Ev.MARK_OVERDUE: Ac.TIMER,
    Ev.MESSAGE_TO_RELEASER: Ac.REQUESTER_COORDINATOR,
    Ev.MESSAGE_TO_REQUESTER: Ac.RELEASER_COORDINATOR,
    Ev.MESSAGE_FROM_REQUESTER: Ac.REQUESTER_NODE,
    Ev.MESSAGE_FROM_RELEASER: Ac.RELEASER_NODE,
}
SIDE_EVENTS: dict[RequestSide, frozenset[RequestEvent]] = {
    RequestSide.REQUESTER: frozenset({
        Ev.SUBMIT, Ev.CANCEL, Ev.RELEASED_RECEIVED, Ev.REJECTED_RECEIVED, Ev.RELEASE_FAILED_RECEIVED,
        Ev.MARK_OVERDUE, Ev.MESSAGE_TO_RELEASER, Ev.MESSAGE_FROM_RELEASER,
    }),
    RequestSide.RELEASER: frozenset({
        Ev.REQUEST_RECEIVED, Ev.RELEASE, Ev.REJECT, Ev.RELEASE_FAILED, Ev.CANCELLED_RECEIVED, Ev.MARK_OVERDUE,
        Ev.MESSAGE_TO_REQUESTER, Ev.MESSAGE_FROM_REQUESTER,
    }),
}  # fmt: skip


class RequestTransitionNotAllowed(SatchelError):
    """The event cannot happen in the request's current state; ``state`` and ``event`` say which."""

    code = "request.transition_not_allowed"
    default_hint = "`satchel requests show ID` says what can be done next (spec/requests.md §2)"

    def __init__(self, message: str, *, state: str = "", event: str = "", hint: str | None = None) -> None:
        super().__init__(message, field="state", hint=hint)
        self.state = state
        self.event = event


class RequestAlreadyAnswered(RequestTransitionNotAllowed):
    """The request was already released or rejected."""

    code = "request.already_answered"
    default_hint = (
        "the request was already released or rejected; see its timeline for the answer. A release whose "
        "transfer ends unopened (refused, locked, expired, cancelled, undeliverable) can be answered again"
    )


class RequestCancelled(RequestTransitionNotAllowed):
    """The requesting district cancelled the request."""

    code = "request.cancelled"
    default_hint = "the requesting district cancelled this request; nothing needs to be released"


class RequestActorNotAllowed(SatchelError):
    """This party may not cause this event on a records request."""

    code = "request.actor_not_allowed"
    default_hint = "only the party named in spec/requests.md §2 may cause this event"


class RequestNotReceived(SatchelError):
    """An answer or message about a request this node does not hold (yet); the sender tries again later.

    The request's own delivery may be behind it (spec/requests.md §4 step 6)."""

    code = "request.not_received"
    default_hint = "the request itself has not arrived at this node yet; the answer is sent again later"


class RequestMismatch(SatchelError):
    """A message is about another request or other districts, or differs from the one stored."""

    code = "request.mismatch"
    default_hint = "the message is about another request or between other districts; it was ignored"


_USER_EVENTS = frozenset({Ev.RELEASE, Ev.REJECT, Ev.CANCEL, Ev.CANCELLED_RECEIVED})


def _refusal(state: RequestState, event: RequestEvent) -> RequestTransitionNotAllowed:
    cls: type[RequestTransitionNotAllowed] = RequestTransitionNotAllowed
    if event in _USER_EVENTS and state is St.CANCELLED:
        cls = RequestCancelled
    elif event in _USER_EVENTS and state in _ANSWERED:
        cls = RequestAlreadyAnswered
    return cls(
        f"event {event.value!r} is not allowed in state {state.value!r} (records request)",
        state=state.value,
        event=event.value,
    )


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class Submit:
    request: RecordsRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A request from the requesting node, already verified (verify_records_request)."""

    request: RecordsRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """The releasing coordinator releases; ``transfer_id`` is the id of the transfer to seal for it."""

    person: Person
    transfer_id: str
    comments: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    person: Person
    comments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    person: Person
    comments: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseFailed:
    """Releaser: the transfer ``transfer_id`` that carries the release reached ``ending`` (its sender side), one
    of RELEASE_ENDINGS; ``person`` is who released, named in the news sent to the requester."""

    transfer_id: str
    ending: SenderState
    person: Person
    # The requesting district opened the records before it refused them (its signed receipt says it accepted
    # them), and the reason its receipt gave: the records did reach it, which the requester is told.
    opened: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A coordinator writes to the other district's coordinators about the request."""

    person: Person
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseArrived:
    """An answer from the peer, already verified (verify_request_response)."""

    response: RequestResponse


RequestEventData = (
    Submit | RequestReceived | Release | Reject | Cancel | ReleaseFailed | Message | ResponseArrived | RequestEvent
)
_NAMES: dict[type, RequestEvent] = {
    Submit: Ev.SUBMIT, RequestReceived: Ev.REQUEST_RECEIVED, Release: Ev.RELEASE, Reject: Ev.REJECT,
    Cancel: Ev.CANCEL, ReleaseFailed: Ev.RELEASE_FAILED,
}  # fmt: skip
_ARRIVED: dict[ResponseKind, RequestEvent] = {
    ResponseKind.RELEASED: Ev.RELEASED_RECEIVED,
    ResponseKind.REJECTED: Ev.REJECTED_RECEIVED,
    ResponseKind.RELEASE_FAILED: Ev.RELEASE_FAILED_RECEIVED,
    ResponseKind.CANCELLED: Ev.CANCELLED_RECEIVED,
}


# ---------------------------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    """Sign (sign_records_request) and deliver to the releasing node, with retries."""

    request: RecordsRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResponse:
    """Sign (sign_request_response), store, and deliver to the peer, with retries."""

    response: RequestResponse


@dataclass(frozen=True, slots=True, kw_only=True)
class ResendResponse:
    """Answer a redelivered request with the signed response already sent, byte for byte."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordIncoming:
    """Store the peer's signed request or response in the timeline."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyCoordinators:
    topic: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SealReleaseTransfer:
    """Releaser: build the transfer (id ``transfer_id``) that carries the records, bound to the request."""

    transfer_id: str
    request_id: str


RequestEffect = (
    SendRequest | SendResponse | ResendResponse | RecordIncoming | NotifyCoordinators | SealReleaseTransfer
)


# ---------------------------------------------------------------------------------------------- status


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestStatus:
    side: RequestSide
    state: RequestState
    local_domain: str
    request: RecordsRequest | None = None
    opened_on: date | None = None  # the local day this node submitted or received the request
    transfer_id: str | None = None
    overdue_flagged: bool = False
    working_days: int = DEFAULT_WORKING_DAYS
    reminded_on: date | None = None  # the local day the coordinators were last told it is overdue
    # The local day this node saw the release fail (releaser) or heard so (requester); in release_failed only.
    failed_on: date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.side, RequestSide) or not isinstance(self.state, RequestState):
            raise InvalidInput("side and state must be RequestSide and RequestState", field="state")
        check_domain(self.local_domain, "local_domain", InvalidInput)
        if (self.request is None) != (self.state is St.ABSENT) or (self.opened_on is None) != (
            self.request is None
        ):
            raise InvalidInput(
                "a request and its opening day are known in every state but absent", field="request"
            )
        if self.transfer_id is not None:
            check_ulid(self.transfer_id, "transfer_id", InvalidInput)
        if type(self.working_days) is not int or not 1 <= self.working_days <= MAX_WORKING_DAYS:
            raise InvalidInput(f"working_days must be 1 to {MAX_WORKING_DAYS}", field="working_days")
        if self.reminded_on is not None and not self.overdue_flagged:
            raise InvalidInput("a request is reminded of only once it is flagged overdue", field="reminded_on")
        if (self.failed_on is None) == (self.state is St.RELEASE_FAILED):
            raise InvalidInput("the day a release failed is known in state release_failed only", field="failed_on")

    @property
    def peer_domain(self) -> str | None:
        if self.request is None:
            return None
        return self.request.to_domain if self.side is RequestSide.REQUESTER else self.request.from_domain

    @property
    def waiting_since(self) -> date | None:
        """The day the releaser's answer is owed from: the opening day while ``requested``, the day the release
        failed while ``release_failed``; None while no answer is owed."""
        if self.state is St.REQUESTED:
            return self.opened_on
        if self.state is St.RELEASE_FAILED:
            return self.failed_on
        return None

    def due_on(self, *, holidays: frozenset[date] = frozenset()) -> date | None:
        """The last day an answer is on time, while one is owed."""
        since = self.waiting_since
        return None if since is None else due_date(since, working_days=self.working_days, holidays=holidays)

    def overdue(self, *, today: date, holidays: frozenset[date] = frozenset()) -> bool:
        """Unanswered for more than ``working_days`` working days (derived, whatever the flag says)."""
        since = self.waiting_since
        if since is None:
            return False
        return is_overdue(since, today, working_days=self.working_days, holidays=holidays)

    def reminder_due(self, *, today: date, holidays: frozenset[date] = frozenset()) -> bool:
        """Flagged overdue, still unanswered, and ``REMIND_WORKING_DAYS`` working days since the coordinators
        were last told (a request flagged before reminders were kept counts from its last day on time)."""
        if not self.overdue_flagged or not self.overdue(today=today, holidays=holidays):
            return False
        told = self.reminded_on or self.due_on(holidays=holidays)
        assert told is not None  # overdue() holds a day the answer is owed from
        return working_days_between(told, today, holidays=holidays) >= REMIND_WORKING_DAYS


def new_request_status(
    *, side: RequestSide, local_domain: str, working_days: int = DEFAULT_WORKING_DAYS
) -> RequestStatus:
    return RequestStatus(side=side, state=St.ABSENT, local_domain=local_domain, working_days=working_days)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTransition:
    previous: RequestState
    event: RequestEvent
    status: RequestStatus
    effects: tuple[RequestEffect, ...]


# ---------------------------------------------------------------------------------------------- engine


def event_name(status: RequestStatus, event: RequestEventData) -> RequestEvent:
    """The event's name; a message's depends on the side of the node it happens at (written at the requester,
    it is ``message_to_releaser``; arriving there, ``message_from_releaser``)."""
    requester = status.side is RequestSide.REQUESTER
    if isinstance(event, RequestEvent):
        if event is not Ev.MARK_OVERDUE:
            raise InvalidInput(f"{event.value!r} carries data: pass its event class", field="event")
        return event
    if isinstance(event, Message):
        return Ev.MESSAGE_TO_RELEASER if requester else Ev.MESSAGE_TO_REQUESTER
    if isinstance(event, ResponseArrived):
        if event.response.kind is ResponseKind.MESSAGE:
            return Ev.MESSAGE_FROM_RELEASER if requester else Ev.MESSAGE_FROM_REQUESTER
        return _ARRIVED[event.response.kind]
    if type(event) in _NAMES:
        return _NAMES[type(event)]
    raise InvalidInput(f"{type(event).__name__} is not a records-request event", field="event")


def apply(
    status: RequestStatus,
    event: RequestEventData,
    *,
    actor: RequestActor,
    now: datetime,
    holidays: frozenset[date] = frozenset(),
) -> RequestTransition:
    """Apply ``event`` caused by ``actor``; ``now`` is aware and in the district's time zone (its date counts).

    Raises RequestTransitionNotAllowed (or a subclass naming the common mistake), RequestActorNotAllowed,
    RequestMismatch, or request.student_not_enrolled when a release is not allowed.
    """
    check_time(now, "now", InvalidInput)
    name = event_name(status, event)
    state = status.state
    if name not in SIDE_EVENTS[status.side]:
        raise _refusal(state, name)
    if ACTORS[name] is not actor:
        raise RequestActorNotAllowed(f"{actor} may not cause {name.value!r} (only {ACTORS[name].value})")
    if (state, name) not in TRANSITIONS:
        raise _refusal(state, name)
    target = TRANSITIONS[(state, name)]
    today = now.date()
    changes: dict[str, Any] = {"state": target}
    effects: list[RequestEffect] = []
    if isinstance(event, Submit | RequestReceived):
        _check_new_request(status, event.request, name)
        if state is St.ABSENT:
            changes |= {"request": event.request, "opened_on": today}
            if isinstance(event, Submit):
                effects.append(SendRequest(request=event.request))
            else:
                effects += [RecordIncoming(), NotifyCoordinators(topic="request.received")]
        elif state in _RESENDING:
            effects.append(ResendResponse())
        return _done(status, name, changes, effects, today=today)
    request = status.request
    assert request is not None  # every state but absent holds it (checked on construction)
    if isinstance(event, ResponseArrived):
        _check_response(status, request, event.response)
        effects.append(RecordIncoming())
        if event.response.kind is ResponseKind.MESSAGE:
            effects.append(NotifyCoordinators(topic="request.message"))
        elif target is not state:
            effects.append(NotifyCoordinators(topic=f"request.{target.value}"))
            if event.response.transfer_id is not None:
                changes["transfer_id"] = event.response.transfer_id
    elif isinstance(event, Message):
        effects.append(SendResponse(response=_response(status, request, event, now)))
    elif isinstance(event, ReleaseFailed):
        if event.transfer_id != status.transfer_id:
            raise RequestMismatch("the transfer is not the one that released the request", field="transfer_id")
        if event.ending not in RELEASE_ENDINGS:
            raise InvalidInput(f"a transfer {event.ending.value} has not failed", field="ending")
        effects += [SendResponse(response=_response(status, request, event, now)),
                    NotifyCoordinators(topic="request.release_failed")]  # fmt: skip
    elif isinstance(event, Release | Reject | Cancel):
        if isinstance(event, Release):
            check_release_allowed(request, today=today)
            changes["transfer_id"] = event.transfer_id
        effects.append(SendResponse(response=_response(status, request, event, now)))
        if isinstance(event, Release):
            effects.append(SealReleaseTransfer(transfer_id=event.transfer_id, request_id=request.request_id))
    elif name is Ev.MARK_OVERDUE:
        if not status.overdue(today=today, holidays=holidays):
            raise RequestTransitionNotAllowed(
                f"event 'mark_overdue' is not allowed in state {state.value!r} before the request is overdue",
                state=state.value,
                event=name.value,
            )
        if not status.overdue_flagged or status.reminder_due(today=today, holidays=holidays):
            changes |= {"overdue_flagged": True, "reminded_on": today}
            effects.append(NotifyCoordinators(topic="request.overdue"))
    return _done(status, name, changes, effects, today=today)


def follow_transfer(
    status: RequestStatus, *, transfer_id: str, transfer_state: SenderState, person: Person, now: datetime,
    opened: bool = False, reason: str = "",
) -> RequestTransition | None:
    """The releaser's ``release_failed`` when the transfer of its release (``transfer_id``, the sender's side)
    reaches one of RELEASE_ENDINGS; None otherwise (another transfer, a request not released with it any
    more, a state that is no such ending).

    A receipt that arrives after the release failed (an expired transfer accepted late) changes the transfer,
    not the request: the requester holds the records, and a second release is rejected like any transfer.
    """
    if (
        status.side is not RequestSide.RELEASER
        or status.state is not St.RELEASED
        or status.transfer_id != transfer_id
        or transfer_state not in RELEASE_ENDINGS
    ):
        return None
    event = ReleaseFailed(transfer_id=transfer_id, ending=transfer_state, person=person, opened=opened, reason=reason)
    return apply(status, event, actor=Ac.RELEASER_NODE, now=now)


def due_events(
    status: RequestStatus, *, today: date, holidays: frozenset[date] = frozenset()
) -> tuple[RequestEvent, ...]:
    """``mark_overdue`` when the request becomes overdue, and again each time a reminder is due."""
    if status.overdue(today=today, holidays=holidays) and (
        not status.overdue_flagged or status.reminder_due(today=today, holidays=holidays)
    ):
        return (Ev.MARK_OVERDUE,)
    return ()


def _done(
    status: RequestStatus, name: RequestEvent, changes: dict[str, Any], effects: list[RequestEffect], *, today: date
) -> RequestTransition:
    target = changes["state"]
    if target is St.RELEASE_FAILED and status.state is not St.RELEASE_FAILED:
        # The releaser owes an answer again: a clock of its own from today, flagged and reminded afresh (a
        # flag from before the release would otherwise remind at once, or never flag this wait at all).
        changes |= {"failed_on": today, "overdue_flagged": False, "reminded_on": None}
    elif target is not St.RELEASE_FAILED:
        changes["failed_on"] = None
    return RequestTransition(
        previous=status.state, event=name, status=replace(status, **changes), effects=tuple(effects)
    )


def _check_new_request(status: RequestStatus, request: RecordsRequest, name: RequestEvent) -> None:
    mine = request.from_domain if name is Ev.SUBMIT else request.to_domain
    if mine != status.local_domain:
        raise RequestMismatch("the request is not from or to this district", field="to_domain")
    if status.request is not None and status.request != request:
        raise RequestMismatch("a different request was already stored under this id", field="request_id")


def _check_response(status: RequestStatus, request: RecordsRequest, response: RequestResponse) -> None:
    for name, expected in (
        ("request_id", request.request_id),
        ("from_domain", status.peer_domain),
        ("to_domain", status.local_domain),
    ):
        if getattr(response, name) != expected:
            raise RequestMismatch(f"the response's {name} is not this request's", field=name)
    if status.transfer_id is None or response.transfer_id is None:
        return
    # Released, the transfer is the one carrying the records; in any other state, one whose release failed.
    if status.state is St.RELEASED and response.transfer_id != status.transfer_id:
        raise RequestMismatch("the request was already released with another transfer", field="transfer_id")
    if status.state is not St.RELEASED and response.kind is ResponseKind.RELEASED and (
        response.transfer_id == status.transfer_id
    ):
        raise RequestMismatch("the release in that transfer already failed", field="transfer_id")


_MAX_REASON = 300  # of the requester's reason, quoted back in the news: the comments hold at most MAX_COMMENTS


def _ending_words(event: ReleaseFailed) -> str:
    """What became of the release's transfer: RELEASE_ENDINGS, unless the requester opened the records first."""
    if not event.opened:
        return RELEASE_ENDINGS[event.ending]
    reason = " ".join(event.reason.split())
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 1] + "…"
    return "the requesting district opened the records, then refused them" + (f" ({reason})" if reason else "")


def _response(
    status: RequestStatus,
    request: RecordsRequest,
    event: Release | Reject | Cancel | ReleaseFailed | Message,
    now: datetime,
) -> RequestResponse:
    kind = {Release: ResponseKind.RELEASED, Reject: ResponseKind.REJECTED, Cancel: ResponseKind.CANCELLED,
            ReleaseFailed: ResponseKind.RELEASE_FAILED, Message: ResponseKind.MESSAGE}  # fmt: skip
    peer = status.peer_domain
    assert peer is not None
    if isinstance(event, Message):
        comments = event.text
    elif isinstance(event, ReleaseFailed):
        comments = (f"The transfer {event.transfer_id} that released the records ended {event.ending.value}: "
                    f"{_ending_words(event)}. The request is open again: {status.local_domain} will "
                    "release the records in a new transfer or reject the request.")  # fmt: skip
    else:
        comments = event.comments
    return RequestResponse(
        kind=kind[type(event)],
        request_id=request.request_id,
        from_domain=status.local_domain,
        to_domain=peer,
        created=now,
        person=event.person,
        comments=comments,
        transfer_id=event.transfer_id if isinstance(event, Release | ReleaseFailed) else None,
    )
