import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import SatchelError
from protocol.records_request import (
    Enrolment,
    Person,
    RecordsRequest,
    RequestedStudent,
    RequestResponse,
    RequestStudentNotEnrolled,
    ResponseKind,
)
from protocol.request_states import (
    ACTORS,
    REMIND_WORKING_DAYS,
    SIDE_EVENTS,
    TRANSITIONS,
    Cancel,
    Message,
    NotifyCoordinators,
    RecordIncoming,
    Reject,
    Release,
    ReleaseFailed,
    RequestActor,
    RequestActorNotAllowed,
    RequestAlreadyAnswered,
    RequestCancelled,
    RequestEvent,
    RequestEventData,
    RequestMismatch,
    RequestReceived,
    RequestSide,
    RequestState,
    RequestStatus,
    RequestTransitionNotAllowed,
    ResendResponse,
    ResponseArrived,
    SealReleaseTransfer,
    SendRequest,
    SendResponse,
    Submit,
    apply,
    due_events,
    follow_transfer,
    new_request_status,
)
from protocol.transfer_status import SenderState
from protocol.workdays import add_working_days

Ev, St, Ac = RequestEvent, RequestState, RequestActor
CHICAGO = timezone(timedelta(hours=-6))
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=CHICAGO)  # a Monday
NEW, OLD = "new.example.org", "old.example.org"
RID = "01KE6QH3C00000000000000000"
TRANSFER = "01KE6QH3C0000000000000000T"
FAILED = "01KE6QH3C0000000000000000F"  # a release's transfer that ended unopened
RITA = Person(name="Rita Registrar", email="rita@old.example.org")
SAM = Person(name="Sam Admin", email="sam@new.example.org")
REQUEST = RecordsRequest(
    request_id=RID,
    from_domain=NEW,
    to_domain=OLD,
    created=NOW,
    student=RequestedStudent(family_name="Abrams", given_name="Jenna", birth_date=date(2009, 2, 12)),
    enrolment=Enrolment(school="County High", grade="10", start_date=date(2025, 12, 1)),
    requester=SAM,
)


def reply(kind: ResponseKind, *, from_requester: bool | None = None, **changes: object) -> ResponseArrived:
    if from_requester is None:
        from_requester = kind is ResponseKind.CANCELLED
    from_domain, to_domain = (NEW, OLD) if from_requester else (OLD, NEW)
    fields: dict[str, object] = {
        "kind": kind, "request_id": RID, "from_domain": from_domain, "to_domain": to_domain, "created": NOW,
        "person": SAM if from_requester else RITA,
        "comments": "No such student" if kind in (ResponseKind.REJECTED, ResponseKind.MESSAGE) else "",
        "transfer_id": TRANSFER if kind in (ResponseKind.RELEASED, ResponseKind.RELEASE_FAILED) else None,
    }  # fmt: skip
    fields.update(changes)
    return ResponseArrived(response=RequestResponse(**fields))  # type: ignore[arg-type]


EVENTS: dict[RequestEvent, RequestEventData] = {
    Ev.SUBMIT: Submit(request=REQUEST),
    Ev.REQUEST_RECEIVED: RequestReceived(request=REQUEST),
    Ev.RELEASE: Release(person=RITA, transfer_id=TRANSFER),
    Ev.REJECT: Reject(person=RITA, comments="We have no student by that name"),
    Ev.CANCEL: Cancel(person=SAM, comments="Found the records"),
    Ev.RELEASED_RECEIVED: reply(ResponseKind.RELEASED),
    Ev.REJECTED_RECEIVED: reply(ResponseKind.REJECTED),
    Ev.CANCELLED_RECEIVED: reply(ResponseKind.CANCELLED),
    Ev.RELEASE_FAILED: ReleaseFailed(transfer_id=TRANSFER, ending=SenderState.REJECTED, person=RITA),
    Ev.RELEASE_FAILED_RECEIVED: reply(ResponseKind.RELEASE_FAILED),
    Ev.MARK_OVERDUE: Ev.MARK_OVERDUE,
    Ev.MESSAGE_TO_RELEASER: Message(person=SAM, text="Is her IEP in the file?"),
    Ev.MESSAGE_TO_REQUESTER: Message(person=RITA, text="Which school did she attend?"),
    Ev.MESSAGE_FROM_REQUESTER: reply(ResponseKind.MESSAGE, from_requester=True),
    Ev.MESSAGE_FROM_RELEASER: reply(ResponseKind.MESSAGE, from_requester=False),
}
# A message's name is the side's own (event_name): the other side's cannot even be given to apply().
_MESSAGES = frozenset({Ev.MESSAGE_TO_RELEASER, Ev.MESSAGE_TO_REQUESTER, Ev.MESSAGE_FROM_REQUESTER,
                       Ev.MESSAGE_FROM_RELEASER})  # fmt: skip
