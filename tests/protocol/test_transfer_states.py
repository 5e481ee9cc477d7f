from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import SatchelError
from protocol.receipts import (
    ImportCounts,
    Receipt,
    ReceiptDigestMismatch,
    ReceiptKind,
    ReceiptMismatch,
    Role,
    SkippedStudents,
)
from protocol.transfer_states import (
    ACTORS,
    INITIAL,
    TRANSITIONS,
    Action,
    Actor,
    Cancel,
    CountWrongCode,
    DeliveryRefused,
    EnvelopeReceived,
    Event,
    ImportFailed,
    ImportFinished,
    NotifyCoordinators,
    ReceiptArrived,
    ReceiverState,
    RecordReceipt,
    Reject,
    ResendReceipt,
    SenderState,
    SendMessage,
    SendReceipt,
    Side,
    TransferActorNotAllowed,
    TransferAlreadyAccepted,
    TransferCancelled,
    TransferEnvelopeConflict,
    TransferEvent,
    TransferExpired,
    TransferLocked,
    TransferStatus,
    TransitionNotAllowed,
    allowed_events,
    apply,
    check,
    due_events,
    event_name,
    final_states,
    is_permanent_refusal,
    new_incoming,
    new_outgoing,
    retry_delay,
)

E = TransferEvent
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=14)
TID = "01JNPB7Y2M0000000000000000"
A, B = "a.example.org", "b.example.org"
DIGEST = bytes(range(32))
OTHER_DIGEST = bytes(32)
COMPLETE = ImportCounts(students_total=3, students_imported=3, documents=7, scores=12)
PARTIAL = ImportCounts(
    students_total=103,
    students_imported=98,
    students_with_changes=4,
    skipped=(SkippedStudents(reason="conflicting state id", count=5),),
)


def sender(state: SenderState = SenderState.SEALED, **changes: object) -> TransferStatus:
    return replace(
        new_outgoing(
            transfer_id=TID, sender_domain=A, receiver_domain=B, expires=EXPIRES, envelope_digest=DIGEST
        ),
        state=state,
        **changes,
    )


def receiver(state: ReceiverState = ReceiverState.ABSENT, **changes: object) -> TransferStatus:
    base = new_incoming(transfer_id=TID, sender_domain=A, receiver_domain=B)
    if state is not ReceiverState.ABSENT:
        base = replace(base, envelope_digest=DIGEST, expires=EXPIRES)
    return replace(base, state=state, **changes)


def status_for(side: Side, state: object, **changes: object) -> TransferStatus:
    return sender(state, **changes) if side is Side.SENDER else receiver(state, **changes)  # type: ignore[arg-type]


def receipt(kind: ReceiptKind, issuer: Role, sequence: int = 1, **fields: object) -> Receipt:
    from_domain, to_domain = (B, A) if issuer is Role.RECEIVER else (A, B)
    return Receipt(kind=kind, transfer_id=TID, issuer=issuer, from_domain=from_domain, to_domain=to_domain,
                   sequence=sequence, created=NOW, **fields)  # fmt: skip


def from_receiver(kind: ReceiptKind, **fields: object) -> ReceiptArrived:
    defaults: dict[ReceiptKind, dict[str, object]] = {
        ReceiptKind.DELIVERED: {"envelope_digest": DIGEST},
        ReceiptKind.REJECTED: {"reason": "not our student"},
        ReceiptKind.IMPORTED: {"counts": COMPLETE},
        ReceiptKind.FAILED: {"reference": "IMP-7Q2"},
        ReceiptKind.MESSAGE: {"text": "Thanks, got it"},
    }
    return ReceiptArrived(receipt=receipt(kind, Role.RECEIVER, **{**defaults.get(kind, {}), **fields}))


def from_sender(kind: ReceiptKind, **fields: object) -> ReceiptArrived:
    extra = {"text": "Please call me"} if kind is ReceiptKind.MESSAGE else {}
    return ReceiptArrived(receipt=receipt(kind, Role.SENDER, **{**extra, **fields}))


