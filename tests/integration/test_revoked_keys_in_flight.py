"""Keys revoked while transfers are in flight (spec/descriptor.md, Revoking a key): an envelope the receiver
checked on arrival still opens with its code; one not delivered yet is sealed again with the current key, and
opens with the code already given out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.envelope_reseal import reseal_if_needed, sealed_to
from node.home import open_node
from node.transfer_files import envelope_file
from storage import transfers as store

from support import peak_python_memory, transfer_json, wait_until


@contextlib.asynccontextmanager
async def _session_client(node) -> AsyncIterator:
    """A peer client of ``node`` that signs in sessions, as a serving node's does."""
    import aiohttp

    from node.keyring import Keyring
    from node.peer_client import PeerClient

    async with aiohttp.ClientSession() as http:
        keyring = Keyring(node, lambda: http, allow_loopback_http=True)
        try:
            yield PeerClient(node, http, keyring, sessions=True)
        finally:
            await keyring.close()


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


def _held_back(d, tid: str) -> None:
    """Its delivery not due for now: `keys rotate` and `keys revoke` try what is due, and would seal it again first
    (the first retry after a refusal comes within seconds)."""
    with sqlite3.connect(d.home / "satchel.db") as conn:
        conn.execute("UPDATE outbox SET next_attempt_at = '2999-01-01T00:00:00Z' WHERE job_id = ?", [f"envelope-{tid}"])


def _envelope_path(d, tid: str) -> str:
    with sqlite3.connect(d.home / "satchel.db") as conn:
        return conn.execute("SELECT envelope_path FROM transfers WHERE transfer_id = ?", [tid]).fetchone()[0]


def test_an_envelope_signed_with_a_key_revoked_before_it_was_delivered_is_sealed_again_and_opens_with_its_code(
    pair,
) -> None:
    """It was refused for good (envelope.signature_invalid: B learns of the revocation from the very request that
    delivers it), and `keys revoke` only named it. Now A seals it again with its current key, under the same
    transfer id, so that the code its coordinator already read out still opens it."""
    a, b, _ = pair
    a.stop()
    b.stop()
    sent = _send(a)  # B is down: sealed, not delivered
    tid, before = sent["transfer_id"], _envelope_path(a, sent["transfer_id"])
    [old] = [k["key_id"] for k in _keys(a, "identity")]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    [new] = [k["key_id"] for k in _keys(a, "identity") if k["key_id"] != old]
    revoked = a.cli("keys", "revoke", old, "--as", "admin")
    assert (f"Note: transfer {tid} to b.example.org is not delivered yet and its envelope is signed by {old}: it "
            "is sealed again with the current key before it goes, and the code already given out still opens "
            "it.") in revoked.stderr and "Warning" not in revoked.stderr  # fmt: skip
    (entry,) = [e for e in json.loads(a.cli("audit", "--json").stdout) if e["action"] == "keys.revoke"]
    assert entry["details"]["undelivered_transfers"] == [tid]

    a.start()
    b.start()
    timeline = _delivered_now(a, b, tid)
    (resealed,) = [e for e in timeline if e["kind"] == "resealed"]
    assert resealed["detail"]["key"] == new and not [e for e in timeline if e["kind"] == "refused"]
    assert not (a.home / "envelopes" / "out" / Path(before).name).exists()  # the old envelope is gone
    with sqlite3.connect(a.home / "satchel.db") as conn:  # kept only while it might be sealed again
        assert conn.execute("SELECT count(*) FROM outgoing_manifests").fetchone() == (0,)
    shown = json.loads(b.cli("peers", "show", "a.example.org", "--json").stdout)
    assert {k["key_id"]: k["status"] for k in shown["keys"]}[old] == "revoked"  # B knows, and took it all the same
    _accepted_at_both(a, b, tid, sent["code"])
    b.cli("import", "preview", tid, "--as", "coord")
    assert json.loads(b.cli("import", "run", tid, "--as", "coord", "--json").stdout)["imported"] == 1