LATE = NOW + timedelta(days=16)  # 11 working days after opening


def status(side: RequestSide, state: RequestState, **changes: object) -> RequestStatus:
    local = NEW if side is RequestSide.REQUESTER else OLD
    known: dict[str, object] = {} if state is St.ABSENT else {"request": REQUEST, "opened_on": NOW.date()}
    if state is St.RELEASED:
        known["transfer_id"] = TRANSFER
    elif state is St.RELEASE_FAILED:
        known |= {"transfer_id": FAILED, "failed_on": NOW.date()}
    return replace(new_request_status(side=side, local_domain=local), state=state, **(known | changes))


CASES = [(side, s, e) for side in RequestSide for (s, e) in TRANSITIONS if e in SIDE_EVENTS[side]]
ILLEGAL = [
    (side, s, e)
    for side in RequestSide
    for s in RequestState
    for e in RequestEvent
    if ((s, e) not in TRANSITIONS or e not in SIDE_EVENTS[side]) and not (e in _MESSAGES and e not in SIDE_EVENTS[side])
]


def ids(case: tuple[RequestSide, RequestState, RequestEvent]) -> str:
    return "-".join(str(part) for part in case)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_every_transition_in_the_table(case: tuple[RequestSide, RequestState, RequestEvent]) -> None:
    side, state, name = case
    when = LATE if name is Ev.MARK_OVERDUE else NOW
    result = apply(status(side, state), EVENTS[name], actor=ACTORS[name], now=when)
    assert (result.previous, result.event, result.status.state) == (state, name, TRANSITIONS[(state, name)])


@pytest.mark.parametrize("case", ILLEGAL, ids=ids)
def test_every_illegal_pair_raises_naming_state_and_event(
    case: tuple[RequestSide, RequestState, RequestEvent],
) -> None:
    side, state, name = case
    with pytest.raises(RequestTransitionNotAllowed) as caught:
        apply(status(side, state), EVENTS[name], actor=ACTORS[name], now=LATE)
    assert f"'{state}'" in caught.value.message and f"'{name}'" in caught.value.message
    assert (caught.value.state, caught.value.event) == (state.value, name.value)


def test_only_the_named_actor_may_cause_an_event() -> None:
    with pytest.raises(RequestActorNotAllowed):
        apply(status(RequestSide.RELEASER, St.REQUESTED), EVENTS[Ev.RELEASE], actor=RequestActor.RELEASER_NODE,
              now=NOW)  # fmt: skip


def test_request_and_release_end_to_end() -> None:
    requester = new_request_status(side=RequestSide.REQUESTER, local_domain=NEW)
    releaser = new_request_status(side=RequestSide.RELEASER, local_domain=OLD)
    sent = apply(requester, Submit(request=REQUEST), actor=RequestActor.REQUESTER_COORDINATOR, now=NOW)
    assert sent.effects == (SendRequest(request=REQUEST),)
    got = apply(releaser, RequestReceived(request=REQUEST), actor=RequestActor.REQUESTER_NODE, now=NOW)
    assert got.effects == (RecordIncoming(), NotifyCoordinators(topic="request.received"))
    released = apply(got.status, Release(person=RITA, transfer_id=TRANSFER),
                     actor=RequestActor.RELEASER_COORDINATOR, now=NOW)  # fmt: skip
    send, seal = released.effects
    assert isinstance(send, SendResponse) and seal == SealReleaseTransfer(
        transfer_id=TRANSFER, request_id=RID
    )
    assert (send.response.kind, send.response.from_domain, send.response.to_domain) == (
        ResponseKind.RELEASED,
        OLD,
        NEW,
    )
    done = apply(
        sent.status, ResponseArrived(response=send.response), actor=RequestActor.RELEASER_NODE, now=NOW
    )
    assert done.status.state is St.RELEASED and done.status.transfer_id == TRANSFER
    assert done.effects == (RecordIncoming(), NotifyCoordinators(topic="request.released"))
    again = apply(
        released.status, RequestReceived(request=REQUEST), actor=RequestActor.REQUESTER_NODE, now=NOW
    )
    assert again.status == released.status and again.effects == (ResendResponse(),)


