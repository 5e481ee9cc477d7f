"""What a peer without ``request.release_failed`` is sent instead of the answers it refuses (spec/requests.md §4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.records_request import (
    MAX_COMMENTS,
    Person,
    RequestResponse,
    ResponseKind,
    encode_request_response,
    parse_request_response,
)
from protocol.request_compat import in_words, needs_words

RITA = Person(name="Rita Registrar", email="rita@old.example.org")
REQUEST, FAILED, AGAIN = (
    "01HZX3J5K6M7N8P9Q0R1S2T3V4",
    "01HZX3J5K6M7N8P9Q0R1S2T3V5",
    "01HZX3J5K6M7N8P9Q0R1S2T3V6",
)
AT = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def _answer(kind: ResponseKind, comments: str = "", transfer_id: str | None = None) -> RequestResponse:
    return RequestResponse(kind=kind, request_id=REQUEST, from_domain="old.example.org", to_domain="new.example.org",
                           created=AT, person=RITA, comments=comments, transfer_id=transfer_id)  # fmt: skip


@pytest.mark.parametrize(("kind", "number", "expected"), [
    (ResponseKind.RELEASED, 1, False), (ResponseKind.REJECTED, 1, False), (ResponseKind.CANCELLED, 1, False),
    (ResponseKind.RELEASE_FAILED, 2, True), (ResponseKind.RELEASED, 3, True), (ResponseKind.REJECTED, 3, True),
    (ResponseKind.CANCELLED, 2, False),
])  # fmt: skip
def test_only_the_news_of_a_failed_release_and_the_answers_after_it_need_words(
    kind: ResponseKind, number: int, expected: bool
) -> None:
    transfer = FAILED if kind in (ResponseKind.RELEASED, ResponseKind.RELEASE_FAILED) else None
    comments = "not held here" if kind is ResponseKind.REJECTED else ""
    assert needs_words(_answer(kind, comments, transfer), answer_number=number) is expected


def test_the_next_release_in_words_names_its_transfer_and_keeps_who_and_when() -> None:
    said = in_words(_answer(ResponseKind.RELEASED, "everything we hold", AGAIN))
    assert said.kind is ResponseKind.MESSAGE and said.transfer_id is None
    assert (said.person, said.created, said.request_id, said.to_domain) == (
        RITA,
        AT,
        REQUEST,
        "new.example.org",
    )
    assert f"in a new transfer {AGAIN}" in said.comments and "everything we hold" in said.comments
    assert "version of new.example.org does not take this answer" in said.comments


@given(
    st.sampled_from([ResponseKind.RELEASED, ResponseKind.REJECTED, ResponseKind.RELEASE_FAILED]),
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=MAX_COMMENTS),
)
def test_any_answer_in_words_is_a_message_every_version_parses(kind: ResponseKind, comments: str) -> None:
    if not comments.strip():
        comments = "x"
    transfer = AGAIN if kind is not ResponseKind.REJECTED else None
    said = in_words(_answer(kind, comments, transfer))
    assert len(said.comments) <= MAX_COMMENTS
    assert parse_request_response(encode_request_response(said)) == said
