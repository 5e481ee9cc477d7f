import json
import zipfile
from pathlib import Path

from storage.database import open_database

from fixtures_oneroster import make_bundle, sample_bundle, write_bundle
from support import run_cli


def _snapshot(home: Path) -> tuple:
    db = open_database(home / "satchel.db")
    try:
        students = db.execute("SELECT * FROM students ORDER BY sis_id").fetchall()
        audit_count = db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        return students, audit_count
    finally:
        db.close()


def test_import_is_idempotent_and_searchable(make_home, tmp_path) -> None:
    home = make_home()
    folder = write_bundle(tmp_path / "roster", sample_bundle())
    first = json.loads(run_cli(home, "roster", "import", str(folder), "--as", "coord", "--json").output)
    assert first["inserted"] == 5 and first["updated"] == 0
    before = _snapshot(home)
    again = json.loads(run_cli(home, "roster", "import", str(folder), "--as", "coord", "--json").output)
    assert again == {"inserted": 0, "updated": 0, "unchanged": 5, "skipped": [], "skipped_count": 0,
                     "marked_inactive": 0, "renumbered": 0, "demographics_not_held": 0,
                     "demographics_not_held_ids": []}
    assert _snapshot(home) == before  # not even an audit entry

    found = json.loads(run_cli(home, "students", "search", "okafor", "--json").output)
    assert [s["sis_id"] for s in found] == ["100002"] and found[0]["preferred_name"] == "Bill"
    shown = json.loads(run_cli(home, "students", "show", "100001", "--json").output)
    assert shown["student"]["school_name"] == "Lincoln Middle School"
    listed = run_cli(home, "students", "list", "--grade", "07").output
    assert "Martinez" in listed and "Okafor" not in listed
    # Counts out of range get click's usage error (exit 2), not an integer overflow inside SQLite.
    for args in (("search", "okafor", "--limit", "99999999999999999999"), ("list", "--limit", "0"),
                 ("list", "--offset", "99999999999999999999")):  # fmt: skip
        refused = run_cli(home, "students", *args, ok=False)
        assert refused.exit_code == 2 and "is not in the range" in refused.stderr
    assert run_cli(home, "audit", "--limit", "-1", ok=False).exit_code == 2


def test_zip_bundle_and_updates(make_home, tmp_path) -> None:
    home = make_home()
    bundle = sample_bundle("1.2")
    archive = tmp_path / "oneroster.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in bundle.items():
            zf.writestr(f"export/{name}", data)
    assert "5 added" in run_cli(home, "roster", "import", str(archive), "--as", "coord").output
    bundle["users.csv"] = bundle["users.csv"].replace(b"Martinez", b"Martinez-Lopez")
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in bundle.items():
            zf.writestr(name, data)
    assert "1 updated, 4 unchanged" in run_cli(home, "roster", "import", str(archive), "--as", "coord").output


def test_one_bad_row_changes_nothing_and_is_named(make_home, tmp_path) -> None:
    home = make_home()
    bundle = sample_bundle()
    bundle["demographics.csv"] = bundle["demographics.csv"].replace(b"2012-03-14", b"2012-14-03")
    folder = write_bundle(tmp_path / "roster", bundle)
    before = _snapshot(home)
    result = run_cli(home, "roster", "import", str(folder), "--as", "coord", ok=False)
    assert result.exit_code == 2
    assert "demographics.csv line" in result.stderr and "birthDate" in result.stderr
    assert "roster.rows_invalid" in result.stderr and "--skip-invalid" in result.stderr
    assert _snapshot(home) == before
    skipped = json.loads(
        run_cli(home, "roster", "import", str(folder), "--as", "coord", "--skip-invalid", "--json").output
    )
    assert skipped["inserted"] == 4 and len(skipped["skipped"]) == 1


def test_more_bad_rows_than_are_listed_are_counted(make_home, tmp_path) -> None:
    home = make_home()
    students = [{"sis_id": f"S{i:05d}", "given_name": "Ana", "family_name": "Lopez", "birth_date": "2012-03-04",
                 "email": "not an address" if i < 1100 else f"s{i}@example.org"} for i in range(1200)]  # fmt: skip
    folder = write_bundle(tmp_path / "roster", make_bundle(students))
    refused = run_cli(home, "roster", "import", str(folder), "--as", "coord", ok=False)
    assert "1100 row(s) are invalid" in refused.stderr and "  ... and 1050 more\n" in refused.stderr
    assert refused.stderr.count("users.csv line") == 50
    skipped = run_cli(home, "roster", "import", str(folder), "--as", "coord", "--skip-invalid")
    lines = skipped.output.splitlines()
    assert lines[0] == "Students: 100 added, 0 updated, 0 unchanged."
    assert lines[1].startswith("Skipped users.csv line 2, email:") and len(lines) == 1002
    assert lines[-1].startswith("... and 100 more rows skipped, not listed: fix the rows above")
    again = json.loads(run_cli(home, "roster", "import", str(folder), "--as", "coord", "--skip-invalid",
                               "--json").output)  # fmt: skip
    assert again["unchanged"] == 100 and len(again["skipped"]) == 1000 and again["skipped_count"] == 1100