def test_release_is_refused_unless_the_student_is_enrolled() -> None:
    future = replace(REQUEST, enrolment=Enrolment(school="S", grade="10", start_date=date(2026, 2, 1)))
    pending = replace(status(RequestSide.RELEASER, St.REQUESTED), request=future)
    with pytest.raises(RequestStudentNotEnrolled):
        apply(pending, EVENTS[Ev.RELEASE], actor=RequestActor.RELEASER_COORDINATOR, now=NOW)
    # Rejecting stays possible.
    apply(pending, EVENTS[Ev.REJECT], actor=RequestActor.RELEASER_COORDINATOR, now=NOW)


def test_the_releasers_answer_wins_a_race_with_a_cancellation() -> None:
    cancelled = apply(status(RequestSide.REQUESTER, St.REQUESTED), EVENTS[Ev.CANCEL],
                      actor=RequestActor.REQUESTER_COORDINATOR, now=NOW)  # fmt: skip
    assert cancelled.status.state is St.CANCELLED
    assert isinstance(cancelled.effects[0], SendResponse)
    released = apply(
        cancelled.status, EVENTS[Ev.RELEASED_RECEIVED], actor=RequestActor.RELEASER_NODE, now=NOW
    )
    assert released.status.state is St.RELEASED
    with pytest.raises(RequestAlreadyAnswered) as caught:
        apply(status(RequestSide.RELEASER, St.RELEASED), EVENTS[Ev.CANCELLED_RECEIVED],
              actor=RequestActor.REQUESTER_NODE, now=NOW)  # fmt: skip
    assert caught.value.code == "request.already_answered"
    with pytest.raises(RequestCancelled):
        apply(status(RequestSide.RELEASER, St.CANCELLED), EVENTS[Ev.RELEASE],
              actor=RequestActor.RELEASER_COORDINATOR, now=NOW)  # fmt: skip


def test_messages_about_other_requests_are_refused() -> None:
    pending = status(RequestSide.REQUESTER, St.REQUESTED)
    for changes in ({"request_id": "01KE6QH3C00000000000000001"}, {"from_domain": "evil.example.org"}):
        with pytest.raises(RequestMismatch):
            apply(pending, reply(ResponseKind.RELEASED, **changes), actor=RequestActor.RELEASER_NODE, now=NOW)
    other = replace(REQUEST, comments="changed")
    with pytest.raises(RequestMismatch):
        apply(status(RequestSide.RELEASER, St.REQUESTED), RequestReceived(request=other),
              actor=RequestActor.REQUESTER_NODE, now=NOW)  # fmt: skip
    with pytest.raises(RequestMismatch):
        apply(new_request_status(side=RequestSide.RELEASER, local_domain="third.example.org"),
              RequestReceived(request=REQUEST), actor=RequestActor.REQUESTER_NODE, now=NOW)  # fmt: skip
    with pytest.raises(RequestMismatch):
        apply(status(RequestSide.REQUESTER, St.RELEASED), reply(ResponseKind.RELEASED,
              transfer_id="01KE6QH3C00000000000000009"), actor=RequestActor.RELEASER_NODE, now=NOW)  # fmt: skip