def make_event(side: Side, name: TransferEvent) -> tuple[Event, dict[str, object]]:
    """An event that the machine names ``name`` on ``side``, and the status changes it needs."""
    receipts = {
        E.RECEIPT_DELIVERED: ReceiptKind.DELIVERED, E.RECEIPT_ACCEPTED: ReceiptKind.ACCEPTED,
        E.RECEIPT_REJECTED: ReceiptKind.REJECTED, E.RECEIPT_LOCKED: ReceiptKind.LOCKED,
        E.RECEIPT_CANCELLED: ReceiptKind.CANCELLED, E.RECEIPT_IMPORTED: ReceiptKind.IMPORTED,
        E.RECEIPT_FAILED: ReceiptKind.FAILED,
    }  # fmt: skip
    if name in receipts:
        return from_receiver(receipts[name]), {}
    simple: dict[TransferEvent, Event] = {
        E.CANCEL: Cancel(reason="sent to the wrong district"),
        E.SEND_MESSAGE: SendMessage(text="Code sent by phone"),
        E.ACCEPT: E.ACCEPT,
        E.WRONG_CODE: E.WRONG_CODE,
        E.REJECT: Reject(reason="no such student"),
        E.START_IMPORT: E.START_IMPORT,
        E.CANCEL_IMPORT: E.CANCEL_IMPORT,
        E.IMPORT_SUCCEEDED: ImportFinished(counts=COMPLETE),
        E.IMPORT_PARTIAL: ImportFinished(counts=PARTIAL),
        E.IMPORT_FAILED: ImportFailed(reference="IMP-7Q2"),
        E.ENVELOPE_RECEIVED: EnvelopeReceived(envelope_digest=DIGEST, expires=EXPIRES),
        E.DELIVERY_REFUSED: DeliveryRefused(error_code="envelope.not_recipient"),
        E.EXPIRE: E.EXPIRE,
        E.RECEIPT_PARTIALLY_IMPORTED: from_receiver(ReceiptKind.IMPORTED, counts=PARTIAL),
        E.CANCEL_RECEIVED: from_sender(ReceiptKind.CANCELLED, reason="wrong student"),
    }
    if name is E.LOCK_OUT:
        return E.WRONG_CODE, {"wrong_codes": 4}
    if name is E.MESSAGE_RECEIVED:
        return (
            from_receiver(ReceiptKind.MESSAGE) if side is Side.SENDER else from_sender(ReceiptKind.MESSAGE)
        ), {}
    return simple[name], {}


STATES = {Side.SENDER: list(SenderState), Side.RECEIVER: list(ReceiverState)}
DEFINED = [(side, state, event) for side in Side for (state, event) in TRANSITIONS[side]]
# Events as they arrive on a side: a receiver's receipt arriving at the receiver is named after its kind
# there too (and refused); only pairs that are really reachable as inputs are listed.
UNDEFINED = [
    (side, state, name)
    for side in Side
    for state in STATES[side]
    for name in TransferEvent
    if (state, name) not in TRANSITIONS[side]
    and event_name(status_for(side, state, **make_event(side, name)[1]), make_event(side, name)[0]) is name
]


def ids(case: tuple[Side, object, TransferEvent]) -> str:
    side, state, event = case
    return f"{side.value}-{state}-{event.value}"


@pytest.mark.parametrize("case", DEFINED, ids=ids)
def test_every_transition_in_the_table(case: tuple[Side, object, TransferEvent]) -> None:
    side, state, name = case
    event, changes = make_event(side, name)
    status = status_for(side, state, **changes)
    result = apply(status, event, actor=ACTORS[side][name], now=NOW)
    assert result.event is name
    assert result.previous == state
    assert result.status.state == TRANSITIONS[side][(state, name)]
    sent = [e.receipt for e in result.effects if isinstance(e, SendReceipt)]
    assert [r.sequence for r in sent] == list(
        range(status.receipts_issued + 1, result.status.receipts_issued + 1)
    )
    assert all(r.from_domain == status.local_domain and r.to_domain == status.peer_domain for r in sent)
    if isinstance(event, ReceiptArrived):
        assert result.effects[0] == RecordReceipt(receipt=event.receipt)


@pytest.mark.parametrize("case", UNDEFINED, ids=ids)
def test_every_illegal_pair_raises_naming_state_and_event(case: tuple[Side, object, TransferEvent]) -> None:
    side, state, name = case
    event, changes = make_event(side, name)
    status = status_for(side, state, **changes)
    actor = ACTORS[side].get(name, Actor.TIMER)
    with pytest.raises(TransitionNotAllowed) as caught:
        apply(status, event, actor=actor, now=NOW)
    assert f"'{state}'" in caught.value.message
    assert f"'{name.value}'" in caught.value.message
    assert (caught.value.state, caught.value.event) == (str(state), name.value)
    assert caught.value.code.startswith("transfer.")


