"""What the audit log says against what the node's ordinary tables say (storage.audit), and that every change
of state, and every read of a secret, is in it with whoever did it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from support import wait_until


def _send(a, *args: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)


def test_a_disclosure_edited_in_the_record_is_found_through_the_audit_log(pair, tmp_path: Path) -> None:
    a, _, _ = pair
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(b"%PDF-1.4 an IEP")
    for sis_id in ("100001", "100002"):
        a.cli("documents", "add", sis_id, str(doc), "--type", "iep", "--title", "IEP 2026", "--as", "coord")
    sent = _send(a, "--student", "100001", "--student", "100002", "--student", "100003", "--all-records",
                 "--purpose", "enrolment at B")["transfer_id"]  # fmt: skip
    assert "hash chain verified" in a.cli("audit", "verify").stdout
    # The record of disclosures is an ordinary table: a parent reads it to learn who got what of their child's.
    # Each edit below leaves as many rows as students sent, which is all the log was compared on.
    with sqlite3.connect(a.home / "satchel.db") as db:
        db.execute("UPDATE disclosures SET to_domain = 'c.example.org', to_name = 'Elsewhere SD' "
                   "WHERE student_sis_id = '100001'")  # fmt: skip
        (held,) = db.execute("SELECT records FROM disclosures WHERE student_sis_id = '100002'").fetchone()
        records = json.loads(held)
        assert [r["kind"] for r in records] == ["demographics", "document"]
        db.execute("UPDATE disclosures SET records = ? WHERE student_sis_id = '100002'", [json.dumps(records[:1])])
        db.execute("UPDATE disclosures SET student_sis_id = '100004' WHERE student_sis_id = '100003'")
    refused = a.cli("audit", "verify", ok=False)
    assert refused.exit_code != 0
    said = " ".join(refused.output.split())
    assert f"transfer {sent} went to c.example.org" in said
    assert "audit entry" in said and "says to b.example.org" in said
    assert "'Elsewhere SD'" in said
    assert f"the disclosure of student 100002 by transfer {sent}" in said
    assert f"names student 100004 for transfer {sent}" in said
    assert a.cli("check", ok=False).exit_code == 1


def _entries(d, subject: str) -> list[tuple[str, str, dict]]:
    from node.home import open_node
    from storage import audit

    with open_node(d.home, d.env) as node:
        return [(e.actor, e.action, dict(e.details)) for e in reversed(list(audit.entries(node.db, subject=subject)))]


def test_changes_no_operator_made_are_audited_with_who_made_them(pair) -> None:
    from node.codes_flow import expire_codes
    from node.home import open_node
    from node.transfer_actions import expire_due

    a, b, _ = pair
    # The other district's receipts move this side's transfer: its node is who did it, as in the timeline.
    sent = _send(a, "--student", "100001")
    b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord")
    b.cli("reject", sent["transfer_id"], "--reason", "not ours after all", "--as", "coord")
    wait_until(lambda: ("b.example.org", "transfer.receipt", {"kind": "rejected", "state": "rejected"})
               in _entries(a, sent["transfer_id"]), timeout=15)  # fmt: skip
    assert ("b.example.org", "transfer.receipt", {"kind": "accepted", "state": "accepted"}) in _entries(
        a, sent["transfer_id"])
    # The timer: a transfer and a transfer code that expire are expired by the node itself.
    b.stop()
    tid = _send(a, "--student", "100002")["transfer_id"]
    made = json.loads(a.cli("codes", "create", "--student", "100003", "--as", "coord", "--json").stdout)
    with sqlite3.connect(a.home / "satchel.db") as db:
        db.execute("UPDATE transfers SET expires_at = '2020-01-01T00:00:00Z' WHERE transfer_id = ?", [tid])
        db.execute("UPDATE transfer_codes_issued SET created_at = '2019-12-01T00:00:00Z', "
                   "expires_at = '2020-01-01T00:00:00Z'")  # fmt: skip
    with open_node(a.home, a.env) as node:
        assert expire_due(node) == [tid]
        assert expire_codes(node) == 1
    assert ("(timer)", "transfer.expire", {"state": "expired"}) in _entries(a, tid)
    assert ("(timer)", "code.expire", {}) in _entries(a, made["code_id"][:8])


def test_reading_a_transfers_code_again_is_a_coordinators_and_is_audited(pair) -> None:
    a, _, _ = pair
    a.cli("users", "add", "vic", "--email", "vic@a.example.org", "--name", "Vic Viewer", "--role", "viewer",
          "--as", "admin")  # fmt: skip
    sent = _send(a, "--student", "100001")
    tid = sent["transfer_id"]
    # The code opens the student's records: a viewer may not read it, and nothing is recorded of a refusal.
    refused = a.cli("transfers", "show", tid, "--code", "--as", "vic", ok=False)
    assert refused.exit_code != 0 and "vic is a viewer" in refused.stderr
    assert not [e for e in _entries(a, tid) if e[1] == "transfer.code_shown"]
    shown = json.loads(a.cli("transfers", "show", tid, "--code", "--as", "coord", "--json").stdout)
    assert shown["code"] == sent["code"]
    assert [e for e in _entries(a, tid) if e[1] == "transfer.code_shown"] == [("coord", "transfer.code_shown", {})]


def test_what_other_districts_do_with_a_transfer_code_is_audited_in_their_name(pair) -> None:
    import asyncio
    import base64
    import os

    import pytest

    from crypto import parse_code, transfer_code_credentials, transfer_code_proof
    from node.codes_flow import handle_claim
    from node.home import open_node
    from node.transfer_actions import expire_due
    from protocol import SatchelError
    from protocol.json_strict import dumps_canonical
    from protocol.transfer_code import parse_transfer_code

    a, _, _ = pair
    made = json.loads(a.cli("codes", "create", "--student", "100001", "--for", "b.example.org", "--as", "coord",
                            "--json").stdout)  # fmt: skip
    parsed = parse_transfer_code(made["code"], parse_code=parse_code)
    code_id, key = transfer_code_credentials(parsed.code, parsed.source_domain)

    def body(proof: bytes | None = None) -> bytes:  # as `satchel claim` makes it; a wrong proof if given one
        nonce = os.urandom(16)
        proof = proof or transfer_code_proof(key, destination="b.example.org", nonce=nonce)
        b64 = [base64.urlsafe_b64encode(v).rstrip(b"=").decode() for v in (code_id, nonce, proof)]
        return dumps_canonical(dict(zip(("code_id", "nonce", "proof"), b64, strict=True)))

    a.stop()
    with open_node(a.home, a.env) as node:
        with pytest.raises(SatchelError):  # a wrong proof counts against the code, which locks after a few
            asyncio.run(handle_claim(node, caller="b.example.org", body=body(os.urandom(32))))
        first = asyncio.run(handle_claim(node, caller="b.example.org", body=body()))
        # Claimed again (B's first answer lost): the envelope's code is given again, which opens the records.
        again = asyncio.run(handle_claim(node, caller="b.example.org", body=body()))
        assert again["envelope_code"] == first["envelope_code"]
    tid = str(first["transfer_id"])
    with sqlite3.connect(a.home / "satchel.db") as db:
        db.execute("UPDATE transfers SET expires_at = '2020-01-01T00:00:00Z' WHERE transfer_id = ?", [tid])
    with open_node(a.home, a.env) as node:
        assert expire_due(node) == [tid]  # never delivered: the code is free to be entered again
    entries = _entries(a, code_id.hex()[:8])
    assert ("b.example.org", "code.claim_failed", {"state": "active", "failed_claims": 1}) in entries
    assert ("b.example.org", "code.claim_repeated", {"transfer": tid, "code_given": True}) in entries
    assert ("(timer)", "code.follows_transfer", {"transfer": tid, "state": "active"}) in entries
