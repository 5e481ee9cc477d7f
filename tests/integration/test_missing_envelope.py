"""A sealed envelope lost from the sender's disk: named as such (not as an unreachable peer), it holds up
nothing else, and restoring the file from a backup lets it go."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from node.clock import now_iso

from support import transfer_json, wait_until


def _send(a, student: str):
    return a.cli("send", "--to", "b.example.org", "--student", student, "--as", "coord", "--json")


def test_a_lost_envelope_is_named_holds_nothing_up_and_goes_once_restored(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    b.stop()
    lost = json.loads(_send(a, "100001").stdout)["transfer_id"]
    a.cli("backup", str(tmp_path / "backup"), "--as", "admin", "--json")
    a.stop()  # so that only the commands below deliver
    envelope = a.home / "envelopes" / "out" / f"{lost}.env"
    envelope.unlink()
    b.start()
    # Its next try is whenever the backoff after B was down said; the next command tries it from then on.
    next_try = transfer_json(a, lost)["delivery"]["next_attempt_at"]
    wait_until(lambda: now_iso() >= next_try, timeout=60)
    later = _send(a, "100002")  # delivers what is due: the lost one fails, the new one goes
    assert later.exit_code == 0
    assert transfer_json(a, json.loads(later.stdout)["transfer_id"])["state"] == "delivered"
    last = transfer_json(a, lost)["delivery"]["last_error"]
    assert last.startswith(f"transfer.envelope_missing: the sealed envelope of transfer {lost} is gone from ")
    assert "unreachable" not in last
    assert f"Missing: envelope of transfer {lost}" in a.cli("check", ok=False).stderr

    shutil.copy2(tmp_path / "backup" / "envelopes" / "out" / envelope.name, envelope)  # restored
    a.start()  # its outbox worker tries again
    wait_until(lambda: transfer_json(a, lost)["state"] == "delivered", timeout=60)


def test_a_job_that_fails_unexpectedly_is_retried_and_does_not_fail_the_command(pair) -> None:
    from node.home import open_node
    from node.request_answers import REQUEST_KIND
    from storage import outbox
    from storage.database import write_transaction

    a, b, _ = pair
    a.stop()
    node = open_node(a.home, a.env)
    try:
        # A row damaged on disk: its type names no document a request job carries. (Not an e-mail: a command
        # leaves those to the serving node.)
        with write_transaction(node.db):
            outbox.enqueue(node.db, job_id="damaged", kind=REQUEST_KIND, peer=b.domain,
                           url=f"{b.url}/satchel/v1/requests", payload=b"not json", content_type="application/json",
                           now="2026-01-01T00:00:00Z")  # fmt: skip
    finally:
        node.close()
    sent = _send(a, "100001")
    assert sent.exit_code == 0, sent.output  # the command's own transfer went; the damaged job did not stop it
    assert transfer_json(a, json.loads(sent.stdout)["transfer_id"])["state"] == "delivered"
    node = open_node(a.home, a.env)
    try:
        damaged = outbox.get(node.db, "damaged")
    finally:
        node.close()
    assert damaged is not None and damaged.status == "pending" and damaged.attempts == 1
    assert damaged.last_error == "satchel.internal: KeyError"


def test_a_received_envelope_lost_before_accept_is_named_and_costs_no_attempt(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    sent = json.loads(_send(a, "100001").stdout)
    tid = sent["transfer_id"]
    wait_until(lambda: transfer_json(b, tid)["state"] == "received")
    b.cli("backup", str(tmp_path / "backup"), "--as", "admin", "--json")
    envelope = b.home / "envelopes" / "in" / f"{tid}.env"
    envelope.unlink()
    refused = b.cli("accept", tid, "--code", sent["code"], "--as", "coord", ok=False)
    assert refused.exit_code == 2 and "internal error" not in refused.stderr
    assert f"Error: the sealed envelope of transfer {tid} is gone from " in refused.stderr
    assert "Hint: restore envelopes/in from a backup" in refused.stderr
    assert "(error code transfer.envelope_missing)" in refused.stderr
    assert transfer_json(b, tid)["state"] == "received" and transfer_json(b, tid)["wrong_codes"] == 0
    shutil.copy2(tmp_path / "backup" / "envelopes" / "in" / envelope.name, envelope)
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    assert transfer_json(b, tid)["state"] == "accepted"
