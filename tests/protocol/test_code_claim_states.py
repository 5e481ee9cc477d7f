from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import SatchelError
from protocol.code_claim_states import (
    ACTORS,
    TRANSITIONS,
    AnswerClaim,
    Claim,
    ClaimFailed,
    CodeActor,
    CodeActorNotAllowed,
    CodeEvent,
    CodeExpired,
    CodeInUse,
    CodeLocked,
    CodeRevoked,
    CodeState,
    CodeStatus,
    CodeThrottled,
    CodeTransitionNotAllowed,
    CodeUsed,
    CodeWrongDestination,
    Consume,
    CountFailedClaim,
    EraseVerifier,
    NotifyCoordinators,
    Release,
    SealTransfer,
    Throttle,
    apply,
    due_events,
    follow_transfer,
    new_code,
)
from protocol.transfer_code import CodeSameNode

C, Ev = CodeState, CodeEvent
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
SRC, DST, OTHER = "elementary.example.org", "middle.example.org", "other.example.org"
T1, T2 = "01JTE0000000000000000000T1", "01JTE0000000000000000000T2"
DST_NODE = CodeActor.DESTINATION_NODE


def fresh(**changes: object) -> CodeStatus:
    return replace(new_code(code_id="cid-1", source_domain=SRC, now=NOW), **changes)


def in_state(state: CodeState) -> CodeStatus:
    held = {"claimed_by": DST, "transfer_id": T1} if state in (C.CLAIMED, C.USED) else {}
    return fresh(state=state, **held)


EVENTS: dict[CodeEvent, tuple[object, dict[str, object]]] = {
    Ev.CLAIM: (Claim(destination=DST, transfer_id=T1), {}),
    Ev.CLAIM_FAILED: (ClaimFailed(destination=OTHER), {}),
    Ev.LOCK_OUT: (ClaimFailed(destination=OTHER), {"failed_claims": 4}),
    Ev.RELEASE: (Release(destination=DST), {}),
    Ev.CONSUME: (Consume(destination=DST), {}),
    Ev.REVOKE: (Ev.REVOKE, {}),
    Ev.EXPIRE: (Ev.EXPIRE, {}),
    Ev.WITHDRAW: (Ev.WITHDRAW, {}),
    Ev.LAPSE: (Ev.LAPSE, {}),
}


@pytest.mark.parametrize(("state", "name"), list(TRANSITIONS), ids=lambda v: str(v))
def test_every_transition_in_the_table(state: CodeState, name: CodeEvent) -> None:
    event, changes = EVENTS[name]
    result = apply(replace(in_state(state), **changes), event, actor=ACTORS[name], now=NOW)  # type: ignore[arg-type]
    assert (result.previous, result.event, result.status.state) == (state, name, TRANSITIONS[(state, name)])


ILLEGAL = [(s, e) for s in CodeState for e in CodeEvent if (s, e) not in TRANSITIONS]


@pytest.mark.parametrize(("state", "name"), ILLEGAL, ids=lambda v: str(v))
def test_every_illegal_pair_raises_naming_state_and_event(state: CodeState, name: CodeEvent) -> None:
    event, changes = EVENTS[name]
    with pytest.raises(CodeTransitionNotAllowed) as caught:
        apply(replace(in_state(state), **changes), event, actor=ACTORS[name], now=NOW)  # type: ignore[arg-type]
    assert f"'{state}'" in caught.value.message and f"'{name}'" in caught.value.message
    assert caught.value.code.startswith("code.")


