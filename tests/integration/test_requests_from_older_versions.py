"""A records request that both districts stored under an older release, whose checks took a tab in a name
(before the one-line rule): after the upgrade it is listed, shown, released and followed to its end. It made
`requests list` fail at both districts, could not be answered, and the receipts of its release's transfer were
refused for good."""

from __future__ import annotations

import json
import sqlite3

from test_requests import _json, _request_state, _requested, _wait

from crypto import IdentityKey
from protocol.json_strict import dumps_canonical
from protocol.records_request import PURPOSE_REQUEST
from protocol.signed_document import sign_document, verify_document

from support import District, transfer_json


def _as_an_older_release_signed_it(a: District, b: District, request_id: str) -> None:
    """The request as B's node signed it, and both nodes kept it, before the one-line rule: the requester's
    name with a tab in it."""
    key = IdentityKey.import_secret((b.home / "keys" / "identity.key").read_text())
    for district in (a, b):
        with sqlite3.connect(district.home / "satchel.db") as conn:
            query = "SELECT signed_request FROM records_requests WHERE request_id = ?"
            (signed,) = conn.execute(query, [request_id]).fetchone()
            payload = json.loads(verify_document(signed, purpose=PURPOSE_REQUEST).payload)
            payload["requester"]["name"] = "Cory\tCoordinator"
            older = sign_document(PURPOSE_REQUEST, dumps_canonical(payload), key)
            conn.execute("UPDATE records_requests SET signed_request = ? WHERE request_id = ?", [older, request_id])


def test_a_request_stored_before_the_one_line_rule_is_answered_and_followed_to_its_end(pair) -> None:
    a, b, _ = pair
    request_id = _requested(a, b, "100001")
    _as_an_older_release_signed_it(a, b, request_id)

    for district in (a, b):
        assert [r["request_id"] for r in _json(district, "requests", "list", "--json")] == [request_id]
    assert _json(a, "requests", "show", request_id, "--json")["requester"]["name"] == "Cory\tCoordinator"
    assert "Cory Coordinator" in a.cli("requests", "list").stdout  # one line in the table

    released = a.cli("requests", "release", request_id, "--student", "100001", "--all-records", "--as", "coord")
    code = released.stdout.split("Authentication code: ")[1].split()[0]
    transfer_id = released.stdout.split("transfer ")[1].split(".")[0]
    _wait(lambda: _request_state(b, request_id) == "released")
    b.cli("accept", transfer_id, "--code", code, "--as", "coord")
    b.cli("import", "preview", transfer_id, "--as", "coord")
    assert _json(b, "import", "run", transfer_id, "--as", "coord", "--json")["imported"] == 1
    # The receipts follow the request at A (spec/requests.md §2): they are taken, not refused for good.
    _wait(lambda: transfer_json(a, transfer_id)["state"] == "imported")
    assert _request_state(a, request_id) == "released"
    b.cli("requests", "message", request_id, "Received, thank you", "--as", "coord")
    _wait(lambda: len(_json(a, "requests", "show", request_id, "--json")["messages"]) == 1)
