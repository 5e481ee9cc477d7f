"""Push transfers between two real nodes with a real SMTP server (spec/transfer.md)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from crypto import generate_code


def _send(a, *args: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)


def _state(d, transfer_id: str) -> str:
    return json.loads(d.cli("transfers", "show", transfer_id, "--json").stdout)["state"]


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def _wrong_code(code: str) -> str:
    """Another valid code (its check character is right), so it is counted, not caught as a typo."""
    while True:
        other = generate_code().reveal()
        if other != code:
            return other


def test_send_deliver_notify_accept_with_receipts_on_both_sides(pair, tmp_path: Path) -> None:
    a, b, mailbox = pair
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(300_000))
    a.cli("documents", "add", "100001", str(doc), "--type", "iep", "--title", "IEP 2026", "--as", "coord")
    a.cli("cases", "add", "--student", "100001", "--case-number", "TA-1", "--as", "coord")
    sent = _send(a, "--student", "100001", "--all-records", "--note", "IEP meeting on the 14th",
                 "--receiving-sis-id", "100001=B-777")  # fmt: skip
    tid = sent["transfer_id"]
    assert sent["students"] == 1 and sent["documents"] == 1 and sent["coordinator"]["phone"]
    assert _state(a, tid) == "delivered" and _state(b, tid) == "received"
    # Both sides' coordinators were told, by inbox and by e-mail over SMTP.
    assert any(tid in i["subject"] for i in json.loads(b.cli("inbox", "--json").stdout))
    _wait(lambda: any(tid in s for s in mailbox.to("coord@b.example.org")))
    _wait(lambda: any("pending" in s for s in mailbox.to("coord@a.example.org")))
    # The sender can show the code again until it is accepted.
    assert (
        json.loads(a.cli("transfers", "show", tid, "--code", "--as", "coord", "--json").stdout)["code"]
        == sent["code"]
    )

    typo = sent["code"][:-1] + ("0" if sent["code"][-1] != "0" else "1")
    refused = b.cli("accept", tid, "--code", typo, "--as", "coord", ok=False)
    assert "code.typo" in refused.stderr
    wrong = b.cli("accept", tid, "--code", _wrong_code(sent["code"]), "--as", "coord", ok=False)
    assert "transfer.wrong_code" in wrong.stderr and "4 more attempt" in wrong.stderr
    assert json.loads(b.cli("transfers", "show", tid, "--json").stdout)["wrong_codes"] == 1

    accepted = b.cli("accept", tid, "--code", sent["code"].lower().replace("-", " "), "--as", "coord")
    assert "1 student(s)" in accepted.output and "IEP meeting" in accepted.output
    _wait(lambda: _state(a, tid) == "accepted")
    assert "no code to show" in a.cli("transfers", "show", tid, "--code", "--as", "coord", ok=False).stderr
    # Each side is told who accepted: the receiver did, and its own coordinators are not told the sender did.

    def told(d: str) -> list[str]:
        return [" ".join(s.split()) for s in mailbox.to(f"coord@{d}") if "accepted" in s]

    _wait(lambda: bool(told("a.example.org")) and bool(told("b.example.org")))
    assert told("a.example.org") == [f"Transfer {tid} was accepted by b.example.org"]
    assert told("b.example.org") == [f"Transfer {tid} from a.example.org was accepted here"]
    sender_timeline = json.loads(a.cli("transfers", "show", tid, "--json").stdout)["timeline"]
    assert [e["kind"] for e in sender_timeline if e["signed"]] == ["delivered", "accepted"]
    receiver_timeline = json.loads(b.cli("transfers", "show", tid, "--json").stdout)["timeline"]
    assert {"delivered", "accepted"} <= {e["kind"] for e in receiver_timeline if e["signed"]}
    # The records stay at the sender (copy, not move), and the disclosure is on record for the parent.
    assert len(json.loads(a.cli("documents", "list", "100001", "--json").stdout)) == 1
    letter = a.cli("disclosures", "100001", "--text").output
    assert "b.example.org" in letter and "document" in letter and "IEP meeting" in letter
    assert "Disclosed by:  Cory Coordinator (coord)" in letter and "Requested by" not in letter
    assert "Outcome:       received and opened" in letter  # B accepted it
    assert json.loads(a.cli("disclosures", "100001", "--json").stdout)["disclosures"][0]["outcome"] == (
        "received and opened")
    assert "hash chain verified" in a.cli("audit", "verify").output
    assert "hash chain verified" in b.cli("audit", "verify").output


def test_five_wrong_codes_lock_and_the_sender_is_told(pair) -> None:
    a, b, _ = pair
    sent = _send(a, "--student", "100002")
    tid = sent["transfer_id"]
    for attempt in range(5):
        result = b.cli("accept", tid, "--code", _wrong_code(sent["code"]), "--as", "coord", ok=False)
        assert "transfer.wrong_code" in result.stderr, attempt
    assert "locked" in result.stderr
    assert _state(b, tid) == "locked"
    again = b.cli("accept", tid, "--code", sent["code"], "--as", "coord", ok=False)
    assert "transfer.locked" in again.stderr
    _wait(lambda: _state(a, tid) == "locked")
    assert not list((b.home / "envelopes" / "in").glob(f"{tid}*"))  # the sealed copy is gone
    # Codes are counted where they are tried: the sender is not told "0 of 5" beside "locked".
    assert "Wrong codes: 5 of 5" in b.cli("transfers", "show", tid).stdout
    assert "Wrong codes" not in a.cli("transfers", "show", tid).stdout
    assert json.loads(a.cli("transfers", "show", tid, "--json").stdout)["wrong_codes"] is None


def test_reject_and_cancel(pair) -> None:
    a, b, _ = pair
    first = _send(a, "--student", "100001")["transfer_id"]
    b.cli("reject", first, "--reason", "not enrolled here", "--as", "coord")
    _wait(lambda: _state(a, first) == "rejected")
    reasons = [
        e["detail"].get("reason")
        for e in json.loads(a.cli("transfers", "show", first, "--json").stdout)["timeline"]
    ]
    assert "not enrolled here" in reasons

    second = _send(a, "--student", "100002")["transfer_id"]
    a.cli("cancel", second, "--reason", "wrong district", "--as", "coord")
    _wait(lambda: _state(b, second) == "cancelled" and _state(a, second) == "cancelled")
    assert not list((b.home / "envelopes" / "in").glob(f"{second}*"))
    refused = b.cli("accept", second, "--code", "0000-0000-0000-0", "--as", "coord", ok=False)
    assert refused.exit_code == 2


def test_transfers_off_on_either_side(pair) -> None:
    a, b, _ = pair
    a.cli("transfers", "disable", "--as", "coord")
    refused = a.cli("send", "--to", "b.example.org", "--student", "100001", "--as", "coord", ok=False)
    assert "transfer.disabled" in refused.stderr
    a.cli("transfers", "enable", "--as", "coord")
    b.cli("transfers", "disable", "--as", "coord")
    refused = a.cli("send", "--to", "b.example.org", "--student", "100001", "--as", "coord", ok=False)
    assert "transfer.peer_disabled" in refused.stderr
    assert json.loads(a.cli("transfers", "list", "--json").stdout) == []


def test_a_receiver_switched_off_meanwhile_gets_the_envelope_once_it_is_on_again(pair) -> None:
    import sqlite3

    a, b, _ = pair
    b.stop()
    tid = _send(a, "--student", "100001")["transfer_id"]  # B was on when A last heard of it
    b.cli("transfers", "disable", "--as", "coord")
    b.start()
    a.cli("transfers", "retry", tid, "--as", "coord", ok=False)

    def job() -> tuple[str, str | None]:
        with sqlite3.connect(a.home / "satchel.db") as conn:
            return conn.execute("SELECT status, last_error FROM outbox WHERE job_id = ?",
                                [f"envelope-{tid}"]).fetchone()  # fmt: skip

    _wait(lambda: (job()[1] or "").startswith("transfer.disabled"))
    assert job()[0] == "pending" and _state(a, tid) == "sealed"  # "later", not "never" (spec/transfer.md §7)
    b.cli("transfers", "enable", "--as", "coord")
    a.cli("transfers", "retry", tid, "--as", "coord", ok=False)  # or A's serving node's own retry delivers it
    _wait(lambda: _state(a, tid) == "delivered")


def test_an_envelope_refused_for_good_makes_the_transfer_undeliverable_and_says_why(pair) -> None:
    import sqlite3

    a, b, _ = pair
    b.stop()
    tid = _send(a, "--student", "100001")["transfer_id"]
    a.cli("transfers", "message", tid, "Code by phone this afternoon", "--as", "coord")  # held behind the envelope
    # Meanwhile B learned that A's identity key was revoked (a stolen laptop, say): B will never take it.
    with sqlite3.connect(b.home / "satchel.db") as conn:
        conn.execute("UPDATE peer_keys SET status = 'revoked' WHERE domain = 'a.example.org'")
    b.start()
    a.cli("transfers", "retry", tid, "--as", "coord", ok=False)  # A's serving node may have tried it first
    _wait(lambda: _state(a, tid) == "undeliverable")
    shown = json.loads(a.cli("transfers", "show", tid, "--json").stdout)
    (refused,) = [e for e in shown["timeline"] if e["kind"] == "refused"]
    assert refused["actor"] == "b.example.org" and refused["detail"]["error"].startswith("signature.")
    assert any(i["subject"] == f"Transfer {tid} could not be delivered to b.example.org"
               for i in json.loads(a.cli("inbox", "--json").stdout))  # fmt: skip
    assert not list((a.home / "envelopes" / "out").glob(f"{tid}*"))  # the sealed copy has no use left
    with sqlite3.connect(a.home / "satchel.db") as conn:
        status, error = conn.execute("SELECT status, last_error FROM outbox WHERE job_id = ?",
                                     [f"envelope-{tid}"]).fetchone()  # fmt: skip
    assert status == "failed" and error.startswith("signature.")
    # The message written for it has nowhere to go: withdrawn, not sent to be refused again.
    (message,) = [e for e in shown["timeline"] if e["kind"] == "message"]
    assert message["delivery"]["status"] == "withdrawn"


def test_receiver_offline_then_back_is_delivered_once_by_retry(pair) -> None:
    a, b, _ = pair
    b.stop()
    sent = _send(a, "--student", "100001")
    tid = sent["transfer_id"]
    assert _state(a, tid) == "sealed"
    b.start()
    _wait(lambda: _state(a, tid) == "delivered", timeout=30)
    incoming = json.loads(b.cli("transfers", "list", "--incoming", "--json").stdout)
    assert [t["transfer_id"] for t in incoming] == [tid]


def test_a_message_held_behind_its_envelope_follows_it_at_once(pair) -> None:
    import sqlite3

    a, b, _ = pair
    b.stop()
    tid = _send(a, "--student", "100001")["transfer_id"]
    a.cli("transfers", "message", tid, "Sent you Ana's file; code by phone", "--as", "coord")
    (mine,) = [e for e in json.loads(a.cli("transfers", "show", tid, "--json").stdout)["timeline"]
               if e["kind"] == "message"]  # fmt: skip
    assert mine["delivery"]["status"] == "waiting"
    # Held back behind the envelope many times over, its backoff has grown to an hour.
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE outbox SET attempts = 11, next_attempt_at = '2999-01-01T00:00:00Z',"
                     " last_error = 'transfer.deferred: not delivered yet' WHERE url LIKE '%/messages'")  # fmt: skip
    assert "[waiting until the envelope is delivered]" in a.cli("transfers", "show", tid).stdout
    b.start()
    a.cli("transfers", "retry", tid, "--as", "coord", ok=False)  # or A's serving node's own retry delivers it
    _wait(lambda: _state(a, tid) == "delivered")
    _wait(lambda: _messages(b, tid) == ["Sent you Ana's file; code by phone"], timeout=15)


def test_sender_killed_mid_delivery_loses_nothing_and_sends_once(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    big = tmp_path / "records.pdf"
    with big.open("wb") as handle:
        for _ in range(160):
            handle.write(os.urandom(1 << 20))
    a.cli("documents", "add", "100003", str(big), "--type", "evaluation", "--as", "coord")
    b.stop()
    tid = _send(a, "--student", "100003", "--all-records")["transfer_id"]
    b.start()
    receiving = b.home / "envelopes" / "in"
    _wait(lambda: any(p.name.startswith(".receiving-") for p in receiving.glob(".*")), timeout=30)
    a.kill()
    assert _state(a, tid) == "sealed"  # the kill came before the receipt
    a.start()
    _wait(lambda: _state(a, tid) == "delivered", timeout=60)
    assert [t["transfer_id"] for t in json.loads(b.cli("transfers", "list", "--json").stdout)] == [tid]
    assert not [p for p in receiving.glob(".receiving-*")]
    assert (receiving / f"{tid}.env").stat().st_size > 160 << 20


def test_a_whole_grade_in_one_transfer(pair, tmp_path: Path) -> None:
    from fixtures_oneroster import make_bundle, write_bundle

    a, b, _ = pair
    grade = [{"sis_id": f"7{n:05d}", "given_name": f"Student{n}", "family_name": f"Family{n % 37}",
              "birth_date": f"2012-{1 + n % 12:02d}-{1 + n % 28:02d}", "grade": "07", "school_id": "0101",
              "school_name": "Lincoln Middle School", "enrollment_start": "2024-08-19"}
             for n in range(300)]  # fmt: skip
    a.cli("roster", "import", str(write_bundle(tmp_path / "grade", make_bundle(grade))), "--as", "coord")
    for n in range(0, 300, 30):
        doc = tmp_path / f"doc{n}.pdf"
        doc.write_bytes(os.urandom(3 << 20))
        a.cli("documents", "add", f"7{n:05d}", str(doc), "--type", "iep", "--as", "coord")
    listing = tmp_path / "grade.csv"
    listing.write_text("sis_id\n" + "\n".join(s["sis_id"] for s in grade) + "\n")
    sent = _send(a, "--students-file", str(listing), "--all-records")
    assert sent["students"] == 300 and sent["documents"] == 10 and sent["bytes"] > 30 << 20
    accepted = b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord")
    assert "300 student(s)" in accepted.stdout
    _wait(lambda: _state(a, sent["transfer_id"]) == "accepted")
    # Opened straight into the blob store: each document under its hash, no staging copy, no temp file.
    for n in range(0, 300, 30):
        digest = hashlib.sha256((tmp_path / f"doc{n}.pdf").read_bytes()).hexdigest()
        assert (b.home / "blobs" / "sha256" / digest[:2] / digest).stat().st_size == 3 << 20
    assert not (b.home / "staging").exists() or not list((b.home / "staging").iterdir())
    assert not list((b.home / "blobs" / "tmp").iterdir())
    # Each student's FERPA disclosure lists their own records, and only theirs.
    for sis_id, documents in (("700030", 1), ("700031", 0)):
        (entry,) = json.loads(a.cli("disclosures", sis_id, "--json").stdout)["disclosures"]
        assert entry["to_domain"] == "b.example.org"
        assert [r["kind"] for r in entry["records"]] == ["demographics"] + ["document"] * documents


def test_message_thread_both_ways(pair) -> None:
    a, b, _ = pair
    tid = _send(a, "--student", "100001")["transfer_id"]
    a.cli("transfers", "message", tid, "Code read to you by phone at 10:05", "--as", "coord")
    b.cli("transfers", "message", tid, "Thanks, opening it now", "--as", "coord")

    def texts(d) -> list[str]:
        timeline = json.loads(d.cli("transfers", "show", tid, "--json").stdout)["timeline"]
        return [e["detail"].get("text") for e in timeline if e["kind"] == "message"]

    _wait(lambda: len(texts(a)) == 2 and len(texts(b)) == 2)
    assert texts(a) == ["Code read to you by phone at 10:05", "Thanks, opening it now"]

    def sent(d) -> list[dict | None]:
        timeline = json.loads(d.cli("transfers", "show", tid, "--json").stdout)["timeline"]
        return [e["delivery"] for e in timeline if e["kind"] == "message" and e["direction"] == "sent"]

    # Each side's own message shows as delivered once the other node took it.
    _wait(lambda: [d and d["status"] for d in sent(a) + sent(b)] == ["delivered", "delivered"])
    assert "[signed] [delivered]" in a.cli("transfers", "show", tid).stdout


def test_expiry_erases_the_code_and_the_sealed_copy(pair) -> None:
    import sqlite3

    from node.home import open_node
    from node.transfer_actions import expire_due

    a, b, _ = pair
    b.stop()
    tid = _send(a, "--student", "100001")["transfer_id"]
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE transfers SET expires_at = '2020-01-01T00:00:00Z' WHERE transfer_id = ?", [tid])
    with open_node(a.home, a.env) as node:
        assert expire_due(node) == [tid]
    assert _state(a, tid) == "expired"
    assert "no code to show" in a.cli("transfers", "show", tid, "--code", "--as", "coord", ok=False).stderr
    assert not list((a.home / "envelopes" / "out").glob(f"{tid}*"))


def _fill_thread(d, transfer_id: str, count: int) -> None:
    """As if ``count`` messages had been written about the transfer already, every other one by this side and
    the rest received (the limit counts both directions)."""
    import sqlite3

    with sqlite3.connect(d.home / "satchel.db") as conn:
        start = conn.execute("SELECT max(seq) FROM transfer_events WHERE transfer_id = ?", [transfer_id]).fetchone()[0]
        conn.executemany(
            "INSERT INTO transfer_events (transfer_id, seq, at, direction, kind, actor, detail, receipt_id)"
            " VALUES (?, ?, '2026-12-01T00:00:00Z', ?, 'message', 'x', '{\"text\": \"earlier\"}', ?)",
            [(transfer_id, start + 1 + i, ("sent", "received")[i % 2], f"filled:{i}") for i in range(count)],
        )


def test_a_message_delivered_again_is_kept_once_and_told_once(pair) -> None:
    import sqlite3

    from node.clock import now_iso
    from node.home import open_node
    from storage import outbox

    a, b, mailbox = pair
    tid = _send(a, "--student", "100001")["transfer_id"]
    a.cli("transfers", "message", tid, "Code read to you by phone at 10:05", "--as", "coord")
    subject = f"New message about transfer {tid}"

    def told() -> int:
        return sum(subject in i["subject"] for i in json.loads(b.cli("inbox", "--json").stdout))

    def emailed() -> int:
        return sum(subject in " ".join(s.split()) for s in mailbox.to("coord@b.example.org"))  # unfolded

    _wait(lambda: told() == 1 and emailed() == 1)
    # A's answer was lost on the way back, say: A's outbox sends the same signed bytes again, over HTTP.
    with sqlite3.connect(a.home / "satchel.db") as conn:
        (job_id,) = conn.execute("SELECT job_id FROM outbox WHERE url LIKE '%/messages'").fetchone()
    _wait(lambda: outbox_status(a, job_id) == "done")
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE outbox SET status = 'pending', done_at = NULL, leased_until = NULL WHERE job_id = ?",
                     [job_id])  # fmt: skip
    with open_node(a.home, a.env) as node:
        outbox.make_due(node.db, job_id, now_iso())  # False when A's worker already took it
    _wait(lambda: outbox_status(a, job_id) == "done")
    assert _messages(b, tid) == ["Code read to you by phone at 10:05"]
    time.sleep(1.5)  # a second notification would have been written with the delivery, and e-mailed soon after
    assert told() == 1 and emailed() == 1


def outbox_status(d, job_id: str) -> str:
    import sqlite3

    with sqlite3.connect(d.home / "satchel.db") as conn:
        return conn.execute("SELECT status FROM outbox WHERE job_id = ?", [job_id]).fetchone()[0]


def test_a_different_receipt_under_a_known_number_is_refused(pair) -> None:
    import dataclasses

    import pytest

    from node.home import open_node
    from node.transfer_delivery import accept_receipt
    from protocol.receipts import ReceiptConflict, ReceiptMismatch, Role, parse_receipt, sign_receipt
    from protocol.signed_document import verify_document

    a, b, _ = pair
    tid = _send(a, "--student", "100001")["transfer_id"]
    a.cli("transfers", "message", tid, "Code read to you by phone at 10:05", "--as", "coord")
    _wait(lambda: _messages(b, tid) == ["Code read to you by phone at 10:05"])
    a.stop()
    with open_node(a.home, a.env) as node:  # A's own key signs other words under the number already used
        (signed,) = [bytes(r[0]) for r in node.db.execute(
            "SELECT receipt FROM transfer_events WHERE transfer_id = ? AND kind = 'message'", [tid])]  # fmt: skip
        first = parse_receipt(verify_document(signed, purpose="satchel/v1/receipt").payload)
        other = sign_receipt(dataclasses.replace(first, text="Other words"), node.current_keys().identity)
        # B's own role and a number B used for its delivered receipt: not about this side's thread at all.
        posing = sign_receipt(dataclasses.replace(first, issuer=Role.RECEIVER, sequence=1),
                              node.current_keys().identity)  # fmt: skip
    b.stop()
    with open_node(b.home, b.env) as node, pytest.raises(ReceiptConflict) as refused:
        accept_receipt(node, tid, other)
    assert refused.value.code == "receipt.conflict" and refused.value.field == "sequence"
    with open_node(b.home, b.env) as node, pytest.raises(ReceiptMismatch):  # checked first (§5.3 step 5)
        accept_receipt(node, tid, posing)
    b.start()
    assert _messages(b, tid) == ["Code read to you by phone at 10:05"]


def _messages(d, transfer_id: str) -> list[str]:
    timeline = json.loads(d.cli("transfers", "show", transfer_id, "--json").stdout)["timeline"]
    return [e["detail"]["text"] for e in timeline if e["kind"] == "message"]


def test_a_full_thread_takes_no_more_messages_and_the_writer_is_told(pair) -> None:
    a, b, _ = pair
    tid = _send(a, "--student", "100001")["transfer_id"]
    _fill_thread(b, tid, 499)
    a.cli("transfers", "message", tid, "The last place", "--as", "coord")  # the 500th at B: taken
    _wait(lambda: "The last place" in _messages(b, tid))
    # B's own coordinator is refused before anything is signed, and told whom to call.
    refused = b.cli("transfers", "message", tid, "One more thing", "--as", "coord", ok=False)
    assert "thread.full" in refused.stderr and "already holds 500 messages" in refused.stderr
    assert "call a.example.org's transfer coordinator instead: " in refused.stderr
    # A's thread holds one, so A signs and sends; B refuses it for good, and A's coordinators hear of it.
    written = a.cli("transfers", "message", tid, "Did it arrive?", "--as", "coord", ok=False)
    assert "Refused by b.example.org, for good: thread.full" in written.stderr
    subject = f"b.example.org did not take a message about transfer {tid}"
    (notice,) = [i for i in json.loads(a.cli("inbox", "--json").stdout) if i["subject"] == subject]
    assert "thread.full" in notice["body"] and f"satchel transfers show {tid}" in notice["body"]
    assert "Tell their transfer coordinator by phone or e-mail (Cory Coordinator, " in notice["body"]
    # A's timeline says which of its messages did not arrive, and why.
    first, mine = [e for e in json.loads(a.cli("transfers", "show", tid, "--json").stdout)["timeline"]
                   if e["kind"] == "message"]  # fmt: skip
    assert first["delivery"]["status"] == "delivered"
    assert mine["delivery"]["status"] == "not delivered" and "thread.full" in mine["delivery"]["last_error"]
    assert "text=Did it arrive? [signed] [not delivered: thread.full: " in a.cli("transfers", "show", tid).stdout
    # Nothing of the refused message is kept at B.
    timeline = json.loads(b.cli("transfers", "show", tid, "--json").stdout)["timeline"]
    assert "Did it arrive?" not in json.dumps(timeline)
    # The message B kept, delivered again into the full thread, is a redelivery: answered, not refused.
    import sqlite3

    job_id = f"receipt-{tid}-sender-{first['detail']['sequence']}"
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE outbox SET status = 'pending', done_at = NULL, leased_until = NULL,"
                     " next_attempt_at = '2000-01-01T00:00:00Z' WHERE job_id = ?", [job_id])  # fmt: skip
    _wait(lambda: outbox_status(a, job_id) == "done")
    assert _messages(b, tid).count("The last place") == 1
    # Where the hint sends a coordinator for the other district's contact.
    assert "Transfer coordinator: Cory Coordinator, " in a.cli("peers", "show", "b.example.org").stdout
    shown = json.loads(a.cli("peers", "show", "b.example.org", "--json").stdout)
    assert shown["coordinator"]["email"] == "coord@b.example.org"


def test_a_transfer_message_is_refused_in_the_coordinators_words(pair) -> None:
    a, _, _ = pair
    tid = _send(a, "--student", "100001")["transfer_id"]
    for text, said in ((" \n", "the message is empty"), ("x" * 8001, "the message is 8,001 characters long"),
                       ("ring\x07", "control characters")):  # fmt: skip
        refused = a.cli("transfers", "message", tid, text, "--as", "coord", ok=False).stderr
        assert said in refused and "Field: TEXT" in refused and "at most 8,000 characters" in refused
    a.cli("transfers", "message", tid, "Pasted from a Windows file\r\nsecond line", "--as", "coord")
    assert _messages(a, tid) == ["Pasted from a Windows file\nsecond line"]


def test_a_sealed_envelope_whose_transfer_is_not_kept_is_not_left_behind(pair) -> None:
    import pytest

    from node.home import open_node
    from node.manifest_builder import Selection
    from node.sending import send
    from protocol.request_states import RequestCancelled

    a, _, _ = pair

    def crossed(transfer_id: str) -> None:  # as a release does when the request was cancelled meanwhile
        raise RequestCancelled("the requester cancelled the request while its release was sealed")

    with open_node(a.home, a.env) as node, pytest.raises(RequestCancelled):
        send(node, actor="coord", to="b.example.org", selection=Selection(students=("100001",)), in_transaction=crossed)
    assert not [p for p in (a.home / "envelopes" / "out").iterdir() if p.is_file()]
    assert json.loads(a.cli("transfers", "list", "--json").stdout) == []


def test_a_message_with_a_bidi_override_cannot_reorder_the_timeline(pair) -> None:
    a, b, _ = pair
    tid = _send(a, "--student", "100001")["transfer_id"]
    text = "Records for \u202eexe.FDP — עברית, 中文"
    a.cli("transfers", "message", tid, text, "--as", "coord")

    def texts() -> list[str]:
        timeline = json.loads(b.cli("transfers", "show", tid, "--json").stdout)["timeline"]
        return [e["detail"]["text"] for e in timeline if e["kind"] == "message"]

    _wait(lambda: texts() == [text])  # kept and given to scripts as written
    shown = b.cli("transfers", "show", tid).stdout
    assert "\u202e" not in shown and "text=Records for <U+202E>exe.FDP — עברית, 中文 [signed]" in shown


def test_a_transfer_refused_after_it_was_opened_is_on_record_as_opened(pair) -> None:
    a, b, _ = pair
    refused_unopened = _send(a, "--student", "100001")["transfer_id"]
    b.cli("reject", refused_unopened, "--reason", "not ours", "--as", "coord")
    sent = _send(a, "--student", "100002")
    opened_first = sent["transfer_id"]
    b.cli("accept", opened_first, "--code", sent["code"], "--as", "coord")
    b.cli("reject", opened_first, "--reason", "wrong student after all", "--as", "coord")
    _wait(lambda: _state(a, refused_unopened) == _state(a, opened_first) == "rejected")

    def outcome(sis_id: str) -> str:
        return json.loads(a.cli("disclosures", sis_id, "--json").stdout)["disclosures"][0]["outcome"]

    # The other district read the second child's records before it gave them back: the parent must be told so.
    assert outcome("100001") == "refused by the receiving district, never opened"
    assert outcome("100002") == "received and opened, then refused by the receiving district"
    assert "received and opened, then refused" in a.cli("disclosures", "100002", "--text").stdout


def test_a_note_about_one_child_is_not_the_reason_given_to_every_childs_parents(pair) -> None:
    a, _, _ = pair
    # The note is for the receiving coordinator; as the record's "why" it went into both children's letters.
    note = "Bo's 504 plan is in the second file; call me about Ann's custody order"
    _send(a, "--student", "100001", "--student", "100002", "--note", note)
    for sis_id in ("100001", "100002"):
        (entry,) = json.loads(a.cli("disclosures", sis_id, "--json").stdout)["disclosures"]
        assert entry["purpose"] == "records transfer to the student's new district"
        assert "custody" not in a.cli("disclosures", sis_id, "--text").stdout
    # A reason given for the parents (--purpose) is each one's; one child's note stays that child's reason.
    _send(a, "--student", "100001", "--student", "100003", "--note", note, "--purpose", "enrolment at B")
    assert [d["purpose"] for d in json.loads(a.cli("disclosures", "100003", "--json").stdout)["disclosures"]] == [
        "enrolment at B"]  # fmt: skip
    _send(a, "--student", "100003", "--note", "IEP meeting on the 14th")
    assert json.loads(a.cli("disclosures", "100003", "--json").stdout)["disclosures"][-1]["purpose"] == (
        "IEP meeting on the 14th")
