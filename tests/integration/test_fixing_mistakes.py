"""Fixing mistakes on two real nodes (MISSION.md workflow 5): what a purge leaves, redoing a transfer onto the
right student, and corrections that arrive with, or before, the record they correct."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support import District


def _json(d: District, *args: str):
    return json.loads(d.cli(*args).stdout)


def _send_accept(a: District, b: District, *args: str) -> str:
    sent = json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)
    b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord")
    return sent["transfer_id"]


def _import(b: District, transfer_id: str, *decisions: tuple[str, str]) -> dict:
    b.cli("import", "preview", transfer_id, "--as", "coord")
    for sender_sis_id, local in decisions:
        b.cli("import", "match", transfer_id, sender_sis_id, "--to", local, "--as", "coord")
    return _json(b, "import", "run", transfer_id, "--as", "coord", "--json")


def _add_document(d: District, student: str, path: Path, title: str) -> str:
    return _json(d, "documents", "add", student, str(path), "--type", "iep", "--title", title, "--as", "coord",
                 "--json")["doc_id"]  # fmt: skip


def _home_bytes(home: Path) -> bytes:
    """Everything of the home a copy of it would hold but the keys: the database, its log, documents."""
    parts = [p.read_bytes() for p in (home / "satchel.db", home / "satchel.db-wal") if p.exists()]
    parts += [p.read_bytes() for p in (home / "blobs").rglob("*") if p.is_file()]
    return b"\n".join(parts)


def test_a_purged_record_leaves_no_content_in_the_home(pair, tmp_path: Path) -> None:
    # A case, an assessment result and a document landed on the wrong child; the admin purges them. "Erased
    # for good" holds only if nothing of their content stays anywhere in the home: the sender's signed manifest
    # kept at acceptance held it all (case notes, scores, the document's title and file name).
    a, b, _ = pair
    purged_doc, kept_doc = tmp_path / "wrong-child-iep.pdf", tmp_path / "kept.pdf"
    purged_doc.write_bytes(os.urandom(5_000))
    kept_doc.write_bytes(os.urandom(5_000))
    _add_document(a, "100001", purged_doc, "Behaviour plan PURGEDTITLE")
    _add_document(a, "100001", kept_doc, "Transcript kept")
    a.cli("cases", "add", "--student", "100001", "--case-number", "TA-7", "--notes", "PURGEDNOTES of the case",
          "--team", "PURGEDTEAM", "--as", "coord")  # fmt: skip
    scores = tmp_path / "scores.csv"
    scores.write_text("student_sis_id,assessment,subject,date,score,scale_score,percentile,benchmark_category\n"
                      "100001,PURGEDTEST,Math,2025-01-10,42,731,64,PURGEDBENCH\n")  # fmt: skip
    a.cli("assessments", "import", str(scores), "--as", "coord")
    first = _send_accept(a, b, "--student", "100001", "--all-records")
    _import(b, first, ("100001", "100002"))  # the coordinator links Ava to William by mistake

    docs = {d["title"]: d for d in _json(b, "documents", "list", "100002", "--json")}
    [result] = _json(b, "assessments", "list", "100002", "--json")
    b.cli("cases", "purge", "TA-7", "--as", "admin")
    b.cli("assessments", "purge", result["result_id"], "--as", "admin")
    wrong = docs["Behaviour plan PURGEDTITLE"]
    b.cli("documents", "delete", wrong["doc_id"], "--as", "coord")
    b.cli("purge", wrong["doc_id"], "--as", "admin")

    home = _home_bytes(b.home)
    for content in (b"PURGEDNOTES", b"PURGEDTEAM", b"PURGEDTEST", b"PURGEDBENCH", b"PURGEDTITLE",
                    b"wrong-child-iep", purged_doc.read_bytes()):  # fmt: skip
        assert content not in home, content[:40]
    # What was not purged is still whole, and still proven to be what the sender signed.
    verified = b.cli("documents", "verify", docs["Transcript kept"]["doc_id"]).stdout
    assert "signed by a.example.org" in verified
    assert "hash chain verified" in b.cli("audit", "verify").stdout
    b.cli("check", "--blobs")
    [row] = _json(b, "import", "log", first, "--json")
    assert row["DestinationStudentId"] == "100002"

    # The sender redoes the transfer: what was purged comes again, onto the right child.
    _import(b, _send_accept(a, b, "--student", "100001", "--all-records"))
    assert [c["case_number"] for c in _json(b, "cases", "list", "--student", "100001", "--json")] == ["TA-7"]
    assert [r["assessment"] for r in _json(b, "assessments", "list", "100001", "--json")] == ["PURGEDTEST"]
    assert [d["title"] for d in _json(b, "documents", "list", "100001", "--json")] == ["Behaviour plan PURGEDTITLE"]


def test_an_import_cancelled_after_a_purge_runs_again_without_the_purged_record(pair, tmp_path: Path) -> None:
    # The purge erased the document's bytes and its content in the transfer's manifest; cancelling the partial
    # import and running it again must neither bring the purged record back nor stop at its missing bytes
    # (the student was skipped for good: "a document's content is missing").
    a, b, _ = pair
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(5_000))
    _add_document(a, "100001", doc, "IEP")
    tid = _send_accept(a, b, "--student", "100001", "--student", "100002", "--all-records")
    b.cli("import", "preview", tid, "--as", "coord")
    b.cli("import", "match", tid, "100002", "--later", "--as", "coord")
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["result"] == "partial (1 of 2)"
    [landed] = _json(b, "documents", "list", "100001", "--json")
    b.cli("documents", "delete", landed["doc_id"], "--as", "coord")
    b.cli("purge", landed["doc_id"], "--as", "admin")

    b.cli("import", "cancel", tid, "--as", "coord")
    again = _import(b, tid, ("100002", "100002"))
    assert again["result"] == "imported with no changes" and again["skipped"] == [], again
    assert _json(b, "documents", "list", "100001", "--json") == []


def _wrong_child(a: District, b: District, tmp_path: Path) -> tuple[str, bytes]:
    """Ava's (100001) case and IEP land on William (100002) at b; returns the transfer and the IEP's bytes."""
    doc = tmp_path / "wrong-child-iep.pdf"
    doc.write_bytes(os.urandom(5_000))
    _add_document(a, "100001", doc, "Behaviour plan PURGEDTITLE")
    a.cli("cases", "add", "--student", "100001", "--case-number", "TA-7", "--notes", "PURGEDNOTES of the case",
          "--as", "coord")  # fmt: skip
    first = _send_accept(a, b, "--student", "100001", "--all-records")
    _import(b, first, ("100001", "100002"))
    return first, doc.read_bytes()


def _purge_both(b: District) -> None:
    [doc] = _json(b, "documents", "list", "100002", "--json")
    b.cli("cases", "purge", "TA-7", "--as", "admin")
    b.cli("documents", "delete", doc["doc_id"], "--as", "coord")
    b.cli("purge", doc["doc_id"], "--as", "admin")


def _assert_gone(b: District, *contents: bytes) -> None:
    home = _home_bytes(b.home)
    for content in (b"PURGEDNOTES", b"PURGEDTITLE", b"wrong-child-iep", *contents):
        assert content not in home, content[:40]


def test_a_transfer_held_here_at_the_purge_does_not_bring_the_record_back(pair, tmp_path: Path) -> None:
    # Ava's records were sent twice before the purge: in a transfer partly imported (Ava set aside for later)
    # and in an envelope not opened yet. Both could still import the purged records, so they kept their content
    # (notes, title, the document's bytes held for the import), and importing them undid the purge. A purge is
    # the district's decision: only what the sender sends after it (a redo) brings the records again.
    a, b, _ = pair
    _, iep = _wrong_child(a, b, tmp_path)
    partly = _send_accept(a, b, "--student", "100001", "--student", "100003", "--all-records")
    b.cli("import", "preview", partly, "--as", "coord")
    b.cli("import", "match", partly, "100001", "--later", "--as", "coord")
    assert _json(b, "import", "run", partly, "--as", "coord", "--json")["result"] == "partial (1 of 2)"
    unopened = json.loads(a.cli("send", "--to", "b.example.org", "--student", "100001", "--all-records", "--as",
                                "coord", "--json").stdout)  # fmt: skip

    told = b.cli("cases", "purge", "TA-7", "--as", "admin").stdout
    assert (f"Transfer(s) {partly} from a.example.org, here since before the purge, will not import it. "
            f"Transfer(s) {unopened['transfer_id']} from a.example.org, waiting for a code, will not import it "
            "should they hold it. If it belongs to another student, ask a.example.org to send it again.") in told
    [doc] = _json(b, "documents", "list", "100002", "--json")
    b.cli("documents", "delete", doc["doc_id"], "--as", "coord")
    b.cli("purge", doc["doc_id"], "--as", "admin")
    _assert_gone(b, iep)
    [entry] = [e for e in _json(b, "audit", "--json") if e["action"] == "case.purge"]
    assert entry["details"]["not_to_be_imported_from"] == [partly]
    assert entry["details"]["erased_when_opened_from"] == [unopened["transfer_id"]]

    b.cli("accept", unopened["transfer_id"], "--code", unopened["code"], "--as", "coord")
    _assert_gone(b, iep)
    b.cli("import", "match", partly, "100001", "--to", "100001", "--as", "coord")
    assert _json(b, "import", "run", partly, "--as", "coord", "--json")["skipped"] == []
    _import(b, unopened["transfer_id"], ("100001", "100001"))
    assert _json(b, "cases", "list", "--student", "100001", "--json") == []
    assert _json(b, "documents", "list", "100001", "--json") == []
    _assert_gone(b, iep)


def test_a_redo_rejected_before_its_import_keeps_nothing_of_the_purged_records(pair, tmp_path: Path) -> None:
    # The sender redid the transfer after the purge, and the coordinator rejected the redo (say, sent to the
    # wrong district's school): the redo's manifest, kept since its acceptance, still held the purged case's
    # notes and the document's title, and would for good.
    a, b, _ = pair
    _, iep = _wrong_child(a, b, tmp_path)
    _purge_both(b)
    redo = _send_accept(a, b, "--student", "100001", "--all-records")
    assert b"PURGEDNOTES" in _home_bytes(b.home)  # brought again, to be imported onto the right child
    b.cli("reject", redo, "--reason", "not this school", "--as", "coord")
    _assert_gone(b, iep)
    assert "hash chain verified" in b.cli("audit", "verify").stdout


def test_a_redo_names_the_records_still_held_on_another_student(pair, tmp_path: Path) -> None:
    # Records landed on the wrong child; the coordinator purges one of them and forgets the others. The sender
    # redoes the transfer for the right child: the purged one comes again, and the others, still held here,
    # are not imported twice. The import must not call that "no changes": it names each record still on the
    # other child, so that it is moved, rather than leave it there unnoticed.
    a, b, _ = pair
    first_doc, second_doc = tmp_path / "iep.pdf", tmp_path / "eval.pdf"
    first_doc.write_bytes(os.urandom(5_000))
    second_doc.write_bytes(os.urandom(5_000))
    _add_document(a, "100001", first_doc, "IEP")
    _add_document(a, "100001", second_doc, "Evaluation")
    a.cli("cases", "add", "--student", "100001", "--case-number", "TA-9", "--as", "coord")
    _import(b, _send_accept(a, b, "--student", "100001", "--all-records"), ("100001", "100002"))
    docs = {d["title"]: d["doc_id"] for d in _json(b, "documents", "list", "100002", "--json")}
    b.cli("documents", "delete", docs["IEP"], "--as", "coord")
    b.cli("purge", docs["IEP"], "--as", "admin")
    [case] = _json(b, "cases", "list", "--student", "100002", "--json")

    redo = _send_accept(a, b, "--student", "100001", "--all-records")
    result = _import(b, redo)
    assert result["result"] == "imported with changes", result
    [(student, changes)] = [(c["student"], c["changes"]) for c in result["changes"]]
    assert student == "100001"
    assert docs["Evaluation"] in changes and case["case_id"] in changes and "100002" in changes
    assert docs["IEP"] not in changes  # purged: it came again
    assert f"satchel documents move {docs['Evaluation']} --to 100001" in changes
    [row] = _json(b, "import", "log", redo, "--json")
    assert row["SourceImportStatus"] == "Imported with changes" and docs["Evaluation"] in row["Reason"]
    shown = b.cli("import", "log", redo).stdout
    assert "Imported with changes" in shown
    assert [d["title"] for d in _json(b, "documents", "list", "100001", "--json")] == ["IEP"]


def _versions(b: District, student: str) -> dict[str, dict]:
    return {d["title"]: d for d in _json(b, "documents", "list", student, "--json")}


def test_a_correction_is_a_new_version_whichever_arrives_first(pair, tmp_path: Path) -> None:
    # A correction is imported as a new version of what it corrects (spec/transfer.md §8). That held only when
    # the corrected record was imported in an earlier transfer: sent together (`--all-records` sends both
    # versions) or imported the other way round, both versions stood side by side, unlinked, the old one
    # looking as current as the correction.
    a, b, _ = pair
    for name in ("v1.pdf", "v2.pdf", "w1.pdf", "w2.pdf"):
        (tmp_path / name).write_bytes(os.urandom(4_000))
    v1 = _add_document(a, "100005", tmp_path / "v1.pdf", "Plan")
    a.cli("documents", "replace", v1, str(tmp_path / "v2.pdf"), "--title", "Plan corrected", "--as", "coord")
    _import(b, _send_accept(a, b, "--student", "100005", "--all-records"))
    both = _versions(b, "100005")
    assert both["Plan"]["superseded_by"] == both["Plan corrected"]["doc_id"]
    assert both["Plan corrected"]["replaces"] == both["Plan"]["doc_id"]
    # The table says which one a reader should not take.
    rows = {line.split()[0]: line for line in b.cli("documents", "list", "100005").stdout.splitlines()[1:]}
    assert "active (older version)" in rows[both["Plan"]["doc_id"]]
    assert "older version" not in rows[both["Plan corrected"]["doc_id"]]

    w1 = _add_document(a, "100003", tmp_path / "w1.pdf", "Evaluation")
    original = _send_accept(a, b, "--student", "100003", "--documents", w1)
    a.cli("documents", "replace", w1, str(tmp_path / "w2.pdf"), "--title", "Evaluation corrected", "--as", "coord")
    [w2] = [d["doc_id"] for d in _json(a, "documents", "list", "100003", "--json") if d["replaces"] == w1]
    _import(b, _send_accept(a, b, "--student", "100003", "--documents", w2))
    _import(b, original)  # the correction was imported first
    both = _versions(b, "100003")
    assert both["Evaluation"]["superseded_by"] == both["Evaluation corrected"]["doc_id"]
    assert both["Evaluation corrected"]["replaces"] == both["Evaluation"]["doc_id"]


def test_cancelling_the_import_of_a_correction_leaves_the_version_it_corrected_current(pair, tmp_path: Path) -> None:
    # The import of a correction marked the received version superseded; cancelling that import removed the
    # correction but left the mark pointing at a document that no longer exists, so the version could not be
    # replaced here ("already replaced by ...", a document `satchel documents replace` then did not find).
    a, b, _ = pair
    for name in ("v1.pdf", "v2.pdf", "local.pdf"):
        (tmp_path / name).write_bytes(os.urandom(4_000))
    v1 = _add_document(a, "100001", tmp_path / "v1.pdf", "IEP")
    _import(b, _send_accept(a, b, "--student", "100001", "--documents", v1))
    a.cli("documents", "replace", v1, str(tmp_path / "v2.pdf"), "--title", "IEP corrected", "--as", "coord")
    [v2] = [d["doc_id"] for d in _json(a, "documents", "list", "100001", "--json") if d["replaces"] == v1]
    correction = _send_accept(a, b, "--student", "100001", "--student", "100002", "--documents", v2)
    b.cli("import", "preview", correction, "--as", "coord")
    b.cli("import", "match", correction, "100002", "--later", "--as", "coord")
    b.cli("import", "run", correction, "--as", "coord")
    assert _versions(b, "100001")["IEP"]["superseded_by"] == _versions(b, "100001")["IEP corrected"]["doc_id"]

    b.cli("import", "cancel", correction, "--as", "coord")
    [received] = _json(b, "documents", "list", "100001", "--json")
    assert received["title"] == "IEP" and received["superseded_by"] is None
    b.cli("documents", "replace", received["doc_id"], str(tmp_path / "local.pdf"), "--as", "coord")


def test_an_owner_named_by_the_sender_who_cannot_own_the_documents_here_is_said(pair, tmp_path: Path) -> None:
    # `send --owner` names who should receive the documents at the other district. One who is not an operator
    # there was dropped without a word, and one whose account is disabled (who left) got the documents.
    a, b, _ = pair
    b.cli("users", "add", "olga", "--email", "olga@b.example.org", "--name", "Olga", "--role", "coordinator",
          "--as", "admin")  # fmt: skip
    b.cli("users", "disable", "olga", "--as", "admin")
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(2_000))
    a_doc = _add_document(a, "100001", doc, "IEP")
    for owner, why in (("olga@b.example.org", "whose account here is disabled"),
                       ("nobody@b.example.org", "who is not an operator here")):  # fmt: skip
        tid = _send_accept(a, b, "--student", "100001", "--documents", a_doc, "--owner", owner)
        preview = _json(b, "import", "preview", tid, "--as", "coord", "--json")
        assert preview["owner"] is None and preview["owner_note"] == f"the sending district named {owner}, {why}"
        shown = b.cli("import", "preview", tid, "--as", "coord").stdout
        assert f"{owner}, {why}: choose one with --owner" in shown
        refused = b.cli("import", "preview", tid, "--owner", "olga", "--as", "coord", ok=False)
        assert "operator olga is disabled" in refused.stderr and "choose an active operator" in refused.stderr
        b.cli("reject", tid, "--reason", "test", "--as", "coord")

    tid = _send_accept(a, b, "--student", "100001", "--documents", a_doc, "--owner", "olga@b.example.org")
    _import(b, tid)
    [received] = _json(b, "documents", "list", "100001", "--json")
    assert received["created_by"] == "coord"


def test_a_correction_names_the_version_it_replaces_when_that_is_on_another_student(pair, tmp_path: Path) -> None:
    # The first version landed on the wrong child; the correction, sent for the right one, superseded it there
    # without a word, leaving the wrong child holding the old version.
    a, b, _ = pair
    for name in ("v1.pdf", "v2.pdf"):
        (tmp_path / name).write_bytes(os.urandom(4_000))
    v1 = _add_document(a, "100001", tmp_path / "v1.pdf", "IEP")
    _import(b, _send_accept(a, b, "--student", "100001", "--documents", v1), ("100001", "100002"))
    [landed] = _json(b, "documents", "list", "100002", "--json")
    a.cli("documents", "replace", v1, str(tmp_path / "v2.pdf"), "--title", "IEP corrected", "--as", "coord")
    [v2] = [d["doc_id"] for d in _json(a, "documents", "list", "100001", "--json") if d["replaces"] == v1]
    result = _import(b, _send_accept(a, b, "--student", "100001", "--documents", v2))
    assert result["result"] == "imported with changes", result
    [changes] = [c["changes"] for c in result["changes"] if c["student"] == "100001"]
    assert landed["doc_id"] in changes and "on student 100002" in changes
    assert f"satchel documents move {landed['doc_id']} --to 100001" in changes


def test_a_receiving_sis_id_that_named_nobody_does_not_give_the_records_to_the_child_the_sis_gives_it(
    pair, tmp_path: Path
) -> None:
    # `send --receiving-sis-id` names the student's id at the receiving district. One that names nobody there
    # (a typo, or an id the receiving district had not given yet) becomes the SIS id of the student the import
    # creates, whom the district's roster takes over when it lists that id. When the SIS lists another child
    # under it, the roster took the transferred child's records over with it: Zara's IEP became Bob's.
    from fixtures_oneroster import make_bundle, write_bundle

    a, b, _ = pair
    zara = {"sis_id": "300001", "given_name": "Zara", "family_name": "Okonkwo", "birth_date": "2012-02-02",
            "sex": "F", "grade": "07", "school_id": "0101", "school_name": "Lincoln Middle School"}  # fmt: skip
    a.cli("roster", "import", str(write_bundle(tmp_path / "zara", make_bundle([zara]))), "--as", "coord")
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(2_000))
    a_doc = _add_document(a, "300001", doc, "Zara IEP")
    tid = _send_accept(a, b, "--student", "300001", "--documents", a_doc, "--receiving-sis-id", "300001=777777")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    b.cli("import", "run", tid, "--as", "coord")
    assert _json(b, "students", "show", "777777", "--json")["student"]["given_name"] == "Zara"

    bob = {"sis_id": "777777", "given_name": "Bob", "family_name": "Jones", "birth_date": "2010-05-05", "sex": "M",
           "grade": "09", "school_id": "0101", "school_name": "Lincoln Middle School"}  # fmt: skip
    roster = write_bundle(tmp_path / "bob", make_bundle([bob]))
    refused = b.cli("roster", "import", str(roster), "--as", "coord", ok=False)
    assert "(error code roster.ids_held)" in refused.stderr, refused.stderr
    assert "Zara Okonkwo" in refused.stderr and "Bob Jones" in refused.stderr
    assert "satchel documents|cases|assessments move" in refused.stderr
    assert _json(b, "students", "show", "777777", "--json")["student"]["given_name"] == "Zara"
    [held] = _json(b, "documents", "list", "777777", "--json")

    # Once her records are with the right student, the roster takes the id up.
    b.cli("documents", "move", held["doc_id"], "--to", "100003", "--as", "coord")
    b.cli("roster", "import", str(roster), "--as", "coord")
    assert _json(b, "students", "show", "777777", "--json")["student"]["given_name"] == "Bob"
    assert _json(b, "documents", "list", "777777", "--json") == []


def _three_versions(a: District, tmp_path: Path, student: str) -> list[str]:
    """Doc ids at A of a document corrected twice: v1, v2 (replaces v1), v3 (replaces v2)."""
    for name in ("v1.pdf", "v2.pdf", "v3.pdf"):
        (tmp_path / name).write_bytes(os.urandom(4_000))
    ids = [_add_document(a, student, tmp_path / "v1.pdf", "V1")]
    for n in (2, 3):
        new = tmp_path / f"v{n}.pdf"
        a.cli("documents", "replace", ids[-1], str(new), "--title", f"V{n}", "--as", "coord")
        listed = _json(a, "documents", "list", student, "--json")
        ids += [d["doc_id"] for d in listed if d["replaces"] == ids[-1]]
    return ids


def _chain(b: District, student: str) -> list[str]:
    """The titles of the versions B holds, from the current one back through what each replaces; every link
    named both ways."""
    held = _versions(b, student)
    by_id = {d["doc_id"]: d for d in held.values()}
    [current] = [d for d in held.values() if d["superseded_by"] is None]  # one version only is current
    titles = [current["title"]]
    while current["replaces"] is not None:
        older = by_id[current["replaces"]]
        assert older["superseded_by"] == current["doc_id"], (older, current)
        titles.append(older["title"])
        current = older
    assert len(titles) == len(held), held  # none left out of the chain
    return titles


def test_a_chain_of_corrections_is_linked_whatever_versions_arrive_in_any_order(pair, tmp_path: Path) -> None:
    # A correction named only the version it corrects: v1 and v3 (which replaces v2, which replaces v1) both
    # stood current here whenever v2 had not arrived, whether v3 came first or last. A correction now names
    # every version before it (spec/transfer.md §8), and the chain is linked through the versions not held.
    a, b, _ = pair
    v1, v2, v3 = _three_versions(a, tmp_path, "100001")
    _import(b, _send_accept(a, b, "--student", "100001", "--documents", v3))
    _import(b, _send_accept(a, b, "--student", "100001", "--documents", v1))  # the first version comes last
    assert _chain(b, "100001") == ["V3", "V1"]
    _import(b, _send_accept(a, b, "--student", "100001", "--documents", v2))  # the middle one, after both
    assert _chain(b, "100001") == ["V3", "V2", "V1"]

    w1, _, w3 = _three_versions(a, tmp_path, "100003")
    _import(b, _send_accept(a, b, "--student", "100003", "--documents", w1))
    _import(b, _send_accept(a, b, "--student", "100003", "--documents", w3))  # in order, skipping v2
    assert _chain(b, "100003") == ["V3", "V1"]


def test_cancelling_the_import_of_a_middle_version_links_those_either_side(pair, tmp_path: Path) -> None:
    # Cancelling the import of v2 unlinked it from both sides: v1 and v3 both stood current.
    a, b, _ = pair
    v1, v2, v3 = _three_versions(a, tmp_path, "100001")
    _import(b, _send_accept(a, b, "--student", "100001", "--documents", v1))
    middle = _send_accept(a, b, "--student", "100001", "--student", "100002", "--documents", v2)
    b.cli("import", "preview", middle, "--as", "coord")
    b.cli("import", "match", middle, "100002", "--later", "--as", "coord")  # partial: it can be cancelled
    b.cli("import", "run", middle, "--as", "coord", ok=False)
    _import(b, _send_accept(a, b, "--student", "100001", "--documents", v3))
    assert _chain(b, "100001") == ["V3", "V2", "V1"]

    b.cli("import", "cancel", middle, "--as", "coord")
    assert _chain(b, "100001") == ["V3", "V1"]
    b.cli("import", "run", middle, "--as", "coord", ok=False)  # imported again: back in its place
    assert _chain(b, "100001") == ["V3", "V2", "V1"]