@pytest.mark.parametrize("side", list(Side))
def test_only_the_named_actor_may_cause_an_event(side: Side) -> None:
    for (state, name), _ in TRANSITIONS[side].items():
        event, changes = make_event(side, name)
        for actor in Actor:
            if actor is not ACTORS[side][name]:
                with pytest.raises(TransferActorNotAllowed):
                    apply(status_for(side, state, **changes), event, actor=actor, now=NOW)


def test_wrong_codes_count_up_to_the_lock() -> None:
    status = receiver(ReceiverState.RECEIVED)
    for attempt in range(1, 5):
        result = apply(status, E.WRONG_CODE, actor=Actor.RECEIVER_COORDINATOR, now=NOW)
        status = result.status
        assert status.state is ReceiverState.RECEIVED and status.wrong_codes == attempt
        assert result.effects == (CountWrongCode(attempts=attempt, remaining=5 - attempt),)
        assert f"{5 - attempt} more attempt" in result.effects[0].error().message
    result = apply(status, E.WRONG_CODE, actor=Actor.RECEIVER_COORDINATOR, now=NOW)
    assert result.event is E.LOCK_OUT
    assert result.status.state is ReceiverState.LOCKED
    counted, deleted, sent, notified = result.effects
    assert counted == CountWrongCode(attempts=5, remaining=0)
    assert counted.error().code == "transfer.wrong_code"
    assert deleted is Action.DELETE_SEALED_ENVELOPE
    assert isinstance(sent, SendReceipt) and sent.receipt.kind is ReceiptKind.LOCKED
    assert sent.receipt.envelope_digest == DIGEST
    assert notified == NotifyCoordinators(topic="transfer.locked")
    with pytest.raises(TransferLocked) as caught:
        apply(result.status, E.ACCEPT, actor=Actor.RECEIVER_COORDINATOR, now=NOW)
    assert caught.value.code == "transfer.locked"


def test_the_attempt_limit_is_a_parameter() -> None:
    status = replace(receiver(ReceiverState.RECEIVED), max_wrong_codes=2)
    status = apply(status, E.WRONG_CODE, actor=Actor.RECEIVER_COORDINATOR, now=NOW).status
    assert status.state is ReceiverState.RECEIVED
    assert (
        apply(status, E.WRONG_CODE, actor=Actor.RECEIVER_COORDINATOR, now=NOW).status.state
        is ReceiverState.LOCKED
    )


def test_first_delivery_stores_and_answers_with_a_delivered_receipt() -> None:
    result = apply(
        receiver(), make_event(Side.RECEIVER, E.ENVELOPE_RECEIVED)[0], actor=Actor.SENDER_NODE, now=NOW
    )
    stored, sent, notified = result.effects
    assert stored is Action.STORE_SEALED_ENVELOPE
    assert isinstance(sent, SendReceipt)
    assert (sent.receipt.kind, sent.receipt.sequence, sent.receipt.envelope_digest) == (
        ReceiptKind.DELIVERED, 1, DIGEST,
    )  # fmt: skip
    assert notified == NotifyCoordinators(topic="transfer.received")
    assert (result.status.envelope_digest, result.status.expires) == (DIGEST, EXPIRES)


@pytest.mark.parametrize("state", [s for s in ReceiverState if s is not ReceiverState.ABSENT])
def test_redelivery_changes_nothing_and_gets_the_same_receipt(state: ReceiverState) -> None:
    status = receiver(state, receipts_issued=3)
    event = EnvelopeReceived(envelope_digest=DIGEST, expires=EXPIRES + timedelta(days=1))
    result = apply(status, event, actor=Actor.SENDER_NODE, now=NOW)
    assert result.status == status
    assert result.effects == (ResendReceipt(kind=ReceiptKind.DELIVERED),)
    with pytest.raises(TransferEnvelopeConflict):
        apply(
            status,
            EnvelopeReceived(envelope_digest=OTHER_DIGEST, expires=EXPIRES),
            actor=Actor.SENDER_NODE,
            now=NOW,
        )


def test_a_cancel_before_the_envelope_leaves_a_tombstone() -> None:
    cancel = from_sender(ReceiptKind.CANCELLED, reason="wrong district")
    tomb = apply(receiver(), cancel, actor=Actor.SENDER_NODE, now=NOW)
    assert tomb.status.state is ReceiverState.CANCELLED
    assert [type(e) for e in tomb.effects] == [RecordReceipt, SendReceipt, NotifyCoordinators]
    late = apply(tomb.status, EnvelopeReceived(envelope_digest=DIGEST, expires=EXPIRES), actor=Actor.SENDER_NODE,
                 now=NOW)  # fmt: skip
    assert late.status == tomb.status
    assert late.effects == (ResendReceipt(kind=ReceiptKind.CANCELLED),)
    again = apply(tomb.status, cancel, actor=Actor.SENDER_NODE, now=NOW)
    assert again.effects == (RecordReceipt(receipt=cancel.receipt), ResendReceipt(kind=ReceiptKind.CANCELLED))


