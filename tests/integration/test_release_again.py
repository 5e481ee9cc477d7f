"""A release whose transfer ends unopened (refused, expired, ...) leaves the records request open again at both
districts, to be released again or rejected (found by a bug hunt: it stayed `released` for good, the releasing
district could not answer again, and the requester waited for records that would never come)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

from support import transfer_json, wait_until


def _json(d, *args: str):
    return json.loads(d.cli(*args).stdout)


def _shown(d, request_id: str) -> dict:
    return _json(d, "requests", "show", request_id, "--json")


def _state(d, request_id: str) -> str:
    return _shown(d, request_id)["state"]


def _requested(a, b, student: str = "100001") -> str:
    request_id = b.cli("request", "--from", "a.example.org", "--student", student, "--as", "coord").stdout.split()[2]
    wait_until(lambda: _state(a, request_id) == "requested")
    return request_id


def _released(a, request_id: str, *args: str) -> tuple[str, str]:
    """A releases; returns the transfer's id and its code."""
    out = a.cli("requests", "release", request_id, *args, "--as", "coord").stdout
    return out.split("transfer ")[1].split(".")[0], out.split("Authentication code: ")[1].split()[0]


def _subjects(d) -> list[str]:
    return [i["subject"] for i in _json(d, "inbox", "--json")]


def test_a_release_the_requester_refused_is_released_again_in_a_new_transfer(pair) -> None:
    a, b, _ = pair
    request_id = _requested(a, b)
    wrong, _ = _released(a, request_id, "--student", "100002", "--not-matched")  # the wrong child, after all
    wait_until(lambda: _state(b, request_id) == "released")
    b.cli("reject", wrong, "--reason", "this is not the student we asked for", "--as", "coord")
    wait_until(lambda: transfer_json(a, wrong)["state"] == "rejected")
    # Open again at A at once, and at B once A's news arrives; both name the transfer that failed.
    assert _state(a, request_id) == "release_failed"
    wait_until(lambda: _state(b, request_id) == "release_failed")
    for d in (a, b):
        shown = _shown(d, request_id)
        assert shown["transfer_id"] == wrong and shown["answer"]["kind"] == "release_failed"
        assert shown["answer"]["transfer_id"] == wrong and "ended rejected" in shown["answer"]["comments"]
    assert _shown(a, request_id)["answer"]["delivery"]["status"] == "delivered"
    listed = _json(b, "requests", "list", "--status", "release_failed", "--json")
    assert [r["request_id"] for r in listed] == [request_id]
    assert any(f"Records request {request_id} from b.example.org is open again" in s for s in _subjects(a))
    assert any(f"released for request {request_id} did not reach this district" in s for s in _subjects(b))
    (entry,) = [e for e in _json(a, "audit", "--json") if e["action"] == "request.release_failed"]
    assert (entry["actor"], entry["details"]) == ("b.example.org", {"transfer": wrong, "ending": "rejected"})
    # Released again, the right child this time: a new transfer, which B takes.
    right, code = _released(a, request_id, "--student", "100001", "--all-records")
    assert right != wrong and _state(a, request_id) == "released"
    wait_until(lambda: _shown(b, request_id)["transfer_id"] == right)
    assert _state(b, request_id) == "released"
    b.cli("accept", right, "--code", code, "--as", "coord")
    b.cli("import", "preview", right, "--as", "coord")
    assert _json(b, "import", "run", right, "--as", "coord", "--json")["imported"] == 1
    wait_until(lambda: transfer_json(a, right)["state"] == "imported")
    assert _state(a, request_id) == "released"  # the release that stands is the one that arrived
    # Each disclosure still names the request it answered, and says what became of it.
    refused = _json(a, "disclosures", "100002", "--json")["disclosures"]
    assert [(d["transfer_id"], d["requested_by"]["request_id"], d["outcome"]) for d in refused] == [
        (wrong, request_id, "refused by the receiving district, never opened")]  # fmt: skip
    opened = _json(a, "disclosures", "100001", "--json")["disclosures"]
    assert [(d["transfer_id"], d["requested_by"]["request_id"]) for d in opened] == [(right, request_id)]
    # A second release while one stands is still refused.
    twice = a.cli("requests", "release", request_id, "--student", "100001", "--as", "coord", ok=False)
    assert "request.already_answered" in twice.stderr


