"""A student the SIS renumbered is still found by the number other districts' copies name them by."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support import District


def _json(d: District, *args: str):
    return json.loads(d.cli(*args).stdout)


def test_records_sent_to_a_students_former_number_land_on_the_student_renumbered_since(
    pair, tmp_path: Path
) -> None:
    # District A learnt Mei's number at B (100003) before B's SIS renumbered her to 200003. Was: the receiving
    # SIS id "is not a local student", matching fell back to her name, and `students show 100003` said unknown.
    from fixtures_oneroster import SAMPLE_STUDENTS, make_bundle, write_bundle

    a, b, _ = pair
    renumbered = [s | {"sis_id": "200003", "source_id": "u-100003"} if s["sis_id"] == "100003" else s
                  for s in SAMPLE_STUDENTS]  # fmt: skip
    b.cli(
        "roster",
        "import",
        str(write_bundle(tmp_path / "renumbered", make_bundle(renumbered))),
        "--as",
        "coord",
    )
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(2_000))
    sent_doc = _json(a, "documents", "add", "100003", str(doc), "--type", "iep", "--title", "Mei IEP", "--as",
                     "coord", "--json")["doc_id"]  # fmt: skip
    sent = _json(a, "send", "--to", "b.example.org", "--student", "100003", "--documents", sent_doc,
                 "--receiving-sis-id", "100003=100003", "--as", "coord", "--json")  # fmt: skip
    b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord")
    b.cli("import", "preview", sent["transfer_id"], "--as", "coord")
    [mei] = _json(b, "import", "review", sent["transfer_id"], "--json")
    assert (mei["match_status"], mei["proposed_sis_id"], mei["method"]) == (
        "matched",
        "200003",
        "receiving_sis_id",
    )
    assert mei["reasons"][0].startswith(
        "the sender's receiving SIS id 100003 is this student's former number, renumbered to 200003 on "
    )
    b.cli("import", "run", sent["transfer_id"], "--as", "coord")
    [landed] = _json(b, "documents", "list", "200003", "--json")
    assert landed["title"] == "Mei IEP"

    # Reading by the former number shows her, with a note; acting on her by it is refused, naming the new one.
    shown = b.cli("students", "show", "100003", "--json")
    assert json.loads(shown.stdout)["student"]["sis_id"] == "200003"
    assert "Note: SIS id 100003 is the former number of student 200003, renumbered on " in shown.stderr
    assert [d["doc_id"] for d in _json(b, "documents", "list", "100003", "--json")] == [landed["doc_id"]]
    b.cli("cases", "add", "--student", "200003", "--case-number", "TA-1", "--as", "coord")
    listed = b.cli("cases", "list", "--student", "100003", "--json")
    assert [c["case_number"] for c in json.loads(listed.stdout)] == ["TA-1"]
    assert "Note: SIS id 100003 is the former number of student 200003" in listed.stderr
    refused = b.cli("send", "--to", "a.example.org", "--student", "100003", "--all-records", "--as", "coord",
                    ok=False)  # fmt: skip
    assert "Hint: SIS id 100003 is the former number of student 200003, renumbered on " in refused.stderr
    assert ": use 200003" in refused.stderr


def test_linking_to_a_student_renumbered_since_another_was_imported_onto_them_warns(pair, tmp_path: Path) -> None:
    # Found left over: the import log keeps the number a student was imported onto, so after B's SIS renumbered
    # Mei, linking a second incoming student to her new number compared it with the old one and said nothing.
    from fixtures_oneroster import SAMPLE_STUDENTS, make_bundle, write_bundle

    a, b, _ = pair
    sent = _json(a, "send", "--to", "b.example.org", "--student", "100001", "--student", "100003",
                 "--all-records", "--as", "coord", "--json")  # fmt: skip
    tid = sent["transfer_id"]
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    b.cli("import", "preview", tid, "--as", "coord")
    b.cli("import", "match", tid, "100001", "--later", "--as", "coord")
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["imported"] == 1
    renumbered = [s | {"sis_id": "200003", "source_id": "u-100003"} if s["sis_id"] == "100003" else s
                  for s in SAMPLE_STUDENTS]  # fmt: skip
    b.cli("roster", "import", str(write_bundle(tmp_path / "renumbered", make_bundle(renumbered))), "--as", "coord")
    linked = b.cli("import", "match", tid, "100001", "--to", "200003", "--as", "coord")
    assert "Warning: 200003 also receives the records of incoming student(s) 100003 of this import" in linked.stderr
    assert f"satchel import match {tid} 100001 --to|--new|--later" in linked.stderr