def test_overdue_is_flagged_once_after_ten_working_days() -> None:
    pending = status(RequestSide.RELEASER, St.REQUESTED)
    assert due_events(pending, today=date(2026, 1, 19)) == ()
    assert due_events(pending, today=date(2026, 1, 20)) == (Ev.MARK_OVERDUE,)
    assert not pending.overdue(today=date(2026, 1, 20), holidays=frozenset({date(2026, 1, 19)}))
    with pytest.raises(RequestTransitionNotAllowed):
        apply(pending, Ev.MARK_OVERDUE, actor=RequestActor.TIMER, now=NOW + timedelta(days=14))
    flagged = apply(pending, Ev.MARK_OVERDUE, actor=RequestActor.TIMER, now=LATE)
    assert flagged.status.overdue_flagged
    assert flagged.effects == (NotifyCoordinators(topic="request.overdue"),)
    assert due_events(flagged.status, today=date(2026, 1, 21)) == ()
    assert apply(flagged.status, Ev.MARK_OVERDUE, actor=RequestActor.TIMER, now=LATE).effects == ()
    answered = status(RequestSide.RELEASER, St.REJECTED)
    assert not answered.overdue(today=date(2026, 3, 1))


def test_an_unanswered_request_is_reminded_every_five_working_days() -> None:
    flagged = apply(status(RequestSide.RELEASER, St.REQUESTED), Ev.MARK_OVERDUE, actor=RequestActor.TIMER,
                    now=LATE).status  # fmt: skip
    assert flagged.reminded_on == LATE.date() == date(2026, 1, 21)  # a Wednesday
    assert due_events(flagged, today=date(2026, 1, 27)) == ()  # four working days later
    assert due_events(flagged, today=date(2026, 1, 28)) == (Ev.MARK_OVERDUE,)  # five
    # A holiday in the week moves the reminder a working day on.
    assert due_events(flagged, today=date(2026, 1, 28), holidays=frozenset({date(2026, 1, 22)})) == ()
    again = apply(flagged, Ev.MARK_OVERDUE, actor=RequestActor.TIMER, now=datetime(2026, 1, 28, 9, tzinfo=CHICAGO))
    assert again.effects == (NotifyCoordinators(topic="request.overdue"),)
    assert again.status.reminded_on == date(2026, 1, 28) and again.status.state is St.REQUESTED
    assert due_events(again.status, today=date(2026, 1, 29)) == ()
    assert apply(again.status, Ev.MARK_OVERDUE, actor=RequestActor.TIMER, now=LATE + timedelta(days=8)).effects == ()
    # Flagged before reminders were kept: counted from the last day on time (19 January).
    old = replace(flagged, reminded_on=None)
    assert due_events(old, today=date(2026, 1, 23)) == ()
    assert due_events(old, today=date(2026, 1, 26)) == (Ev.MARK_OVERDUE,)
    # An answered request is reminded of no more.
    assert due_events(replace(flagged, state=St.RELEASED, transfer_id=TRANSFER), today=date(2026, 3, 2)) == ()
    with pytest.raises(SatchelError):
        replace(status(RequestSide.RELEASER, St.REQUESTED), reminded_on=date(2026, 1, 20))  # not flagged



@pytest.mark.parametrize("side", list(RequestSide))
def test_a_release_that_failed_is_owed_an_answer_again_counted_from_the_day_it_failed(side: RequestSide) -> None:
    # Flagged and reminded of while requested; then released, and the release failed (spec/requests.md §5).
    was_late = apply(status(side, St.REQUESTED), Ev.MARK_OVERDUE, actor=Ac.TIMER, now=LATE).status
    released = replace(was_late, state=St.RELEASED, transfer_id=TRANSFER)
    assert not released.overdue(today=date(2026, 3, 2)) and released.due_on() is None
    failed_at = datetime(2026, 2, 4, 16, 0, tzinfo=CHICAGO)  # a Wednesday
    if side is RequestSide.RELEASER:
        failed = follow_transfer(released, transfer_id=TRANSFER, transfer_state=SenderState.EXPIRED, person=RITA,
                                 now=failed_at)  # fmt: skip
        assert failed is not None
    else:
        failed = apply(released, reply(ResponseKind.RELEASE_FAILED), actor=Ac.RELEASER_NODE, now=failed_at)
    waiting = failed.status
    # A clock of its own from that day, neither flagged nor reminded yet.
    assert (waiting.state, waiting.failed_on, waiting.overdue_flagged, waiting.reminded_on) == (
        St.RELEASE_FAILED, date(2026, 2, 4), False, None)  # fmt: skip
    assert waiting.due_on() == date(2026, 2, 18)
    assert due_events(waiting, today=date(2026, 2, 18)) == () and not waiting.overdue(today=date(2026, 2, 18))
    with pytest.raises(RequestTransitionNotAllowed) as early:
        apply(waiting, Ev.MARK_OVERDUE, actor=Ac.TIMER, now=datetime(2026, 2, 18, 9, tzinfo=CHICAGO))
    assert "'release_failed'" in early.value.message
    assert due_events(waiting, today=date(2026, 2, 19)) == (Ev.MARK_OVERDUE,)
    flagged = apply(waiting, Ev.MARK_OVERDUE, actor=Ac.TIMER, now=datetime(2026, 2, 19, 9, tzinfo=CHICAGO))
    assert flagged.effects == (NotifyCoordinators(topic="request.overdue"),)
    assert (flagged.status.state, flagged.status.reminded_on) == (St.RELEASE_FAILED, date(2026, 2, 19))
    assert due_events(flagged.status, today=date(2026, 2, 25)) == ()
    assert due_events(flagged.status, today=date(2026, 2, 26)) == (Ev.MARK_OVERDUE,)  # a working week later
    # Answered again: owed nothing more, and the day it failed is forgotten.
    if side is RequestSide.RELEASER:
        answered = apply(flagged.status, EVENTS[Ev.REJECT], actor=Ac.RELEASER_COORDINATOR, now=LATE)
    else:
        answered = apply(flagged.status, EVENTS[Ev.CANCEL], actor=Ac.REQUESTER_COORDINATOR, now=LATE)
    assert answered.status.failed_on is None and not answered.status.overdue(today=date(2026, 4, 1))
    assert due_events(answered.status, today=date(2026, 4, 1)) == ()


