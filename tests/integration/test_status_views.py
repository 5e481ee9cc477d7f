"""What a coordinator reads of where transfers and requests stand: `transfers list` and `transfers show`, in
tables and in --json, at both districts, say the same thing about the same transfer."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support import wait_until


def _send(a, *args: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)


def _listed(d, transfer_id: str) -> dict:
    (row,) = [t for t in json.loads(d.cli("transfers", "list", "--json").stdout) if t["transfer_id"] == transfer_id]
    return row


def _table_cells(d, transfer_id: str) -> list[str]:
    (line,) = [line for line in d.cli("transfers", "list").stdout.splitlines() if line.startswith(transfer_id)]
    return line.split()


def _counts(d, transfer_id: str) -> tuple[dict, dict, list[str], str]:
    shown = json.loads(d.cli("transfers", "show", transfer_id, "--json").stdout)
    listed = _listed(d, transfer_id)
    for key in ("students", "records", "documents"):
        assert listed[key] == shown[key], (d.domain, key, listed[key], shown[key])
    return listed, shown, _table_cells(d, transfer_id), d.cli("transfers", "show", transfer_id).stdout


def test_the_counts_of_a_transfer_agree_between_list_and_show_on_both_sides(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(1000))
    a.cli("documents", "add", "100001", str(doc), "--type", "iep", "--title", "IEP 2026", "--as", "coord")
    sent = _send(a, "--student", "100001", "--all-records")
    tid = sent["transfer_id"]
    # Demographics only: no record, which the list said as "-" (unknown) where show said 0.
    bare = _send(a, "--student", "100002")["transfer_id"]
    listed, _, cells, text = _counts(a, bare)
    assert (listed["students"], listed["records"], listed["documents"]) == (1, 0, 0)
    assert cells[4:6] == ["1", "0"] and "Records:   0" in text

    # Sealed at the receiver: it cannot know what the envelope holds before its code opens it. Neither view
    # may say 0 students (a transfer always carries one), nor the two views differ.
    listed, _, cells, text = _counts(b, tid)
    assert (listed["students"], listed["records"], listed["documents"]) == (None, None, None)
    assert cells[4:6] == ["-", "-"] and "Students:    - (sealed: counted once its code opens it)" in text

    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    # Opened: the receiver reads what came, as the sender reads what went.
    listed, shown, cells, text = _counts(b, tid)
    assert (listed["students"], listed["records"], listed["documents"]) == (1, sent["records"], 1)
    assert sent["records"] >= 1 and cells[4:6] == ["1", str(sent["records"])]
    assert "Students:    1\n" in text and f"Records:     {sent['records']}\n" in text
    assert (shown["students"], shown["records"], shown["documents"]) == (
        sent["students"], sent["records"], sent["documents"])  # fmt: skip

    # The import's counts, as its signed receipt carries them, read alike on both sides' timelines.
    b.cli("import", "preview", tid, "--as", "coord")
    b.cli("import", "run", tid, "--as", "coord")
    words = "sequence=3, 1 of 1 students imported (0 with changes), 1 documents, 0 scores"
    wait_until(lambda: words in a.cli("transfers", "show", tid).stdout)
    assert words in b.cli("transfers", "show", tid).stdout


def test_the_due_date_is_the_same_in_requests_list_show_json_and_the_reminder(pair) -> None:
    import sqlite3

    from test_requests import _requested

    from node.home import open_node
    from node.requests_flow import flag_overdue

    a, b, mailbox = pair
    request_id = _requested(a, b, "100002")
    # The releasing coordinators' first notice says by when to answer, and how.
    wait_until(lambda: any(request_id in s for s in mailbox.to("coord@a.example.org")))
    (alert,) = [m for m in mailbox.messages
                if "coord@a.example.org" in str(m["To"]) and request_id in str(m["Subject"])]  # fmt: skip
    due = json.loads(a.cli("requests", "show", request_id, "--json").stdout)["due_on"]
    body = alert.get_payload(decode=True).decode()
    assert f"An answer is due by {due} (10 working days)." in body
    assert f"satchel requests release {request_id} --student SIS_ID" in body
    assert f"satchel requests reject {request_id} --comments" in body

    assert json.loads(a.cli("requests", "list", "--overdue", "--json").stdout) == []
    # Opened on Monday 5 January 2026: due by Monday 19 January (spec/requests.md §5), overdue since.
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE records_requests SET opened_on = '2026-01-05' WHERE request_id = ?", [request_id])
    with open_node(a.home, a.env) as node:
        assert flag_overdue(node) == [request_id]
    shown = json.loads(a.cli("requests", "show", request_id, "--json").stdout)
    (listed,) = json.loads(a.cli("requests", "list", "--json").stdout)
    assert json.loads(a.cli("requests", "list", "--overdue", "--json").stdout) == [listed]
    assert shown["due_on"] == listed["due_on"] == "2026-01-19" and listed["overdue"] is True
    (line,) = [line for line in a.cli("requests", "list").stdout.splitlines() if line.startswith(request_id)]
    assert "2026-01-19" in line and "OVERDUE" in line
    assert "Answer due:     2026-01-19 (10 working days)" in a.cli("requests", "show", request_id).stdout

    def reminder() -> list:
        return [m for m in mailbox.messages
                if "coord@a.example.org" in str(m["To"]) and "Reminder" in str(m["Subject"])]  # fmt: skip

    wait_until(reminder)  # sent by A's serving node
    body = reminder()[0].get_payload(decode=True).decode()
    assert "An answer was due by 2026-01-19 (10 working days)." in body
    assert f"satchel requests release {request_id} --student SIS_ID" in body
    assert f"satchel requests reject {request_id} --comments" in body


def test_the_news_of_a_release_names_its_transfer_and_how_to_open_it(pair) -> None:
    from test_requests import _requested

    a, b, mailbox = pair
    request_id = _requested(a, b, "100001")
    released = a.cli("requests", "release", request_id, "--student", "100001", "--as", "coord").stdout
    transfer_id = released.split("transfer ")[1].split(".")[0]

    def told() -> list[str]:
        return [" ".join(m.get_payload(decode=True).decode().split()) for m in mailbox.messages
                if "coord@b.example.org" in str(m["To"]) and "was released" in " ".join(str(m["Subject"]).split())]

    wait_until(told)
    assert (f"The records come as transfer {transfer_id}, sealed until you enter the code a.example.org's transfer "
            f"coordinator (Cory Coordinator, +1 217-555-0100) reads you by phone: satchel accept {transfer_id} "
            "--code CODE") in told()[0]  # fmt: skip


def test_each_transfer_notice_names_the_next_command(pair) -> None:
    from test_push_transfer import _wrong_code

    a, b, mailbox = pair

    def body(to: str, words: str) -> str:
        found: list[str] = []

        def arrived() -> bool:
            found[:] = [m.get_payload(decode=True).decode() for m in mailbox.messages
                        if to in str(m["To"]) and words in " ".join(str(m["Subject"]).split())]  # fmt: skip
            return len(found) == 1

        wait_until(arrived)
        return " ".join(found[0].split())

    sent = _send(a, "--student", "100001")
    tid = sent["transfer_id"]
    # The sender reads the code out; the receiver enters it, or refuses the transfer.
    assert (f"Read its code to b.example.org's transfer coordinator (Cory Coordinator, +1 217-555-0100) by phone"
            f" (never by e-mail); it shows again with: satchel transfers show {tid} --code") in body(
        "coord@a.example.org", f"Transfer {tid} to b.example.org")  # fmt: skip
    told = body("coord@b.example.org", f"New incoming transfer {tid}")
    assert ("It stays sealed until you enter the code a.example.org's transfer coordinator (Cory Coordinator, "
            f"+1 217-555-0100) reads you by phone: satchel accept {tid} --code CODE") in told
    assert f"or refuse it: satchel reject {tid} --reason TEXT" in told
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    accepted = body("coord@b.example.org", f"Transfer {tid} from a.example.org was accepted")
    assert f"satchel import preview {tid}" in accepted

    # Locked by wrong codes: the sender is told to send again, with a new code.
    locked = _send(a, "--student", "100002")
    for _ in range(5):
        b.cli("accept", locked["transfer_id"], "--code", _wrong_code(locked["code"]), "--as", "coord", ok=False)
    told = body("coord@a.example.org", f"Transfer {locked['transfer_id']} is locked")
    assert "the records stay sealed for good" in told and "satchel send --to b.example.org" in told


def test_a_code_notice_names_the_code_as_codes_list_does(pair) -> None:
    a, b, _ = pair
    issued = json.loads(a.cli("codes", "create", "--student", "100001", "--for", b.domain, "--as", "coord",
                              "--json").stdout)  # fmt: skip
    b.cli("claim", issued["code"], "--school", "0101", "--as", "coord")
    (listed,) = json.loads(a.cli("codes", "list", "--json").stdout)
    shown = a.cli("codes", "list").stdout
    assert issued["code_id"][:12] in shown and listed["ends_with"] in shown
    (notice,) = [i for i in json.loads(a.cli("inbox", "--json").stdout) if i["subject"].startswith("Transfer code")]
    # It said "Transfer code …3f2a9c: claimed": the id's first characters, written as a code's last ones.
    assert notice["subject"] == (f"Transfer code {issued['code_id'][:12]} (ending {listed['ends_with']}) was "
                                 f"entered by {b.domain}: its records are sent to them")  # fmt: skip


def test_a_reminder_that_waited_for_the_mail_server_is_not_sent_once_the_request_is_answered(pair) -> None:
    import sqlite3

    from test_requests import _requested

    from node.home import open_node
    from node.requests_flow import flag_overdue

    a, b, mailbox = pair
    request_id = _requested(a, b, "100002")
    a.stop()  # its e-mails wait, as for a mail server that is down: only the serving node sends them
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE records_requests SET opened_on = '2026-01-05' WHERE request_id = ?", [request_id])
    with open_node(a.home, a.env) as node:
        assert flag_overdue(node) == [request_id]
    a.cli("requests", "reject", request_id, "--comments", "not ours", "--as", "coord")
    a.start()

    def mail_left() -> int:
        with sqlite3.connect(a.home / "satchel.db") as conn:
            return conn.execute("SELECT count(*) FROM outbox WHERE kind = 'email' AND status = 'pending'").fetchone()[0]

    wait_until(lambda: mail_left() == 0)
    assert not [m for m in mailbox.messages if "Reminder" in str(m["Subject"]) and "a.example.org" in str(m["To"])]
    # The inbox still says it was overdue when it was: nothing is lost.
    assert any("Reminder" in i["subject"] for i in json.loads(a.cli("inbox", "--json").stdout))
