import hashlib
import json
import os

from fixtures_oneroster import sample_bundle, write_bundle
from support import run_cli


def _home_with_students(make_home, tmp_path):
    home = make_home()
    run_cli(home, "roster", "import", str(write_bundle(tmp_path / "r", sample_bundle())), "--as", "coord")
    return home


def test_documents_are_content_addressed(make_home, tmp_path) -> None:
    home = _home_with_students(make_home, tmp_path)
    data = os.urandom(200_000)
    (tmp_path / "iep.pdf").write_bytes(data)
    doc = json.loads(run_cli(home, "documents", "add", "100001", str(tmp_path / "iep.pdf"), "--type", "iep",
                             "--title", "IEP 2026", "--as", "coord", "--json").output)  # fmt: skip
    sha = hashlib.sha256(data).hexdigest()
    assert doc["sha256"] == sha and doc["length"] == len(data) and doc["media_type"] == "application/pdf"
    blob = home / "blobs" / "sha256" / sha[:2] / sha
    assert blob.read_bytes() == data
    assert not any((home / "blobs" / "tmp").iterdir())
    listed = json.loads(run_cli(home, "documents", "list", "100001", "--json").output)
    assert [d["doc_id"] for d in listed] == [doc["doc_id"]]

    bad = run_cli(home, "documents", "add", "999", str(tmp_path / "iep.pdf"), "--type", "iep", "--as", "coord",
                  ok=False)  # fmt: skip
    assert "not_found" in bad.stderr and "satchel students search" in bad.stderr


def test_cases_search(make_home, tmp_path) -> None:
    home = _home_with_students(make_home, tmp_path)
    run_cli(
        home,
        "cases",
        "add",
        "--student",
        "100002",
        "--case-number",
        "TA-1",
        "--building",
        "Lincoln MS",
        "--team",
        "BTAM North",
        "--team-leader",
        "R. Diaz",
        "--case-manager",
        "K. Lee",
        "--as",
        "coord",
    )
    dup = run_cli(
        home, "cases", "add", "--student", "100002", "--case-number", "TA-1", "--as", "coord", ok=False
    )
    assert "conflict" in dup.stderr
    found = json.loads(run_cli(home, "cases", "list", "--search", "BTAM", "--json").output)
    assert found[0]["person_of_concern"] == "William Okafor" and found[0]["case_manager"] == "K. Lee"
    assert "TA-1" in run_cli(home, "students", "show", "100002").output


def test_assessments_import_is_idempotent(make_home, tmp_path) -> None:
    home = _home_with_students(make_home, tmp_path)
    csv = tmp_path / "star.csv"
    csv.write_text(
        "student_sis_id,assessment,subject,date,score,scale_score,percentile,benchmark_category\n"
        "100001,STAR Reading,Reading,2026-09-15,512,512,64,At/Above Benchmark\n"
        "100002,STAR Math,Math,2026-09-16,480,480,41,On Watch\n"
    )
    none_moved = {"moved_kept": 0, "moved_kept_results": [], "purged": 0, "purged_results": []}
    out = json.loads(run_cli(home, "assessments", "import", str(csv), "--as", "coord", "--json").output)
    assert out == {"inserted": 2, "updated": 0, "unchanged": 0, "skipped": 0, **none_moved}
    out = json.loads(run_cli(home, "assessments", "import", str(csv), "--as", "coord", "--json").output)
    assert out == {"inserted": 0, "updated": 0, "unchanged": 2, "skipped": 0, **none_moved}
    results = json.loads(run_cli(home, "assessments", "list", "100001", "--json").output)
    assert results[0]["percentile"] == "64"
    for listing in ("assessments", "documents"):  # a mistyped id is not a student with nothing on file
        unknown = run_cli(home, listing, "list", "1000O1", "--json", ok=False)
        assert "no student with SIS id '1000O1'" in unknown.stderr and "(error code not_found)" in unknown.stderr

    with csv.open("a") as handle:
        handle.write("424242,STAR Math,Math,2026-09-16,480,480,41,On Watch\n")
    bad = run_cli(home, "assessments", "import", str(csv), "--as", "coord", ok=False)
    assert "assessments.rows_invalid" in bad.stderr and "424242" in bad.stderr
    # A long file shows how much of it is done, on request (a terminal shows it unasked).
    shown = run_cli(home, "assessments", "import", str(csv), "--skip-invalid", "--as", "coord",
                    env={"SATCHEL_PROGRESS": "1"})  # fmt: skip
    size = csv.stat().st_size
    lines = [line.strip() for line in shown.stderr.replace("\r", "\n").splitlines() if line.strip()]
    # Checked, each line ending: then saved, on a line of its own.
    assert lines[-2:] == [f"Checking {size} B of {size} B (100%)", "Saving 2 of 2 results (100%)"], lines
    assert shown.stderr.endswith("(100%)\n") and shown.stderr.count("\n") == 2