def test_an_envelope_an_older_version_sealed_is_named_by_keys_revoke_and_refused_when_delivered(pair) -> None:
    """Sealed before senders kept their manifest (migration 0031), it cannot be sealed again: `keys revoke` says to
    cancel it and send the records again, and delivered as it is it is refused, as before."""
    a, b, _ = pair
    a.stop()
    b.stop()
    tid = _send(a)["transfer_id"]
    with sqlite3.connect(a.home / "satchel.db") as conn:  # as the older version left it
        conn.execute("DELETE FROM outgoing_manifests WHERE transfer_id = ?", [tid])
    [old] = [k["key_id"] for k in _keys(a, "identity")]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    revoked = a.cli("keys", "revoke", old, "--as", "admin")
    assert (f"Warning: transfer {tid} to b.example.org is not delivered yet and its envelope is signed by {old}: "
            "b.example.org will refuse it.") in revoked.stderr  # fmt: skip
    assert f"`satchel cancel {tid}`" in revoked.stderr
    assert _refused_when_delivered(a, b, tid).startswith("envelope.signature_invalid")


def _delivered_now(a, b, tid: str) -> list[dict]:
    """A tries ``tid``'s delivery now; once B holds it, waiting for its code, A's timeline of it."""
    a.cli("transfers", "retry", tid, "--as", "coord", ok=False)
    wait_until(lambda: b.cli("transfers", "show", tid, "--json", ok=False).exit_code == 0)
    assert transfer_json(b, tid)["state"] == "received"
    return transfer_json(a, tid)["timeline"]


def _refused_when_delivered(a, b, tid: str) -> str:
    """Start both nodes, deliver ``tid`` now, and return the error B refused it with, for good."""
    a.start()
    b.start()
    a.cli("transfers", "retry", tid, "--as", "coord", ok=False)
    wait_until(lambda: transfer_json(a, tid)["state"] == "undeliverable")
    (refused,) = [e for e in transfer_json(a, tid)["timeline"] if e["kind"] == "refused"]
    return str(refused["detail"]["error"])


def _sealed_then_receiver_revokes_its_encryption_key(a, b) -> tuple[dict, str, str]:
    """A seals to B's encryption key while B is down; B then rotates and revokes that key. The sent transfer, and
    B's old and new encryption key ids."""
    a.stop()
    b.stop()
    sent = _send(a)  # sealed to B's encryption key, not delivered: B is down
    [old] = [k["key_id"] for k in _keys(b, "encryption")]
    b.cli("keys", "rotate", "--encryption", "--as", "admin")
    b.cli("keys", "revoke", old, "--as", "admin")
    [new] = [k["key_id"] for k in _keys(b, "encryption") if k["key_id"] != old]
    return sent, old, new