def test_cancel_after_accept_is_refused_on_both_sides() -> None:
    with pytest.raises(TransferAlreadyAccepted) as caught:
        apply(sender(SenderState.ACCEPTED), Cancel(), actor=Actor.SENDER_COORDINATOR, now=NOW)
    assert caught.value.code == "transfer.already_accepted"
    assert caught.value.hint
    with pytest.raises(TransferAlreadyAccepted):
        apply(
            receiver(ReceiverState.ACCEPTED),
            from_sender(ReceiptKind.CANCELLED),
            actor=Actor.SENDER_NODE,
            now=NOW,
        )
    with pytest.raises(TransferCancelled):
        apply(sender(SenderState.CANCEL_REQUESTED), Cancel(), actor=Actor.SENDER_COORDINATOR, now=NOW)


def test_sender_cancel_drops_the_envelope_erases_the_code_and_tells_the_receiver() -> None:
    result = apply(sender(), Cancel(reason="wrong student"), actor=Actor.SENDER_COORDINATOR, now=NOW)
    assert result.status.state is SenderState.CANCEL_REQUESTED
    dropped, erased, sent = result.effects
    assert (dropped, erased) == (Action.DROP_FROM_OUTBOX, Action.ERASE_CODE)
    assert isinstance(sent, SendReceipt)
    assert (sent.receipt.kind, sent.receipt.issuer, sent.receipt.reason) == (
        ReceiptKind.CANCELLED, Role.SENDER, "wrong student",
    )  # fmt: skip


def test_crossing_messages_the_receiver_wins() -> None:
    accepted = from_receiver(ReceiptKind.ACCEPTED)
    for state in (SenderState.CANCEL_REQUESTED, SenderState.EXPIRED):
        result = apply(sender(state), accepted, actor=Actor.RECEIVER_NODE, now=NOW)
        assert result.status.state is SenderState.ACCEPTED
        assert Action.ERASE_CODE not in result.effects  # erased when it entered cancel_requested/expired
    result = apply(sender(), accepted, actor=Actor.RECEIVER_NODE, now=NOW)
    assert result.effects[:3] == (
        RecordReceipt(receipt=accepted.receipt),
        Action.DROP_FROM_OUTBOX,
        Action.ERASE_CODE,
    )


def test_late_receipts_are_recorded_and_change_nothing() -> None:
    late = from_receiver(ReceiptKind.DELIVERED)
    result = apply(sender(SenderState.IMPORTED), late, actor=Actor.RECEIVER_NODE, now=NOW)
    assert result.status == sender(SenderState.IMPORTED)
    assert result.effects == (RecordReceipt(receipt=late.receipt),)


def test_an_earlier_import_receipt_arriving_last_moves_nothing_back() -> None:
    """A failed or partial import run again, or cancelled and the transfer rejected: its receipts are separate
    deliveries, so the earlier one may arrive after the final one (spec/transfer.md §3.7)."""
    failed = from_receiver(ReceiptKind.FAILED, reference="IMP-AAAA-BBBB", reason="failed")
    partial = from_receiver(ReceiptKind.IMPORTED, counts=PARTIAL)
    for final in (SenderState.IMPORTED, SenderState.REJECTED):
        for late in (failed, partial):
            result = apply(sender(final), late, actor=Actor.RECEIVER_NODE, now=NOW)
            assert result.status == sender(final) and result.effects == (RecordReceipt(receipt=late.receipt),)


def test_partial_import_receipts_are_told_apart_by_their_counts() -> None:
    partial = from_receiver(ReceiptKind.IMPORTED, counts=PARTIAL)
    assert event_name(sender(), partial) is E.RECEIPT_PARTIALLY_IMPORTED
    result = apply(sender(SenderState.ACCEPTED), partial, actor=Actor.RECEIVER_NODE, now=NOW)
    assert result.status.state is SenderState.PARTIALLY_IMPORTED
    rerun = apply(result.status, from_receiver(ReceiptKind.IMPORTED), actor=Actor.RECEIVER_NODE, now=NOW)
    assert rerun.status.state is SenderState.IMPORTED