def test_claim_seal_and_consume() -> None:
    claimed = apply(fresh(), Claim(destination=DST, transfer_id=T1), actor=DST_NODE, now=NOW)
    assert claimed.status.state is C.CLAIMED and claimed.status.claimed_by == DST
    assert claimed.effects == (
        SealTransfer(destination=DST, transfer_id=T1), NotifyCoordinators(topic="code.claimed"),
        AnswerClaim(transfer_id=T1),
    )  # fmt: skip
    again = apply(claimed.status, Claim(destination=DST, transfer_id=T2), actor=DST_NODE, now=NOW)
    assert again.status == claimed.status and again.effects == (AnswerClaim(transfer_id=T1),)
    with pytest.raises(CodeInUse) as caught:
        apply(claimed.status, Claim(destination=OTHER, transfer_id=T2), actor=DST_NODE, now=NOW)
    assert caught.value.code == "code.in_use"
    with pytest.raises(CodeInUse):
        apply(claimed.status, Consume(destination=OTHER), actor=DST_NODE, now=NOW)
    used = apply(claimed.status, Consume(destination=DST), actor=DST_NODE, now=NOW)
    assert used.status.state is C.USED
    assert used.effects == (EraseVerifier(), NotifyCoordinators(topic="code.used"))
    with pytest.raises(CodeUsed) as caught_used:
        apply(used.status, Claim(destination=DST, transfer_id=T2), actor=DST_NODE, now=NOW)
    assert caught_used.value.code == "code.used"


def test_cancelling_the_import_makes_the_code_enterable_again() -> None:
    claimed = apply(fresh(), Claim(destination=DST, transfer_id=T1), actor=DST_NODE, now=NOW).status
    released = apply(claimed, Release(destination=DST), actor=DST_NODE, now=NOW)
    assert released.status == fresh()
    reclaimed = apply(released.status, Claim(destination=DST, transfer_id=T2), actor=DST_NODE, now=NOW)
    assert reclaimed.status.transfer_id == T2
    # Released after the 30 days: the code is active again only until the timer expires it.
    late = apply(claimed, Release(destination=DST), actor=DST_NODE, now=NOW + timedelta(days=31))
    assert due_events(late.status, now=NOW + timedelta(days=31)) == (Ev.EXPIRE,)


def test_claims_from_the_wrong_place_or_time_are_refused() -> None:
    with pytest.raises(CodeSameNode) as same:
        apply(fresh(), Claim(destination=SRC, transfer_id=T1), actor=DST_NODE, now=NOW)
    assert same.value.code == "code.same_node"
    bound = fresh(bound_destination=DST)
    with pytest.raises(CodeWrongDestination) as wrong:
        apply(bound, Claim(destination=OTHER, transfer_id=T1), actor=DST_NODE, now=NOW)
    assert wrong.value.code == "code.wrong_destination"
    apply(bound, Claim(destination=DST, transfer_id=T1), actor=DST_NODE, now=NOW)
    with pytest.raises(CodeExpired) as expired:
        apply(fresh(), Claim(destination=DST, transfer_id=T1), actor=DST_NODE, now=NOW + timedelta(days=30))
    assert expired.value.code == "code.expired"
    apply(
        fresh(),
        Claim(destination=DST, transfer_id=T1),
        actor=DST_NODE,
        now=NOW + timedelta(days=30, seconds=-1),
    )
    with pytest.raises(CodeSameNode):
        new_code(code_id="x", source_domain=SRC, now=NOW, bound_destination=SRC)


def test_revoke_and_expire() -> None:
    revoked = apply(fresh(), Ev.REVOKE, actor=CodeActor.SOURCE_COORDINATOR, now=NOW)
    assert revoked.effects == (EraseVerifier(), NotifyCoordinators(topic="code.revoked"))
    with pytest.raises(CodeRevoked):
        apply(revoked.status, Claim(destination=DST, transfer_id=T1), actor=DST_NODE, now=NOW)
    assert due_events(fresh(), now=NOW + timedelta(days=29)) == ()
    assert due_events(fresh(), now=NOW + timedelta(days=30)) == (Ev.EXPIRE,)
    assert due_events(in_state(C.CLAIMED), now=NOW + timedelta(days=90)) == ()
    with pytest.raises(CodeInUse):
        apply(in_state(C.CLAIMED), Ev.REVOKE, actor=CodeActor.SOURCE_COORDINATOR, now=NOW)
    with pytest.raises(CodeActorNotAllowed):
        apply(fresh(), Ev.REVOKE, actor=DST_NODE, now=NOW)