@pytest.mark.parametrize("known_first", [False, True], ids=["refused-first", "descriptor-known-first"])
def test_an_envelope_sealed_to_an_encryption_key_the_receiver_revoked_is_sealed_again_to_its_new_key(
    pair, known_first: bool
) -> None:
    """B still refuses an envelope sealed to a key it revoked (what lets an envelope already there open with that
    key: none sealed to it gets in afterwards). It was a dead end: the transfer undeliverable. Now A, refused with
    envelope.not_recipient, fetches B's descriptor, seals the envelope again to B's current key under the same
    transfer id, and the code already given out opens it; when A knows of the revocation already (it refreshed
    B), it seals again before the envelope goes."""
    a, b, _ = pair
    sent, old, new = _sealed_then_receiver_revokes_its_encryption_key(a, b)
    tid = sent["transfer_id"]
    b.start()
    if known_first:  # sealed again before it goes, by the check against what A stores of B
        a.cli("peers", "refresh", "b.example.org")
        node = open_node(a.home, {**os.environ, **a.env})
        try:
            row = store.require(node.db, tid, local_domain=a.domain)
            envelope = envelope_file(node, row)
            assert envelope is not None and sealed_to(envelope) == old
            resealed = asyncio.run(reseal_if_needed(node, row, envelope))
            assert resealed.envelope_path != row.envelope_path
            assert sealed_to(envelope_file(node, resealed) or envelope) == new
        finally:
            node.close()
    a.start()
    timeline = _delivered_now(a, b, tid)
    (resealed,) = [e["detail"] for e in timeline if e["kind"] == "resealed"]
    assert (resealed["reason"], resealed["recipient_key"]) == ("recipient_key_replaced", new)
    assert not [e for e in timeline if e["kind"] == "refused"]
    (entry,) = [e for e in json.loads(a.cli("audit", "--json").stdout) if e["action"] == "transfer.resealed"]
    assert (entry["details"]["reason"], entry["details"]["recipient_key"]) == ("recipient_key_replaced", new)
    peer = json.loads(a.cli("peers", "show", "b.example.org", "--json").stdout)  # learned from B's descriptor
    assert {k["key_id"]: k["status"] for k in peer["keys"]}[old] == "revoked"
    _accepted_at_both(a, b, tid, sent["code"])
    b.cli("import", "preview", tid, "--as", "coord")
    assert json.loads(b.cli("import", "run", tid, "--as", "coord", "--json").stdout)["imported"] == 1


def test_an_envelope_sealed_to_a_revoked_encryption_key_that_cannot_be_sealed_again_is_refused(pair) -> None:
    """Without its kept manifest (sealed by an older version, or a purge took it) it goes as it is, and B's refusal
    stands: the transfer is undeliverable and its coordinators are told, as before."""
    a, b, _ = pair
    sent, _, _ = _sealed_then_receiver_revokes_its_encryption_key(a, b)
    tid = sent["transfer_id"]
    with sqlite3.connect(a.home / "satchel.db") as conn:  # as the older version left it
        conn.execute("DELETE FROM outgoing_manifests WHERE transfer_id = ?", [tid])
    assert _refused_when_delivered(a, b, tid).startswith("envelope.not_recipient")
    assert not [e for e in transfer_json(a, tid)["timeline"] if e["kind"] == "resealed"]
    assert any(i["subject"] == f"Transfer {tid} could not be delivered to b.example.org"
               for i in json.loads(a.cli("inbox", "--json").stdout))  # fmt: skip
    assert b.cli("transfers", "show", tid, "--json", ok=False).exit_code != 0  # B took nothing


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


def _signer(signed: bytes) -> str:
    return json.loads(signed)["key_id"]


def test_receipts_and_messages_queued_before_their_key_was_revoked_are_delivered_signed_with_the_new_key(
    pair,
) -> None:
    a, b, _ = pair
    sent = _send(a)
    tid = sent["transfer_id"]
    a.stop()
    b.stop()  # B's outbox waits with both down: its receipt and message are first tried once A is back
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")  # the accepted receipt, queued: A is down
    b.cli("transfers", "message", tid, "Opened; the file is with our registrar", "--as", "coord")
    [old] = [k["key_id"] for k in _keys(b, "identity")]
    b.cli("keys", "rotate", "--identity", "--as", "admin")
    b.cli("keys", "revoke", old, "--as", "admin")
    a.start()
    b.start()
    # B's first request tells A of the new key and the revocation (A fetches B's descriptor). A refused the
    # receipt and the message, signed by the revoked key, for good (receipt.wrong_signer); B gave both up.
    wait_until(lambda: all(status != "pending" for status, _ in _receipt_jobs(b)), timeout=60)
    assert [status for status, _ in _receipt_jobs(b)] == ["done", "done"], _receipt_jobs(b)
    shown = transfer_json(a, tid)
    assert shown["state"] == "accepted"
    assert [e["detail"]["text"] for e in shown["timeline"] if e["kind"] == "message"] == [
        "Opened; the file is with our registrar"
    ]
    peer = json.loads(a.cli("peers", "show", "b.example.org", "--json").stdout)
    assert {k["key_id"]: k["status"] for k in peer["keys"]}[old] == "revoked"
    [new] = [k["key_id"] for k in _keys(b, "identity") if k["key_id"] != old]
    # Each side keeps the bytes that went: signed by B's new key, the same at both.
    query = "SELECT kind, receipt FROM transfer_events WHERE transfer_id = ? AND kind IN ('accepted', 'message')"
    with sqlite3.connect(a.home / "satchel.db") as at_a, sqlite3.connect(b.home / "satchel.db") as at_b:
        received = sorted((kind, bytes(r)) for kind, r in at_a.execute(query, [tid]))
        kept = sorted((kind, bytes(r)) for kind, r in at_b.execute(query, [tid]))
    assert received == kept and [_signer(r) for _, r in kept] == [new, new]