def test_the_day_a_release_failed_belongs_to_release_failed_only() -> None:
    with pytest.raises(SatchelError):
        replace(status(RequestSide.RELEASER, St.RELEASE_FAILED), failed_on=None)
    with pytest.raises(SatchelError):
        replace(status(RequestSide.RELEASER, St.REQUESTED), failed_on=NOW.date())
    # A release again from release_failed, failing again later: the clock starts again from the second failure.
    again = apply(status(RequestSide.RELEASER, St.RELEASE_FAILED), Release(person=RITA, transfer_id=TRANSFER),
                  actor=Ac.RELEASER_COORDINATOR, now=NOW)  # fmt: skip
    assert again.status.failed_on is None
    later = NOW + timedelta(days=30)
    second = follow_transfer(again.status, transfer_id=TRANSFER, transfer_state=SenderState.REJECTED, person=RITA,
                             now=later)  # fmt: skip
    assert second is not None and second.status.failed_on == later.date()

@given(st.integers(min_value=0, max_value=400), st.frozensets(st.dates(date(2026, 1, 1), date(2027, 6, 30)),
                                                               max_size=20))  # fmt: skip
def test_a_daily_timer_tells_once_when_overdue_then_once_a_working_week(
    days: int, holidays: frozenset[date]
) -> None:
    current = status(RequestSide.RELEASER, St.REQUESTED)
    told: list[date] = []
    for offset in range(days + 1):
        today = NOW.date() + timedelta(days=offset)
        for event in due_events(current, today=today, holidays=holidays):
            moment = datetime(today.year, today.month, today.day, 9, tzinfo=CHICAGO)
            result = apply(current, event, actor=RequestActor.TIMER, now=moment, holidays=holidays)
            assert result.effects == (NotifyCoordinators(topic="request.overdue"),)
            current = result.status
            told.append(today)
    if not told:
        assert not current.overdue(today=NOW.date() + timedelta(days=days), holidays=holidays)
        return
    assert told[0] == add_working_days(NOW.date(), 11, holidays=holidays)  # the first day overdue
    for before, after in itertools.pairwise(told):
        assert after == add_working_days(before, REMIND_WORKING_DAYS, holidays=holidays)


def test_the_opening_day_is_the_nodes_local_day() -> None:
    late_evening = datetime(2026, 1, 5, 23, 30, tzinfo=CHICAGO)  # already 6 January in UTC
    result = apply(new_request_status(side=RequestSide.REQUESTER, local_domain=NEW), Submit(request=REQUEST),
                   actor=RequestActor.REQUESTER_COORDINATOR, now=late_evening)  # fmt: skip
    assert result.status.opened_on == date(2026, 1, 5)
    assert late_evening.astimezone(UTC).date() == date(2026, 1, 6)


