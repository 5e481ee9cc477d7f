"""`transfers list --status` and `requests list --status` take the states the lists show, and refuse any other
word, naming the states: a typo listed nothing, which reads as "no such transfer"."""

from __future__ import annotations

import json

from protocol.request_states import RequestState
from protocol.transfer_status import ReceiverState, SenderState

from support import run_cli


def test_a_status_that_is_no_state_is_refused_with_the_states(make_home) -> None:
    home = make_home()
    for command, word in (("transfers", "pending"), ("requests", "overdue")):
        refused = run_cli(home, command, "list", "--status", word, ok=False)
        assert refused.exit_code == 2 and f"'{word}' is not one of" in refused.output
        assert "'cancelled'" in refused.output
    assert json.loads(run_cli(home, "transfers", "list", "--status", "Partially_Imported", "--json").output) == []
    assert json.loads(run_cli(home, "requests", "list", "--status", "release_failed", "--json").output) == []
    assert json.loads(run_cli(home, "requests", "list", "--overdue", "--json").output) == []


def test_the_states_offered_are_the_machines_states() -> None:
    from cli.requests import _STATES as REQUEST_STATES
    from cli.transfers import _STATES as TRANSFER_STATES

    assert set(REQUEST_STATES) == {s.value for s in RequestState} - {"absent"}
    assert set(TRANSFER_STATES) == {s.value for s in (*SenderState, *ReceiverState)} - {"absent"}