def _receipt_jobs(d) -> list[tuple[str, str | None]]:
    with sqlite3.connect(d.home / "satchel.db") as conn:
        return conn.execute("SELECT status, last_error FROM outbox WHERE kind = 'receipt' ORDER BY job_id").fetchall()


def test_what_arrived_before_its_key_was_revoked_and_comes_again_signed_anew_is_taken_as_the_same(pair) -> None:
    """A delivery whose answer was lost goes again; signed again meanwhile (its key revoked), its payload says
    which receipt or message it is (spec/transfer.md §5.3 step 6, spec/requests.md §4 step 7)."""
    from node.home import open_node
    from node.own_signatures import signed_now
    from node.requests_flow import receive_response
    from node.transfer_delivery import accept_receipt
    from node.transfer_engine import step
    from protocol.receipts import PURPOSE
    from protocol.records_request import PURPOSE_RESPONSE
    from protocol.signed_document import verify_document
    from protocol.transfer_states import Actor, EnvelopeReceived
    from storage import request_messages
    from storage import transfers as store
    from storage.database import write_transaction

    a, b, _ = pair
    tid = _send(a)["transfer_id"]  # B keeps its delivered receipt, signed by its first key
    b.cli("transfers", "message", tid, "Got it; calling you at ten", "--as", "coord")
    request_id = b.cli("request", "--from", "a.example.org", "--student", "100002", "--as", "coord").stdout.split()[2]
    b.cli("requests", "message", request_id, "Her older brother's too, please.", "--as", "coord")
    wait_until(lambda: _thread_texts(a, request_id) == ["Her older brother's too, please."])
    wait_until(lambda: _transfer_messages(a, tid) == ["Got it; calling you at ten"])
    [old] = [k["key_id"] for k in _keys(b, "identity")]
    b.cli("keys", "rotate", "--identity", "--as", "admin")
    b.cli("keys", "revoke", old, "--as", "admin")
    a.cli("peers", "refresh", "b.example.org")  # A refuses what the old key signs from now on
    a.stop()
    b.stop()
    with open_node(b.home, b.env) as node:
        first_message = store.stored_receipt(node.db, tid, "message")
        [first_words] = [m.signed for m in request_messages.of_request(node.db, request_id) if m.direction == "out"]
        assert first_message is not None and {_signer(first_message), _signer(first_words)} == {old}
        message, words = signed_now(node, first_message, purpose=PURPOSE), signed_now(
            node, first_words, purpose=PURPOSE_RESPONSE
        )
        # A sends its envelope again (the delivered receipt it got was lost): B answers with the receipt it
        # keeps, signed again, and keeps that one.
        row = store.require(node.db, tid, local_domain="b.example.org")
        assert row.status.envelope_digest is not None and row.status.expires is not None
        with write_transaction(node.db):
            outcome = step(node, row, EnvelopeReceived(envelope_digest=row.status.envelope_digest,
                                                       expires=row.status.expires),
                           actor=Actor.SENDER_NODE, actor_name="a.example.org")  # fmt: skip
        delivered = outcome.resent
        assert delivered is not None and delivered == store.stored_receipt(node.db, tid, "delivered")
    assert _signer(message) == _signer(words) == _signer(delivered) != old
    assert verify_document(message, purpose=PURPOSE).payload == verify_document(first_message, purpose=PURPOSE).payload
    with open_node(a.home, a.env) as node:
        for receipt in (message, delivered):  # A holds both already, as signed by the old key
            accept_receipt(node, tid, receipt)  # not receipt.conflict: the same receipt
        assert receive_response(node, caller="b.example.org", request_id=request_id, signed=words) == "requested"
    assert _transfer_messages(a, tid) == ["Got it; calling you at ten"]
    assert _thread_texts(a, request_id) == ["Her older brother's too, please."]
    told = [i["subject"] for i in json.loads(a.cli("inbox", "--json").stdout)]
    assert sum("New message" in subject for subject in told) == 2, told  # once each, when they first came


