"""Records requests stored before a key revocation (found by a bug hunt): a request was verified when it arrived
(or signed here), so revoking the key that signed it must not make it unreadable, unanswerable, or stop the
overdue timer."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from support import transfer_json, wait_until


def _json(d, *args: str):
    return json.loads(d.cli(*args).stdout)


def _state(d, request_id: str) -> str:
    return _json(d, "requests", "show", request_id, "--json")["state"]


def _requested_then_revoked(a, b) -> str:
    """B asks A for 100001, then rotates its identity key and revokes the one that signed the request; A
    learns of the revocation. Returns the request's id."""
    request_id = b.cli("request", "--from", "a.example.org", "--student", "100001", "--as", "coord").stdout.split()[2]
    wait_until(lambda: _state(a, request_id) == "requested")
    [old] = [k["key_id"] for k in _json(b, "keys", "list", "--json") if k["use"] == "identity"]
    b.cli("keys", "rotate", "--identity", "--as", "admin")
    b.cli("keys", "revoke", old, "--as", "admin")
    a.cli("peers", "refresh", "b.example.org")
    shown = _json(a, "peers", "show", "b.example.org", "--json")
    assert {k["key_id"]: k["status"] for k in shown["keys"]}[old] == "revoked"
    return request_id


def test_a_request_signed_with_a_key_revoked_since_is_listed_shown_and_released_end_to_end(pair) -> None:
    from node.home import open_node
    from node.requests_flow import flag_overdue

    a, b, _ = pair
    request_id = _requested_then_revoked(a, b)
    for d in (a, b):
        assert [r["request_id"] for r in _json(d, "requests", "list", "--json")] == [request_id]
        assert _json(d, "requests", "show", request_id, "--json")["requester"]["email"] == "coord@b.example.org"
    # The overdue timer reads it too.
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE records_requests SET opened_on = '2026-01-05' WHERE request_id = ?", [request_id])
    with open_node(a.home, a.env) as node:
        assert flag_overdue(node) == [request_id]
    released = a.cli("requests", "release", request_id, "--student", "100001", "--all-records", "--as", "coord")
    code = released.stdout.split("Authentication code: ")[1].split()[0]
    transfer_id = released.stdout.split("transfer ")[1].split(".")[0]
    # B takes A's answer about its own request, signed with the key it revoked (it answered 401 before).
    wait_until(lambda: _state(b, request_id) == "released")
    assert _json(a, "requests", "show", request_id, "--json")["answer"]["delivery"]["status"] == "delivered"
    b.cli("accept", transfer_id, "--code", code, "--as", "coord")
    b.cli("import", "preview", transfer_id, "--as", "coord")
    assert _json(b, "import", "run", transfer_id, "--as", "coord", "--json")["imported"] == 1
    wait_until(lambda: transfer_json(a, transfer_id)["state"] == "imported")


def test_a_request_signed_with_a_key_revoked_since_can_be_rejected(pair) -> None:
    a, b, _ = pair
    request_id = _requested_then_revoked(a, b)
    a.cli("requests", "reject", request_id, "--comments", "no such student in our records", "--as", "coord")
    wait_until(lambda: _state(b, request_id) == "rejected")


def test_one_request_the_timer_cannot_read_does_not_keep_the_others_unflagged(
    pair, caplog: pytest.LogCaptureFixture
) -> None:
    from node.home import open_node
    from node.requests_flow import flag_overdue

    a, b, _ = pair
    asked = []
    for student in ("100002", "100001"):  # the damaged one, listed first (newest first), is the second
        out = b.cli("request", "--from", "a.example.org", "--student", student, "--as", "coord").stdout
        asked.append(out.split()[2])
        wait_until(lambda: _state(a, asked[-1]) == "requested")
    sound, damaged = asked
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE records_requests SET opened_on = '2026-01-05'")
        conn.execute("UPDATE records_requests SET signed_request = X'7b7d' WHERE request_id = ?", [damaged])
    with caplog.at_level(logging.ERROR, logger="satchel.requests"), open_node(a.home, a.env) as node:
        assert flag_overdue(node) == [sound]
    assert f"overdue check of records request {damaged} failed" in caplog.text


def _request_jobs(d) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(d.home / "satchel.db") as conn:
        return conn.execute("SELECT job_id, status, last_error FROM outbox WHERE kind = 'request' ORDER BY created_at"
                            ).fetchall()  # fmt: skip


def test_an_answer_and_a_message_queued_before_their_key_was_revoked_are_delivered_signed_with_the_new_key(
    pair,
) -> None:
    a, b, _ = pair
    request_id = b.cli("request", "--from", "a.example.org", "--student", "100001", "--as", "coord").stdout.split()[2]
    wait_until(lambda: _state(a, request_id) == "requested")
    a.stop()
    b.stop()  # A's outbox waits with both down: its message and answer are first tried once B is back
    a.cli("requests", "message", request_id, "We have two students of that name; checking.", "--as", "coord")
    a.cli("requests", "reject", request_id, "--comments", "no such student in our records", "--as", "coord")
    [old] = [k["key_id"] for k in _json(a, "keys", "list", "--json") if k["use"] == "identity"]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    a.cli("keys", "revoke", old, "--as", "admin")
    b.start()
    a.start()
    # A's first request tells B of the revocation; B refused both, signed by the revoked key, for good
    # (request.wrong_signer), and A gave them up.
    wait_until(lambda: all(status != "pending" for _, status, _ in _request_jobs(a)), timeout=60)
    assert [status for _, status, _ in _request_jobs(a)] == ["done", "done"], _request_jobs(a)
    assert _state(b, request_id) == "rejected"
    shown = _json(b, "requests", "show", request_id, "--json")
    assert [m["text"] for m in shown["messages"]] == ["We have two students of that name; checking."]
    assert shown["answer"]["comments"] == "no such student in our records"
    # A keeps what went, signed by its new key, and still knows each for delivered.
    [new] = [k["key_id"] for k in _json(a, "keys", "list", "--json") if k["use"] == "identity" and k["key_id"] != old]
    with sqlite3.connect(a.home / "satchel.db") as conn:
        (answer,) = conn.execute("SELECT signed_response FROM records_requests WHERE request_id = ?", [request_id]
                                 ).fetchone()  # fmt: skip
        (message,) = conn.execute("SELECT signed FROM request_messages WHERE request_id = ?", [request_id]).fetchone()
    assert {json.loads(answer)["key_id"], json.loads(message)["key_id"]} == {new}
    shown = _json(a, "requests", "show", request_id, "--json")
    assert [m["delivery"]["status"] for m in shown["messages"]] == ["delivered"]
    assert shown["answer"]["delivery"]["status"] == "delivered"