def test_a_release_that_expired_unopened_can_be_rejected_and_the_requester_can_cancel_one(pair) -> None:
    from node.home import open_node
    from node.transfer_actions import expire_due

    a, b, _ = pair
    request_id = _requested(a, b)
    transfer_id, _ = _released(a, request_id, "--student", "100001")
    wait_until(lambda: _state(b, request_id) == "released")
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE transfers SET expires_at = '2026-01-01T00:00:00Z' WHERE transfer_id = ?", [transfer_id])
    with open_node(a.home, a.env) as node:
        assert expire_due(node) == [transfer_id]
    assert _state(a, request_id) == "release_failed"
    wait_until(lambda: _state(b, request_id) == "release_failed")
    assert "ended expired" in _shown(b, request_id)["answer"]["comments"]
    (entry,) = [e for e in _json(a, "audit", "--json") if e["action"] == "request.release_failed"]
    assert entry["actor"] == "(timer)"
    a.cli("requests", "reject", request_id, "--comments", "her records went to the state archive", "--as", "coord")
    wait_until(lambda: _state(b, request_id) == "rejected")
    assert _shown(b, request_id)["answer"]["comments"] == "her records went to the state archive"
    # Another request, whose release expired too: the requester withdraws it rather than wait for the next.
    other = _requested(a, b, "100002")
    transfer_id, _ = _released(a, other, "--student", "100002")
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE transfers SET expires_at = '2026-01-01T00:00:00Z' WHERE transfer_id = ?", [transfer_id])
    with open_node(a.home, a.env) as node:
        expire_due(node)
    wait_until(lambda: _state(b, other) == "release_failed")
    b.cli("requests", "cancel", other, "--comments", "the family found the report cards", "--as", "coord")
    wait_until(lambda: _state(a, other) == "cancelled")
    assert _shown(b, other)["answer"]["delivery"]["status"] == "delivered"  # B's second answer, numbered


def test_answers_about_a_request_reach_the_requester_in_the_order_they_were_given(pair) -> None:
    from node.clock import iso, utc_now
    from node.home import open_node
    from node.transfer_actions import expire_due

    a, b, _ = pair
    request_id = _requested(a, b)
    b.stop()  # A's answers wait in its outbox, each after the one before it
    transfer_id, _ = _released(a, request_id, "--student", "100001")
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE transfers SET expires_at = '2026-01-01T00:00:00Z' WHERE transfer_id = ?", [transfer_id])
    with open_node(a.home, a.env) as node:
        assert expire_due(node) == [transfer_id]  # never delivered: it expired in A's outbox
    a.cli("requests", "reject", request_id, "--comments", "we sent nothing after all; call us", "--as", "coord")
    jobs = [f"response-{request_id}", f"response-{request_id}-2", f"response-{request_id}-3"]
    with sqlite3.connect(a.home / "satchel.db") as conn:
        waiting = dict(conn.execute(f"SELECT job_id, status FROM outbox WHERE job_id IN ({','.join('?' * 3)})", jobs))
    assert waiting == dict.fromkeys(jobs, "pending")
    assert "[waiting until the answer before it is delivered]" in a.cli("requests", "show", request_id).stdout
    b.start()
    with sqlite3.connect(a.home / "satchel.db") as conn:  # no backoff to wait out, and the last one first in line
        for seconds, job_id in enumerate(reversed(jobs)):
            due = iso(utc_now() - timedelta(seconds=10 - seconds))
            conn.execute("UPDATE outbox SET next_attempt_at = ? WHERE job_id = ?", [due, job_id])
    wait_until(lambda: _state(b, request_id) == "rejected")
    with open_node(b.home, b.env) as node:
        heard = [action for (action,) in node.db.execute(
            "SELECT action FROM audit_log WHERE subject = ? AND action LIKE 'request.re%' ORDER BY seq", [request_id])]
    assert heard == ["request.released", "request.release_failed", "request.rejected"]