def _transfer_messages(d, tid: str) -> list[str]:
    return [e["detail"]["text"] for e in transfer_json(d, tid)["timeline"] if e["kind"] == "message"]


def _thread_texts(d, request_id: str) -> list[str]:
    return [m["text"] for m in json.loads(d.cli("requests", "show", request_id, "--json").stdout)["messages"]]


def test_a_session_the_receivers_revoked_key_vouched_for_ends_and_the_envelope_goes_in_a_new_one(pair) -> None:
    import asyncio
    import random

    from node import sending
    from node.home import open_node
    from node.manifest_builder import Selection
    from node.outbox_worker import deliver_due

    a, b, _ = pair
    a.stop()  # A's deliveries are made here, by a peer client that signs in sessions as A's serving node's does
    [old] = [k["key_id"] for k in _keys(b, "identity")]

    def rotate_and_revoke() -> None:  # in other processes: B's serving node reloads its keys
        b.cli("keys", "rotate", "--identity", "--as", "admin")
        b.cli("keys", "revoke", old, "--as", "admin")
        time.sleep(1.1)  # B re-checks a session at most once a second

    async def scenario() -> tuple[str, str, str]:
        with open_node(a.home, a.env) as node:
            async with _session_client(node) as client:
                pinged = await client.call(b.url, "POST", "/satchel/v1/ping", body=b"{}",
                                           content_type="application/json")  # fmt: skip
                await asyncio.to_thread(rotate_and_revoke)
                # Sealed and queued as `satchel send` does, without its refreshing B first: A knows B's keys as
                # they were when the session was opened.
                sent = sending.send(node, actor="coord", to="b.example.org",
                                    selection=Selection(students=("100001",), all_records=True))  # fmt: skip
                await deliver_due(node, client, rng=random.Random(0))
                (session,) = client._sessions.values()
                return pinged.key_id, session.keys.session_id, sent.transfer_id

    first, now, tid = asyncio.run(scenario())
    # B refused the envelope in the session its revoked key vouched for (signature.session_unknown, signed with its
    # new key); A learned that key, opened a new session and sent the envelope again. B used to take it in the old
    # session and answer with a delivered receipt signed by a key A did not know yet: refused here, the envelope
    # sent again and again until the session's end, a quarter of an hour later.
    assert now != first
    shown = transfer_json(a, tid)
    assert shown["state"] == "delivered", shown
    peer = json.loads(a.cli("peers", "show", "b.example.org", "--json").stdout)  # learned from B, not refreshed
    assert {k["key_id"]: k["status"] for k in peer["keys"] if k["use"] == "identity"}[old] == "revoked"


