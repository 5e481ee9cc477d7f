"""Workflow 1 (push with a code) between a real Satchel node and an outside node written from spec/ alone
(tests/spec/outsider_node.py, on top of outsider_envelope.py and outsider_http.py; none imports anything of
Satchel's). The outside node serves its descriptor, is pinned by Satchel's operator after the fingerprint is
read out, seals one student's document, assessment result and case to Satchel's published encryption key with a
code it made, and uploads it; Satchel's coordinator accepts with that code and imports, the document reads back
byte for byte, and the outside node verifies every receipt Satchel signs back to it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from cli.main import cli

import outsider_envelope as env
import outsider_http as o
import outsider_node as n
from support import District

OUTSIDE = "outside.example.net"
SATCHEL = "b.example.org"




async def _cli(d: District, *args: str, ok: bool = True) -> Any:
    return await asyncio.to_thread(d.cli, *args, ok=ok)


async def _json(d: District, *args: str) -> Any:
    return json.loads((await _cli(d, *args, "--json")).stdout)


async def _wait(condition: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "not reached in time"
        await asyncio.sleep(0.2)


async def _pin_both_ways(http: aiohttp.ClientSession, d: District, outside: n.OutsideNode) -> o.Descriptor:
    """Each operator pins the other after the other's coordinator reads out the fingerprint (descriptor.md
    step 8): Satchel's with `satchel peers add` and its prompt, the outside node's by comparing what
    `satchel info` shows Satchel's operator with the key its descriptor is signed by."""
    info = await _json(d, "info")
    satchel = await outside.fetch_descriptor(http, d.url)
    read_out = [k["fingerprint"] for k in info["keys"] if k["id"] == satchel.signed_by]
    outside.pin(satchel, read_out[0])
    answer = await asyncio.to_thread(
        CliRunner().invoke, cli, ["peers", "add", outside.origin, "--as", "coord", "--home", str(d.home)],
        input="y\n", env=d.env, catch_exceptions=False,
    )  # fmt: skip
    assert answer.exit_code == 0, answer.output
    # The fingerprint Satchel's operator is shown is the one the outside coordinator reads out from its own key.
    assert f"Fingerprint  {o.fingerprint('ed25519', outside.key.public)}" in answer.output
    assert f"Pinned {OUTSIDE}." in answer.output
    return satchel


STUDENT = {"sis_id": "OUT-1", "given_name": "Ines", "family_name": "Okafor", "birth_date": "2013-05-06",
           "grade": "06", "sex": "F", "state_id": "IL-778899"}  # fmt: skip
DOCUMENT = b"%PDF-1.7\n" + os.urandom(200_000) + b"\n%%EOF\n"


def _manifest(outside: n.OutsideNode) -> dict[str, Any]:
    records = [
        n.document_record("out-doc-1", "OUT-1", DOCUMENT, title="IEP 2026", media_type="application/pdf",
                          document_type="iep", metadata={"filename": "iep-2026.pdf"}),
        # envelope.md §5.1: metadata values may be integers and nil, read as their decimal digits and as empty.
        n.record("out-score-1", "assessment", "OUT-1",
                 {"assessment": "STAR", "subject": "Math", "date": "2026-09-01", "percentile": 61, "score": 0,
                  "scale_score": None}),
        n.record("out-case-1", "case", "OUT-1",
                 {"case_number": "OUT-TA-9", "building": "Ogden Middle", "notes": "Closed, monitored.",
                  "team": None}),
    ]  # fmt: skip
    return n.manifest_for(sender=outside, recipient_domain=SATCHEL, students=[STUDENT], records=records,
                          notes="Sent by another implementation.")  # fmt: skip


async def _pushed(
    http: aiohttp.ClientSession,
    outside: n.OutsideNode,
    satchel: o.Descriptor,
    manifest: dict[str, Any],
    documents: list[bytes],
) -> tuple[n.Outgoing, str]:
    """The outside node seals with a fresh code and pushes; Satchel takes the envelope (200)."""
    code = env.display_code(env.generate_code())
    out = outside.seal(satchel, manifest=manifest, documents=documents, code=code)
    exchange = await outside.push(http, out)
    assert exchange.response.status == 200, exchange.response.body
    return out, code