def test_a_release_that_failed_and_waits_too_long_is_flagged_and_reminded_at_both_districts(pair) -> None:
    """Found left over: a request whose release failed waited on the releasing district for good, never flagged
    overdue nor reminded of (spec/requests.md §5: its working days count from the day the release failed)."""
    from node.home import open_node
    from node.requests_flow import flag_overdue

    a, b, mailbox = pair
    request_id = _requested(a, b)
    refused, _ = _released(a, request_id, "--student", "100001")
    wait_until(lambda: _state(b, request_id) == "released")
    b.cli("reject", refused, "--reason", "wrong grade's records", "--as", "coord")
    wait_until(lambda: _state(a, request_id) == "release_failed" and _state(b, request_id) == "release_failed")
    for d in (a, b):  # owed an answer again, from today, and not late yet
        assert _shown(d, request_id)["overdue"] is False
        with open_node(d.home, d.env) as node:
            assert flag_overdue(node) == []
    # Ten working days and more after the release failed (the timer's clock moved as for requests never answered).
    for d in (a, b):
        with sqlite3.connect(d.home / "satchel.db") as conn:
            conn.execute("UPDATE records_requests SET failed_on = '2026-01-05' WHERE request_id = ?", [request_id])
        with open_node(d.home, d.env) as node:
            assert flag_overdue(node) == [request_id]
            assert flag_overdue(node) == []  # told once
        assert _json(d, "requests", "list", "--json")[0]["overdue"] is True
        shown = d.cli("requests", "show", request_id).stdout
        assert "release_failed (OVERDUE)" in shown
        assert "Answer due:     2026-01-19 (10 working days from 2026-01-05, when the release failed)" in shown
        assert (_shown(d, request_id)["due_on"], _shown(d, request_id)["release_failed_on"]) == (
            "2026-01-19", "2026-01-05")  # fmt: skip
    releaser_told = f"Reminder: records request {request_id} from b.example.org is unanswered since its release failed"
    requester_told = f"Records request {request_id} to a.example.org has no new answer since its release failed"
    assert _subjects(a).count(releaser_told) == 1 and _subjects(b).count(requester_told) == 1

    def mails(to: str, subject: str) -> list:
        return [m for m in mailbox.messages if to in str(m["To"]) and " ".join(str(m["Subject"]).split()) == subject]

    wait_until(lambda: mails("coord@a.example.org", releaser_told) and mails("coord@b.example.org", requester_told))
    releaser_mail = mails("coord@a.example.org", releaser_told)[0].get_payload(decode=True).decode()
    assert f"satchel requests release {request_id} --student" in releaser_mail
    assert f"satchel requests reject {request_id} --comments" in releaser_mail
    requester_mail = mails("coord@b.example.org", requester_told)[0].get_payload(decode=True).decode()
    assert "Their transfer coordinator: Cory Coordinator, +1 217-555-0100" in requester_mail
    # Still unanswered a working week later: reminded again, once.
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE records_requests SET reminded_on = '2026-01-20' WHERE request_id = ?", [request_id])
    with open_node(a.home, a.env) as node:
        assert flag_overdue(node) == [request_id]
        assert flag_overdue(node) == []
    assert _subjects(a).count(releaser_told) == 2
    # Released again: owed nothing more at either district, and no longer reminded of.
    _released(a, request_id, "--student", "100001", "--all-records")
    wait_until(lambda: _state(b, request_id) == "released")
    for d in (a, b):
        shown = _shown(d, request_id)
        assert (shown["overdue"], shown["due_on"], shown["release_failed_on"]) == (False, None, None)
        with open_node(d.home, d.env) as node:
            assert flag_overdue(node) == []


def test_a_release_opened_then_refused_is_told_as_such_on_both_sides(pair) -> None:
    a, b, _ = pair
    request_id = _requested(a, b)
    tid, code = _released(a, request_id, "--student", "100002", "--not-matched")
    wait_until(lambda: _state(b, request_id) == "released")
    b.cli("accept", tid, "--code", code, "--as", "coord")  # the records reached B, which read them...
    b.cli("reject", tid, "--reason", "this is not the student we asked for", "--as", "coord")  # ...and gave them back
    wait_until(lambda: _state(b, request_id) == "release_failed")
    # Open again, rightly; but "did not reach" would be untrue, and hide that B read another child's records.
    for d in (a, b):
        comments = _shown(d, request_id)["answer"]["comments"]
        assert "the requesting district opened the records, then refused them" in comments
        assert "this is not the student we asked for" in comments
        assert "did not reach" not in " ".join(_subjects(d))
    assert any(f"The records a.example.org released for request {request_id} were opened here, then refused" in s
               for s in _subjects(b))  # fmt: skip
    assert any(f"Records request {request_id} from b.example.org is open again: they opened the records released, "
               "then refused them" in s for s in _subjects(a))  # fmt: skip
    (entry,) = [e for e in _json(a, "audit", "--json") if e["action"] == "request.release_failed"]
    assert entry["details"] == {"transfer": tid, "ending": "rejected", "opened": True}
