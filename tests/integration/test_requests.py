"""Records requests between real nodes: request, alert, release, records arrive, import; reject; overdue."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

from fixtures_oneroster import make_bundle, write_bundle


def _json(d, *args: str):
    return json.loads(d.cli(*args).stdout)


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def _request_state(d, request_id: str) -> str:
    return _json(d, "requests", "show", request_id, "--json")["state"]


def _requested(a, b, student: str) -> str:
    """B asks A for a student's records; returns the request's id once A has it."""
    request_id = b.cli(
        "request", "--from", "a.example.org", "--student", student, "--as", "coord"
    ).stdout.split()[2]
    _wait(lambda: _request_state(a, request_id) == "requested")
    return request_id


def test_request_alert_release_transfer_and_import(pair) -> None:
    a, b, mailbox = pair
    out = b.cli("request", "--from", "a.example.org", "--student", "100001", "--comments", "IEP starts Monday",
                "--as", "coord").stdout  # fmt: skip
    request_id = out.split()[2]
    _wait(
        lambda: any(
            r["request_id"] == request_id for r in _json(a, "requests", "list", "--incoming", "--json")
        )
    )
    _wait(lambda: any(request_id in s for s in mailbox.to("coord@a.example.org")))
    shown = _json(a, "requests", "show", request_id, "--json")
    assert shown["requester"]["email"] == "coord@b.example.org" and shown["from"] == "b.example.org"
    assert shown["from_trust"] == "pinned"  # how A knows B, for whoever decides whether to release
    assert "of b.example.org (verified signature; pinned here after a fingerprint check)" in a.cli(
        "requests", "show", request_id).stdout
    assert shown["enrolment"]["school"] == "Lincoln Middle School"
    assert shown["candidates"]["status"] == "matched" and shown["candidates"]["proposed"] == "100001"

    released = a.cli("requests", "release", request_id, "--student", "100001", "--all-records",
                     "--comments", "attached: everything we hold", "--as", "coord").stdout  # fmt: skip
    code = released.split("Authentication code: ")[1].split()[0]
    transfer_id = released.split("transfer ")[1].split(".")[0]
    _wait(lambda: _request_state(b, request_id) == "released")
    after = _json(b, "requests", "show", request_id, "--json")
    assert after["transfer_id"] == transfer_id and after["due_on"] is None
    assert (after["answer"]["kind"], after["answer"]["transfer_id"]) == ("released", transfer_id)
    assert after["answer"]["comments"] == "attached: everything we hold"
    b.cli("accept", transfer_id, "--code", code, "--as", "coord")
    b.cli("import", "preview", transfer_id, "--as", "coord")
    assert _json(b, "import", "run", transfer_id, "--as", "coord", "--json")["imported"] == 1
    disclosure = _json(a, "disclosures", "100001", "--json")["disclosures"][-1]
    assert disclosure["to_domain"] == "b.example.org" and disclosure["disclosed_by_name"] == "Cory Coordinator"
    # The record of disclosures names who asked (34 CFR 99.32: the parties who requested the records), and why.
    assert disclosure["requested_by"] == {"name": "Cory Coordinator", "email": "coord@b.example.org",
                                          "phone": disclosure["requested_by"]["phone"], "domain": "b.example.org",
                                          "request_id": request_id}  # fmt: skip
    assert disclosure["purpose"] == (
        "released in answer to b.example.org's records request for the student enrolled at Lincoln Middle School "
        f"since {shown['enrolment']['start_date']}: attached: everything we hold"
    )
    letter = a.cli("disclosures", "100001", "--text").stdout
    assert "Requested by:  Cory Coordinator <coord@b.example.org>" in letter and request_id in letter


def test_request_rejected_with_comments(pair) -> None:
    a, b, _ = pair
    request_id = _requested(a, b, "100002")
    # B sent it: only A answers it, and B is told so in words rather than as a state-table entry.
    for answer in (("reject", "--comments", "mine"), ("release", "--student", "100002")):
        own = b.cli("requests", answer[0], request_id, *answer[1:], "--as", "coord", ok=False)
        assert "is one this district sent to a.example.org" in own.stderr, own.stderr
        assert "(error code input.invalid)" in own.stderr
    waiting = _json(a, "requests", "show", request_id, "--json")
    # Due on the tenth weekday after today (no holidays configured), counted here by hand: a calendar-day bound
    # held on some days of the week only (from a Sunday the tenth working day is 12 days on, from a Monday 14).
    due, today = date.fromisoformat(waiting["due_on"]), date.today()
    weekdays = sum((today + timedelta(days=n)).weekday() < 5 for n in range(1, (due - today).days + 1))
    assert waiting["answer"] is None and weekdays == 10 and due.weekday() < 5
    assert f"Answer due:     {waiting['due_on']} (10 working days)" in a.cli("requests", "show", request_id).stdout
    a.cli("requests", "reject", request_id, "--comments", "no such student in our records", "--as", "coord")
    _wait(lambda: _request_state(b, request_id) == "rejected")
    # Both sides show the answer as signed, with who gave it and when (the seed's "Releasing District & User").
    # The releaser's own answer also says it was delivered; the requester did not send it.
    _wait(lambda: (_json(a, "requests", "show", request_id, "--json")["answer"]["delivery"] or {}).get("status")
                  == "delivered")  # fmt: skip
    for side, delivery in ((a, "delivered"), (b, None)):
        shown = _json(side, "requests", "show", request_id, "--json")
        sent = shown["answer"].pop("delivery")
        assert (sent and sent["status"]) == delivery
        assert shown["due_on"] is None and shown["answer"] == {
            "kind": "rejected", "at": shown["answer"]["at"], "from": "a.example.org",
            "comments": "no such student in our records", "transfer_id": None,
            "person": {"name": "Cory Coordinator", "email": "coord@a.example.org", "phone": "+1 217-555-0100"},
        }  # fmt: skip
    text = b.cli("requests", "show", request_id).stdout
    assert "Answer:         rejected at " in text and "by Cory Coordinator <coord@a.example.org>" in text
    assert "Its comments:   no such student in our records" in text and "(this district)" in text
    events = _json(b, "audit", "--json")
    assert any(
        e["action"] == "request.rejected" and "no such student" in e["details"]["comments"] for e in events
    )
    again = a.cli("requests", "reject", request_id, "--comments", "twice", "--as", "coord", ok=False)
    assert "request.already_answered" in again.stderr


def test_unanswered_request_is_flagged_and_coordinators_reminded(pair) -> None:
    from node.home import open_node
    from node.requests_flow import flag_overdue

    a, b, mailbox = pair
    request_id = _requested(a, b, "100002")
    with open_node(a.home, a.env) as node:
        assert flag_overdue(node) == []  # not yet due
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute(
            "UPDATE records_requests SET opened_on = '2026-01-05' WHERE request_id = ?", [request_id]
        )
    with open_node(a.home, a.env) as node:
        assert flag_overdue(node) == [request_id]
        assert flag_overdue(node) == []  # flagged once
    listed = _json(a, "requests", "list", "--incoming", "--json")
    assert listed[0]["overdue"] is True

    def reminders() -> int:
        return sum("Reminder" in i["subject"] for i in _json(a, "inbox", "--json"))

    assert reminders() == 1
    # Still unanswered a working week later: told again, once.
    with sqlite3.connect(a.home / "satchel.db") as conn:
        (reminded_on,) = conn.execute("SELECT reminded_on FROM records_requests WHERE request_id = ?",
                                      [request_id]).fetchone()  # fmt: skip
        assert reminded_on is not None  # the node's local day when it was flagged
        conn.execute("UPDATE records_requests SET reminded_on = ? WHERE request_id = ?",
                     [(date.fromisoformat(reminded_on) - timedelta(days=7)).isoformat(), request_id])  # fmt: skip
    with open_node(a.home, a.env) as node:
        assert flag_overdue(node) == [request_id]
        assert flag_overdue(node) == []
    assert reminders() == 2
    # The node's timer flagged it and reminded once since: each is in the audit log, in the timer's name.
    flagged = [(e["actor"], e["details"]) for e in _json(a, "audit", "--json") if e["action"] == "request.overdue"]
    assert flagged == [("(timer)", {"reminder": True}), ("(timer)", {"reminder": False})]
    # At the requester the same day flags its own request, and says whom to ask rather than to answer it.
    with sqlite3.connect(b.home / "satchel.db") as conn:
        conn.execute("UPDATE records_requests SET opened_on = '2026-01-05' WHERE request_id = ?", [request_id])
    with open_node(b.home, b.env) as node:
        assert flag_overdue(node) == [request_id]
    (told,) = [i["subject"] for i in _json(b, "inbox", "--json") if request_id in i["subject"]]
    assert told == f"Records request {request_id} to a.example.org has no answer yet"
    def told_by_mail() -> list:
        return [m for m in mailbox.messages if "no answer yet" in " ".join(str(m["Subject"]).split())
                and "coord@b.example.org" in str(m["To"])]  # fmt: skip

    _wait(told_by_mail)  # sent by B's serving node
    (mail,) = told_by_mail()
    body = mail.get_payload(decode=True).decode()
    assert "Their transfer coordinator: Cory Coordinator, +1 217-555-0100" in body
    assert f"satchel requests message {request_id}" in body


def test_a_request_that_never_reached_the_other_district_is_reminded_of_as_such(pair) -> None:
    from node.home import open_node
    from node.requests_flow import flag_overdue

    a, b, _ = pair
    b.cli("peers", "ping", a.domain)  # B knows A, then A goes away before the request is made
    a.stop()
    request_id = b.cli("request", "--from", a.domain, "--student", "100002", "--as", "coord").stdout.split()[2]
    with sqlite3.connect(b.home / "satchel.db") as conn:
        conn.execute("UPDATE records_requests SET opened_on = '2026-01-05' WHERE request_id = ?", [request_id])
    with open_node(b.home, b.env) as node:
        assert flag_overdue(node) == [request_id]
    (told,) = [i for i in _json(b, "inbox", "--json") if request_id in i["subject"]]
    # Not "no answer yet", with whom to ask: they never had it, so asking them would not help.
    assert told["subject"] == f"Records request {request_id} to a.example.org has not reached them yet"
    assert "It is still being sent (" in told["body"] and f"satchel peers ping {a.domain}" in told["body"]


def test_the_district_holidays_are_not_working_days(pair) -> None:
    from node.home import open_node
    from node.requests_flow import flag_overdue, show

    a, b, _ = pair
    request_id = _requested(a, b, "100002")
    opened = date.today() - timedelta(days=21)  # 15 weekdays ago: overdue after 10 working days…
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute(
            "UPDATE records_requests SET opened_on = ? WHERE request_id = ?", [opened.isoformat(), request_id]
        )
    # …unless the district's calendar closes most of them (a day either side for the time zone).
    closed = ", ".join((opened + timedelta(days=n)).isoformat() for n in range(1, 17))
    with open_node(a.home, {**a.env, "SATCHEL_REQUESTS_HOLIDAYS": closed}) as node:
        assert flag_overdue(node) == [] and show(node, request_id).overdue is False
    with open_node(a.home, a.env) as node:
        assert flag_overdue(node) == [request_id]


def test_release_refused_while_the_student_is_not_yet_enrolled(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    future = [{"sis_id": "100001", "given_name": "Ava", "family_name": "Martinez", "birth_date": "2012-03-14",
               "sex": "F", "grade": "07", "state_id": "9000000101", "school_id": "0101",
               "school_name": "Lincoln Middle School", "enrollment_start": "2030-08-19"}]  # fmt: skip
    b.cli("roster", "import", str(write_bundle(tmp_path / "future", make_bundle(future))), "--as", "coord")
    request_id = _requested(a, b, "100001")
    refused = a.cli("requests", "release", request_id, "--student", "100001", "--as", "coord", ok=False)
    assert "request.student_not_enrolled" in refused.stderr
    assert _json(a, "transfers", "list", "--json") == []  # nothing was sealed


def test_the_requester_cancels_and_the_releaser_is_told(pair) -> None:
    a, b, mailbox = pair
    request_id = _requested(a, b, "100002")
    # Only the district that sent it may cancel it; the other is told how to refuse it instead.
    refused = a.cli("requests", "cancel", request_id, "--as", "coord", ok=False)
    assert "only b.example.org can cancel it" in refused.stderr and "requests reject" in refused.stderr
    out = b.cli("requests", "cancel", request_id, "--comments", "the family moved out of state", "--as", "coord")
    assert f"Cancelled {request_id}" in out.stdout
    assert _request_state(b, request_id) == "cancelled"
    _wait(lambda: _request_state(a, request_id) == "cancelled")
    _wait(lambda: any(f"Records request {request_id} was cancelled by b.example.org" in s
                      for s in mailbox.to("coord@a.example.org")))  # fmt: skip
    assert any(e["action"] == "request.cancelled" and e["details"]["comments"] == "the family moved out of state"
               for e in _json(a, "audit", "--json"))  # fmt: skip
    answer = _json(a, "requests", "show", request_id, "--json")["answer"]
    assert (answer["kind"], answer["from"], answer["comments"]) == ("cancelled", "b.example.org",
                                                                    "the family moved out of state")  # fmt: skip
    late = a.cli("requests", "release", request_id, "--student", "100002", "--as", "coord", ok=False)
    assert "request.cancelled" in late.stderr
    assert _json(a, "transfers", "list", "--json") == []  # nothing was sealed
    again = b.cli("requests", "cancel", request_id, "--as", "coord", ok=False)
    assert "(error code request." in again.stderr  # cancelled once; the machine says why not twice


def test_an_answer_that_crosses_a_cancellation_wins(pair) -> None:
    a, b, _ = pair
    request_id = _requested(a, b, "100002")
    a.stop()  # B's cancellation waits in B's outbox while A answers
    b.cli("requests", "cancel", request_id, "--as", "coord")
    assert _request_state(b, request_id) == "cancelled"
    assert _outbox_job(b, request_id)[0] == "pending"
    a.cli("requests", "reject", request_id, "--comments", "no such student in our records", "--as", "coord")
    assert _request_state(b, request_id) == "rejected"  # the releaser's answer wins…
    assert _outbox_job(b, request_id)[0] == "cancelled"  # …and the cancellation, now moot, is not sent
    # B's coordinator still sees that B cancelled, and that the answer crossed it.
    shown = _json(b, "requests", "show", request_id, "--json")
    assert shown["answer"]["kind"] == "rejected" and shown["answer"]["delivery"] is None  # A's, not B's to send
    assert shown["crossed_cancellation"]["delivery"]["status"] == "withdrawn"
    assert shown["crossed_cancellation"]["person"]["email"].startswith("coord@")
    assert "the answer crossed it and stands [withdrawn]" in b.cli("requests", "show", request_id).stdout
    a.start()
    assert _request_state(a, request_id) == "rejected"
    assert _json(a, "requests", "show", request_id, "--json")["crossed_cancellation"] is None  # B's, not A's


def test_a_cancellation_that_reaches_an_answered_request_is_refused(pair) -> None:
    from node.clock import now_iso
    from node.home import open_node
    from storage import outbox

    a, b, _ = pair
    request_id = _requested(a, b, "100002")
    b.stop()  # A's answer waits in A's outbox; B does not know of it when it cancels
    a.cli("requests", "reject", request_id, "--comments", "no such student in our records", "--as", "coord")
    b.start()
    with open_node(a.home, a.env) as node:  # A's outbox is not to deliver first: its retry waits its backoff
        assert outbox.make_due(node.db, f"response-{request_id}", "9999-01-01T00:00:00Z")
    late = b.cli("requests", "cancel", request_id, "--as", "coord", ok=False)
    assert "request.already_answered" in late.stderr and "already released or rejected" in late.stderr
    status, error = _outbox_job(b, request_id)
    assert status == "failed" and "request.already_answered" in error, (status, error)
    (notice,) = [i for i in _json(b, "inbox", "--json")
                 if i["subject"] == f"a.example.org did not take the cancellation about records request {request_id}"]
    assert "request.already_answered" in notice["body"]  # fmt: skip
    with open_node(a.home, a.env) as node:
        assert outbox.make_due(node.db, f"response-{request_id}", now_iso())
    _wait(lambda: _request_state(b, request_id) == "rejected")  # A's answer, when it comes, still wins
    assert _request_state(a, request_id) == "rejected"
    crossed = _json(b, "requests", "show", request_id, "--json")["crossed_cancellation"]
    assert crossed["delivery"]["status"] == "not delivered"
    assert "request.already_answered" in crossed["delivery"]["last_error"]


def _outbox_job(d, request_id: str) -> tuple[str, str | None]:
    with sqlite3.connect(d.home / "satchel.db") as conn:
        return conn.execute("SELECT status, last_error FROM outbox WHERE job_id = ?",
                            [f"response-{request_id}"]).fetchone()  # fmt: skip


def _thread(d, request_id: str) -> list[tuple[str, str, str]]:
    shown = _json(d, "requests", "show", request_id, "--json")["messages"]
    return [(m["direction"], m["from"], m["text"]) for m in shown]


def test_the_coordinators_write_to_each_other_about_a_request(pair) -> None:
    from node.home import open_node
    from node.requests_flow import receive_response
    from storage import request_messages

    a, b, mailbox = pair
    request_id = _requested(a, b, "100002")
    question = "Which school did she attend here? We have two students of that name."
    written = a.cli("requests", "message", request_id, question, "--as", "coord").stdout
    assert "Message to b.example.org queued." in written
    _wait(lambda: _thread(b, request_id) == [("in", "a.example.org", question)])
    subject = f"New message from a.example.org about records request {request_id}"
    _wait(lambda: any(subject in " ".join(s.split()) for s in mailbox.to("coord@b.example.org")))  # unfolded
    assert not any("two students" in m.as_string() for m in mailbox.messages)  # e-mail is not encrypted
    for text, said in ((" \n", "the message is empty"), ("x" * 2001, "the message is 2,001 characters long")):
        refused = b.cli("requests", "message", request_id, text, "--as", "coord", ok=False).stderr
        assert said in refused and "Field: TEXT" in refused and "at most 2,000 characters" in refused
    b.cli("requests", "message", request_id, "Lincoln Middle School,\ngrade 7", "--as", "coord")
    _wait(lambda: len(_thread(a, request_id)) == 2)
    assert _thread(a, request_id) == [("out", "a.example.org", question),
                                      ("in", "b.example.org", "Lincoln Middle School,\ngrade 7")]  # fmt: skip
    assert _request_state(a, request_id) == _request_state(b, request_id) == "requested"  # a message moves nothing
    (listed,) = _json(a, "requests", "list", "--json")
    assert listed["messages"] == 2 and listed["state"] == "requested"
    shown = _json(a, "requests", "show", request_id, "--json")  # the releaser: its own message, delivered
    assert [m["delivery"] and m["delivery"]["status"] for m in shown["messages"]] == ["delivered", None]
    assert shown["delivery"] is None  # the request is B's, not A's to deliver
    shown = a.cli("requests", "show", request_id).stdout
    assert "Messages (2):" in shown and "<- Cory Coordinator (b.example.org):\n      Lincoln Middle School,\n" in shown

    # Delivered again (a retry whose first answer was lost): kept once, and the coordinators told once.
    with open_node(b.home, b.env) as node:
        (mine,) = [m for m in request_messages.of_request(node.db, request_id) if m.direction == "in"]
    with open_node(b.home, b.env) as node:
        assert receive_response(node, caller="a.example.org", request_id=request_id, signed=mine.signed) == "requested"
    assert len(_thread(b, request_id)) == 2
    assert sum(subject in i["subject"] for i in _json(b, "inbox", "--json")) == 1

    # After the answer, the thread goes on: a question about what was released, say.
    a.cli("requests", "reject", request_id, "--comments", "no such student in our records", "--as", "coord")
    _wait(lambda: _request_state(b, request_id) == "rejected")
    b.cli("requests", "message", request_id, "Could you look under her mother's name, Okafor?", "--as", "coord")
    _wait(lambda: len(_thread(a, request_id)) == 3)
    assert "request.message" in [e["action"] for e in _json(b, "audit", "--json")]


def test_a_message_does_not_withdraw_a_cancellation_on_its_way(pair) -> None:
    from node.clock import now_iso
    from node.home import open_node
    from storage import outbox

    a, b, _ = pair
    request_id = _requested(a, b, "100002")
    a.stop()
    waiting = b.cli("requests", "cancel", request_id, "--as", "coord").stderr
    assert "tries again on its own" in waiting and "transfers retry" not in waiting  # no transfer to retry
    with open_node(b.home, b.env) as node:  # the cancellation waits in B's outbox while A writes
        assert outbox.make_due(node.db, f"response-{request_id}", "9999-01-01T00:00:00Z")
    a.start()
    a.cli("requests", "message", request_id, "Do you still need her records?", "--as", "coord")
    _wait(lambda: len(_thread(b, request_id)) == 1)
    # Unlike an answer, which wins over the cancellation (§2), a message leaves it to go.
    assert _request_state(b, request_id) == "cancelled" and _outbox_job(b, request_id)[0] == "pending"
    with open_node(b.home, b.env) as node:
        assert outbox.make_due(node.db, f"response-{request_id}", now_iso())
    _wait(lambda: _request_state(a, request_id) == "cancelled")


def test_a_message_that_overtakes_its_request_waits_for_it(pair) -> None:
    from node.clock import now_iso
    from node.home import open_node
    from storage import outbox

    a, b, _ = pair
    a.stop()
    request_id = b.cli("request", "--from", "a.example.org", "--student", "100002", "--as", "coord").stdout.split()[2]
    with open_node(b.home, b.env) as node:  # the request's first tries failed: its next one is far off
        assert outbox.make_due(node.db, f"request-{request_id}", "9999-01-01T00:00:00Z")
    b.cli("requests", "message", request_id, "Her IEP meeting is on Monday.", "--as", "coord")
    a.start()
    with open_node(b.home, b.env) as node:
        (job,) = [j for j in outbox.unsent_since(node.db, now_iso(), created_since="") if "message" in j.job_id]
        assert outbox.make_due(node.db, job.job_id, now_iso())

    def tried() -> tuple[str, str]:
        with sqlite3.connect(b.home / "satchel.db") as conn:
            return conn.execute("SELECT status, last_error FROM outbox WHERE job_id = ?", [job.job_id]).fetchone()

    _wait(lambda: "request.not_received" in (tried()[1] or ""))  # B's serving node delivers what is due
    assert tried()[0] == "pending"  # not refused for good: "not now"
    with open_node(b.home, b.env) as node:
        assert outbox.make_due(node.db, f"request-{request_id}", now_iso())
    _wait(lambda: any(r["request_id"] == request_id for r in _json(a, "requests", "list", "--incoming", "--json")))
    with open_node(b.home, b.env) as node:
        outbox.make_due(node.db, job.job_id, now_iso())  # unless B's own retry, after its backoff, took it already
    _wait(lambda: _thread(a, request_id) == [("in", "b.example.org", "Her IEP meeting is on Monday.")])


def test_the_thread_and_answer_still_show_after_the_other_districts_keys_are_forgotten(pair) -> None:
    from node.home import open_node
    from storage import peers

    a, b, _ = pair
    request_id = _requested(a, b, "100002")
    a.cli("requests", "message", request_id, "Which school?\r\nThanks", "--as", "coord")  # a pasted CRLF
    a.cli("requests", "reject", request_id, "--comments", "no such student in our records", "--as", "coord")
    _wait(lambda: _request_state(b, request_id) == "rejected" and len(_thread(b, request_id)) == 1)
    assert _thread(b, request_id) == [("in", "a.example.org", "Which school?\nThanks")]
    with open_node(b.home, b.env) as node:  # as before re-pinning a district whose key changed
        peers.forget_identity_keys(node.db, "a.example.org")
    shown = _json(b, "requests", "show", request_id, "--json")
    assert shown["answer"]["comments"] == "no such student in our records" and len(shown["messages"]) == 1
    bell = b.cli("requests", "message", request_id, "ding\x07", "--as", "coord", ok=False).stderr
    assert "the message contains control characters" in bell and "Field: TEXT" in bell


def test_the_same_words_written_twice_at_once_are_sent_once(pair) -> None:
    from node.home import open_node
    from node.requests_flow import message
    from storage import request_messages

    a, b, _ = pair
    request_id = _requested(a, b, "100002")
    with open_node(a.home, a.env) as node:
        # Within one second the two sign to the same bytes (Ed25519 is deterministic): one message, one job.
        for _ in range(2):
            message(node, actor="coord", request_id=request_id, text="Sent by fax too?")
        kept = request_messages.of_request(node.db, request_id)
        jobs = node.db.execute("SELECT count(*) FROM outbox WHERE job_id LIKE 'request-message-%'").fetchone()[0]
    assert len(kept) == jobs and len(kept) in (1, 2)  # two when the clock ticked between them


def test_a_full_request_thread_takes_no_more_messages(pair) -> None:
    import hashlib

    a, b, _ = pair
    request_id = _requested(a, b, "100002")
    with sqlite3.connect(a.home / "satchel.db") as conn:  # as if 499 messages had been written, both ways
        conn.executemany(
            "INSERT INTO request_messages (message_key, request_id, direction, signed, at)"
            " VALUES (?, ?, ?, x'00', '2026-12-01T00:00:00Z')",
            [(hashlib.sha256(str(i).encode()).hexdigest(), request_id, ("in", "out")[i % 2]) for i in range(499)],
        )
    b.cli("requests", "message", request_id, "The last place", "--as", "coord")  # the 500th at A: taken
    _wait(lambda: _count(a, request_id) == 500)
    refused = a.cli("requests", "message", request_id, "One more question", "--as", "coord", ok=False).stderr
    assert "thread.full" in refused and f"records request {request_id} already holds 500 messages" in refused
    assert "call b.example.org's transfer coordinator instead: Cory Coordinator, " in refused
    # B's thread is empty, so B writes; A refuses it for good, and B's coordinators are told.
    written = b.cli("requests", "message", request_id, "Did you find her?", "--as", "coord", ok=False).stderr
    assert "Refused by a.example.org, for good: thread.full" in written
    subject = f"a.example.org did not take a message about records request {request_id}"
    (notice,) = [i for i in _json(b, "inbox", "--json") if i["subject"] == subject]
    assert f"satchel requests show {request_id}" in notice["body"]
    # B's view of the request says which of its words arrived: the request did, the message did not.
    shown = _json(b, "requests", "show", request_id, "--json")
    assert shown["delivery"]["status"] == "delivered"
    first, mine = shown["messages"]
    assert first["delivery"]["status"] == "delivered"
    assert mine["delivery"]["status"] == "not delivered" and "thread.full" in mine["delivery"]["last_error"]
    text = b.cli("requests", "show", request_id).stdout
    assert "[delivered]" in text and "(b.example.org): [not delivered: thread.full: " in text
    assert _count(a, request_id) == 500


def _count(d, request_id: str) -> int:
    with sqlite3.connect(d.home / "satchel.db") as conn:
        return conn.execute("SELECT count(*) FROM request_messages WHERE request_id = ?", [request_id]).fetchone()[0]