def test_receipts_for_another_transfer_or_other_bytes_are_refused() -> None:
    other = replace(from_receiver(ReceiptKind.ACCEPTED).receipt, transfer_id="01JNPB7Y2M0000000000000001")
    with pytest.raises(ReceiptMismatch):
        apply(sender(), ReceiptArrived(receipt=other), actor=Actor.RECEIVER_NODE, now=NOW)
    forged = replace(from_receiver(ReceiptKind.ACCEPTED).receipt, from_domain="c.example.org")
    with pytest.raises(ReceiptMismatch):
        apply(sender(), ReceiptArrived(receipt=forged), actor=Actor.RECEIVER_NODE, now=NOW)
    with pytest.raises(ReceiptDigestMismatch) as caught:
        apply(sender(), from_receiver(ReceiptKind.DELIVERED, envelope_digest=OTHER_DIGEST), actor=Actor.RECEIVER_NODE,
              now=NOW)  # fmt: skip
    assert caught.value.code == "receipt.digest_mismatch"


def test_coordinators_cannot_act_after_expiry_but_the_timer_can() -> None:
    later = EXPIRES
    with pytest.raises(TransferExpired) as caught:
        check(receiver(ReceiverState.RECEIVED), E.ACCEPT, actor=Actor.RECEIVER_COORDINATOR, now=later)
    assert caught.value.code == "transfer.expired"
    with pytest.raises(TransferExpired):
        apply(sender(SenderState.DELIVERED), Cancel(), actor=Actor.SENDER_COORDINATOR, now=later)
    assert due_events(receiver(ReceiverState.RECEIVED), now=later - timedelta(seconds=1)) == ()
    assert due_events(receiver(ReceiverState.RECEIVED), now=later) == (E.EXPIRE,)
    assert due_events(receiver(ReceiverState.ACCEPTED), now=later) == ()
    expired = apply(receiver(ReceiverState.RECEIVED), E.EXPIRE, actor=Actor.TIMER, now=later)
    assert expired.effects == (Action.DELETE_SEALED_ENVELOPE, NotifyCoordinators(topic="transfer.expired"))
    # Messages stay possible: "why did it expire?" is a fair question.
    apply(
        sender(SenderState.DELIVERED), SendMessage(text="resend?"), actor=Actor.SENDER_COORDINATOR, now=later
    )


def test_a_full_exchange_numbers_receipts_and_moves_both_sides() -> None:
    snd, rcv = sender(), receiver()
    steps: list[tuple[Event, Actor]] = [
        (EnvelopeReceived(envelope_digest=DIGEST, expires=EXPIRES), Actor.SENDER_NODE),
        (E.WRONG_CODE, Actor.RECEIVER_COORDINATOR),
        (E.ACCEPT, Actor.RECEIVER_COORDINATOR),
        (SendMessage(text="Opened, thank you"), Actor.RECEIVER_COORDINATOR),
        (E.START_IMPORT, Actor.RECEIVER_COORDINATOR),
        (ImportFailed(reference="IMP-1", reason="database busy"), Actor.RECEIVER_NODE),
        (E.START_IMPORT, Actor.RECEIVER_COORDINATOR),
        (ImportFinished(counts=PARTIAL), Actor.RECEIVER_NODE),
    ]
    for event, actor in steps:
        result = apply(rcv, event, actor=actor, now=NOW)
        rcv = result.status
        for effect in result.effects:
            if isinstance(effect, SendReceipt):
                snd = apply(
                    snd, ReceiptArrived(receipt=effect.receipt), actor=Actor.RECEIVER_NODE, now=NOW
                ).status
    assert rcv.state is ReceiverState.PARTIALLY_IMPORTED
    assert snd.state is SenderState.PARTIALLY_IMPORTED
    assert rcv.receipts_issued == 5  # delivered, accepted, message, failed, imported
    assert snd.receipts_issued == 0


def test_reject_after_opening_discards_the_staging_area() -> None:
    result = apply(receiver(ReceiverState.ACCEPTED), Reject(reason="duplicate"), actor=Actor.RECEIVER_COORDINATOR,
                   now=NOW)  # fmt: skip
    assert result.effects[0] is Action.DISCARD_STAGING
    result = apply(receiver(ReceiverState.RECEIVED), Reject(reason="duplicate"), actor=Actor.RECEIVER_COORDINATOR,
                   now=NOW)  # fmt: skip
    assert result.effects[0] is Action.DELETE_SEALED_ENVELOPE