def test_an_update_queued_before_a_revocation_does_not_put_the_revoked_key_back_in_the_directory(federation) -> None:
    from datetime import UTC, datetime, timedelta

    from test_federation import _cli, _join_and_approve

    from support import ServedNode

    homes, urls = federation
    _join_and_approve(homes, urls)
    federation.served["dir"].stop()
    federation.served["a"].stop()  # nothing is tried until both are back
    info = json.loads(_cli(homes["a"], "info", "--json").output)
    [old] = [k["id"] for k in info["keys"] if k["use"] == "identity"]
    _cli(homes["a"], "keys", "rotate", "--identity", "--as", "ada")  # an update: both keys, the old one valid
    _cli(homes["a"], "keys", "revoke", old, "--as", "ada")  # another: the old key revoked
    soon, later = (datetime.now(UTC) + timedelta(seconds=s) for s in (0, 3))
    with sqlite3.connect(homes["a"] / "satchel.db") as conn:
        query = "SELECT job_id FROM outbox WHERE kind = 'directory.update' AND status = 'pending' ORDER BY created_at"
        waiting = [job for (job,) in conn.execute(query)]
        # The revocation's update goes first, the rotation's after it, as their backoff may have it.
        for job, when in zip(waiting, (later, soon)[-len(waiting) :], strict=True):
            conn.execute("UPDATE outbox SET next_attempt_at = ? WHERE job_id = ?",
                         [when.strftime("%Y-%m-%dT%H:%M:%SZ"), job])  # fmt: skip
    federation.served["dir"] = ServedNode(homes["dir"])
    federation.served["a"] = ServedNode(homes["a"])

    def updates() -> list[str]:
        with sqlite3.connect(homes["a"] / "satchel.db") as conn:
            return [f"{s} {e}" for s, e in conn.execute("SELECT status, last_error FROM outbox"
                                               " WHERE kind = 'directory.update' ORDER BY created_at")]  # fmt: skip

    wait_until(lambda: not any(u.startswith("pending") for u in updates()), timeout=60)
    time.sleep(4)  # past when the older update was due: none goes after the revocation's
    assert updates()[-1].startswith("done"), updates()
    with sqlite3.connect(homes["dir"] / "satchel.db") as conn:
        listed = {k for (k,) in conn.execute("SELECT key_id FROM directory_entry_keys WHERE domain = 'a.example.org'")}
    assert old not in listed, listed  # a district looking the old key up is not sent to A by the directory
    assert len(waiting) == 1  # the rotation's update was withdrawn: the revocation's carries all it said


def test_a_receipt_signed_with_the_key_the_receiver_rotated_to_inside_a_session_is_taken_at_once(pair) -> None:
    import asyncio
    import random

    from node import sending
    from node.home import open_node
    from node.manifest_builder import Selection
    from node.outbox_worker import deliver_due
    from storage import outbox

    a, b, _ = pair
    a.stop()  # A's deliveries are made here, by a peer client that signs in sessions as A's serving node's does
    [old] = [k["key_id"] for k in _keys(b, "identity")]

    async def scenario() -> tuple[str, str, str, tuple[str, int] | None]:
        with open_node(a.home, a.env) as node:
            async with _session_client(node) as client:
                pinged = await client.call(b.url, "POST", "/satchel/v1/ping", body=b"{}",
                                           content_type="application/json")  # fmt: skip
                # B rotates (no revocation: its old key still vouches for the session) and its serving node signs
                # its receipts with the new key from now on.
                await asyncio.to_thread(b.cli, "keys", "rotate", "--identity", "--as", "admin")
                await asyncio.to_thread(time.sleep, 1.1)
                sent = sending.send(node, actor="coord", to="b.example.org",
                                    selection=Selection(students=("100001",), all_records=True))  # fmt: skip
                await deliver_due(node, client, rng=random.Random(0))
                (session,) = client._sessions.values()
                job = outbox.get(node.db, f"envelope-{sent.transfer_id}")
                tried = (job.status, job.attempts) if job is not None else None
                return pinged.key_id, session.keys.session_id, sent.transfer_id, tried

    first, now, tid, tried = asyncio.run(scenario())
    assert now == first  # the same session: B's old key was rotated away from, not revoked
    # The delivered receipt, signed by B's new key, was taken on the first try: A learned the key from B. It used to
    # be refused (receipt.wrong_signer), the envelope sent again on every try until the session's end.
    shown = transfer_json(a, tid)
    assert shown["state"] == "delivered", shown
    assert tried == ("done", 0), tried  # no try failed
    new = {k["key_id"] for k in _keys(b, "identity")} - {old}
    peer = json.loads(a.cli("peers", "show", "b.example.org", "--json").stdout)
    assert new <= {k["key_id"] for k in peer["keys"] if k["use"] == "identity"}