def test_failed_claims_lock_the_code_at_the_limit() -> None:
    status = fresh()
    for failures in range(1, 5):
        result = apply(status, ClaimFailed(destination=OTHER), actor=DST_NODE, now=NOW)
        status = result.status
        assert status.state is C.ACTIVE
        assert result.effects == (CountFailedClaim(failures=failures, remaining=5 - failures),)
    locked = apply(status, ClaimFailed(destination=OTHER), actor=DST_NODE, now=NOW)
    assert locked.event is Ev.LOCK_OUT and locked.status.state is C.LOCKED
    assert EraseVerifier() in locked.effects
    with pytest.raises(CodeLocked) as caught:
        apply(locked.status, Claim(destination=DST, transfer_id=T1), actor=DST_NODE, now=NOW)
    assert caught.value.code == "code.locked"


def test_status_is_validated() -> None:
    with pytest.raises(SatchelError):
        fresh(state=C.CLAIMED)  # a claim names its destination
    with pytest.raises(SatchelError):
        fresh(expires=NOW)
    with pytest.raises(SatchelError):
        apply(fresh(), Ev.CLAIM, actor=DST_NODE, now=NOW)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- throttle


def failures(*seconds_ago: float) -> list[datetime]:
    return [NOW - timedelta(seconds=s) for s in seconds_ago]


def test_throttle_allows_a_couple_of_failures_then_backs_off() -> None:
    throttle = Throttle()
    assert throttle.decide(now=NOW, peer_failures=[]).allowed
    assert throttle.decide(now=NOW, peer_failures=failures(0, 10)).allowed
    third = throttle.decide(now=NOW, peer_failures=failures(0, 10, 20))
    assert not third.allowed and third.retry_after == timedelta(seconds=2)
    assert throttle.decide(now=NOW, peer_failures=failures(2, 10, 20)).allowed
    fourth = throttle.decide(now=NOW, peer_failures=failures(1, 10, 20, 30))
    assert fourth.retry_after == timedelta(seconds=3)
    capped = throttle.decide(now=NOW, peer_failures=failures(*range(0, 19)))
    assert capped.retry_after <= timedelta(hours=1)


def test_throttle_caps_failures_per_window() -> None:
    throttle = Throttle(max_failures=3, free_failures=2, base_delay=timedelta(milliseconds=1))
    over = throttle.decide(now=NOW, peer_failures=failures(3000, 2000, 1000))
    assert not over.allowed and over.retry_after == timedelta(seconds=600)
    assert throttle.decide(now=NOW, peer_failures=failures(3600, 2000, 1000)).allowed
    with pytest.raises(CodeThrottled) as caught:
        over.raise_if_denied()
    assert caught.value.code == "code.throttled" and caught.value.retry_after == 600
    assert "600 seconds" in (caught.value.hint or "")


def test_throttle_settings_are_validated() -> None:
    with pytest.raises(SatchelError):
        Throttle(max_failures=0)
    with pytest.raises(SatchelError):
        Throttle(free_failures=20)
    with pytest.raises(SatchelError):
        Throttle(window=timedelta(0))


@given(st.lists(st.integers(-100, 10_000), max_size=40))
def test_throttle_never_crashes_and_waits_are_positive(offsets: list[int]) -> None:
    decision = Throttle().decide(now=NOW, peer_failures=failures(*offsets))
    assert decision.allowed == (decision.retry_after == timedelta(0))
    assert decision.retry_after <= timedelta(hours=1)
    if not decision.allowed:
        later = Throttle().decide(now=NOW + decision.retry_after, peer_failures=failures(*offsets))
        assert later.allowed or later.retry_after < decision.retry_after + timedelta(hours=1)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(EVENTS)),
            st.sampled_from([DST, OTHER]),
            st.sampled_from(list(CodeActor)),
            st.integers(0, 40),
        ),
        max_size=20,
    )
)
def test_random_event_sequences_stay_in_defined_states(
    steps: list[tuple[CodeEvent, str, CodeActor, int]],
) -> None:
    status = fresh()
    for name, destination, actor, days in steps:
        event = EVENTS[name][0]
        if hasattr(event, "destination"):
            event = replace(event, destination=destination)  # type: ignore[type-var]
        try:
            result = apply(status, event, actor=actor, now=NOW + timedelta(days=days))  # type: ignore[arg-type]
        except SatchelError:
            continue
        assert result.status.state in CodeState
        assert (result.previous, result.event) in TRANSITIONS
        status = result.status


