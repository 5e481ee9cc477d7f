"""Workflows 2 (records request and release) and 3 (transfer code) between a real Satchel node and the outside
node of tests/spec/outsider_node.py, written from spec/ alone (it imports nothing of Satchel's: see
tests/spec/test_outsider_node.py). Each runs both ways: the outside node asks and Satchel releases, Satchel asks
and the outside node releases or rejects; Satchel makes a code the outside node claims, and the outside node
makes one Satchel claims. What the outside node needed and spec/ did not say was fixed in the spec text."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest
from test_outsider_node import _cli, _json, _pin_both_ways, _wait

import outsider_envelope as env
import outsider_http as o
import outsider_node as n
from support import District, free_port

OUTSIDE = "outside.example.net"
SATCHEL = "b.example.org"
COUNTS_ONE = {"students_total": 1, "students_imported": 1, "students_with_changes": 0, "documents": 0, "scores": 0,
              "skipped": []}  # fmt: skip




def _state(d: District, *args: str) -> str:
    return str(json.loads(d.cli(*args, "--json").stdout)["state"])


async def _open_and_import(http: aiohttp.ClientSession, outside: n.OutsideNode, transfer_id: str,
                           code: str) -> env.Opened:  # fmt: skip
    """The outside coordinator enters the code read out, imports, and the node sends both receipts (§5.1)."""
    signed, opened = outside.accept(transfer_id, code)
    assert opened is not None
    assert (await outside.send_receipt(http, transfer_id, signed)).response.status == 200
    answer = await outside.send_receipt(http, transfer_id, outside.imported(transfer_id, COUNTS_ONE))
    assert answer.response.status == 200, answer.response.body
    return opened


# --- workflow 2: records request and release ------------------------------------------------------------------

AVA = {"family_name": "Martinez", "given_name": "Ava", "middle_name": None, "birth_date": "2012-03-14", "sex": "F",
       "grade": "07", "state_id": "9000000101", "previous_school": "Lincoln Middle School",
       "previous_sis_id": "100001"}  # fmt: skip


def _enrolment(start: date | None = None) -> dict[str, Any]:
    start = start or date.today() - timedelta(days=30)
    return {"school": "Ogden Middle", "grade": "07", "start_date": start.isoformat(), "end_date": None,
            "type": "primary"}  # fmt: skip


async def test_the_outside_node_requests_records_and_satchel_releases_them(
    district: District, outside: n.OutsideNode
) -> None:
    """requests.md end to end with the outside node as the requester: Satchel's coordinator sees who asks,
    they write to each other, Satchel releases; the outside node takes the `released` answer, receives the
    transfer it names, opens it with the code read out from Satchel's CLI and answers with verified receipts."""
    async with aiohttp.ClientSession() as http:
        await _pin_both_ways(http, district, outside)
        asked = outside.new_request(SATCHEL, student=AVA, enrolment=_enrolment(), comments="Her IEP meeting is Monday.")
        rid = asked.request_id
        sent = await outside.send_request(http, asked)
        assert (sent.response.status, sent.json()) == (200, {"state": "requested"})
        # A redelivery changes nothing (§2).
        again = await outside.send_request(http, asked)
        assert (again.response.status, again.json()) == (200, {"state": "requested"})

        (listed,) = await _json(district, "requests", "list", "--incoming")
        assert (listed["request_id"], listed["state"]) == (rid, "requested")
        shown = await _json(district, "requests", "show", rid)
        assert (shown["from"], shown["from_trust"]) == (OUTSIDE, "pinned")
        assert shown["requester"]["email"] == f"registrar@{OUTSIDE}"
        assert shown["enrolment"]["school"] == "Ogden Middle"
        assert shown["candidates"]["status"] == "matched" and shown["candidates"]["proposed"] == "100001"
        text = (await _cli(district, "requests", "show", rid)).stdout
        assert f"of {OUTSIDE} (verified signature; pinned here after a fingerprint check)" in text

        # A signed message each way (§2, "A message changes no state").
        said = await outside.respond(http, rid, "message", "Which school did she attend last spring?")
        assert (said.response.status, said.json()) == (200, {"state": "requested"})
        await _cli(district, "requests", "message", rid, "Lincoln Middle School, grade 7.", "--as", "coord")
        await _wait(lambda: any(r["parsed"]["kind"] == "message" for r in asked.received))
        (theirs,) = [r["parsed"] for r in asked.received]
        assert (theirs["comments"], theirs["from_domain"], theirs["person"]["email"]) == (
            "Lincoln Middle School, grade 7.", SATCHEL, f"coord@{SATCHEL}")  # fmt: skip

        released = (await _cli(district, "requests", "release", rid, "--student", "100001", "--all-records",
                               "--comments", "Everything we hold.", "--as", "coord")).stdout  # fmt: skip
        code = released.split("Authentication code: ")[1].split()[0]
        tid = released.split("transfer ")[1].split(".")[0]
        await _wait(lambda: asked.state == "released")
        assert asked.transfer_id == tid
        (answer,) = [r["parsed"] for r in asked.received if r["parsed"]["kind"] == "released"]
        assert answer["comments"] == "Everything we hold." and answer["person"]["name"] == "Cory Coordinator"
        await _wait(lambda: tid in outside.incoming)
        opened = await _open_and_import(http, outside, tid, code)
        assert opened.header["kind"] == "release"
        (student,) = opened.manifest["students"]
        assert (student["sis_id"], student["family_name"]) == ("100001", "Martinez")
        # Once answered, a redelivered request is answered with the stored signed answer (§6).
        resent = await outside.send_request(http, asked)
        assert resent.response.status == 200
        assert resent.response.field("content-type") == n.RESPONSE_TYPE
        assert o.verify_records_document(resent.response.body, "satchel/v1/records-response",
                                         published=outside.published)["parsed"]["transfer_id"] == tid  # fmt: skip

    await asyncio.to_thread(_wait_sync, lambda: _state(district, "transfers", "show", tid) == "imported")
    shown = await _json(district, "requests", "show", rid)
    assert (shown["state"], shown["transfer_id"]) == ("released", tid)
    assert [m["text"] for m in shown["messages"]] == ["Which school did she attend last spring?",
                                                          "Lincoln Middle School, grade 7."]  # fmt: skip
    assert all(error is None for *_, error in outside.log), outside.log