def test_a_large_envelope_is_sealed_again_in_memory_that_does_not_grow_with_it(pair, tmp_path: Path) -> None:
    """Documents can be gigabytes: sealing again streams them from the blob store a chunk at a time."""
    a, b, _ = pair
    a.stop()
    b.stop()
    document = tmp_path / "scan.pdf"
    with document.open("wb") as out:
        for _ in range(LARGE >> 20):
            out.write(os.urandom(1 << 20))
    a.cli("documents", "add", "100001", str(document), "--type", "other", "--as", "coord")
    sent = _send(a)
    tid = sent["transfer_id"]
    _held_back(a, tid)  # else `keys revoke` may seal it again, before the memory is measured
    [old] = [k["key_id"] for k in _keys(a, "identity")]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    a.cli("keys", "revoke", old, "--as", "admin")
    node = open_node(a.home, {**os.environ, **a.env})
    try:
        row = store.require(node.db, tid, local_domain=a.domain)
        envelope = envelope_file(node, row)
        assert envelope is not None
        peak = peak_python_memory(lambda: asyncio.run(reseal_if_needed(node, row, envelope)))
        resealed = store.require(node.db, tid, local_domain=a.domain)
    finally:
        node.close()
    assert resealed.envelope_path != row.envelope_path and (resealed.envelope_length or 0) > LARGE
    assert peak < LARGE // 4, f"{peak / 2**20:.1f} MiB of Python memory to seal {LARGE >> 20} MiB again"
    a.start()
    b.start()
    a.cli("transfers", "retry", tid, "--as", "coord", ok=False)
    wait_until(lambda: b.cli("transfers", "show", tid, "--json", ok=False).exit_code == 0, timeout=60)
    _accepted_at_both(a, b, tid, sent["code"])


LARGE = 64 << 20


def test_a_purge_takes_the_purged_record_out_of_what_is_kept_to_seal_again(pair, tmp_path: Path) -> None:
    """The kept manifest holds the records' content (a document's title and file name) in the clear: a purge erases
    it there too, and that transfer can then no longer be sealed again, which `keys revoke` says."""
    a, b, _ = pair
    a.stop()
    b.stop()
    document = tmp_path / "Counseling notes - Ava.pdf"
    document.write_bytes(os.urandom(5000))
    added = json.loads(a.cli("documents", "add", "100001", str(document), "--type", "other", "--as", "coord",
                             "--json").stdout)  # fmt: skip
    tid = _send(a)["transfer_id"]
    with sqlite3.connect(a.home / "satchel.db") as conn:
        (kept,) = conn.execute("SELECT manifest FROM outgoing_manifests WHERE transfer_id = ?", [tid]).fetchone()
    assert b"Counseling notes - Ava.pdf" in kept
    purged = a.cli("purge", added["doc_id"], "--as", "admin")
    # The envelope sealed with it cannot be changed and goes as it is: the admin is told, to cancel it if need be.
    assert f"Transfer(s) {tid}, sealed with it before the purge and not delivered yet" in purged.stdout
    assert f"cancel them (`satchel cancel {tid}`)" in purged.stdout
    [entry] = [e for e in json.loads(a.cli("audit", "--json").stdout) if e["action"] == "document.purge"]
    assert entry["details"]["still_in_undelivered"] == [tid]
    with sqlite3.connect(a.home / "satchel.db") as conn:
        assert conn.execute("SELECT count(*) FROM outgoing_manifests").fetchone() == (0,)
    [old] = [k["key_id"] for k in _keys(a, "identity")]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    assert f"Warning: transfer {tid} to b.example.org" in a.cli("keys", "revoke", old, "--as", "admin").stderr