def test_invalid_status_and_events() -> None:
    with pytest.raises(SatchelError):
        RequestStatus(side=RequestSide.REQUESTER, state=St.REQUESTED, local_domain=NEW)
    with pytest.raises(SatchelError):
        apply(status(RequestSide.REQUESTER, St.REQUESTED), Ev.RELEASE, actor=RequestActor.RELEASER_COORDINATOR,
              now=NOW)  # fmt: skip
    with pytest.raises(SatchelError):
        apply(status(RequestSide.RELEASER, St.REQUESTED), Reject(person=RITA, comments=""),
              actor=RequestActor.RELEASER_COORDINATOR, now=NOW)  # fmt: skip


@given(
    side=st.sampled_from(list(RequestSide)),
    steps=st.lists(
        st.tuples(
            st.sampled_from(list(RequestEvent)), st.sampled_from(list(RequestActor)), st.integers(0, 40)
        ),
        max_size=15,
    ),
)
def test_random_event_sequences_stay_in_defined_states(
    side: RequestSide, steps: list[tuple[RequestEvent, RequestActor, int]]
) -> None:
    current = new_request_status(side=side, local_domain=NEW if side is RequestSide.REQUESTER else OLD)
    for name, actor, days in steps:
        try:
            result = apply(current, EVENTS[name], actor=actor, now=NOW + timedelta(days=days))
        except SatchelError:
            continue
        assert result.status.state in RequestState
        assert (result.previous, result.event) in TRANSITIONS
        current = result.status


@pytest.mark.parametrize("side", list(RequestSide))
@pytest.mark.parametrize("state", [St.REQUESTED, St.RELEASED, St.REJECTED, St.CANCELLED])
def test_a_message_either_way_keeps_the_state_and_goes_to_the_other_district(
    side: RequestSide, state: RequestState
) -> None:
    requester = side is RequestSide.REQUESTER
    person, coordinator = (SAM, Ac.REQUESTER_COORDINATOR) if requester else (RITA, Ac.RELEASER_COORDINATOR)
    written = apply(status(side, state), Message(person=person, text="Is her IEP in the file?\nThanks"),
                    actor=coordinator, now=NOW)  # fmt: skip
    (sent,) = written.effects
    assert isinstance(sent, SendResponse) and written.status == status(side, state)
    assert written.event is (Ev.MESSAGE_TO_RELEASER if requester else Ev.MESSAGE_TO_REQUESTER)
    r = sent.response
    assert (r.kind, r.from_domain, r.to_domain, r.person, r.comments, r.transfer_id) == (
        ResponseKind.MESSAGE, NEW if requester else OLD, OLD if requester else NEW, person,
        "Is her IEP in the file?\nThanks", None,
    )  # fmt: skip
    arrived = apply(status(side, state), reply(ResponseKind.MESSAGE, from_requester=not requester),
                    actor=Ac.RELEASER_NODE if requester else Ac.REQUESTER_NODE, now=NOW)  # fmt: skip
    assert arrived.status == status(side, state)
    assert arrived.effects == (RecordIncoming(), NotifyCoordinators(topic="request.message"))


def test_a_message_needs_words_a_request_and_its_own_district() -> None:
    with pytest.raises(SatchelError) as blank:
        apply(status(RequestSide.RELEASER, St.REQUESTED), Message(person=RITA, text=" \n"),
              actor=Ac.RELEASER_COORDINATOR, now=NOW)  # fmt: skip
    assert blank.value.field == "comments"
    with pytest.raises(RequestTransitionNotAllowed):
        apply(status(RequestSide.REQUESTER, St.ABSENT), Message(person=SAM, text="hello"),
              actor=Ac.REQUESTER_COORDINATOR, now=NOW)  # fmt: skip
    with pytest.raises(RequestActorNotAllowed):  # a node does not write; nor does the other side's coordinator
        apply(status(RequestSide.REQUESTER, St.REQUESTED), Message(person=SAM, text="hello"),
              actor=Ac.RELEASER_COORDINATOR, now=NOW)  # fmt: skip
    with pytest.raises(RequestMismatch):  # about another request
        apply(status(RequestSide.REQUESTER, St.REQUESTED),
              reply(ResponseKind.MESSAGE, from_requester=False, request_id="01KE6QH3C0000000000000000X"),
              actor=Ac.RELEASER_NODE, now=NOW)  # fmt: skip