def _wait_sync(condition: Any, timeout: float = 30.0) -> None:
    from support import wait_until

    wait_until(condition, timeout)


async def test_satchel_requests_records_of_the_outside_node_which_releases_one_and_rejects_another(
    district: District, outside: n.OutsideNode
) -> None:
    """The other direction: Satchel's request reaches the outside node signed; the outside node releases with a
    transfer of kind `release` which Satchel opens with the code and imports, and rejects a second request
    with comments Satchel shows."""
    async with aiohttp.ClientSession() as http:
        await _pin_both_ways(http, district, outside)
        out = (await _cli(district, "request", "--from", OUTSIDE, "--student", "100002", "--comments",
                          "Starts here Monday.", "--as", "coord")).stdout  # fmt: skip
        rid = out.split()[2]
        await _wait(lambda: rid in outside.requests)
        asked = outside.requests[rid]
        assert (asked.side, asked.peer, asked.state) == ("releaser", SATCHEL, "requested")
        assert asked.parsed["requester"]["email"] == f"coord@{SATCHEL}"
        assert (asked.parsed["student"]["family_name"], asked.parsed["comments"]) == ("Okafor", "Starts here Monday.")
        said = await outside.respond(http, rid, "message", "Do you have her state id?")
        assert said.response.status == 200, said.response.body
        await _cli(district, "requests", "message", rid, "9000000102", "--as", "coord")
        await _wait(lambda: any(r["parsed"]["kind"] == "message" for r in asked.received))

        code = env.display_code(env.generate_code())
        student = {"sis_id": "OUT-9", "given_name": "William", "family_name": "Okafor", "birth_date": "2011-11-02",
                   "grade": "08", "sex": "M", "state_id": "9000000102"}  # fmt: skip
        manifest = n.manifest_for(sender=outside, recipient_domain=SATCHEL, students=[student], records=[
            n.record("out-case-9", "case", "OUT-9", {"case_number": "OUT-9", "notes": "Speech, weekly."})])  # fmt: skip
        sent, answered = await outside.release(http, rid, manifest=manifest, documents=[], code=code,
                                               comments="His case file.")  # fmt: skip
        assert (answered.response.status, answered.json()) == (200, {"state": "released"}), answered.response.body
        tid = sent.transfer_id
        await _cli(district, "accept", tid, "--code", code, "--as", "coord")
        await _json(district, "import", "preview", tid, "--as", "coord")
        assert (await _json(district, "import", "run", tid, "--as", "coord"))["imported"] == 1
        await _wait(lambda: sent.state == "imported")

        second = (await _cli(district, "request", "--from", OUTSIDE, "--student", "100001", "--as", "coord")).stdout
        rid2 = second.split()[2]
        await _wait(lambda: rid2 in outside.requests)
        rejected = await outside.respond(http, rid2, "rejected", "No such student here.\nTry the county office.")
        assert (rejected.response.status, rejected.json()) == (200, {"state": "rejected"})
        # Satchel cancels a third; the outside node takes the signed cancellation (§2, §4).
        third = (await _cli(district, "request", "--from", OUTSIDE, "--student", "100003", "--as", "coord")).stdout
        rid3 = third.split()[2]
        await _wait(lambda: rid3 in outside.requests)
        await _cli(district, "requests", "cancel", rid3, "--comments", "The family moved on.", "--as", "coord")
        await _wait(lambda: outside.requests[rid3].state == "cancelled")
        (cancelled,) = [r["parsed"] for r in outside.requests[rid3].received]
        assert (cancelled["kind"], cancelled["comments"]) == ("cancelled", "The family moved on.")

    shown = await _json(district, "requests", "show", rid)
    assert (shown["state"], shown["transfer_id"]) == ("released", tid)
    assert (shown["answer"]["kind"], shown["answer"]["from"], shown["answer"]["comments"]) == (
        "released", OUTSIDE, "His case file.")  # fmt: skip
    assert "Do you have her state id?" in [m["text"] for m in shown["messages"]]
    assert _state(district, "transfers", "show", tid) == "imported"
    assert _state(district, "requests", "show", rid3) == "cancelled"
    other = await _json(district, "requests", "show", rid2)
    assert other["state"] == "rejected"
    assert other["answer"]["comments"] == "No such student here.\nTry the county office."
    assert all(error is None for *_, error in outside.log), outside.log