def test_a_nightly_import_lists_a_result_it_kept_where_a_coordinator_moved_it(make_home, tmp_path) -> None:
    home = _home_with_students(make_home, tmp_path)
    csv = tmp_path / "star-nightly.csv"
    csv.write_text("student_sis_id,assessment,subject,date,percentile\n100001,STAR Math,Math,2026-09-16,41\n")
    run_cli(home, "assessments", "import", str(csv), "--as", "coord")
    [result] = json.loads(run_cli(home, "assessments", "list", "100001", "--json").output)
    run_cli(home, "assessments", "move", result["result_id"], "--to", "100002", "--as", "coord")
    out = run_cli(home, "assessments", "import", str(csv), "--as", "coord").output
    assert out.splitlines() == [
        "Assessment results: 0 added, 0 updated, 1 unchanged, 0 skipped.",
        f"Kept result {result['result_id']} (STAR Math, Math, 2026-09-16) on 100002, where coord moved it; "
        "star-nightly.csv lists it under 100001. Fix the student in the SIS export, or, if the file is right, "
        f"move it back: satchel assessments move {result['result_id']} --to 100001",
    ]
    out = json.loads(run_cli(home, "assessments", "import", str(csv), "--as", "coord", "--json").output)
    assert out["moved_kept"] == 1 and out["moved_kept_results"] == [
        {"result_id": result["result_id"], "assessment": "STAR Math", "subject": "Math", "date": "2026-09-16",
         "student_sis_id": "100002", "listed_under": "100001", "moved_by": "coord"}
    ]  # fmt: skip
    assert json.loads(run_cli(home, "assessments", "list", "100001", "--json").output) == []


def test_a_nightly_import_lists_a_result_purged_here_and_does_not_add_it_back(make_home, tmp_path) -> None:
    # A result landed on the wrong student and an admin purged it; the next night's file still listed it and
    # added it back, scores and all, without a word: the district's decision undone by a cron job.
    home = _home_with_students(make_home, tmp_path)
    csv = tmp_path / "star-nightly.csv"
    csv.write_text("student_sis_id,assessment,subject,date,percentile,benchmark_category\n"
                   "100001,STAR Math,Math,2026-09-16,41,PURGEDBENCH\n")  # fmt: skip
    run_cli(home, "assessments", "import", str(csv), "--as", "coord")
    [result] = json.loads(run_cli(home, "assessments", "list", "100001", "--json").output)
    rid = result["result_id"]
    run_cli(home, "assessments", "purge", rid, "--as", "admin")
    out = run_cli(home, "assessments", "import", str(csv), "--as", "coord").output
    day = json.loads(run_cli(home, "audit", "--json").output)[0]["at"][:10]
    assert out.splitlines() == [
        "Assessment results: 0 added, 0 updated, 0 unchanged, 1 skipped.",
        f"Not imported: result {rid} (STAR Math, Math, 2026-09-16), which star-nightly.csv lists under 100001, "
        f"was purged here from 100001 by admin on {day}. Fix the SIS export, or, if it is right, an admin lifts "
        f"the purge and the next import adds it: satchel assessments unpurge {rid} --as ADMIN",
    ]
    out = json.loads(run_cli(home, "assessments", "import", str(csv), "--as", "coord", "--json").output)
    assert out["purged"] == 1 and out["skipped"] == 1 and out["purged_results"][0]["result_id"] == rid
    assert json.loads(run_cli(home, "assessments", "list", "100001", "--json").output) == []
    stored = b"".join(p.read_bytes() for p in (home / "satchel.db", home / "satchel.db-wal") if p.exists())
    assert b"PURGEDBENCH" not in stored

    refused = run_cli(home, "assessments", "unpurge", rid, "--as", "coord", ok=False)
    assert "(error code operator.forbidden)" in refused.stderr  # lifting a purge is an admin's, as purging is
    assert run_cli(home, "assessments", "unpurge", rid, "--as", "admin").output == (
        f"Lifted the purge of result {rid} (purged by admin on {day}): the next assessments import that lists it "
        f"adds it again.\n"
    )
    again = run_cli(home, "assessments", "unpurge", rid, "--as", "admin", ok=False)
    assert "(error code not_found)" in again.stderr
    out = json.loads(run_cli(home, "assessments", "import", str(csv), "--as", "coord", "--json").output)
    assert out["inserted"] == 1 and out["purged"] == 0
    assert json.loads(run_cli(home, "assessments", "list", "100001", "--json").output)[0]["result_id"] == rid