async def test_an_outside_node_pushes_with_a_code_and_verifies_every_receipt(
    district: District, outside: n.OutsideNode
) -> None:
    async with aiohttp.ClientSession() as http:
        satchel = await _pin_both_ways(http, district, outside)
        out, code = await _pushed(http, outside, satchel, _manifest(outside), [DOCUMENT])
        tid = out.transfer_id
        assert out.state == "delivered"
        (delivered,) = out.receipts.values()
        assert delivered["receipt"]["envelope_sha256"] == out.sha256

        # Satchel's coordinator sees it, and the outside coordinator's signed message (transfer.md §8).
        (listed,) = await _json(district, "transfers", "list", "--incoming")
        assert (listed["transfer_id"], listed["state"]) == (tid, "received")
        said = await outside.message(http, out, "The code comes by phone at 3.")
        assert (said.response.status, said.json()) == (200, {"transfer_id": tid, "state": "received"})
        # Satchel's coordinator enters the code read out by phone, previews and imports.
        await _cli(district, "accept", tid, "--code", code, "--as", "coord")
        await _wait(lambda: out.state == "accepted")
        preview = await _json(district, "import", "preview", tid, "--school", "Lincoln Middle School", "--as", "coord")
        assert preview["source_domain"] == OUTSIDE
        result = await _json(district, "import", "run", tid, "--as", "coord")
        await _wait(lambda: out.state == "imported")

    # Every receipt verified (transfer.md §5.3), numbered from 1, each kind once, the import's counts given.
    receipts = [out.receipts[s]["receipt"] for s in sorted(out.receipts)]
    assert [(r["kind"], r["sequence"]) for r in receipts] == [("delivered", 1), ("accepted", 2), ("imported", 3)]
    assert all(out.receipts[s]["signed_by"] in satchel.identity_keys for s in out.receipts)
    assert receipts[2]["counts"] == {"students_total": 1, "students_imported": 1, "students_with_changes": 0,
                                     "documents": 1, "scores": 1, "skipped": []}  # fmt: skip
    assert (result["imported"], result["total"], result["skipped"]) == (1, 1, [])

    # The document reads back byte for byte, and the assessment result and case arrived with their fields.
    found = await _json(district, "students", "search", "Okafor")
    (student,) = [s for s in found if s["given_name"] == "Ines"]
    (doc,) = await _json(district, "documents", "list", student["sis_id"])
    got = await _cli(district, "documents", "get", doc["doc_id"], "-o", "-", "--as", "coord")
    assert got.stdout_bytes == DOCUMENT
    assert doc["title"] == "IEP 2026"
    (score,) = await _json(district, "assessments", "list", student["sis_id"])
    assert {k: score[k] for k in ("assessment", "subject", "date", "percentile", "score", "scale_score")} == {
        "assessment": "STAR", "subject": "Math", "date": "2026-09-01", "percentile": "61", "score": "0",
        "scale_score": ""}  # fmt: skip
    (case,) = await _json(district, "cases", "list", "--student", student["sis_id"])
    assert {k: case[k] for k in ("case_number", "building", "notes", "team", "case_manager")} == {
        "case_number": "OUT-TA-9", "building": "Ogden Middle", "notes": "Closed, monitored.", "team": "",
        "case_manager": ""}  # fmt: skip
    shown = await _json(district, "transfers", "show", tid)
    assert shown["state"] == "imported"
    (message,) = [e for e in shown["timeline"] if e["kind"] == "message"]
    assert (message["direction"], message["actor"], message["signed"]) == ("received", OUTSIDE, True)
    # Nothing the outside node answered was refused by Satchel, nor anything Satchel sent by the outside node.
    assert all(error is None for *_, error in outside.log), outside.log