@pytest.mark.parametrize("features", [(), ("request.release_failed",)], ids=["no-features", "release-failed"])
async def test_a_release_the_outside_node_rejects_fails_and_satchel_releases_again_as_the_peer_takes_it(
    district: District, features: tuple[str, ...]
) -> None:
    """requests.md §2 *A release that fails* and §4 *Peers of older versions*: the outside node refuses the
    released transfer; Satchel's request goes to `release_failed`, and it tells the outside node so as a
    `release_failed` answer when its descriptor lists the feature (descriptor.md *Features*), else in words, as a
    message; then it releases again in a new transfer, which the outside node opens."""
    outside = n.OutsideNode(OUTSIDE, free_port(), features=features)
    await outside.start()
    try:
        async with aiohttp.ClientSession() as http:
            await _pin_both_ways(http, district, outside)
            asked = outside.new_request(SATCHEL, student=AVA, enrolment=_enrolment())
            assert (await outside.send_request(http, asked)).response.status == 200
            await asyncio.to_thread(_wait_sync, lambda: _state(district, "requests", "show", asked.request_id)
                                    == "requested")  # fmt: skip
            first = (await _cli(district, "requests", "release", asked.request_id, "--student", "100001",
                                "--as", "coord")).stdout  # fmt: skip
            tid = first.split("transfer ")[1].split(".")[0]
            await _wait(lambda: tid in outside.incoming and asked.state == "released")
            refused = outside.reject(tid, "Sent to the wrong school; please send again.")
            assert (await outside.send_receipt(http, tid, refused)).response.status == 200
            told = "release_failed" if features else "message"
            await _wait(lambda: any(r["parsed"]["kind"] == told for r in asked.received))
            (news,) = [r["parsed"] for r in asked.received if r["parsed"]["kind"] == told]
            assert tid in news["comments"]
            assert asked.state == ("release_failed" if features else "released")
            assert _state(district, "requests", "show", asked.request_id) == "release_failed"

            again = (await _cli(district, "requests", "release", asked.request_id, "--student", "100001",
                                "--as", "coord")).stdout  # fmt: skip
            code = again.split("Authentication code: ")[1].split()[0]
            second = again.split("transfer ")[1].split(".")[0]
            assert second != tid
            await _wait(lambda: second in outside.incoming)
            if features:  # the release itself, as an answer
                await _wait(lambda: asked.state == "released" and asked.transfer_id == second)
            else:  # in words, naming the new transfer; the request stays released with the one that failed
                await _wait(lambda: sum(r["parsed"]["kind"] == "message" for r in asked.received) == 2)
                assert second in asked.received[-1]["parsed"]["comments"] and asked.transfer_id == tid
            await _open_and_import(http, outside, second, code)
        await asyncio.to_thread(_wait_sync, lambda: _state(district, "transfers", "show", second) == "imported")
        shown = await _json(district, "requests", "show", asked.request_id)
        assert (shown["state"], shown["transfer_id"]) == ("released", second)
        assert all(error is None for *_, error in outside.log), outside.log
    finally:
        await outside.stop()