@pytest.mark.parametrize("ending", [SenderState.REJECTED, SenderState.LOCKED, SenderState.EXPIRED,
                                    SenderState.CANCELLED, SenderState.UNDELIVERABLE])  # fmt: skip
def test_a_release_whose_transfer_ends_unopened_is_open_again_at_both_districts(ending: SenderState) -> None:
    releaser = status(RequestSide.RELEASER, St.RELEASED)
    failed = follow_transfer(releaser, transfer_id=TRANSFER, transfer_state=ending, person=RITA, now=NOW)
    assert failed is not None and failed.event is Ev.RELEASE_FAILED
    assert failed.status.state is St.RELEASE_FAILED and failed.status.transfer_id == TRANSFER
    send, told = failed.effects
    assert told == NotifyCoordinators(topic="request.release_failed") and isinstance(send, SendResponse)
    news = send.response
    assert (news.kind, news.transfer_id, news.person, news.from_domain, news.to_domain) == (
        ResponseKind.RELEASE_FAILED, TRANSFER, RITA, OLD, NEW)  # fmt: skip
    assert f"ended {ending.value}" in news.comments and "open again" in news.comments
    # The requester hears it, and sees the request open again with the transfer that failed.
    heard = apply(status(RequestSide.REQUESTER, St.RELEASED), ResponseArrived(response=news),
                  actor=Ac.RELEASER_NODE, now=NOW)  # fmt: skip
    assert heard.status.state is St.RELEASE_FAILED and heard.status.transfer_id == TRANSFER
    assert heard.effects == (RecordIncoming(), NotifyCoordinators(topic="request.release_failed"))
    # Released again in a new transfer, at both districts; or rejected after all.
    again = apply(failed.status, Release(person=RITA, transfer_id=FAILED), actor=Ac.RELEASER_COORDINATOR, now=NOW)
    assert again.status.state is St.RELEASED and again.status.transfer_id == FAILED
    (sent, _) = again.effects
    assert isinstance(sent, SendResponse)
    got = apply(heard.status, ResponseArrived(response=sent.response), actor=Ac.RELEASER_NODE, now=NOW)
    assert got.status.state is St.RELEASED and got.status.transfer_id == FAILED
    refused = apply(failed.status, EVENTS[Ev.REJECT], actor=Ac.RELEASER_COORDINATOR, now=NOW)
    assert refused.status.state is St.REJECTED


def test_a_release_opened_then_refused_says_so_with_the_reason_however_long() -> None:
    released = status(RequestSide.RELEASER, St.RELEASED)
    for reason, quoted in (("", None), ("not our student", "(not our student)"), ("x" * 5000, "x" * 299 + "…")):
        failed = follow_transfer(released, transfer_id=TRANSFER, transfer_state=SenderState.REJECTED, person=RITA,
                                 now=NOW, opened=True, reason=reason)  # fmt: skip
        assert failed is not None
        send = next(e for e in failed.effects if isinstance(e, SendResponse))
        comments = send.response.comments  # within the comments' limit whatever the reason's length
        assert "the requesting district opened the records, then refused them" in comments
        assert "refused the records" not in comments
        assert quoted is None or quoted in comments


def test_only_a_release_still_standing_follows_its_transfer_to_an_unopened_end() -> None:
    released = status(RequestSide.RELEASER, St.RELEASED)
    for state in (SenderState.SEALED, SenderState.DELIVERED, SenderState.CANCEL_REQUESTED, SenderState.ACCEPTED,
                  SenderState.IMPORT_FAILED, SenderState.PARTIALLY_IMPORTED, SenderState.IMPORTED):  # fmt: skip
        assert follow_transfer(released, transfer_id=TRANSFER, transfer_state=state, person=RITA, now=NOW) is None
    rejected = SenderState.REJECTED
    assert follow_transfer(released, transfer_id=FAILED, transfer_state=rejected, person=RITA, now=NOW) is None
    for other in (status(RequestSide.RELEASER, St.RELEASE_FAILED, transfer_id=TRANSFER),
                  status(RequestSide.RELEASER, St.REJECTED, transfer_id=TRANSFER),
                  status(RequestSide.REQUESTER, St.RELEASED)):  # fmt: skip
        assert follow_transfer(other, transfer_id=TRANSFER, transfer_state=rejected, person=RITA, now=NOW) is None
    with pytest.raises(RequestMismatch):
        apply(released, ReleaseFailed(transfer_id=FAILED, ending=rejected, person=RITA), actor=Ac.RELEASER_NODE,
              now=NOW)  # fmt: skip
    with pytest.raises(SatchelError):
        apply(released, ReleaseFailed(transfer_id=TRANSFER, ending=SenderState.IMPORTED, person=RITA),
              actor=Ac.RELEASER_NODE, now=NOW)  # fmt: skip