def test_send_refuses_a_bad_expiry_as_the_operators_mistake(make_home, tmp_path) -> None:
    home = _home_with_students(make_home, tmp_path)
    run_cli(home, "transfers", "enable", "--as", "coord")
    result = run_cli(home, "send", "--to", "b.example.org", "--student", "100001", "--expires", "0",
                     "--as", "coord", ok=False)  # fmt: skip
    assert result.exit_code == 2 and "(error code input.invalid)" in result.stderr
    assert "Field: --expires" in result.stderr and "Hint:" in result.stderr


def test_assessments_saved_from_excel_are_refused_with_the_way_to_import_them(make_home, tmp_path) -> None:
    home = _home_with_students(make_home, tmp_path)
    csv = tmp_path / "map-fall.csv"
    csv.write_bytes(
        "\ufeffstudent_sis_id,assessment,subject,date,score,scale_score,percentile,benchmark_category\r\n"
        "100001,MAP Growth,Mathematics,9/17/2026,,228,71,At/Above Benchmark\r\n".encode()
    )
    refused = run_cli(home, "assessments", "import", str(csv), "--as", "coord", ok=False)
    assert "date 9/17/2026 is written month/day/year, not YYYY-MM-DD" in refused.stderr
    assert "Hint: its dates are written month/day/year, as Excel saves them: re-run with --dates M/D/YYYY" in (
        refused.stderr
    )
    out = json.loads(run_cli(home, "assessments", "import", str(csv), "--dates", "M/D/YYYY", "--as", "coord",
                             "--json").output)  # fmt: skip
    assert out["inserted"] == 1
    assert json.loads(run_cli(home, "assessments", "list", "100001", "--json").output)[0]["date"] == "2026-09-17"


def test_a_result_dated_in_the_future_or_before_1900_is_refused_as_a_typo(make_home, tmp_path) -> None:
    home = _home_with_students(make_home, tmp_path)
    csv = tmp_path / "star.csv"
    csv.write_text("student_sis_id,assessment,subject,date,percentile\n"
                   "100001,STAR Math,Math,2102-09-16,41\n100002,STAR Math,Math,0001-01-01,41\n")  # fmt: skip
    refused = run_cli(home, "assessments", "import", str(csv), "--as", "coord", ok=False)
    assert "2 row(s) of star.csv are invalid; nothing was imported" in refused.stderr
    assert "line 2, date: date is in the future: a typo of the year?" in refused.stderr
    assert "line 3, date: date is before 1900: a typo of the year, or a placeholder" in refused.stderr
    assert json.loads(run_cli(home, "assessments", "list", "100001", "--json").output) == []