async def test_unanswered_requests_both_ways_are_flagged_and_satchel_rejects_with_comments(
    district: District, outside: n.OutsideNode
) -> None:
    """requests.md §5 at Satchel on both sides (reminders are local: nothing reaches the outside node), then
    Satchel's rejection with comments, which the outside node verifies and takes (§2, §4)."""
    from node.home import open_node
    from node.requests_flow import flag_overdue

    async with aiohttp.ClientSession() as http:
        await _pin_both_ways(http, district, outside)
        mine = (await _cli(district, "request", "--from", OUTSIDE, "--student", "100002", "--as", "coord")).stdout
        ours = mine.split()[2]
        asked = outside.new_request(SATCHEL, student=AVA, enrolment=_enrolment())
        assert (await outside.send_request(http, asked)).response.status == 200
        await _wait(lambda: ours in outside.requests)
        seen_before = len(outside.seen)
        with sqlite3.connect(district.home / "satchel.db") as conn:
            conn.execute("UPDATE records_requests SET opened_on = '2026-01-05' WHERE request_id IN (?, ?)",
                         [ours, asked.request_id])  # fmt: skip
        with open_node(district.home, district.env) as node:
            assert sorted(flag_overdue(node)) == sorted([ours, asked.request_id])
        listed = {r["request_id"]: r for r in await _json(district, "requests", "list")}
        assert listed[ours]["overdue"] is True and listed[asked.request_id]["overdue"] is True
        subjects = [i["subject"] for i in await _json(district, "inbox")]
        assert f"Records request {ours} to {OUTSIDE} has no answer yet" in subjects
        assert any("Reminder" in s and asked.request_id in s for s in subjects), subjects

        await _cli(district, "requests", "reject", asked.request_id, "--comments",
                   "No student of that name and birth date.\nPlease call us.", "--as", "coord")  # fmt: skip
        await _wait(lambda: asked.state == "rejected")
        (answer,) = [r["parsed"] for r in asked.received]
        assert (answer["kind"], answer["comments"], answer["transfer_id"]) == (
            "rejected", "No student of that name and birth date.\nPlease call us.", None)  # fmt: skip
        # Only the rejection reached the outside node after the flags: the reminders stayed at Satchel.
        assert [p for _, p, _ in outside.seen[seen_before:] if "/requests" in p] == [
            f"/satchel/v1/requests/{asked.request_id}/responses"]  # fmt: skip
    assert _state(district, "requests", "show", asked.request_id) == "rejected"
    assert all(error is None for *_, error in outside.log), outside.log


# --- workflow 3: transfer codes -------------------------------------------------------------------------------


async def test_the_outside_node_claims_a_code_satchel_made_and_a_second_claim_is_refused_as_used(
    district: District, outside: n.OutsideNode
) -> None:
    """codes.md §7: Satchel makes a code bound to the outside district; the outside node proves it (the code
    never travels), is answered with the transfer and its envelope code, receives and opens it, and its
    `imported` receipt uses the code up: claimed again, `code.used`."""
    async with aiohttp.ClientSession() as http:
        await _pin_both_ways(http, district, outside)
        issued = await _json(district, "codes", "create", "--student", "100001", "--for", OUTSIDE, "--as", "coord")
        text = issued["code"]
        assert text.endswith(f"@{SATCHEL}")
        claimed = await outside.claim(http, text.lower())
        assert claimed.response.status == 200, claimed.response.body
        answer = claimed.json()
        assert set(answer) == {"transfer_id", "district", "school", "scope", "envelope_code"}
        assert (answer["scope"], answer["school"]) == ("student", "Lincoln Middle School")
        typed = env.parse_transfer_code(text)
        for sent in claimed.request.body, claimed.response.body:  # only a proof: the code is in neither
            assert typed.code.encode() not in sent.upper().replace(b"-", b"")
        tid = answer["transfer_id"]
        await _wait(lambda: tid in outside.incoming)
        # A repeated claim by the same destination gets the same answer (§7.5).
        repeated = await outside.claim(http, text)
        assert (repeated.response.status, repeated.json()["transfer_id"]) == (200, tid)
        opened = await _open_and_import(http, outside, tid, answer["envelope_code"])
        assert opened.header["kind"] == "import"
        (student,) = opened.manifest["students"]
        assert student["sis_id"] == "100001"
        await asyncio.to_thread(_wait_sync, lambda: _code_state(district, text) == "used")
        used = await outside.claim(http, text)
        assert (used.response.status, used.error_code) == (410, "code.used")
        # A code whose proof does not verify is unknown, whether or not it exists (§7.2 step 2).
        other = f"{env.display_code(env.generate_code())}@{SATCHEL}"
        unknown = await outside.claim(http, other)
        assert (unknown.response.status, unknown.error_code) == (404, "code.unknown")
    assert all(error is None for *_, error in outside.log), outside.log