def test_news_of_a_failed_release_is_about_the_release_that_stands() -> None:
    # Released in TRANSFER: news about another transfer is not about this request's release.
    with pytest.raises(RequestMismatch):
        apply(status(RequestSide.REQUESTER, St.RELEASED), reply(ResponseKind.RELEASE_FAILED, transfer_id=FAILED),
              actor=Ac.RELEASER_NODE, now=NOW)  # fmt: skip
    # Open again after FAILED: that same release cannot stand again (a new one comes in a new transfer).
    reopened = status(RequestSide.REQUESTER, St.RELEASE_FAILED)
    with pytest.raises(RequestMismatch):
        apply(reopened, reply(ResponseKind.RELEASED, transfer_id=FAILED), actor=Ac.RELEASER_NODE, now=NOW)
    cancelled = status(RequestSide.REQUESTER, St.CANCELLED, transfer_id=FAILED)
    with pytest.raises(RequestMismatch):
        apply(cancelled, reply(ResponseKind.RELEASED, transfer_id=FAILED), actor=Ac.RELEASER_NODE, now=NOW)
    # The news again, or once the requester cancelled or the releaser rejected: nothing changes, no one is told.
    for state in (St.RELEASE_FAILED, St.CANCELLED, St.REJECTED):
        news = reply(ResponseKind.RELEASE_FAILED, transfer_id=FAILED)
        late = apply(status(RequestSide.REQUESTER, state, transfer_id=FAILED), news, actor=Ac.RELEASER_NODE, now=NOW)
        assert late.status.state is state and late.effects == (RecordIncoming(),)
    # The release's own answer never came (its delivery given up), only the news: open again all the same.
    news_only = apply(status(RequestSide.REQUESTER, St.REQUESTED), reply(ResponseKind.RELEASE_FAILED),
                      actor=Ac.RELEASER_NODE, now=NOW)  # fmt: skip
    assert news_only.status.state is St.RELEASE_FAILED and news_only.status.transfer_id == TRANSFER


def test_a_request_open_again_can_be_cancelled_and_a_release_crossing_the_cancellation_wins() -> None:
    reopened = status(RequestSide.REQUESTER, St.RELEASE_FAILED)
    cancelled = apply(reopened, EVENTS[Ev.CANCEL], actor=Ac.REQUESTER_COORDINATOR, now=NOW)
    assert cancelled.status.state is St.CANCELLED and isinstance(cancelled.effects[0], SendResponse)
    crossed = apply(cancelled.status, reply(ResponseKind.RELEASED), actor=Ac.RELEASER_NODE, now=NOW)
    assert crossed.status.state is St.RELEASED and crossed.status.transfer_id == TRANSFER
    at_releaser = apply(status(RequestSide.RELEASER, St.RELEASE_FAILED), EVENTS[Ev.CANCELLED_RECEIVED],
                        actor=Ac.REQUESTER_NODE, now=NOW)  # fmt: skip
    assert at_releaser.status.state is St.CANCELLED
    redelivered = apply(status(RequestSide.RELEASER, St.RELEASE_FAILED), RequestReceived(request=REQUEST),
                        actor=Ac.REQUESTER_NODE, now=NOW)  # fmt: skip
    assert redelivered.effects == (ResendResponse(),)
    with pytest.raises(RequestAlreadyAnswered):  # released and standing: not released twice
        apply(status(RequestSide.RELEASER, St.RELEASED), EVENTS[Ev.RELEASE], actor=Ac.RELEASER_COORDINATOR,
              now=NOW)  # fmt: skip
