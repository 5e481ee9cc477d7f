"""A release names the student whose records go: one who is neither the match nor a candidate for the student
the request asks for is refused unless the coordinator says they checked (found by a bug hunt: a mistyped SIS
id released another child's records, and a disclosure was recorded)."""

from __future__ import annotations

import json

from support import wait_until


def _json(d, *args: str):
    return json.loads(d.cli(*args).stdout)


def _state(d, request_id: str) -> str:
    return _json(d, "requests", "show", request_id, "--json")["state"]


def test_releasing_a_student_the_match_does_not_give_is_refused_unless_the_coordinator_says_so(pair) -> None:
    a, b, _ = pair
    # B asks for Ava Martinez, born 2012-03-14; A's match proposes 100001.
    request_id = b.cli("request", "--from", "a.example.org", "--student", "100001", "--as", "coord").stdout.split()[2]
    wait_until(lambda: _state(a, request_id) == "requested")
    assert _json(a, "requests", "show", request_id, "--json")["candidates"]["proposed"] == "100001"
    # 100002 is William Okafor, born 2011-11-02: a typo, not a candidate.
    refused = a.cli("requests", "release", request_id, "--student", "100002", "--all-records", "--as", "coord",
                    ok=False)  # fmt: skip
    assert refused.exit_code != 0 and "(error code request.student_not_matched)" in refused.stderr
    said = " ".join(refused.stderr.split())
    assert "100002 (William Okafor, born 2011-11-02) is not the student records request" in said
    assert "asks for (Ava Martinez, born 2012-03-14): the match here gives 100001" in said
    assert "--not-matched" in said
    assert _json(a, "transfers", "list", "--json") == []  # nothing sealed, nothing disclosed
    assert _json(a, "disclosures", "100002", "--json")["disclosures"] == []
    assert _state(a, request_id) == "requested"
    # The coordinator checked (say the family changed the name and the SIS has the birth date wrong).
    out = a.cli("requests", "release", request_id, "--student", "100002", "--not-matched", "--as", "coord").stdout
    transfer_id = out.split("transfer ")[1].split(".")[0]
    (entry,) = [e for e in _json(a, "audit", "--json") if e["action"] == "request.release"]
    assert entry["details"] == {"request": request_id, "transfer": transfer_id, "not_matched": True,
                                "matched": ["100001"]}  # fmt: skip
    assert [d["transfer_id"] for d in _json(a, "disclosures", "100002", "--json")["disclosures"]] == [transfer_id]
    wait_until(lambda: _state(b, request_id) == "released")


def test_the_student_the_match_proposes_is_released_without_being_told_twice(pair) -> None:
    a, b, _ = pair
    request_id = b.cli("request", "--from", "a.example.org", "--student", "100002", "--as", "coord").stdout.split()[2]
    wait_until(lambda: _state(a, request_id) == "requested")
    a.cli("requests", "release", request_id, "--student", "100002", "--as", "coord")
    (entry,) = [e for e in _json(a, "audit", "--json") if e["action"] == "request.release"]
    assert "not_matched" not in entry["details"]