@pytest.mark.parametrize(
    ("transfer_state", "code_state", "topics"),
    [
        ("imported", C.USED, ["code.used"]),
        ("rejected", C.ACTIVE, ["code.released"]),
        ("cancelled", C.REVOKED, ["code.revoked"]),
        ("locked", C.REVOKED, ["code.revoked"]),
        ("expired", C.ACTIVE, ["code.released"]),
        ("undeliverable", C.ACTIVE, ["code.released"]),
    ],
)
def test_a_claimed_code_follows_its_transfer_to_the_end(
    transfer_state: str, code_state: CodeState, topics: list[str]
) -> None:
    (moved,) = follow_transfer(in_state(C.CLAIMED), transfer_id=T1, transfer_state=transfer_state, now=NOW)
    assert moved.status.state is code_state
    assert [e.topic for e in moved.effects if isinstance(e, NotifyCoordinators)] == topics
    assert any(isinstance(e, EraseVerifier) for e in moved.effects) == (code_state in (C.USED, C.REVOKED))
    # Nobody holds a code that is not claimed or used; a revoked one still names the transfer that ended it.
    assert moved.status.claimed_by == (DST if code_state is C.USED else None)
    assert moved.status.transfer_id == (None if code_state is C.ACTIVE else T1)


@pytest.mark.parametrize("transfer_state", ["sealed", "delivered", "accepted", "cancel_requested",
                                            "import_failed", "partially_imported"])  # fmt: skip
def test_a_transfer_still_going_leaves_its_code_claimed(transfer_state: str) -> None:
    assert follow_transfer(in_state(C.CLAIMED), transfer_id=T1, transfer_state=transfer_state, now=NOW) == ()


def test_only_the_code_that_holds_the_transfer_follows_it() -> None:
    for status in (in_state(C.CLAIMED), fresh(), in_state(C.USED), fresh(state=C.REVOKED)):
        assert follow_transfer(status, transfer_id=T2, transfer_state="cancelled", now=NOW) == ()
    assert follow_transfer(fresh(), transfer_id=T1, transfer_state="expired", now=NOW) == ()


def test_a_transfer_expiring_while_being_cancelled_withdraws_its_code() -> None:
    (moved,) = follow_transfer(in_state(C.CLAIMED), transfer_id=T1, transfer_state="expired",
                               previous_state="cancel_requested", now=NOW)  # fmt: skip
    assert (moved.event, moved.status.state) == (Ev.WITHDRAW, C.REVOKED)
    (freed,) = follow_transfer(in_state(C.CLAIMED), transfer_id=T1, transfer_state="expired",
                               previous_state="delivered", now=NOW)  # fmt: skip
    assert (freed.event, freed.status.state) == (Ev.LAPSE, C.ACTIVE)


def test_a_code_freed_past_its_days_expires_at_once_and_says_so_once() -> None:
    late = NOW + timedelta(days=31)
    freed, expired = follow_transfer(in_state(C.CLAIMED), transfer_id=T1, transfer_state="expired", now=late)
    assert (freed.status.state, expired.status.state) == (C.ACTIVE, C.EXPIRED)
    topics = [e.topic for t in (freed, expired) for e in t.effects if isinstance(e, NotifyCoordinators)]
    assert topics == ["code.expired"]
    assert any(isinstance(e, EraseVerifier) for e in expired.effects)


def test_the_code_events_of_a_transfer_ending_belong_to_the_source_node() -> None:
    for name in (Ev.WITHDRAW, Ev.LAPSE):
        with pytest.raises(CodeActorNotAllowed):
            apply(in_state(C.CLAIMED), name, actor=CodeActor.SOURCE_COORDINATOR, now=NOW)
        with pytest.raises(CodeTransitionNotAllowed):  # only a claimed code has a transfer to follow
            apply(fresh(), name, actor=CodeActor.SOURCE_NODE, now=NOW)