def test_a_purge_keeps_what_is_kept_to_seal_again_of_transfers_that_do_not_hold_the_purged_record(
    pair, tmp_path: Path
) -> None:
    """A district's own assessment result ids can be short ("R1"): one is found inside the bytes of manifests that
    do not hold it ("R12", a date, a score), whose transfers could still be sealed again."""
    a, b, _ = pair
    a.stop()
    b.stop()
    results = tmp_path / "star.csv"
    results.write_text("result_id,student_sis_id,assessment,subject,date,percentile\n"
                       "R12,100001,STAR Math,Math,2026-09-16,41\n"
                       "R1,100002,STAR Math,Math,2026-09-16,55\n")  # fmt: skip
    a.cli("assessments", "import", str(results), "--as", "coord")
    tid = _send(a)["transfer_id"]  # 100001's records: R12, not R1
    a.cli("assessments", "purge", "R1", "--as", "admin")
    with sqlite3.connect(a.home / "satchel.db") as conn:
        assert conn.execute("SELECT transfer_id FROM outgoing_manifests").fetchall() == [(tid,)]
    a.cli("assessments", "purge", "R12", "--as", "admin")  # the one it holds: that one goes
    with sqlite3.connect(a.home / "satchel.db") as conn:
        assert conn.execute("SELECT count(*) FROM outgoing_manifests").fetchone() == (0,)


def test_a_purge_while_the_envelope_is_being_sealed_again_leaves_it_as_it_was(pair, tmp_path: Path) -> None:
    """The manifest is read, then the envelope sealed from it on a thread: a purge meanwhile takes the manifest, and
    what was sealed from it (holding the purged record) does not replace the envelope."""
    from node import record_fixes

    a, b, _ = pair
    a.stop()
    b.stop()
    document = tmp_path / "scan.pdf"
    document.write_bytes(os.urandom(16 << 20))  # time to purge while it is sealed
    a.cli("documents", "add", "100001", str(document), "--type", "other", "--as", "coord")
    results = tmp_path / "star.csv"
    results.write_text("result_id,student_sis_id,assessment,subject,date,percentile\n"
                       "STAR-9,100001,STAR Math,Math,2026-09-16,41\n")  # fmt: skip
    a.cli("assessments", "import", str(results), "--as", "coord")
    tid = _send(a)["transfer_id"]
    _held_back(a, tid)
    [old] = [k["key_id"] for k in _keys(a, "identity")]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    a.cli("keys", "revoke", old, "--as", "admin")
    out = a.home / "envelopes" / "out"
    node = open_node(a.home, {**os.environ, **a.env})
    try:
        row = store.require(node.db, tid, local_domain=a.domain)
        envelope = envelope_file(node, row)
        assert envelope is not None

        async def purge_while_sealing() -> None:
            sealing = asyncio.create_task(reseal_if_needed(node, row, envelope))
            while not any(p != envelope for p in out.iterdir()):  # the manifest is read: sealing has begun
                assert not sealing.done()
                await asyncio.sleep(0.002)
            record_fixes.purge_assessment(node, actor="admin", record_id="STAR-9")  # on the loop: before the end
            await sealing

        asyncio.run(purge_while_sealing())
        after = store.require(node.db, tid, local_domain=a.domain)
    finally:
        node.close()
    assert after.envelope_path == row.envelope_path and sorted(out.iterdir()) == [envelope]
    assert not [e for e in transfer_json(a, tid)["timeline"] if e["kind"] == "resealed"]