ROTATION = json.loads((Path(__file__).resolve().parents[2] / "spec" / "vectors" / "descriptor" / "vectors.json")
                      .read_text(encoding="utf-8"))["rotation"]  # fmt: skip


@pytest.mark.parametrize("case", ROTATION["cases"], ids=lambda c: c["name"])
def test_the_outside_nodes_endorsement_walk_is_the_rotation_vectors(case: dict[str, Any]) -> None:
    """The walk the rotation test above relies on, against descriptor.md's rotation vectors."""
    descriptor = o.verify_descriptor(case["document"].encode("ascii"))
    known = {ROTATION["old_key_id"]: bytes.fromhex(ROTATION["old_public_key_hex"])}
    keys = n.endorsed_keys(descriptor, known)
    if "error" in case["expect"]:
        assert case["expect"]["error"] == "descriptor.key_changed" and descriptor.signed_by not in keys
    else:
        assert descriptor.signed_by in keys
        assert sorted(keys) == sorted(case["expect"]["identity_keys"])


async def test_wrong_codes_are_counted_and_the_fifth_locks_with_a_receipt_the_outside_node_verifies(
    district: District, outside: n.OutsideNode
) -> None:
    """transfer.md §3.5: a typo costs nothing, a wrong code counts, the fifth locks; the sender gets `locked`."""
    async with aiohttp.ClientSession() as http:
        satchel = await _pin_both_ways(http, district, outside)
        out, code = await _pushed(http, outside, satchel, _manifest(outside), [DOCUMENT])
        tid = out.transfer_id
        typo = code[:-1] + ("0" if code[-1] != "0" else "1")
        refused = await _cli(district, "accept", tid, "--code", typo, "--as", "coord", ok=False)
        assert "code.typo" in refused.stderr
        wrong = [c for c in (env.display_code(env.generate_code()) for _ in range(6)) if c != code][:5]
        for attempt, other in enumerate(wrong, 1):
            refused = await _cli(district, "accept", tid, "--code", other, "--as", "coord", ok=False)
            assert "transfer.wrong_code" in refused.stderr, refused.stderr
            if attempt < 5:
                assert (await _json(district, "transfers", "show", tid))["wrong_codes"] == attempt

        await _wait(lambda: out.state == "locked")
        again = await _cli(district, "accept", tid, "--code", code, "--as", "coord", ok=False)
        assert "transfer.locked" in again.stderr
    receipts = [out.receipts[s]["receipt"] for s in sorted(out.receipts)]
    assert [(r["kind"], r["sequence"]) for r in receipts] == [("delivered", 1), ("locked", 2)]
    assert all(error is None for *_, error in outside.log), outside.log
    # A serving node's outbox delivers in a session it opens first (request-signing.md §11, transfer.md §4).
    assert all(status == 200 for _, path, status in outside.seen if path == "/satchel/v1/sessions"), outside.seen