def test_viewer_cannot_import(make_home, tmp_path) -> None:
    home = make_home()
    run_cli(
        home,
        "users",
        "add",
        "vic",
        "--email",
        "v@x.org",
        "--name",
        "Vic",
        "--role",
        "viewer",
        "--as",
        "admin",
    )
    folder = write_bundle(tmp_path / "roster", sample_bundle())
    result = run_cli(home, "roster", "import", str(folder), "--as", "vic", ok=False)
    assert "operator.forbidden" in result.stderr


def test_not_a_bundle(make_home, tmp_path) -> None:
    home = make_home()
    (tmp_path / "x.txt").write_text("hello")
    result = run_cli(home, "roster", "import", str(tmp_path / "x.txt"), "--as", "coord", ok=False)
    assert result.exit_code == 2 and "Hint:" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(home, "roster", "import", str(empty), "--as", "coord", ok=False)
    assert result.exit_code == 2 and "users.csv" in result.stderr


AVA = {"sis_id": "100001", "source_id": "guid-ava", "given_name": "Ava", "family_name": "Martinez",
       "birth_date": "2012-03-14", "sex": "F", "grade": "07", "school_id": "0101", "enrollment_start": "2024-08-19"}
ZOE = {"sis_id": "100001", "source_id": "guid-zoe", "given_name": "Zoe", "family_name": "Nguyen",
       "birth_date": "2016-09-01", "sex": "F", "grade": "03", "school_id": "0103", "enrollment_start": "2026-08-19"}
BILL = AVA | {"sis_id": "100002", "source_id": "guid-bill", "given_name": "Bill", "family_name": "Okafor"}


def _import(home: Path, folder: Path, *options: str):
    return run_cli(home, "roster", "import", str(folder), "--as", "coord", *options, ok=False)


def test_a_sis_id_reused_for_another_child_does_not_move_a_childs_records_to_them(make_home, tmp_path) -> None:
    home = make_home()
    _import(home, write_bundle(tmp_path / "night1", make_bundle([AVA, BILL])))
    iep = tmp_path / "iep.pdf"
    iep.write_bytes(b"%PDF-1.4 Ava's IEP")
    run_cli(home, "documents", "add", "100001", str(iep), "--type", "iep", "--title", "Ava IEP", "--as", "coord")
    # Ava left; the SIS gives her number to Zoe, another child (another sourcedId). The import said "1 updated"
    # and Ava's IEP was listed, sent and released as Zoe's.
    night2 = write_bundle(tmp_path / "night2", make_bundle([ZOE, BILL]))
    before = _snapshot(home)
    refused = _import(home, night2)
    assert refused.exit_code == 2 and "(error code roster.ids_held)" in refused.stderr
    assert ("users.csv line 2, identifier: SIS id '100001' is held here by another student, sourcedId 'guid-ava', "
            "not by this row's sourcedId 'guid-zoe'") in refused.stderr  # fmt: skip
    assert "Hint: a SIS id here is one child's for good" in refused.stderr
    assert _snapshot(home) == before
    skipped = _import(home, night2, "--skip-invalid")
    assert skipped.exit_code == 0 and "Hint: a SIS id here is one child's for good" in skipped.output
    assert "1 no longer in the roster: marked inactive." in skipped.output
    shown = run_cli(home, "students", "show", "100001").output
    assert "Ava" in shown and "Ava IEP" in shown and "Zoe" not in shown


def test_a_student_gone_from_the_nightly_bulk_roster_is_in_no_whole_grade_code(make_home, tmp_path) -> None:
    home = make_home()
    run_cli(home, "transfers", "enable", "--as", "coord")
    _import(home, write_bundle(tmp_path / "night1", make_bundle([AVA, BILL])))
    # Ava leaves the district: the SIS's next bulk export (manifest: file.users,bulk) no longer lists her.
    night2 = _import(home, write_bundle(tmp_path / "night2", make_bundle([BILL])))
    assert night2.output.splitlines() == ["Students: 0 added, 0 updated, 1 unchanged.",
                                          "1 no longer in the roster: marked inactive."]  # fmt: skip
    made = json.loads(run_cli(home, "codes", "create", "--grade", "07", "--school", "0101", "--as", "coord",
                              "--json").stdout)  # fmt: skip
    # The grade's code carried Ava's records to whichever district claimed it.
    assert made["students"] == 1
    listed = json.loads(run_cli(home, "students", "search", "Martinez", "--json").output)
    assert [s["enrollment_status"] for s in listed] == ["inactive"]