def test_allowed_and_final_states() -> None:
    assert E.ACCEPT in allowed_events(receiver(ReceiverState.RECEIVED))
    assert E.CANCEL not in allowed_events(sender(SenderState.ACCEPTED))
    assert final_states(Side.SENDER) == {
        SenderState.IMPORTED, SenderState.REJECTED, SenderState.CANCELLED, SenderState.LOCKED,
        SenderState.UNDELIVERABLE,
    }  # fmt: skip
    assert sender(SenderState.LOCKED).is_final and not sender(SenderState.EXPIRED).is_final
    assert INITIAL[Side.RECEIVER] is ReceiverState.ABSENT


def test_invalid_inputs_are_coded() -> None:
    with pytest.raises(SatchelError):
        Reject(reason="   ")
    with pytest.raises(SatchelError):
        SendMessage(text="x" * 9000)
    with pytest.raises(SatchelError):
        apply(receiver(ReceiverState.RECEIVED), E.LOCK_OUT, actor=Actor.RECEIVER_COORDINATOR, now=NOW)
    with pytest.raises(SatchelError):
        apply(receiver(), E.ACCEPT, actor=Actor.RECEIVER_COORDINATOR, now=NOW.replace(tzinfo=None))
    with pytest.raises(SatchelError):
        TransferStatus(side=Side.SENDER, state=ReceiverState.IMPORTING, transfer_id=TID, local_domain=A,
                       peer_domain=B, expires=EXPIRES, envelope_digest=DIGEST)  # fmt: skip
    with pytest.raises(SatchelError):
        new_incoming(transfer_id=TID, sender_domain=A, receiver_domain=A)


def test_retry_delay_is_full_jitter_capped() -> None:
    assert retry_delay(0, jitter=0.0) == 0.0
    assert retry_delay(0, jitter=0.5) == 1.0
    assert retry_delay(3, jitter=0.5) == 8.0
    assert retry_delay(40, jitter=0.999) == pytest.approx(3596.4)
    assert retry_delay(10_000, jitter=0.5) == 1800.0
    with pytest.raises(SatchelError):
        retry_delay(1, jitter=1.0)
    with pytest.raises(SatchelError):
        retry_delay(-1, jitter=0.1)


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (400, "envelope.malformed", True),
        (403, "transfer.disabled", False),
        (401, "signature.key_unknown", False),
        (409, "transfer.envelope_conflict", True),
        (429, None, False),
        (503, "storage.busy", False),
        (500, None, False),
        (200, None, False),
    ],
)
def test_permanent_refusals(status: int, code: str | None, permanent: bool) -> None:
    assert is_permanent_refusal(status, code) is permanent


EVENT_CHOICES = [(side, name) for side in Side for name in TransferEvent]


@given(
    side=st.sampled_from(list(Side)),
    steps=st.lists(
        st.tuples(st.sampled_from(list(TransferEvent)), st.sampled_from(list(Actor)), st.integers(0, 30)),
        max_size=25,
    ),
)
def test_random_event_sequences_stay_in_defined_states(
    side: Side, steps: list[tuple[TransferEvent, Actor, int]]
) -> None:
    status = sender() if side is Side.SENDER else receiver()
    for name, actor, days in steps:
        event, _ = make_event(side, name)
        now = NOW + timedelta(days=days)
        try:
            result = apply(status, event, actor=actor, now=now)
        except SatchelError:
            continue
        assert result.status.state in STATES[side]
        assert (result.previous, result.event) in TRANSITIONS[side]
        assert 0 <= result.status.wrong_codes <= result.status.max_wrong_codes
        status = result.status


@pytest.mark.parametrize(
    ("state", "said"),
    [(ReceiverState.LOCKED, "Too many wrong codes were tried; the transfer is locked for good"),
     (ReceiverState.ACCEPTED, "The receiving district already opened the transfer"),
     (ReceiverState.EXPIRED, "The transfer passed its expiry before it was accepted")],
)  # fmt: skip
def test_a_coordinators_mistake_is_told_in_words_not_as_a_table_entry(state: ReceiverState, said: str) -> None:
    # Two coordinators typing wrong codes at once: the slower one read "event 'lock_out' is not allowed in
    # state 'locked'".
    event, changes = make_event(Side.RECEIVER, TransferEvent.WRONG_CODE)
    with pytest.raises(TransitionNotAllowed) as caught:
        apply(status_for(Side.RECEIVER, state, **changes), event, actor=Actor.RECEIVER_COORDINATOR, now=NOW)
    assert caught.value.message.startswith(said) and caught.value.hint