async def test_satchel_pushes_to_the_outside_node_which_opens_it_and_answers_with_signed_receipts(
    district: District, outside: n.OutsideNode, tmp_path: Path
) -> None:
    """The other direction: Satchel seals to the outside node's published X-Wing key and uploads; the outside
    node verifies the request and the envelope's framing, answers with its signed `delivered` receipt, opens
    the envelope with the code read out to it, and sends `accepted` and `imported`, which Satchel verifies and
    shows in its timeline. Satchel's message reaches it signed too."""
    pdf = tmp_path / "plan.pdf"
    pdf.write_bytes(DOCUMENT)
    await _cli(district, "documents", "add", "100001", str(pdf), "--type", "iep", "--title", "Plan", "--as", "coord")
    async with aiohttp.ClientSession() as http:
        await _pin_both_ways(http, district, outside)
        sent = await _json(district, "send", "--to", OUTSIDE, "--student", "100001", "--all-records", "--as",
                           "coord")  # fmt: skip
        tid = sent["transfer_id"]
        await _wait(lambda: tid in outside.incoming)
        await _wait(lambda: _state(district, tid) == "delivered")
        incoming = outside.incoming[tid]
        await _cli(district, "transfers", "message", tid, "The code comes by phone at 3.", "--as", "coord")
        await _wait(lambda: len(incoming.received) == 1)
        message = o.verify_receipt(incoming.received[1], published=outside.published)["receipt"]
        assert (message["kind"], message["issuer"], message["text"]) == ("message", "sender",
                                                                          "The code comes by phone at 3.")

        for attempt in (1, 2):  # one wrong code, counted here; then the code read out
            other = env.display_code(env.generate_code())
            signed, opened = outside.accept(tid, other if attempt == 1 else sent["code"])
        assert opened is not None and incoming.wrong_codes == 1
        assert opened.documents == [DOCUMENT]
        (student,) = opened.manifest["students"]
        assert student["sis_id"] == "100001"
        assert (await outside.send_receipt(http, tid, signed)).response.status == 200
        await _wait(lambda: _state(district, tid) == "accepted")
        counts = {"students_total": 1, "students_imported": 1, "students_with_changes": 0, "documents": 1,
                  "scores": 0, "skipped": []}  # fmt: skip
        answer = await outside.send_receipt(http, tid, outside.imported(tid, counts))
        assert answer.response.status == 200, answer.response.body
        assert answer.json() == {"transfer_id": tid, "state": "imported"}
        # The same receipt again is a redelivery (transfer.md §5.3 step 6): 200, nothing changes.
        again = await outside.send_receipt(http, tid, incoming.issued[-1])
        assert (again.response.status, again.json()["state"]) == (200, "imported")
    shown = await _json(district, "transfers", "show", tid)
    assert shown["state"] == "imported"
    signed_kinds = [e["kind"] for e in shown["timeline"] if e["signed"]]
    assert [k for k in signed_kinds if k != "message"] == ["delivered", "accepted", "imported"]
    assert all(error is None for *_, error in outside.log), outside.log


def _state(d: District, transfer_id: str) -> str:
    return str(json.loads(d.cli("transfers", "show", transfer_id, "--json").stdout)["state"])


