"""A thread's limit: 500 messages, both directions (spec/transfer.md §8, spec/requests.md §4 step 7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.threads import MAX_THREAD_MESSAGES, ThreadFull, check_room


def test_the_limit_is_the_one_the_spec_states() -> None:
    assert MAX_THREAD_MESSAGES == 500


@given(st.integers(min_value=0, max_value=10**9))
def test_room_until_the_thread_holds_the_limit(held: int) -> None:
    if held < MAX_THREAD_MESSAGES:
        check_room(held, about="transfer T")
        return
    with pytest.raises(ThreadFull) as refused:
        check_room(held, about="transfer T")
    assert refused.value.code == "thread.full" and refused.value.field == "thread"
    assert f"transfer T already holds {held:,} messages" in refused.value.message
    assert "peers show" in (refused.value.hint or "")


def test_the_last_place_is_taken_and_the_next_refused() -> None:
    check_room(499, about="records request R")
    with pytest.raises(ThreadFull):
        check_room(500, about="records request R")