def test_a_result_and_a_case_on_the_wrong_student_are_moved_and_purged(make_home, tmp_path) -> None:
    home = _home_with_students(make_home, tmp_path)
    csv = tmp_path / "star.csv"
    csv.write_text("student_sis_id,assessment,subject,date,percentile\n100001,STAR Math,Math,2026-09-16,41\n")
    run_cli(home, "assessments", "import", str(csv), "--as", "coord")
    [result] = json.loads(run_cli(home, "assessments", "list", "100001", "--json").output)
    assert result["result_id"] in run_cli(home, "assessments", "list", "100001").output  # the table shows ids
    moved = run_cli(home, "assessments", "move", result["result_id"], "--to", "100002", "--as", "coord").output
    assert moved == f"Moved assessment {result['result_id']} to 100002.\n"
    assert json.loads(run_cli(home, "assessments", "list", "100002", "--json").output) == [
        result | {"student_sis_id": "100002"}
    ]
    refused = run_cli(home, "assessments", "purge", result["result_id"], "--as", "coord", ok=False)
    assert "(error code operator.forbidden)" in refused.stderr and "ask an admin" in refused.stderr
    run_cli(home, "assessments", "purge", result["result_id"], "--as", "admin")
    assert json.loads(run_cli(home, "assessments", "list", "100002", "--json").output) == []

    run_cli(home, "cases", "add", "--student", "100001", "--case-number", "TA-9", "--as", "coord")
    assert run_cli(home, "cases", "move", "TA-9", "--to", "100002", "--as", "coord").output == (
        "Moved case TA-9 to 100002.\n"
    )
    assert "Purged case TA-9 of 100002" in run_cli(home, "cases", "purge", "TA-9", "--as", "admin").output
    assert json.loads(run_cli(home, "cases", "list", "--json").output) == []


def test_every_fixing_command_answers_in_json(make_home, tmp_path) -> None:
    # Scripts fix mistakes too: each command that moves, deletes, restores, replaces or purges a record says
    # with --json what the record is now (they took no --json, so a script could only parse sentences).
    home = _home_with_students(make_home, tmp_path)

    def fix(*args: str) -> dict:
        return json.loads(run_cli(home, *args, "--json").output)

    (tmp_path / "iep.pdf").write_bytes(os.urandom(1_000))
    (tmp_path / "iep2.pdf").write_bytes(os.urandom(1_000))
    doc = fix("documents", "add", "100001", str(tmp_path / "iep.pdf"), "--type", "iep", "--as", "coord")["doc_id"]
    assert fix("documents", "move", doc, "--to", "100002", "--as", "coord")["student_sis_id"] == "100002"
    newer = fix("documents", "replace", doc, str(tmp_path / "iep2.pdf"), "--as", "coord")
    assert newer["replaces"] == doc and newer["student_sis_id"] == "100002"
    assert fix("documents", "delete", newer["doc_id"], "--as", "coord")["status"] == "deleted"
    assert fix("documents", "restore", newer["doc_id"], "--as", "admin")["status"] == "active"
    run_cli(home, "documents", "delete", newer["doc_id"], "--as", "coord")
    purged = fix("purge", newer["doc_id"], "--as", "admin")
    assert purged["status"] == "purged" and purged["title"] == "(purged)"

    run_cli(home, "cases", "add", "--student", "100001", "--case-number", "TA-9", "--as", "coord")
    assert fix("cases", "move", "TA-9", "--to", "100002", "--as", "coord")["student_sis_id"] == "100002"
    assert fix("cases", "purge", "TA-9", "--as", "admin") == {"case": "TA-9", "student_sis_id": "100002",
                                                              "status": "purged", "not_imported_from": [],
                                                              "erased_when_opened_from": [],
                                                              "still_in_undelivered": []}  # fmt: skip
    csv = tmp_path / "star.csv"
    csv.write_text("student_sis_id,assessment,subject,date,percentile\n100001,STAR Math,Math,2026-09-16,41\n")
    run_cli(home, "assessments", "import", str(csv), "--as", "coord")
    [result] = json.loads(run_cli(home, "assessments", "list", "100001", "--json").output)
    moved = fix("assessments", "move", result["result_id"], "--to", "100002", "--as", "coord")
    assert moved == result | {"student_sis_id": "100002"}
    assert fix("assessments", "purge", result["result_id"], "--as", "admin")["status"] == "purged"