async def test_wrong_proofs_are_throttled_then_lock_the_code_for_the_outside_node(
    district: District, outside: n.OutsideNode
) -> None:
    """codes.md §7.2 step 2 and §7.4: a wrong proof for a known code answers `code.unknown` and counts; past two
    failures the outside district must wait `Retry-After` (429 `code.throttled`, before any proof is checked);
    the fifth locks the code, and the right code is then refused with `code.locked`."""
    async with aiohttp.ClientSession() as http:
        await _pin_both_ways(http, district, outside)
        text = (await _json(district, "codes", "create", "--student", "100001", "--as", "coord"))["code"]
        typed = env.parse_transfer_code(text)
        key = await asyncio.to_thread(env.claim_key, typed.code, SATCHEL)
        code_id = env.b64url(env.claim_code_id(key))

        async def claim_when_let(body: bytes) -> o.Exchange:
            for _ in range(10):
                answer = await outside.send_claim(http, SATCHEL, body)
                if answer.error_code != "code.throttled":
                    return answer
                assert answer.response.status == 429
                await asyncio.sleep(int(answer.response.field("retry-after") or "1"))
            raise AssertionError("throttled for good")

        statuses = []
        for _ in range(5):
            wrong = json.dumps({"code_id": code_id, "nonce": env.b64url(os.urandom(16)),
                                "proof": env.b64url(os.urandom(32))}).encode()  # fmt: skip
            answer = await claim_when_let(wrong)
            statuses.append((answer.response.status, answer.error_code))
        assert statuses == [(404, "code.unknown")] * 5
        throttled = await outside.claim(http, text)
        assert (throttled.response.status, throttled.error_code) == (429, "code.throttled")
        assert int(throttled.response.field("retry-after") or "0") >= 1
        locked = await claim_when_let(env.claim_body(key, OUTSIDE, os.urandom(16)).encode())
        assert (locked.response.status, locked.error_code) == (423, "code.locked")
    assert _code_state(district, text) == "locked"


def _code_state(d: District, text: str) -> str:
    listed = json.loads(d.cli("codes", "list", "--json").stdout)
    return next(c["state"] for c in listed if text.split("@")[0].endswith(c["ends_with"].lstrip("…")))


async def test_satchel_claims_a_code_the_outside_node_made_and_a_second_claim_is_refused_as_used(
    district: District, outside: n.OutsideNode
) -> None:
    """The other direction: the outside node makes a code for one of its students; `satchel claim` proves it,
    the outside node seals the records to Satchel and pushes them after answering; Satchel opens them with the
    envelope code of the answer, imports, and the `imported` receipt uses the code up."""
    student = {"sis_id": "OUT-7", "given_name": "Rosa", "family_name": "Delgado", "birth_date": "2012-02-02",
               "grade": "07", "sex": "F"}  # fmt: skip

    def manifest(peer: str) -> dict[str, Any]:
        return n.manifest_for(sender=outside, recipient_domain=peer, students=[student], records=[
            n.record("out-score-7", "assessment", "OUT-7", {"assessment": "MAP", "subject": "Reading",
                                                             "date": "2026-05-01", "score": 212})])  # fmt: skip

    async with aiohttp.ClientSession() as http:
        await _pin_both_ways(http, district, outside)
    text = outside.make_code(manifest_for_peer=manifest, documents=[], school="Ogden Middle", destination=SATCHEL)
    claimed = await _json(district, "claim", text, "--school", "0101", "--as", "coord")
    tid = claimed["transfer_id"]
    assert (claimed["district"], claimed["school"], claimed["new"]) == ("Outside District", "Ogden Middle", 1)
    assert _state(district, "transfers", "show", tid) == "accepted"
    assert (await _json(district, "import", "run", tid, "--as", "coord"))["imported"] == 1
    await _wait(lambda: outside.outgoing[tid].state == "imported")
    again = await _cli(district, "claim", text, "--as", "coord", ok=False)
    assert "code.used" in again.stderr, again.stderr
    found = [s for s in await _json(district, "students", "search", "Delgado") if s["given_name"] == "Rosa"]
    (score,) = await _json(district, "assessments", "list", found[0]["sis_id"])
    assert (score["assessment"], score["score"]) == ("MAP", "212")
    assert [error for *_, error in outside.log if error is not None] == ["code.used: "]
