"""Keys revoked while transfers are in flight (spec/descriptor.md, Revoking a key): an envelope the receiver
checked on arrival still opens with its code; one not delivered yet is refused, and `keys revoke` says which."""

from __future__ import annotations

import json
import sqlite3
import time

from support import transfer_json, wait_until


def _send(a) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", "--student", "100001", "--all-records",
                            "--as", "coord", "--json").stdout)  # fmt: skip


def _keys(d, use: str) -> list[dict]:
    return [k for k in json.loads(d.cli("keys", "list", "--json").stdout) if k["use"] == use]


def _accepted_at_both(a, b, tid: str, code: str) -> None:
    accepted = b.cli("accept", tid, "--code", code, "--as", "coord", ok=False)
    assert accepted.exit_code == 0, accepted.stderr
    assert transfer_json(b, tid)["state"] == "accepted"
    wait_until(lambda: transfer_json(a, tid)["state"] == "accepted")  # the sender hears of it


def test_an_envelope_received_before_the_receiver_revoked_its_encryption_key_still_opens(pair) -> None:
    a, b, _ = pair
    sent = _send(a)
    assert transfer_json(b, sent["transfer_id"])["state"] == "received"
    [old] = [k["key_id"] for k in _keys(b, "encryption")]
    b.cli("keys", "rotate", "--encryption", "--as", "admin")
    revoked = b.cli("keys", "revoke", old, "--as", "admin")
    assert (b.home / "keys" / "encryption.key").is_file()  # revoking deletes nothing
    _accepted_at_both(a, b, sent["transfer_id"], sent["code"])
    assert "those already here still open" in revoked.stderr


def test_an_envelope_received_before_the_sender_revoked_its_identity_key_still_opens(pair) -> None:
    a, b, _ = pair
    sent = _send(a)
    [old] = [k["key_id"] for k in _keys(a, "identity")]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    revoked = a.cli("keys", "revoke", old, "--as", "admin")
    assert "Warning" not in revoked.stderr  # delivered: nothing of A's is stranded
    b.cli("peers", "refresh", "a.example.org")
    shown = json.loads(b.cli("peers", "show", "a.example.org", "--json").stdout)
    assert {k["key_id"]: k["status"] for k in shown["keys"]}[old] == "revoked"  # B knows, and still opens it
    _accepted_at_both(a, b, sent["transfer_id"], sent["code"])


def test_revoking_a_signing_key_names_the_transfers_it_leaves_undelivered(pair) -> None:
    a, b, _ = pair
    a.stop()
    b.stop()
    tid = _send(a)["transfer_id"]  # B is down: sealed, not delivered
    [old] = [k["key_id"] for k in _keys(a, "identity")]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    revoked = a.cli("keys", "revoke", old, "--as", "admin")
    assert (f"Warning: transfer {tid} to b.example.org is not delivered yet and its envelope is signed by {old}: "
            "b.example.org will refuse it.") in revoked.stderr  # fmt: skip
    assert f"`satchel cancel {tid}`" in revoked.stderr
    (entry,) = [e for e in json.loads(a.cli("audit", "--json").stdout) if e["action"] == "keys.revoke"]
    assert entry["details"]["undelivered_transfers"] == [tid]
    # As said: delivered with A's new key signing the request, B learns of the revocation and refuses it.
    assert _refused_when_delivered(a, b, tid).startswith("envelope.signature_invalid")


def _refused_when_delivered(a, b, tid: str) -> str:
    """Start both nodes, deliver ``tid`` now, and return the error B refused it with, for good."""
    a.start()
    b.start()
    a.cli("transfers", "retry", tid, "--as", "coord", ok=False)
    wait_until(lambda: transfer_json(a, tid)["state"] == "undeliverable")
    (refused,) = [e for e in transfer_json(a, tid)["timeline"] if e["kind"] == "refused"]
    return str(refused["detail"]["error"])


def test_an_envelope_sealed_to_a_revoked_encryption_key_is_refused_when_it_arrives(pair) -> None:
    """What lets an envelope already here open with a revoked key: none sealed to it gets in afterwards."""
    a, b, _ = pair
    a.stop()
    b.stop()
    tid = _send(a)["transfer_id"]  # sealed to B's encryption key, not delivered: B is down
    [old] = [k["key_id"] for k in _keys(b, "encryption")]
    b.cli("keys", "rotate", "--encryption", "--as", "admin")
    b.cli("keys", "revoke", old, "--as", "admin")
    assert _refused_when_delivered(a, b, tid).startswith("envelope.not_recipient")


def test_accepting_an_envelope_whose_revoked_key_file_is_gone_says_so(pair) -> None:
    a, b, _ = pair
    sent = _send(a)
    [old] = [k["key_id"] for k in _keys(b, "encryption")]
    b.cli("keys", "rotate", "--encryption", "--as", "admin")
    b.cli("keys", "revoke", old, "--as", "admin")
    with sqlite3.connect(b.home / "satchel.db") as conn:
        (key_file,) = conn.execute("SELECT key_file FROM node_keys WHERE key_id = ?", [old]).fetchone()
    (b.home / "keys" / key_file).unlink()  # an operator shredding the revoked key
    b.cli("users", "list")  # the home still opens without it
    refused = b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord", ok=False)
    assert refused.exit_code == 2
    assert f"key {old}, which can only be a key this node revoked after the envelope arrived" in refused.stderr
    assert f"key file {b.home / 'keys' / key_file} is missing" in refused.stderr
    assert f"`satchel reject {sent['transfer_id']} --reason ...`" in refused.stderr
    assert "(error code envelope.not_recipient)" in refused.stderr
    assert transfer_json(b, sent["transfer_id"])["state"] == "received"  # no code attempt was counted


def _delivered_by_the_server(a, b) -> str:
    """Send a transfer that A's serving node delivers (it signs in a session; `satchel send` does not): B's
    database is held locked while `send` makes its own first try, which B answers 503 storage.busy."""
    lock = sqlite3.connect(b.home / "satchel.db", timeout=30)
    lock.execute("BEGIN IMMEDIATE")
    try:
        sent = a.cli("send", "--to", "b.example.org", "--student", "100001", "--all-records", "--as", "coord",
                     "--json", ok=False)  # fmt: skip
    finally:
        lock.rollback()
        lock.close()
    tid = json.loads(sent.stdout)["transfer_id"]
    wait_until(lambda: transfer_json(a, tid)["state"] not in ("sealed", "sealed (not delivered yet)"), timeout=90)
    return tid


def test_an_envelope_is_delivered_after_the_sender_rotated_and_revoked_the_key_its_session_was_opened_with(
    pair,
) -> None:
    a, b, _ = pair
    first = _delivered_by_the_server(a, b)  # A's serving node now holds a session with B, opened with its key
    assert transfer_json(a, first)["state"] == "delivered", transfer_json(a, first)
    [old] = [k["key_id"] for k in _keys(a, "identity")]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    a.cli("keys", "revoke", old, "--as", "admin")
    b.cli("peers", "refresh", "a.example.org")
    time.sleep(1.1)  # B re-checks a session's key at most once a second
    # Sealed and signed with A's new key; B would refuse the old session (signature.key_revoked), which A
    # took for a refusal for good: the transfer undeliverable and its envelope dropped.
    second = _delivered_by_the_server(a, b)
    shown = transfer_json(a, second)
    refusals = [event["detail"] for event in shown["timeline"] if event["kind"] == "refused"]
    assert shown["state"] == "delivered", (shown["state"], refusals)
