"""Transfer codes between real nodes: create, claim (proof, not the code), preview, import, refusals."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time

from crypto import generate_code


def _json(d, *args: str):
    return json.loads(d.cli(*args).stdout)


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def _code_state(a, code: str) -> str:
    return next(
        c["state"]
        for c in _json(a, "codes", "list", "--json")
        if code.split("@")[0].endswith(c["ends_with"].lstrip("…"))
    )


def test_code_for_one_student_claim_preview_import_and_used(pair) -> None:
    a, b, _ = pair
    issued = _json(
        a, "codes", "create", "--student", "100001", "--for", "b.example.org", "--as", "coord", "--json"
    )
    code = issued["code"]
    assert code.endswith("@a.example.org") and issued["students"] == 1
    claimed = _json(b, "claim", code.lower(), "--school", "0101", "--as", "coord", "--json")
    assert claimed["district"] == "Springfield District A" and claimed["matched"] == 1
    assert claimed["school"] == "Lincoln Middle School"  # the student's: a code for one names no school itself
    tid = claimed["transfer_id"]
    assert _json(b, "transfers", "show", tid, "--json")["state"] == "accepted"
    _wait(lambda: _json(a, "transfers", "show", tid, "--json")["state"] == "accepted")
    # Too late to cancel: the coordinator who would revoke it is told where it stands, not sent to a refusal.
    refused = a.cli("codes", "revoke", issued["code_id"][:12], "--as", "coord", ok=False)
    assert "b.example.org has opened the records" in refused.stderr and "satchel cancel" not in refused.stderr
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["imported"] == 1
    _wait(lambda: _code_state(a, code) == "used")
    again = b.cli("claim", code, "--as", "coord", ok=False)
    assert "code.used" in again.stderr
    disclosure = _json(a, "disclosures", "100001", "--json")["disclosures"][-1]
    assert (disclosure["transfer_id"], disclosure["requested_by"]) == (tid, None)
    assert disclosure["purpose"] == "a transfer code made here for the students' records was entered by b.example.org"


def test_code_for_a_grade_and_going_back_frees_the_code(pair) -> None:
    a, b, _ = pair
    # A grade as a person might say it: the coordinator is told which grades the school has, on --grade.
    unpadded = a.cli("codes", "create", "--grade", "7", "--school", "Lincoln Middle School", "--as", "coord",
                     ok=False).stderr  # fmt: skip
    assert "Field: --grade" in unpadded and "Lincoln Middle School has " in unpadded and "07" in unpadded
    code = _json(a, "codes", "create", "--grade", "07", "--school", "Lincoln Middle School", "--as", "coord",
                 "--json")["code"]  # fmt: skip
    claimed = _json(b, "claim", code, "--school", "0101", "--as", "coord", "--json")
    assert claimed["school"] == "Lincoln Middle School"
    assert (
        claimed["matched"] + claimed["new"] + claimed["uncertain"] == 1
    )  # grade 07 has one enrolled student
    b.cli("import", "cancel", claimed["transfer_id"], "--as", "coord")
    _wait(lambda: _code_state(a, code) == "active")
    second = _json(b, "claim", code, "--school", "0101", "--as", "coord", "--json")
    assert second["transfer_id"] != claimed["transfer_id"]
    assert _json(b, "import", "run", second["transfer_id"], "--as", "coord", "--json")["imported"] == 1


def test_refused_codes_each_with_their_code(pair) -> None:
    a, b, _ = pair
    mine = _json(a, "codes", "create", "--student", "100001", "--as", "coord", "--json")["code"]
    assert "code.same_node" in a.cli("claim", mine, "--as", "coord", ok=False).stderr
    typo = mine.replace(mine[2], "Z" if mine[2] != "Z" else "Y", 1)
    assert "code.typo" in b.cli("claim", typo, "--as", "coord", ok=False).stderr

    for nobody in ("", "a.example.org"):  # the option's own name, not the protocol's, and what to do
        refused = a.cli("codes", "create", "--student", "100002", "--for", nobody, "--as", "coord", ok=False)
        assert "Field: --for" in refused.stderr and "Hint: give the receiving district's domain" in refused.stderr
    bound = _json(a, "codes", "create", "--student", "100002", "--for", "c.example.org", "--as", "coord",
                  "--json")  # fmt: skip
    assert "code.wrong_destination" in b.cli("claim", bound["code"], "--as", "coord", ok=False).stderr

    revoked = _json(a, "codes", "create", "--student", "100003", "--as", "coord", "--json")
    # An id is matched character for character: a wildcard, or too short a start, revokes nothing.
    for wild in ("%", "_", "", revoked["code_id"][:5], revoked["code_id"][:11] + "%"):
        refused = a.cli("codes", "revoke", wild, "--as", "coord", ok=False)
        assert "is not a code id" in refused.stderr and "(error code input.invalid)" in refused.stderr
    assert {c["state"] for c in _json(a, "codes", "list", "--json")} == {"active"}
    a.cli("codes", "revoke", revoked["code_id"][:12], "--as", "coord")
    assert "code.revoked" in b.cli("claim", revoked["code"], "--as", "coord", ok=False).stderr
    with sqlite3.connect(a.home / "satchel.db") as conn:  # two ids that start alike: which one is meant?
        ids = [r[0] for r in conn.execute("SELECT code_id FROM transfer_codes_issued WHERE state = 'active'")]
        conn.execute("UPDATE transfer_codes_issued SET code_id = 'abcdef' || substr(code_id, 7) WHERE code_id IN "
                     "(?, ?)", ids[:2])  # fmt: skip
    ambiguous = a.cli("codes", "revoke", "abcdef", "--as", "coord", ok=False)
    assert "more than one code" in ambiguous.stderr and "(error code input.invalid)" in ambiguous.stderr

    expired = _json(a, "codes", "create", "--student", "100005", "--as", "coord", "--json")
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE transfer_codes_issued SET created_at = '2019-12-01T00:00:00Z',"
            " expires_at = '2020-01-01T00:00:00Z' WHERE code_id = ?",
                     [expired["code_id"]])  # fmt: skip
    assert "code.expired" in b.cli("claim", expired["code"], "--as", "coord", ok=False).stderr

    inactive = a.cli(
        "codes", "create", "--student", "100004", "--as", "coord", ok=False
    )  # an inactive student
    assert "no currently enrolled student" in inactive.stderr


def test_guessing_is_answered_alike_and_throttled(pair) -> None:
    a, b, _ = pair
    answers = []
    for _ in range(4):
        guess = f"{generate_code().reveal()}@a.example.org"
        answers.append(b.cli("claim", guess, "--as", "coord", ok=False).stderr)
    assert all("code.unknown" in answer for answer in answers[:2])
    assert "code.throttled" in answers[-1]
    with sqlite3.connect(a.home / "satchel.db") as conn:
        assert (
            conn.execute("SELECT count(*) FROM claim_failures WHERE peer = 'b.example.org'").fetchone()[0]
            >= 2
        )


def test_a_code_claimed_again_by_the_same_district_gives_the_same_transfer(pair) -> None:
    import os

    from crypto import parse_code, transfer_code_credentials, transfer_code_proof
    from node.codes_flow import handle_claim
    from node.home import open_node
    from protocol.json_strict import dumps_canonical
    from protocol.transfer_code import parse_transfer_code

    a, b, _ = pair
    code = _json(a, "codes", "create", "--student", "100001", "--for", "b.example.org", "--as", "coord",
                 "--json")["code"]  # fmt: skip
    # B's first answer was lost on the way (a timeout, a crash): A has claimed the code and sealed the records.
    parsed = parse_transfer_code(code, parse_code=parse_code)
    code_id, key = transfer_code_credentials(parsed.code, parsed.source_domain)

    def body() -> bytes:  # a fresh proof each time, as `satchel claim` makes
        nonce = os.urandom(16)
        proof = transfer_code_proof(key, destination="b.example.org", nonce=nonce)
        b64 = [base64.urlsafe_b64encode(v).rstrip(b"=").decode() for v in (code_id, nonce, proof)]
        return dumps_canonical(dict(zip(("code_id", "nonce", "proof"), b64, strict=True)))

    a.stop()
    with open_node(a.home, a.env) as node:
        first = asyncio.run(handle_claim(node, caller="b.example.org", body=body()))
        again = asyncio.run(handle_claim(node, caller="b.example.org", body=body()))
    assert again["transfer_id"] == first["transfer_id"]
    assert again["envelope_code"] == first["envelope_code"]  # the code again, while A still keeps it
    a.start()
    # B enters the code again: the same transfer arrives, opens with the code and is previewed.
    claimed = _json(b, "claim", code, "--school", "0101", "--as", "coord", "--json")
    assert claimed["transfer_id"] == first["transfer_id"]
    assert _json(b, "transfers", "show", claimed["transfer_id"], "--json")["state"] == "accepted"
    # Once B has opened it, A no longer keeps the code; a claim made again still finds the same transfer.
    _wait(lambda: _json(a, "transfers", "show", claimed["transfer_id"], "--json")["state"] == "accepted")
    third = _json(b, "claim", code, "--school", "0101", "--as", "coord", "--json")
    assert third["transfer_id"] == first["transfer_id"]


def _claim_while_stopped(a, code: str) -> str:
    """A claims ``code`` for B while A's server is stopped (B's answer lost); the transfer id it sealed."""
    import os

    from crypto import parse_code, transfer_code_credentials, transfer_code_proof
    from node.codes_flow import handle_claim
    from node.home import open_node
    from protocol.json_strict import dumps_canonical
    from protocol.transfer_code import parse_transfer_code

    parsed = parse_transfer_code(code, parse_code=parse_code)
    code_id, key = transfer_code_credentials(parsed.code, parsed.source_domain)
    nonce = os.urandom(16)
    proof = transfer_code_proof(key, destination="b.example.org", nonce=nonce)
    b64 = [base64.urlsafe_b64encode(v).rstrip(b"=").decode() for v in (code_id, nonce, proof)]
    a.stop()
    with open_node(a.home, a.env) as node:
        claim = dumps_canonical(dict(zip(("code_id", "nonce", "proof"), b64, strict=True)))
        answer = asyncio.run(handle_claim(node, caller="b.example.org", body=claim))
    return str(answer["transfer_id"])


def _claim_key_length(a, code_id: str) -> int:
    with sqlite3.connect(a.home / "satchel.db") as conn:
        return conn.execute("SELECT length(claim_key) FROM transfer_codes_issued WHERE code_id = ?",
                            [code_id]).fetchone()[0]  # fmt: skip


def test_cancelling_a_claimed_codes_transfer_revokes_the_code(pair) -> None:
    a, b, _ = pair
    issued = _json(a, "codes", "create", "--student", "100001", "--as", "coord", "--json")
    tid = _claim_while_stopped(a, issued["code"])
    a.start()
    refused = a.cli("codes", "revoke", issued["code_id"][:12], "--as", "coord", ok=False)
    assert "(error code code.in_use)" in refused.stderr and f"satchel cancel {tid}" in refused.stderr
    a.cli("cancel", tid, "--as", "coord")
    # B confirms the cancellation with a signed receipt; A's transfer is then cancelled, and the code with it.
    _wait(lambda: _json(a, "transfers", "show", tid, "--json")["state"] == "cancelled")
    assert _code_state(a, issued["code"]) == "revoked"
    listed = next(c for c in _json(a, "codes", "list", "--json") if c["code_id"] == issued["code_id"])
    assert (listed["claimed_by"], listed["transfer_id"]) == (None, tid)
    assert _claim_key_length(a, issued["code_id"]) == 0  # it opens nothing any more
    assert any("revoked" in i["subject"] for i in _json(a, "inbox", "--json"))
    # B's coordinator, entering the code again, is told it was withdrawn, not sent to the cancelled transfer.
    assert "code.revoked" in b.cli("claim", issued["code"], "--as", "coord", ok=False).stderr


def test_a_claimed_codes_transfer_that_expires_frees_the_code(pair) -> None:
    from node.home import open_node
    from node.transfer_actions import expire_due

    a, b, _ = pair
    issued = _json(a, "codes", "create", "--student", "100001", "--for", "b.example.org", "--as", "coord",
                   "--json")  # fmt: skip
    tid = _claim_while_stopped(a, issued["code"])
    with sqlite3.connect(a.home / "satchel.db") as conn:  # B never took it, and its days are over
        conn.execute("UPDATE transfers SET expires_at = '2020-01-01T00:00:00Z' WHERE transfer_id = ?", [tid])
    with open_node(a.home, a.env) as node:
        assert expire_due(node) == [tid]
    assert _code_state(a, issued["code"]) == "active"
    (notice,) = [i for i in _json(a, "inbox", "--json") if "can be entered again" in i["subject"]]
    assert f"its transfer {tid} expired before it was accepted" in notice["body"]
    assert "The receiving district may enter the code again until" in notice["body"]
    a.start()
    # The code works again: B's claim gets the records in a new transfer, which it opens and imports.
    claimed = _json(b, "claim", issued["code"], "--school", "0101", "--as", "coord", "--json")
    assert claimed["transfer_id"] != tid
    assert _json(b, "import", "run", claimed["transfer_id"], "--as", "coord", "--json")["imported"] == 1
    _wait(lambda: _code_state(a, issued["code"]) == "used")
    assert _claim_key_length(a, issued["code_id"]) == 0


def _expire(a, tid: str, *, code_id: str | None = None) -> None:
    """A's transfer ``tid`` (and the code ``code_id``) past its days, and A's expiry timer run (A stopped)."""
    from node.home import open_node
    from node.transfer_actions import expire_due

    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE transfers SET expires_at = '2020-01-01T00:00:00Z' WHERE transfer_id = ?", [tid])
        if code_id:
            conn.execute("UPDATE transfer_codes_issued SET created_at = '2019-12-01T00:00:00Z', expires_at ="
                         " '2020-01-01T00:00:00Z' WHERE code_id = ?", [code_id])  # fmt: skip
    with open_node(a.home, a.env) as node:
        assert expire_due(node) == [tid]


def test_a_claimed_code_past_its_days_whose_transfer_expires_is_expired_and_said_so(pair) -> None:
    a, _, _ = pair
    issued = _json(a, "codes", "create", "--student", "100001", "--as", "coord", "--json")
    tid = _claim_while_stopped(a, issued["code"])
    _expire(a, tid, code_id=issued["code_id"])
    assert _code_state(a, issued["code"]) == "expired" and _claim_key_length(a, issued["code_id"]) == 0
    notices = [i for i in _json(a, "inbox", "--json") if "Transfer code" in i["subject"]]
    told = {("expired" if "expired unused" in n["subject"] else "claimed" if "was entered by" in n["subject"]
             else n["subject"]): n["body"] for n in notices}  # fmt: skip
    assert sorted(told) == ["claimed", "expired"]  # not "can be entered again" before "expired"
    assert "The code's 30 days are over as well" in told["expired"]
    assert "may enter the code again" not in told["expired"]


def test_a_claimed_codes_transfer_that_expires_while_being_cancelled_revokes_the_code(pair) -> None:
    a, b, _ = pair
    issued = _json(a, "codes", "create", "--student", "100001", "--as", "coord", "--json")
    tid = _claim_while_stopped(a, issued["code"])
    b.stop()  # B never hears of the cancellation, so never confirms it
    a.start()
    a.cli("cancel", tid, "--as", "coord")
    refused = a.cli("codes", "revoke", issued["code_id"][:12], "--as", "coord", ok=False)
    assert "its transfer is being cancelled; the code is revoked once b.example.org confirms" in refused.stderr
    a.stop()
    _expire(a, tid)
    # The coordinator wanted it stopped: the code is not freed for B to claim the records again.
    assert _code_state(a, issued["code"]) == "revoked" and _claim_key_length(a, issued["code_id"]) == 0
    (notice,) = [i for i in _json(a, "inbox", "--json") if "revoked" in i["subject"]]
    assert f"its transfer {tid} was being cancelled here when it expired" in notice["body"]


def test_the_serving_node_expires_codes_and_their_keys_leave_the_file(tmp_path) -> None:
    from support import make_district

    a = make_district(tmp_path, "a.example.org")
    issued = _json(a, "codes", "create", "--student", "100001", "--as", "coord", "--json")
    db_path = a.home / "satchel.db"
    with sqlite3.connect(db_path) as conn:
        key = conn.execute("SELECT claim_key FROM transfer_codes_issued WHERE code_id = ?",
                           [issued["code_id"]]).fetchone()[0]  # fmt: skip
        conn.execute("UPDATE transfer_codes_issued SET created_at = '2019-12-01T00:00:00Z',"
                     " expires_at = '2020-01-01T00:00:00Z' WHERE code_id = ?", [issued["code_id"]])  # fmt: skip

    def state() -> str:  # read directly: `codes list` would expire it itself
        with sqlite3.connect(db_path) as conn:
            return conn.execute("SELECT state FROM transfer_codes_issued WHERE code_id = ?",
                                [issued["code_id"]]).fetchone()[0]  # fmt: skip

    a.start()
    try:
        _wait(lambda: state() == "expired")
    finally:
        a.stop()
    assert _claim_key_length(a, issued["code_id"]) == 0
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # Erased, not left in the file's free space for whoever copies the database later.
    assert key not in db_path.read_bytes()


def test_two_claims_of_one_code_at_once_make_one_transfer(pair) -> None:
    """Sealing runs off the event loop, so a second claim can arrive while the first seals: it gets the same
    transfer, and only one envelope is kept."""
    import os

    from crypto import parse_code, transfer_code_credentials, transfer_code_proof
    from node.codes_flow import handle_claim
    from node.home import open_node
    from protocol.json_strict import dumps_canonical
    from protocol.transfer_code import parse_transfer_code

    a, _, _ = pair
    code = _json(a, "codes", "create", "--grade", "07", "--school", "Lincoln Middle School", "--as", "coord",
                 "--json")["code"]  # fmt: skip
    parsed = parse_transfer_code(code, parse_code=parse_code)
    code_id, key = transfer_code_credentials(parsed.code, parsed.source_domain)

    def body() -> bytes:
        nonce = os.urandom(16)
        proof = transfer_code_proof(key, destination="b.example.org", nonce=nonce)
        b64 = [base64.urlsafe_b64encode(v).rstrip(b"=").decode() for v in (code_id, nonce, proof)]
        return dumps_canonical(dict(zip(("code_id", "nonce", "proof"), b64, strict=True)))

    async def both(node) -> list[dict]:
        return list(await asyncio.gather(*(handle_claim(node, caller="b.example.org", body=body()) for _ in "ab")))

    a.stop()
    with open_node(a.home, a.env) as node:
        first, second = asyncio.run(both(node))
        sent = node.db.execute("SELECT transfer_id FROM transfers WHERE side = 'sender'").fetchall()
    assert first["transfer_id"] == second["transfer_id"] and sent == [(first["transfer_id"],)]
    assert first["envelope_code"] == second["envelope_code"]
    assert [p.name for p in (a.home / "envelopes" / "out").iterdir()] == [f"{first['transfer_id']}.env"]


def test_a_code_whose_students_left_says_so_and_stays_usable(pair) -> None:
    a, b, _ = pair
    issued = _json(a, "codes", "create", "--student", "100002", "--as", "coord", "--json")
    with sqlite3.connect(a.home / "satchel.db") as conn:  # the student left after the code was made
        conn.execute("UPDATE students SET enrollment_status = 'inactive' WHERE sis_id = '100002'")
    refused = b.cli("claim", issued["code"], "--as", "coord", ok=False).stderr
    # The claimant proved the code: it is told why nothing comes, not sent to re-check a code that is right.
    assert "code.no_students" in refused and "no longer enrolled at Springfield District A" in refused
    assert "code.unknown" not in refused and "call the source district's coordinator" in refused
    assert _code_state(a, issued["code"]) == "active"
    with sqlite3.connect(a.home / "satchel.db") as conn:
        assert conn.execute("SELECT count(*) FROM claim_failures").fetchone()[0] == 0
        conn.execute("UPDATE students SET enrollment_status = 'active' WHERE sis_id = '100002'")
    assert _json(b, "claim", issued["code"], "--as", "coord", "--json")["transfer_id"]


def test_a_code_entered_while_its_source_is_down_says_to_enter_it_again(pair) -> None:
    a, b, _ = pair
    code = _json(a, "codes", "create", "--student", "100003", "--as", "coord", "--json")["code"]
    a.stop()
    refused = b.cli("claim", code, "--as", "coord", ok=False).stderr
    # Nothing retries a claim: the coordinator is told to enter it again, not that Satchel will.
    assert "peer.unreachable" in refused and "retries" not in refused
    assert "nothing was claimed and the code is not used up: enter it again later" in refused
    a.start()
    assert _json(b, "claim", code, "--as", "coord", "--json")["transfer_id"]


def test_a_claim_is_recorded_as_disclosed_by_the_operator_who_made_the_code(pair) -> None:
    a, b, _ = pair
    # The admin makes the code; coord, another operator who could answer, had nothing to do with it.
    code = _json(a, "codes", "create", "--student", "100001", "--as", "admin", "--json")["code"]
    tid = _json(b, "claim", code, "--school", "0101", "--as", "coord", "--json")["transfer_id"]
    disclosure = _json(a, "disclosures", "100001", "--json")["disclosures"][-1]
    assert (disclosure["transfer_id"], disclosure["disclosed_by"]) == (tid, "admin")
    assert "Ada Admin (admin)" in a.cli("disclosures", "100001", "--text").stdout
    sealed = next(e for e in _json(a, "transfers", "show", tid, "--json")["timeline"] if e["kind"] == "sealed")
    assert sealed["actor"] == "admin"
    sent = [e for e in _json(a, "audit", "--subject", tid, "--json") if e["action"] == "transfer.send"]
    assert [e["actor"] for e in sent] == ["admin"]


def test_codes_made_by_an_operator_disabled_since_disclose_nothing(pair) -> None:
    a, b, _ = pair
    a.cli("users", "add", "zed", "--email", "zed@a.example.org", "--name", "Zed Zee", "--role", "coordinator",
          "--as", "admin")  # fmt: skip
    first = _json(a, "codes", "create", "--student", "100001", "--as", "zed", "--json")
    second = _json(a, "codes", "create", "--student", "100002", "--as", "zed", "--json")
    disabled = a.cli("users", "disable", "zed", "--as", "admin").stdout
    assert "Revoked the 2 transfer code(s) zed made" in disabled and first["code_id"][:12] in disabled
    assert _code_state(a, first["code"]) == _code_state(a, second["code"]) == "revoked"
    assert "code.revoked" in b.cli("claim", first["code"], "--as", "coord", ok=False).stderr
    revoked = [e for e in _json(a, "audit", "--json") if e["action"] == "code.revoke"]
    assert {(e["actor"], e["details"]["maker"]) for e in revoked} == {("admin", "zed")}

    # A home whose operator was disabled before codes were revoked with them: the claim revokes the code.
    third = _json(a, "codes", "create", "--student", "100003", "--as", "coord", "--json")
    with sqlite3.connect(a.home / "satchel.db") as conn:
        conn.execute("UPDATE transfer_codes_issued SET created_by = 'zed' WHERE code_id = ?", [third["code_id"]])
    assert "code.revoked" in b.cli("claim", third["code"], "--as", "coord", ok=False).stderr
    assert _code_state(a, third["code"]) == "revoked"
    assert _json(a, "transfers", "list", "--json") == []
    assert all(_json(a, "disclosures", s, "--json")["disclosures"] == [] for s in ("100001", "100003"))
    by_node = _json(a, "audit", "--subject", third["code_id"][:8], "--json")
    assert [(e["actor"], e["details"]["maker"]) for e in by_node if e["action"] == "code.revoke"] == [
        ("a.example.org", "zed")
    ]
