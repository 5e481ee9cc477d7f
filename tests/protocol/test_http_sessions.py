"""Session messages and the replay window (spec/request-signing.md §11)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import SatchelError
from protocol.http_sessions import (
    ReplayWindow,
    SessionAnswer,
    SessionOfferInvalid,
    answer_body,
    new_session_id,
    offer_body,
    parse_answer,
    parse_offer,
    parse_sequence_nonce,
    sequence_nonce,
    session_context,
)
from protocol.http_signatures import NONCE_PATTERN, SESSION_KEY_ID_PATTERN
from protocol.signature_errors import SignatureReplayed


@given(st.binary(min_size=32, max_size=32))
def test_offer_round_trip(share: bytes) -> None:
    assert parse_offer(offer_body(share)) == share


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=32, max_size=32), st.integers(0, 2**40))
def test_answer_round_trip(raw_id: bytes, share: bytes, expires: int) -> None:
    answer = SessionAnswer(new_session_id(raw_id), share, expires)
    assert SESSION_KEY_ID_PATTERN.fullmatch(answer.session_id)
    assert parse_answer(answer_body(answer)) == answer


@given(st.binary(max_size=300))
def test_arbitrary_bodies_raise_only_coded_errors(body: bytes) -> None:
    for parse in (parse_offer, parse_answer):
        try:
            parse(body)
        except SatchelError as exc:
            assert exc.code == "session.offer_invalid"


@pytest.mark.parametrize(
    "body",
    [b'{"share":"' + b"A" * 42 + b'"}', b'{"share":"' + b"A" * 43 + b'","x":1}', b'{"share":1}', b"[]",
     b'{"share":"' + b"A" * 42 + b'B"}', b'{"share":"' + b"A" * 42 + b'B","share":"x"}'],
)  # fmt: skip
def test_bad_offers_are_refused(body: bytes) -> None:
    with pytest.raises(SessionOfferInvalid):
        parse_offer(body)


@given(st.integers(1, 10**22 - 1))
def test_sequence_nonces_are_profile_nonces(sequence: int) -> None:
    nonce = sequence_nonce(sequence)
    assert NONCE_PATTERN.fullmatch(nonce) and parse_sequence_nonce(nonce) == sequence


@pytest.mark.parametrize("nonce", ["0" * 22, "1" * 21, "a" * 22, "1" * 23])
def test_other_nonces_are_no_sequence_numbers(nonce: str) -> None:
    assert parse_sequence_nonce(nonce) is None


@given(st.lists(st.integers(1, 300), max_size=200), st.integers(1, 64))
def test_the_window_accepts_each_number_once_and_none_too_old(sequence: list[int], window: int) -> None:
    replay, accepted, highest = ReplayWindow(window), set(), 0
    for n in sequence:
        ok = n not in accepted and n > highest - window
        try:
            replay.accept(n)
        except SignatureReplayed:
            assert not ok
        else:
            assert ok
            accepted.add(n)
            highest = max(highest, n)


def test_a_huge_jump_forgets_the_window_without_a_huge_shift() -> None:
    replay = ReplayWindow()
    replay.accept(5)
    replay.accept(10**21)
    with pytest.raises(SignatureReplayed):
        replay.accept(5)
    replay.accept(10**21 - 1)


def test_context_parts_may_not_contain_nul() -> None:
    with pytest.raises(SatchelError):
        session_context(
            session_id="hs-x\x00", expires=1, client_key_id="a", server_key_id="b", client_origin="o"
        )