async def test_an_upload_cut_partway_is_resumed_as_section_4_1_says(district: District, outside: n.OutsideNode) -> None:
    """transfer.md §4.1: the receiver keeps what arrived of a pinned sender's envelope (1 MiB or more); the
    sender asks how much, sends the rest with PATCH, and gets the same signed `delivered` receipt."""
    big = os.urandom(3 << 20)
    async with aiohttp.ClientSession() as http:
        satchel = await _pin_both_ways(http, district, outside)
        code = env.display_code(env.generate_code())
        manifest = n.manifest_for(sender=outside, recipient_domain=SATCHEL, students=[STUDENT], records=[
            n.document_record("out-big-1", "OUT-1", big, title="Scans", media_type="application/pdf",
                              document_type=None, metadata={})])  # fmt: skip
        out = outside.seal(satchel, manifest=manifest, documents=[big], code=code)
        tid = out.transfer_id
        await outside.push_cut(out, (3 << 20) // 2)
        kept: dict[str, Any] = {}

        async def asked() -> bool:
            exchange = await outside.upload_status(http, out)
            if exchange.response.status == 200:
                kept.update(exchange.json())
                return True
            assert exchange.error_code in ("transfer.upload_in_progress", "transfer.upload_unknown")
            return False

        for _ in range(50):
            if await asked():
                break
            await asyncio.sleep(0.2)
        assert kept["envelope_id"] == tid and kept["length"] == len(out.envelope) and kept["complete"] is False
        assert 1 << 20 <= kept["received"] <= (3 << 20) // 2
        assert out.state == "sealed"
        resumed = await outside.resume(http, out, kept["received"])
        assert resumed.response.status == 200, resumed.response.body
        assert out.state == "delivered"
        (delivered,) = out.receipts.values()
        assert delivered["receipt"]["envelope_sha256"] == out.sha256  # the whole envelope's, not the PATCH body's
        # A redelivery of the whole envelope is answered with that same receipt, byte for byte (§6).
        again = await outside.push(http, out)
        assert again.response.body == delivered["signed"]
        await _cli(district, "accept", tid, "--code", code, "--as", "coord")
        await _json(district, "import", "preview", tid, "--school", "Lincoln Middle School", "--as", "coord")
        await _json(district, "import", "run", tid, "--as", "coord")
        await _wait(lambda: out.state == "imported")
    (student,) = [s for s in await _json(district, "students", "search", "Okafor") if s["given_name"] == "Ines"]
    (doc,) = await _json(district, "documents", "list", student["sis_id"])
    got = await _cli(district, "documents", "get", doc["doc_id"], "-o", "-", "--as", "coord")
    assert got.stdout_bytes == big
    assert all(error is None for *_, error in outside.log), outside.log


async def test_satchel_cancels_and_the_outside_node_rejects_each_answered_by_signed_receipts(
    district: District, outside: n.OutsideNode
) -> None:
    """transfer.md §2 step 5 both ways with Satchel as the sender: its cancellation reaches the outside node,
    whose own `cancelled` receipt ends the transfer at Satchel; another transfer the outside node rejects,
    with a reason Satchel shows."""
    async with aiohttp.ClientSession() as http:
        await _pin_both_ways(http, district, outside)
        first = (await _json(district, "send", "--to", OUTSIDE, "--student", "100001", "--as", "coord"))["transfer_id"]
        await _wait(lambda: _state(district, first) == "delivered")
        await _cli(district, "cancel", first, "--reason", "wrong district", "--as", "coord")
        await _wait(lambda: outside.incoming[first].state == "cancelled")
        cancelled = o.verify_receipt(outside.incoming[first].received[1], published=outside.published)["receipt"]
        assert (cancelled["kind"], cancelled["issuer"], cancelled["reason"]) == ("cancelled", "sender",
                                                                                 "wrong district")
        ours = outside.incoming[first].issued[-1]
        assert (await outside.send_receipt(http, first, ours)).response.status == 200
        await _wait(lambda: _state(district, first) == "cancelled")

        second = (await _json(district, "send", "--to", OUTSIDE, "--student", "100002", "--as", "coord"))["transfer_id"]
        await _wait(lambda: second in outside.incoming)
        rejected = outside.reject(second, "Not enrolled here.\nPlease check the district.")
        answer = await outside.send_receipt(http, second, rejected)
        assert (answer.response.status, answer.json()["state"]) == (200, "rejected")
    shown = await _json(district, "transfers", "show", second)
    assert shown["state"] == "rejected"
    assert "Not enrolled here.\nPlease check the district." in [e["detail"].get("reason") for e in shown["timeline"]]
    assert all(error is None for *_, error in outside.log), outside.log


async def _push_and_import(http: aiohttp.ClientSession, district: District, outside: n.OutsideNode,
                           satchel: o.Descriptor, records: list[dict[str, Any]],
                           documents: list[bytes]) -> str:  # fmt: skip
    manifest = n.manifest_for(sender=outside, recipient_domain=SATCHEL, students=[STUDENT], records=records)
    out, code = await _pushed(http, outside, satchel, manifest, documents)
    await _cli(district, "accept", out.transfer_id, "--code", code, "--as", "coord")
    await _json(district, "import", "preview", out.transfer_id, "--school", "Lincoln Middle School", "--as", "coord")
    await _json(district, "import", "run", out.transfer_id, "--as", "coord")
    await _wait(lambda: out.state == "imported")
    return out.transfer_id


async def test_a_correction_of_a_correction_links_to_the_version_held_though_the_one_between_never_came(
    district: District, outside: n.OutsideNode
) -> None:
    """transfer.md §8 and envelope.md §5.1: version 3 corrects version 2, which Satchel never received, and
    names every earlier version in `earlier_versions`; Satchel links it to version 1, which it holds, and only
    version 3 is current."""
    v1, v3 = b"%PDF-1.7 version one", b"%PDF-1.7 version three"

    def version(record_id: str, data: bytes, corrects: str | None, earlier: list[str]) -> dict[str, Any]:
        rec = n.document_record(record_id, "OUT-1", data, title="Evaluation", media_type="application/pdf",
                                document_type="evaluation",
                                metadata={"earlier_versions": earlier} if earlier else {})  # fmt: skip
        return {**rec, "corrects": corrects}

    async with aiohttp.ClientSession() as http:
        satchel = await _pin_both_ways(http, district, outside)
        await _push_and_import(http, district, outside, satchel, [version("eval-v1", v1, None, [])], [v1])
        await _push_and_import(http, district, outside, satchel,
                               [version("eval-v3", v3, "eval-v2", ["eval-v2", "eval-v1"])], [v3])  # fmt: skip
    (student,) = [s for s in await _json(district, "students", "search", "Okafor") if s["given_name"] == "Ines"]
    docs = {d["sha256"]: d for d in await _json(district, "documents", "list", student["sis_id"])}
    first, third = docs[hashlib.sha256(v1).hexdigest()], docs[hashlib.sha256(v3).hexdigest()]
    assert (third["replaces"], third["superseded_by"]) == (first["doc_id"], None)
    assert first["superseded_by"] == third["doc_id"]
    assert all(error is None for *_, error in outside.log), outside.log


async def test_a_partial_import_tells_the_outside_node_the_kind_of_problem_only(
    district: District, outside: n.OutsideNode
) -> None:
    """transfer.md §5.2: a student Satchel cannot match for sure is skipped, and the `imported` receipt counts
    it under a reason that names the kind of problem, never the receiving district's own student."""
    near = {"sis_id": "OUT-2", "given_name": "William", "family_name": "Okafor", "birth_date": "2011-11-03",
            "grade": "08"}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        satchel = await _pin_both_ways(http, district, outside)
        manifest = n.manifest_for(sender=outside, recipient_domain=SATCHEL, students=[STUDENT, near], records=[])
        out, code = await _pushed(http, outside, satchel, manifest, [])
        await _cli(district, "accept", out.transfer_id, "--code", code, "--as", "coord")
        preview = await _json(district, "import", "preview", out.transfer_id, "--school", "Lincoln Middle School",
                              "--as", "coord")  # fmt: skip
        assert (preview["new"], preview["uncertain"]) == (1, 1)
        await _json(district, "import", "run", out.transfer_id, "--as", "coord")
        await _wait(lambda: out.state == "partially_imported")
    (imported,) = [r["receipt"] for r in out.receipts.values() if r["receipt"]["kind"] == "imported"]
    assert imported["counts"]["students_total"] == 2 and imported["counts"]["students_imported"] == 1
    (skipped,) = imported["counts"]["skipped"]
    assert skipped == {"reason": "needs review at the receiving district", "count": 1}
    assert "100002" not in json.dumps(imported)  # the local student it resembles
    assert all(error is None for *_, error in outside.log), outside.log


async def test_receipts_signed_after_satchel_rotates_its_key_are_verified_through_the_endorsement(
    district: District, outside: n.OutsideNode
) -> None:
    """transfer.md §5.3 step 4, request-signing.md §7.1, descriptor.md *Key rotation*: Satchel rotates its
    identity key between `delivered` and `accepted`; the outside node, which pinned the old key, fetches the
    descriptor, follows the old key's endorsement of the new one, and verifies the request and the receipt."""
    async with aiohttp.ClientSession() as http:
        satchel = await _pin_both_ways(http, district, outside)
        out, code = await _pushed(http, outside, satchel, _manifest(outside), [DOCUMENT])
        await _cli(district, "keys", "rotate", "--identity", "--as", "admin")
        await _cli(district, "accept", out.transfer_id, "--code", code, "--as", "coord")
        await _wait(lambda: out.state == "accepted")
    delivered, accepted = (out.receipts[s]["signed_by"] for s in (1, 2))
    assert delivered == satchel.signed_by and accepted != delivered
    assert {delivered, accepted} <= set(outside.pinned[SATCHEL].identity_keys)
    assert all(error is None for *_, error in outside.log), outside.log