def test_a_deltas_demographics_of_sourced_ids_not_held_are_reported(make_home, tmp_path) -> None:
    home = make_home()
    _import(home, write_bundle(tmp_path / "night1", make_bundle([AVA, BILL])))
    # The next night's delta: only demographics changed, Bill's, a teacher's and a child's the bulk export never
    # added. The last two are not read (a teacher's is none of ours), but an operator must see that they were not.
    delta = make_bundle([])
    delta["manifest.csv"] = delta["manifest.csv"].replace(b"file.users,bulk", b"file.users,delta").replace(
        b"file.demographics,bulk", b"file.demographics,delta")  # fmt: skip
    header = delta["demographics.csv"].split(b"\r\n")[0]
    delta["demographics.csv"] = b"\r\n".join([header, b"guid-bill,,,2012-03-15,male" + b"," * 11,
                                               b"guid-teacher-9,,,1980-01-01,female" + b"," * 11,
                                               b"guid-new-kid,,,2013-01-01,male" + b"," * 11, b""])  # fmt: skip
    folder = write_bundle(tmp_path / "night2", delta)
    told = _import(home, folder)
    assert told.exit_code == 0, told.output
    assert ("2 demographics.csv row(s) of sourcedIds no student here holds were not read (teachers' and staff's are "
            "expected): guid-new-kid, guid-teacher-9. If one is a student's, import the SIS's bulk export to add the "
            "student.") in told.output  # fmt: skip
    again = json.loads(_import(home, folder, "--json").output)
    assert again["demographics_not_held"] == 2
    assert again["demographics_not_held_ids"] == ["guid-new-kid", "guid-teacher-9"]


def test_a_student_the_sis_renumbered_keeps_their_records_under_the_new_number(make_home, tmp_path) -> None:
    home = make_home()
    _import(home, write_bundle(tmp_path / "night1", make_bundle([AVA, BILL])))
    iep = tmp_path / "iep.pdf"
    iep.write_bytes(b"%PDF-1.4 Ava's IEP")
    run_cli(home, "documents", "add", "100001", str(iep), "--type", "iep", "--title", "Ava IEP", "--as", "coord")
    # A SIS migration renumbered every student (same sourcedIds). Was: refused, roster.ids_held, for each.
    renumbered = [AVA | {"sis_id": "200001"}, BILL | {"sis_id": "200002"}]
    told = _import(home, write_bundle(tmp_path / "night2", make_bundle(renumbered)))
    assert told.exit_code == 0, told.stderr
    assert "2 renumbered by the SIS (same sourcedId, a new SIS id): their records and history carried over" in (
        told.output)  # fmt: skip
    shown = run_cli(home, "students", "show", "200001").output
    assert "Ava" in shown and "Ava IEP" in shown
    assert "100001" in run_cli(home, "students", "show", "100001", ok=False).stderr  # no such student now
    again = json.loads(_import(home, write_bundle(tmp_path / "night2", make_bundle(renumbered)), "--json").output)
    assert (again["renumbered"], again["unchanged"]) == (0, 2)


def test_the_record_of_disclosures_of_a_renumbered_student_names_the_number_each_went_under(
    make_home, tmp_path
) -> None:
    import sqlite3

    home = make_home()
    _import(home, write_bundle(tmp_path / "night1", make_bundle([AVA, BILL])))
    def disclose(conn: sqlite3.Connection, sis_id: str, at: str) -> None:
        conn.execute("INSERT INTO disclosures (disclosure_id, student_sis_id, transfer_id, to_domain, to_name,"
                     " records, disclosed_by, at, purpose) VALUES (?, ?, ?, 'b.example.org', 'District B', '[]',"
                     " 'coord', ?, 'enrolment')", [at, sis_id, "01M9380G50N82A6A3AAA52C4Y" + at[3], at])  # fmt: skip

    with sqlite3.connect(home / "satchel.db") as conn:  # sent to B while she was 100001
        disclose(conn, "100001", "2026-01-02T10:00:00Z")
    _import(home, write_bundle(tmp_path / "night2", make_bundle([AVA | {"sis_id": "200001"}, BILL])))
    with sqlite3.connect(home / "satchel.db") as conn:  # and again under her new number, a day later
        renumbered_at = conn.execute("SELECT renumbered_at FROM former_sis_ids").fetchone()[0]
        disclose(conn, "200001", "2099-01-02T10:00:00Z")
    letter = run_cli(home, "disclosures", "200001", "--text").output.splitlines()
    # District B holds her first records under 100001: the parent (and B) must be able to tell it is her.
    assert f"SIS id:   200001 (formerly 100001 until {renumbered_at[:10]})" in letter
    first, second = letter.index("1. 2 January 2026, 10:00 UTC"), letter.index("2. 2 January 2099, 10:00 UTC")
    assert "   Sent as:       SIS id 100001" in letter[first:second]
    assert not any("Sent as" in line for line in letter[second:])
    shown = json.loads(run_cli(home, "disclosures", "100001", "--json").stdout)  # followed from the former number
    assert shown["former_sis_ids"] == [{"sis_id": "100001", "until": renumbered_at}]
    assert [d["sent_as"] for d in shown["disclosures"]] == ["100001", "200001"]
    assert "formerly" not in run_cli(home, "disclosures", "100002", "--text").output
