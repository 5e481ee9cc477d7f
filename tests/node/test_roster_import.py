"""A roster read as streams, with its join spilled to a scratch file, gives what it gives in memory; the import
stays all or nothing; and memory does not grow with the roster."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.roster_import import MAX_FILE_BYTES, RosterIdsHeld, RosterRowsInvalid, import_roster
from node.temp_sweep import sweep_orphans
from protocol import InvalidInput, SatchelError
from protocol.oneroster import read_oneroster
from protocol.roster import StudentRecord
from storage import students as stored_students
from storage.spill_map import SpillFile

from fixtures_oneroster import make_bundle, student_dicts, write_bundle
from support import peak_python_memory


def _outcome(files: dict[str, Any], spill: Any = None) -> object:
    try:
        reading = read_oneroster(files, spill=spill)
        students = list(reading.updates())  # each with the fields it does not tell
        return students, reading.errors(), reading.version, reading.delta
    except SatchelError as exc:
        return type(exc).__name__, exc.message, exc.field


@st.composite
def _rosters(draw: st.DrawFn) -> dict[str, bytes]:
    """Valid bundles, then some rows repeated (duplicate ids, second demographics), moved or cut short."""
    bundle = make_bundle(draw(student_dicts(max_size=5)), version=draw(st.sampled_from(["1.1", "1.2"])))
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(bundle)))
        lines = bundle[name].split(b"\r\n")
        at = draw(st.integers(0, len(lines) - 1))
        change = draw(st.sampled_from(["repeat", "drop", "cut"]))
        if change == "repeat":
            lines.insert(draw(st.integers(1, len(lines))), lines[at])
        elif change == "drop" and at > 0:
            del lines[at]
        else:
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
        bundle[name] = b"\r\n".join(lines)
    return bundle


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_rosters(), st.integers(1, 64))
def test_spilled_and_streamed_reads_as_in_memory(bundle: dict[str, bytes], chunk: int) -> None:
    streamed = {name: [data[i : i + chunk] for i in range(0, len(data), chunk)] for name, data in bundle.items()}
    with tempfile.TemporaryDirectory() as folder, SpillFile(Path(folder)) as spill:
        assert _outcome(streamed, spill.mapping) == _outcome(bundle)


_FAMILIES = ["Lopez", "Smith", "Nguyen", "Okafor", "Kowalski", "Haddad", "Tanaka", "Silva"]


def _student(i: int, **changes: str) -> dict[str, str]:
    # Names repeat, as in a real district: matching's name cache (bounded at 131,072 names) stays small here.
    return {"sis_id": f"S{i:06d}", "given_name": "Ana", "family_name": _FAMILIES[i % 8], "birth_date": "2012-03-04",
            "sex": "F", "grade": "07", "school_id": "0101", "enrollment_start": "2024-08-19",
            "email": f"s{i}@example.org"} | changes  # fmt: skip


def _students_in(node: Any) -> list[tuple]:
    return node.db.execute("SELECT sis_id, family_name, school_id, enrollment_start FROM students "
                           "ORDER BY sis_id").fetchall()  # fmt: skip


@pytest.mark.parametrize("as_zip", [False, True])
def test_a_spilled_import_saves_what_an_in_memory_one_saves(node: Any, tmp_path: Path, as_zip: bool) -> None:
    folder = write_bundle(tmp_path / "roster", make_bundle([_student(i) for i in range(300)]))
    path = folder
    if as_zip:
        path = tmp_path / "roster.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for file in folder.iterdir():
                archive.write(file, f"export/{file.name}")
    spilled = import_roster(node, actor="coord", path=path, skip_invalid=False, spill_over=0)
    assert (spilled.counts.inserted, spilled.skipped_rows) == (300, ())
    saved = _students_in(node)
    assert saved[0] == ("S000000", "Lopez", "0101", "2024-08-19") and len(saved) == 300
    node.db.execute("DELETE FROM student_match_keys")
    node.db.execute("DELETE FROM students")
    in_memory = import_roster(node, actor="coord", path=path, skip_invalid=False)
    assert in_memory.counts == spilled.counts and _students_in(node) == saved
    assert list(node.blobs.tmp_dir.iterdir()) == []  # the scratch file went


def test_a_bad_record_stops_the_import_before_a_student_is_saved(node: Any, tmp_path: Path) -> None:
    # The e-mail is only checked when the record is built, after the files are read: the last of 12,000.
    students = [_student(i) for i in range(12_000)] + [_student(12_000, email="not an address")]
    folder = write_bundle(tmp_path / "roster", make_bundle(students))
    with pytest.raises(RosterRowsInvalid) as raised:
        import_roster(node, actor="coord", path=folder, skip_invalid=False, spill_over=0)
    assert [(e.file, e.line, e.field) for e in raised.value.rows] == [("users.csv", 12_002, "email")]
    assert _students_in(node) == []
    assert list(node.blobs.tmp_dir.iterdir()) == []
    assert _roster_audit(node) == []
    skipped = import_roster(node, actor="coord", path=folder, skip_invalid=True, spill_over=0)
    assert skipped.counts.inserted == 12_000 and len(skipped.skipped_rows) == 1
    assert _roster_audit(node) == [
        ("roster.import", {"students": 12_000, "skipped": 1}),
        ("roster.import.finished", {"inserted": 12_000, "updated": 0, "unchanged": 0, "marked_inactive": 0}),
    ]
    # Nothing to change: nothing to audit, as before.
    students_only = write_bundle(tmp_path / "valid", make_bundle(students[:-1]))
    assert import_roster(node, actor="coord", path=students_only, skip_invalid=False).counts.unchanged == 12_000
    assert len(_roster_audit(node)) == 2


def test_a_birth_date_in_the_future_or_before_1900_is_refused(node: Any, tmp_path: Path) -> None:
    # Checked against the node's own today; an enrollment that ended is still not taken as a student gone.
    students = [_student(0, birth_date="2102-03-04"), _student(1, birth_date="0001-01-01"), _student(2)]
    folder = write_bundle(tmp_path / "roster", make_bundle(students))
    with pytest.raises(RosterRowsInvalid) as raised:
        import_roster(node, actor="coord", path=folder, skip_invalid=False)
    assert [(e.file, e.line, e.field) for e in raised.value.rows] == [
        ("demographics.csv", 2, "birthDate"), ("demographics.csv", 3, "birthDate"),
    ]  # fmt: skip
    assert "in the future" in raised.value.rows[0].message and "before 1900" in raised.value.rows[1].message
    assert _students_in(node) == []


def _roster_audit(node: Any) -> list[tuple[str, dict]]:
    rows = node.db.execute("SELECT action, details FROM audit_log WHERE action LIKE 'roster.import%' ORDER BY seq")
    return [(action, json.loads(details)) for action, details in rows]


def test_the_students_are_saved_a_batch_at_a_time(node: Any, tmp_path: Path) -> None:
    """So that the serving node's writes (which wait on its event loop) wait for a batch, not the import."""
    folder = write_bundle(tmp_path / "roster", make_bundle([_student(i) for i in range(12_000)]))
    other = sqlite3.connect(node.config.db_path)  # another process's view: it sees only committed changes
    seen: list[int] = []

    def saved(done: int, total: int) -> None:
        seen.append(other.execute("SELECT count(*) FROM students").fetchone()[0])

    import_roster(node, actor="coord", path=folder, skip_invalid=False, progress=saved)
    # Told after each batch is committed: others see each batch as it is told.
    assert seen == [5_000, 10_000, 12_000]
def test_a_roster_import_whose_operator_is_disabled_while_it_runs_stops_between_batches(
    node: Any, tmp_path: Path
) -> None:
    from node.errors import OperatorDisabled
    from node.operators import disable_user

    folder = write_bundle(tmp_path / "roster", make_bundle([_student(i) for i in range(12_000)]))

    def disable_after_the_first(done: int, total: int) -> None:
        if done == 5_000:  # an admin takes the account away between two batches
            disable_user(node, actor="admin", username="coord")

    with pytest.raises(OperatorDisabled) as stopped:
        import_roster(node, actor="coord", path=folder, skip_invalid=False, progress=disable_after_the_first)
    said = "coord was disabled while this ran: importing roster stopped after 5,000 of 12,000 rows"
    assert said in stopped.value.message
    assert len(_students_in(node)) == 5_000  # the batch saved before stays, attributed to coord
    (entry,) = node.db.execute("SELECT actor FROM audit_log WHERE action = 'roster.import'").fetchall()
    assert entry == ("coord",)
    # The trail says the run stopped, how far it got and why; no `.finished` claims it completed.
    assert _roster_audit(node) == [
        ("roster.import", {"students": 12_000, "skipped": 0}),
        ("roster.import.stopped", {"inserted": 5_000, "updated": 0, "unchanged": 0, "marked_inactive": 0,
                                   "done": 5_000, "of": 12_000, "error": "operator.disabled",
                                   "reason": stopped.value.message}),
    ]  # fmt: skip


def _peak_python_memory(node: Any, folder: Path) -> int:
    node.db.execute("DELETE FROM student_match_keys")
    node.db.execute("DELETE FROM students")
    return peak_python_memory(lambda: import_roster(node, actor="coord", path=folder, skip_invalid=False,
                                                    spill_over=0))  # fmt: skip


def test_memory_does_not_grow_with_the_roster(node: Any, tmp_path: Path) -> None:
    warm = write_bundle(tmp_path / "warm", make_bundle([_student(i) for i in range(200)]))
    small = write_bundle(tmp_path / "small", make_bundle([_student(i) for i in range(10_000)]))
    large = write_bundle(tmp_path / "large", make_bundle([_student(i) for i in range(20_000)]))
    _peak_python_memory(node, warm)  # imports, caches
    peaks = [_peak_python_memory(node, small), _peak_python_memory(node, large)]
    # What is held at once is a read chunk or two (256 KiB each), a batch of 5,000 students and the scratch
    # file's page cache (SQLite's, not Python's): both rosters are longer than those, so the peak is the
    # same. In dicts, the 10,000 more students took 17 MB more.
    assert peaks[1] - peaks[0] < 1 << 20, peaks
    assert sqlite3.connect(node.config.db_path).execute("SELECT count(*) FROM students").fetchone()[0] == 20_000


def test_the_scratch_file_of_an_import_killed_midway_is_swept(node: Any) -> None:
    node.blobs.tmp_dir.mkdir(parents=True, exist_ok=True)
    with SpillFile(node.blobs.tmp_dir) as spill:
        left = spill.path.with_name(spill.path.name.replace(f"-p{os.getpid()}-", "-p4194999-"))  # no such process
        shutil.copyfile(spill.path, left)
    os.utime(left, (0, 0))
    assert sweep_orphans(node, min_age=60) == 1
    assert not left.exists()


_ZIPPED = {}


def _zipped_sample() -> bytes:
    if not _ZIPPED:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in make_bundle([_student(i) for i in range(40)]).items():
                archive.writestr(f"export/{name}", data)
        _ZIPPED["bytes"] = buffer.getvalue()
    return _ZIPPED["bytes"]


def test_a_zip_holding_a_file_without_a_name_is_refused_as_damaged(node: Any, tmp_path: Path) -> None:
    # Found by the test below: one byte of the list of files set to 0 left a name empty, and zipfile's own
    # is_dir() failed on it with an IndexError that reached the registrar as an internal error.
    path = tmp_path / "roster.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in make_bundle([_student(0)]).items():
            archive.writestr(name, content)
        archive.writestr(zipfile.ZipInfo(""), b"x")
    with pytest.raises(InvalidInput) as raised:
        import_roster(node, actor="coord", path=path, skip_invalid=False)
    assert "damaged" in raised.value.message and "a file in it has no name" in raised.value.message


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None,
          max_examples=60)  # fmt: skip
@given(st.data())
def test_a_damaged_zip_is_refused_as_such(node: Any, tmp_path: Path, data: st.DataObject) -> None:
    original = _zipped_sample()
    start = data.draw(st.integers(0, len(original) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=24))
    path = tmp_path / "roster.zip"
    path.write_bytes(original[:start] + junk + original[start + len(junk) :])
    try:
        import_roster(node, actor="coord", path=path, skip_invalid=False)
    except SatchelError as exc:  # never an internal error
        assert exc.code in ("input.invalid", "roster.rows_invalid", "roster.missing_file", "roster.ambiguous_file",
                            "csv.encoding", "csv.malformed", "csv.missing_column"), exc.code  # fmt: skip


def _refused(node: Any, tmp_path: Path, data: bytes) -> pytest.ExceptionInfo[InvalidInput]:
    """Import ``data`` as roster.zip, which must be refused with InvalidInput."""
    path = tmp_path / "roster.zip"
    path.write_bytes(data)
    with pytest.raises(InvalidInput) as raised:
        import_roster(node, actor="coord", path=path, skip_invalid=False)
    return raised


def test_a_zip_whose_file_header_says_utf_8_but_is_not_is_refused_as_damaged(node: Any, tmp_path: Path) -> None:
    # Found by the damaged-zip property test (CI, 2026-12-06): junk that set the UTF-8 flag of a file's own
    # header made zipfile decode that header's name as UTF-8 when the file was opened, and its
    # UnicodeDecodeError reached the registrar as an internal error.
    damaged = bytearray(_zipped_sample())
    at = damaged.find(b"PK\x03\x04")
    while at != -1:  # every file's local header: UTF-8 flag set (bit 11), first byte of the name not UTF-8
        damaged[at + 7] |= 0x08
        damaged[at + 30] = 0xFF
        at = damaged.find(b"PK\x03\x04", at + 4)
    raised = _refused(node, tmp_path, bytes(damaged))
    assert "the zip file is damaged or uses a compression Satchel does not read" in raised.value.message


def test_a_zip_whose_files_would_start_before_it_does_is_refused_as_damaged(node: Any, tmp_path: Path) -> None:
    # Found by the damaged-zip property test with more examples: the end record's offset of the list of files
    # raised by one byte puts every file before the start of the zip (zipfile corrects the offsets by the
    # difference, for bytes prepended to a zip), and opening one sought to a negative position: an OSError, an
    # internal error.
    damaged = bytearray(_zipped_sample())
    end = damaged.rindex(b"PK\x05\x06")
    damaged[end + 19] += 1  # the high byte of the list's offset
    raised = _refused(node, tmp_path, bytes(damaged))
    assert "damaged" in raised.value.message and "before the zip" in raised.value.message


def test_a_zip_asking_for_a_newer_zip_version_is_refused_as_damaged(node: Any, tmp_path: Path) -> None:
    # zipfile raises NotImplementedError ("zip file version 6.4") from its constructor for such a header.
    original = bytearray(_zipped_sample())
    central = original.index(b"PK\x01\x02")
    original[central + 6 : central + 8] = (64).to_bytes(2, "little")  # version needed to extract: 6.4
    raised = _refused(node, tmp_path, bytes(original))
    assert "the zip file is damaged or uses a compression Satchel does not read" in raised.value.message


def test_a_zip_with_a_password_is_named_as_such(node: Any, tmp_path: Path) -> None:
    # zipfile raises RuntimeError ("password required") for a member flagged encrypted (hypothesis found it).
    original = bytearray(_zipped_sample())
    central = original.index(b"PK\x01\x02")
    original[central + 8] |= 0x1  # general purpose flag: encrypted
    raised = _refused(node, tmp_path, bytes(original))
    assert "is encrypted (the zip has a password)" in raised.value.message
    assert "unzip it with its password" in (raised.value.hint or "")


def test_a_zip_cut_short_is_named_damaged_not_unknown(node: Any, tmp_path: Path) -> None:
    # A download that stopped: no list of files at the end.
    raised = _refused(node, tmp_path, _zipped_sample()[:-300])
    assert raised.value.message.startswith("roster.zip cannot be read: the zip file is damaged")
    assert "make the zip again" in (raised.value.hint or "")


def test_a_file_too_large_for_a_roster_is_refused_before_it_is_read(node: Any, tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "roster", make_bundle([_student(1)]))
    with (folder / "demographics.csv").open("r+b") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk taken
    with pytest.raises(InvalidInput) as refused:
        import_roster(node, actor="coord", path=folder, skip_invalid=False)
    assert refused.value.message == "demographics.csv is larger than 512 MiB, more than any district's roster"
    assert refused.value.field == "PATH" and "one bundle per school" in (refused.value.hint or "")
    assert _students_in(node) == []


def test_a_roster_whose_every_row_is_bad_keeps_the_first_thousand_and_counts_all(node: Any, tmp_path: Path) -> None:
    # Every address is bad (found once all files are read) and one birth date (found as demographics.csv is
    # read, before): listed by file and line, so the first thousand are users.csv's and the date is not shown.
    students = [_student(i, email="not an address") for i in range(1500)]
    students[-1]["birth_date"] = "2012-02-30"
    folder = write_bundle(tmp_path / "roster", make_bundle(students))
    with pytest.raises(RosterRowsInvalid) as raised:
        import_roster(node, actor="coord", path=folder, skip_invalid=False)
    assert raised.value.count == 1500 and raised.value.message.startswith("1500 row(s) are invalid")
    assert [(e.file, e.line) for e in raised.value.rows] == [("users.csv", line) for line in range(2, 1002)]
    skipped = import_roster(node, actor="coord", path=folder, skip_invalid=True)
    assert skipped.skipped == 1500 and skipped.skipped_rows == raised.value.rows
    assert _roster_audit(node)[-1] == ("roster.import.finished", {"inserted": 0, "updated": 0, "unchanged": 0,
                                                            "marked_inactive": 0})


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_rows_of_one_student_in_different_chunks_join_as_in_memory(version: str) -> None:
    # The reader looks students up CHUNK_ROWS rows at a time: a repeat, a second demographics row, a second
    # enrollment or role read a thousand rows after the first must still meet what the first left; and the
    # students the record checks refuse (more than a chunk of them) are all left out.
    refused = range(2_500, 2_650)
    students = [_student(i) for i in range(2_500)] + [_student(i, email="not an address") for i in refused]
    bundle = make_bundle(students, version=version)
    files = {name: data.split(b"\r\n") for name, data in bundle.items()}
    files["users.csv"].insert(2_000, files["users.csv"][4])  # student 3 again, as line 2,001
    files["demographics.csv"].insert(1_800, files["demographics.csv"][5])  # student 4's, as line 1,801
    enrollment = next(row for row in files["enrollments.csv"] if b",u-S000007," in row)
    files["enrollments.csv"].insert(2_200, enrollment.replace(b"2024-08-19", b"2023-01-02").replace(b"enr-", b"enr-x"))
    if version == "1.2":  # roles.csv: a second role of student 8 in another school, one of student 9 in no org
        files["orgs.csv"].insert(2, b"org-school-2,,,Other School,school,0202,org-district")
        role = next(row for row in files["roles.csv"] if b",u-S000008," in row)
        files["roles.csv"].insert(2_300, role.replace(b"role-", b"role-x").replace(b"primary", b"secondary")
                                  .replace(b"org-school-1", b"org-school-2"))  # fmt: skip
        role = next(row for row in files["roles.csv"] if b",u-S000009," in row)
        files["roles.csv"].insert(2_400, role.replace(b"role-", b"role-y").replace(b"org-school-1", b"org-gone"))
    bundle = {name: b"\r\n".join(lines) for name, lines in files.items()}
    with tempfile.TemporaryDirectory() as folder, SpillFile(Path(folder)) as spill:
        spilled = _outcome(bundle, spill.mapping)
    assert spilled == _outcome(bundle)
    students_read, errors, _, _ = spilled  # type: ignore[misc]
    expected = [("users.csv", 2_001, "sourcedId"), ("users.csv", 2_001, "identifier"),
                ("demographics.csv", 1_801, "sourcedId")]  # fmt: skip
    if version == "1.2":
        expected.insert(0, ("roles.csv", 2_401, "orgSourcedId"))
    found = [(e.file, e.line, e.field) for e in errors]
    assert [e for e in found if e[2] != "email"] == expected  # in file order, then line
    assert [e[1] for e in found if e[2] == "email"] == [i + 3 for i in refused]  # every one, a chunk or two
    assert "line 5" in errors[found.index(("users.csv", 2_001, "sourcedId"))].message
    by_id = {s.sis_id: s for s, _merge in students_read}
    assert "S000004" not in by_id  # a second demographics row drops the student
    assert not {f"S{i:06d}" for i in refused} & set(by_id)
    assert len(by_id) == 2_499 - (version == "1.2")  # and a role in no org drops student 9
    assert by_id["S000003"].family_name == "Okafor"  # the first users row stands
    assert by_id["S000007"].enrollment_start == "2023-01-02"
    assert by_id["S000008"].school_id == "0101"  # the primary role, read 2,000 rows before the other, comes first


# --- what a bundle does not tell: delta exports, files not there ---------------------------------------


def _import(node: Any, tmp_path: Path, name: str, students: list[dict], **options: Any) -> Any:
    bundle = options.pop("bundle", None) or make_bundle(students)
    return import_roster(node, actor="coord", path=write_bundle(tmp_path / name, bundle), **options)


def _told(node: Any) -> list[tuple]:
    return node.db.execute("SELECT sis_id, birth_date, sex, enrollment_start, school_id, school_name, email, "
                           "enrollment_status FROM students ORDER BY sis_id").fetchall()  # fmt: skip


def _delta(students: list[dict], *, files: tuple[str, ...], rows: dict[str, list[bytes]] | None = None) -> dict:
    """A bundle whose ``files`` are deltas holding no rows but those of ``rows`` (lines without the header)."""
    bundle = make_bundle(students)
    for name in files:
        stem = name.removesuffix(".csv")
        mode = f"file.{stem},".encode()
        bundle["manifest.csv"] = bundle["manifest.csv"].replace(mode + b"bulk", mode + b"delta")
        if name != "users.csv":
            header = bundle[name].split(b"\r\n")[0]
            bundle[name] = b"\r\n".join([header, *(rows or {}).get(name, [])]) + b"\r\n"
    return bundle


def test_a_delta_export_changes_only_what_it_has_rows_for(node: Any, tmp_path: Path) -> None:
    ava, bill = _student(1), _student(2, birth_date="2011-11-02", sex="M")
    _import(node, tmp_path, "bulk", [ava, bill], skip_invalid=False)
    before = _told(node)
    # The next night's delta: Ava's e-mail changed (users.csv); nothing else did, so demographics.csv,
    # enrollments.csv and orgs.csv (whose school her row names) hold no row. Bill is not in it.
    delta = _delta([ava | {"email": "ava@new.example.org"}],
                   files=("users.csv", "orgs.csv", "demographics.csv", "enrollments.csv"))  # fmt: skip
    result = _import(node, tmp_path, "delta", [], bundle=delta, skip_invalid=False)
    assert (result.counts.updated, result.marked_inactive, result.skipped) == (1, 0, 0)
    assert _told(node) == [(*before[0][:6], "ava@new.example.org", "active"), before[1]]
    # An enrollment a delta adds is one of the student's enrollments, not all of them: the earlier date stands.
    later = b"enr-9,,,class-org-school-1,org-school-1,u-S000001,student,false,2025-01-06,"
    _import(node, tmp_path, "later", [], skip_invalid=False,
            bundle=_delta([ava], files=("users.csv", "enrollments.csv"), rows={"enrollments.csv": [later]}))
    assert _told(node)[0][3] == "2024-08-19"
    earlier = later.replace(b"2025-01-06", b"2023-08-21")
    _import(node, tmp_path, "earlier", [], skip_invalid=False,
            bundle=_delta([ava], files=("users.csv", "enrollments.csv"), rows={"enrollments.csv": [earlier]}))
    assert _told(node)[0][3] == "2023-08-21"
    # A demographics row in a delta is the student's demographics now.
    corrected = b"u-S000001,,,2012-04-03,male" + b"," * 11
    _import(node, tmp_path, "fixed", [], skip_invalid=False,
            bundle=_delta([ava], files=("users.csv", "demographics.csv"), rows={"demographics.csv": [corrected]}))
    assert _told(node)[0][1:3] == ("2012-04-03", "M")


def _stored(node: Any, sis_id: str) -> StudentRecord:
    found = stored_students.get(node.db, sis_id)
    assert found is not None
    return found.record


@pytest.mark.parametrize("spill_over", [0, 1 << 30], ids=["spilled", "in memory"])
def test_a_delta_applies_its_rows_of_students_its_users_csv_does_not_list(
    node: Any, tmp_path: Path, spill_over: int
) -> None:
    ava, bill, cy = _student(1), _student(2, birth_date="2011-11-02", sex="M"), _student(3)
    _import(node, tmp_path, "bulk", [ava, bill, cy], skip_invalid=False)
    bill_before, cy_before = _stored(node, "S000002"), _stored(node, "S000003")
    # The next night's delta: Ava's e-mail changed; Bill's birth date was corrected and Cy was found to have
    # enrolled a year earlier, but neither changed in users.csv, so its rows for them are all the delta has.
    # Bill's later enrollment moves nothing; a teacher's demographics (users.csv lists the teacher) is no
    # student's.
    rows = {
        "demographics.csv": [b"u-S000002,,,2011-12-02,female" + b"," * 11,
                             b"fixture teacher 1,,,1980-01-01,male" + b"," * 11],
        "enrollments.csv": [b"enr-7,,,class-org-school-1,org-school-1,u-S000003,student,false,2023-08-21,",
                            b"enr-8,,,class-org-school-1,org-school-1,u-S000002,student,false,2025-01-06,"],
    }  # fmt: skip
    delta = _delta([ava | {"email": "ava@new.example.org"}],
                   files=("users.csv", "orgs.csv", "demographics.csv", "enrollments.csv"), rows=rows)  # fmt: skip
    result = _import(node, tmp_path, "delta", [], bundle=delta, skip_invalid=False, spill_over=spill_over)
    assert (result.counts.updated, result.counts.unchanged, result.skipped) == (3, 0, 0)
    assert _stored(node, "S000001").email == "ava@new.example.org"
    # Only what the rows tell changes: the rest of each student stays as stored.
    assert _stored(node, "S000002") == replace(bill_before, birth_date="2011-12-02", sex="F")
    assert _stored(node, "S000003") == replace(cy_before, enrollment_start="2023-08-21")
    assert _roster_audit(node)[-1][1]["updated"] == 3
    # Run again, it changes nothing.
    again = _import(node, tmp_path, "delta", [], bundle=delta, skip_invalid=False, spill_over=spill_over)
    assert (again.counts.updated, again.counts.unchanged) == (0, 3)


@pytest.mark.parametrize("spill_over", [0, 1 << 30], ids=["spilled", "in memory"])
def test_a_delta_row_of_a_student_not_held_is_refused_naming_its_sourced_id(
    node: Any, tmp_path: Path, spill_over: int
) -> None:
    _import(node, tmp_path, "bulk", [_student(1), _student(2)], skip_invalid=False)
    before = _told(node)
    rows = {
        "demographics.csv": [b"u-S000002,,,2011-12-02,female" + b"," * 11,
                             b"u-S000099,,,2012-01-01,male" + b"," * 11],
        "enrollments.csv": [b"enr-7,,,class-org-school-1,org-school-1,u-S000099,student,false,2023-08-21,"],
    }  # fmt: skip
    delta = _delta([], files=("users.csv", "orgs.csv", "demographics.csv", "enrollments.csv"), rows=rows)
    with pytest.raises(RosterRowsInvalid) as raised:
        _import(node, tmp_path, "delta", [], bundle=delta, skip_invalid=False, spill_over=spill_over)
    assert [(r.file, r.line, r.field) for r in raised.value.rows] == [
        ("demographics.csv", 3, "sourcedId"), ("enrollments.csv", 2, "userSourcedId")]  # fmt: skip
    assert all("'u-S000099'" in r.message and "bulk export" in r.message
               for r in raised.value.rows)  # fmt: skip
    assert _told(node) == before  # nothing changed
    # Skipped, the rows of the student held are applied.
    result = _import(node, tmp_path, "delta", [], bundle=delta, skip_invalid=True, spill_over=spill_over)
    assert (result.counts.updated, result.skipped) == (1, 2)
    assert _stored(node, "S000002").birth_date == "2011-12-02"


@pytest.mark.parametrize("spill_over", [0, 1 << 30], ids=["spilled", "in memory"])
def test_a_delta_with_demographics_alone_of_someone_not_held_is_imported_and_they_are_named(
    node: Any, tmp_path: Path, spill_over: int
) -> None:
    # demographics.csv covers teachers and staff too, and a delta need not name them in any other file: a
    # corrected teacher's birth date must not stop the nightly import of every student's changes. But such a row
    # may be a student's the bulk export never added: the import counts and names them, not silently.
    _import(node, tmp_path, "bulk", [_student(1), _student(2)], skip_invalid=False)
    rows = {"demographics.csv": [b"u-S000002,,,2011-12-02,female" + b"," * 11,
                                 b"staff-guid-7,,,1979-03-04,male" + b"," * 11,
                                 b"u-S000099,,,2012-05-06,male" + b"," * 11]}  # fmt: skip
    delta = _delta([], files=("users.csv", "demographics.csv"), rows=rows)
    result = _import(node, tmp_path, "delta", [], bundle=delta, skip_invalid=False, spill_over=spill_over)
    assert (result.counts.updated, result.skipped) == (1, 0)
    assert result.demographics_not_held == 2
    assert result.demographics_not_held_ids == ("staff-guid-7", "u-S000099")
    assert _roster_audit(node)[-1][1]["demographics_not_held"] == 2
    assert _stored(node, "S000002").birth_date == "2011-12-02"
    assert stored_students.get(node.db, "staff-guid-7") is None
    # A bulk export's rows of users it does not list are none of this: nothing to report.
    bulk = _import(node, tmp_path, "bulk2", [_student(1), _student(2)], skip_invalid=False)
    assert (bulk.demographics_not_held, bulk.demographics_not_held_ids) == (0, ())


def test_a_delta_row_of_a_sourced_id_two_students_hold_is_refused_naming_both(node: Any, tmp_path: Path) -> None:
    # From before sourcedIds were checked: two students under one sourcedId. The row cannot say whose it is.
    twice = [StudentRecord(sis_id=sis_id, source_id="guid-x", given_name="Ana", family_name="Lopez",
                           birth_date=None, sex=None, grade=None) for sis_id in ("S1", "S2")]  # fmt: skip
    stored_students.upsert(node.db, twice, now="2026-01-01T00:00:00Z")
    delta = _delta([], files=("users.csv", "demographics.csv"),
                   rows={"demographics.csv": [b"guid-x,,,2011-12-02,female" + b"," * 11]})  # fmt: skip
    with pytest.raises(RosterRowsInvalid) as raised:
        _import(node, tmp_path, "delta", [], bundle=delta, skip_invalid=False)
    (row,) = raised.value.rows
    assert "'guid-x'" in row.message and "'S1', 'S2'" in row.message


def test_a_bulk_export_reads_no_rows_of_users_it_does_not_list(node: Any, tmp_path: Path) -> None:
    # A bulk users.csv lists every student: a demographics or enrollment row of anyone else is none of theirs,
    # even of a student held here (one the roster no longer lists: marked inactive, not changed otherwise).
    _import(node, tmp_path, "first", [_student(1), _student(2)], skip_invalid=False)
    bundle = make_bundle([_student(1)])
    bundle["demographics.csv"] += b"u-S000002,,,2001-01-01,male" + b"," * 11 + b"\r\n"
    bundle["demographics.csv"] += b"u-S000099,,,2001-01-01,male" + b"," * 11 + b"\r\n"
    result = _import(node, tmp_path, "bulk", [], bundle=bundle, skip_invalid=False)
    assert (result.counts.unchanged, result.marked_inactive, result.skipped) == (1, 1, 0)
    assert _stored(node, "S000002").birth_date == "2012-03-04"


@pytest.mark.parametrize("how", ["absent", "not in the manifest", "a stale copy left"])
def test_a_bundle_without_demographics_keeps_birth_dates_and_sex(node: Any, tmp_path: Path, how: str) -> None:
    students = [_student(1), _student(2, birth_date="2011-11-02", sex="M")]
    _import(node, tmp_path, "full", students, skip_invalid=False)
    before = _told(node)
    bundle = make_bundle([s | {"family_name": "Okafor"} for s in students])
    if how == "not in the manifest":
        bundle["manifest.csv"] = bundle["manifest.csv"].replace(b"file.demographics,bulk\r\n", b"")
    else:
        bundle["manifest.csv"] = bundle["manifest.csv"].replace(b"file.demographics,bulk", b"file.demographics,absent")
    if how == "a stale copy left":  # in the folder the SIS exports into, from an earlier export: not read
        bundle["demographics.csv"] = bundle["demographics.csv"].split(b"\r\n")[0] + b"\r\n"
    else:
        del bundle["demographics.csv"]
    result = _import(node, tmp_path, "nodemo", [], bundle=bundle, skip_invalid=False)
    assert result.counts.updated == 2 and _told(node) == before
    assert {row[0] for row in node.db.execute("SELECT family_name FROM students")} == {"Okafor"}
    # A bulk demographics.csv tells them all: a student without a row there has no birth date or sex.
    bundle = make_bundle(students)
    bundle["demographics.csv"] = bundle["demographics.csv"].split(b"\r\n")[0] + b"\r\n"
    _import(node, tmp_path, "nodates", [], bundle=bundle, skip_invalid=False)
    assert [row[1:3] for row in _told(node)] == [(None, None), (None, None)]


# --- who a row is: its SIS id and its sourcedId (OneRoster's id of the person) ------------------------------


def _held(node: Any) -> list[tuple]:
    return node.db.execute("SELECT sis_id, source_id, given_name, enrollment_status FROM students "
                           "ORDER BY sis_id").fetchall()  # fmt: skip


def test_a_sis_id_the_sis_gave_another_child_is_refused_naming_both(node: Any, tmp_path: Path) -> None:
    # Ava leaves; the SIS gives her number to Zoe, another person (another sourcedId). Updating the row made
    # Ava's records and disclosures Zoe's.
    ava = _student(1, source_id="guid-ava", given_name="Ava")
    zoe = _student(1, source_id="guid-zoe", given_name="Zoe", birth_date="2016-09-01", grade="03")
    _import(node, tmp_path, "night1", [ava, _student(2)], skip_invalid=False)
    before = _held(node)
    with pytest.raises(RosterIdsHeld) as raised:
        _import(node, tmp_path, "night2", [zoe, _student(2)], skip_invalid=False)
    (row,) = raised.value.rows
    assert (row.file, row.line, row.field) == ("users.csv", 2, "identifier")
    assert "'S000001'" in row.message and "'guid-ava'" in row.message and "'guid-zoe'" in row.message
    assert raised.value.code == "roster.ids_held" and "never gave anyone before" in (raised.value.hint or "")
    assert _held(node) == before
    # Skipped, Zoe is not imported; Ava, whom the roster no longer lists, is marked inactive.
    skipped = _import(node, tmp_path, "night2", [zoe, _student(2)], skip_invalid=True)
    assert (skipped.skipped, skipped.ids_held, skipped.marked_inactive) == (1, 1, 1)
    assert _held(node)[0] == ("S000001", "guid-ava", "Ava", "inactive")


def test_new_sourced_ids_from_a_new_sis_are_taken_as_the_same_students(node: Any, tmp_path: Path) -> None:
    _import(node, tmp_path, "old-sis", [_student(1, source_id="old-1"), _student(2, source_id="old-2")],
            skip_invalid=False)  # fmt: skip
    new = [_student(1, source_id="new-1"), _student(2, source_id="new-2")]
    with pytest.raises(RosterIdsHeld):
        _import(node, tmp_path, "new-sis", new, skip_invalid=False)
    result = _import(node, tmp_path, "new-sis", new, skip_invalid=False, new_sourced_ids=True)
    assert (result.counts.updated, result.marked_inactive) == (2, 0)
    assert _roster_audit(node)[-2] == ("roster.import", {"students": 2, "skipped": 0, "new_sourced_ids": True})
    assert [(sis, source) for sis, source, _, _ in _held(node)] == [("S000001", "new-1"), ("S000002", "new-2")]
    # And they are those students from now on.
    assert _import(node, tmp_path, "new-sis", new, skip_invalid=False).counts.unchanged == 2


def _history(node: Any) -> list[tuple]:
    """Where Ava's IEP, disclosure and match keys are."""
    return [node.db.execute("SELECT student_sis_id FROM documents").fetchall(),
            node.db.execute("SELECT student_sis_id FROM disclosures").fetchall(),
            node.db.execute("SELECT DISTINCT sis_id FROM student_match_keys ORDER BY sis_id").fetchall()]  # fmt: skip


@pytest.mark.parametrize("spill_over", [0, 1 << 30], ids=["spilled", "in memory"])
def test_a_student_the_sis_renumbered_is_carried_over_with_everything_naming_them(
    node: Any, tmp_path: Path, spill_over: int
) -> None:
    # Same child (sourcedId), new number, as after a SIS migration. Inserting the row made a second active
    # student, the records staying on the first; refusing it left the district unable to import its roster.
    ava = _student(1, source_id="guid-ava", given_name="Ava")
    _import(node, tmp_path, "night1", [ava, _student(2)], skip_invalid=False)
    node.db.execute("INSERT INTO documents (doc_id, student_sis_id, doc_type, title, filename, media_type, length, "
                    "sha256, created_at, created_by) VALUES ('D1', 'S000001', 'iep', 'IEP', 'iep.pdf', "
                    "'application/pdf', 1, '00', '2026-01-01', 'coord')")  # fmt: skip
    node.db.execute("INSERT INTO disclosures (disclosure_id, student_sis_id, transfer_id, to_domain, to_name, records, "
                    "disclosed_by, at, purpose) VALUES ('X1', 'S000001', 'T1', 'b.example.org', 'B', '[]', 'coord', "
                    "'2026-01-02', 'enrolment')")  # fmt: skip
    # The SIS renumbered her, and corrected her family name the same night: still plainly the same child.
    renumbered = ava | {"sis_id": "S200001", "family_name": "Lopes"}
    result = _import(node, tmp_path, "night2", [renumbered, _student(2)], skip_invalid=False, spill_over=spill_over)
    assert (result.renumbered, result.counts.inserted, result.counts.updated, result.skipped) == (1, 0, 1, 0)
    assert result.marked_inactive == 0
    assert _held(node) == [("S000002", "u-S000002", "Ana", "active"), ("S200001", "guid-ava", "Ava", "active")]
    assert _stored(node, "S200001").family_name == "Lopes"
    assert _history(node) == [[("S200001",)], [("S200001",)], [("S000002",), ("S200001",)]]
    renumbering = node.db.execute("SELECT subject, details FROM audit_log WHERE action = 'student.renumbered'")
    assert [(subject, json.loads(details)) for subject, details in renumbering] == [
        ("S200001", {"from": "S000001", "to": "S200001", "source_id": "guid-ava"})]  # fmt: skip
    assert _roster_audit(node)[-1][1]["renumbered"] == 1
    # She is that number from now on.
    again = _import(node, tmp_path, "night2", [renumbered, _student(2)], skip_invalid=False)
    assert (again.renumbered, again.counts.unchanged) == (0, 2)


def test_a_row_of_another_child_under_a_held_sourced_id_is_refused_naming_both(node: Any, tmp_path: Path) -> None:
    # Same sourcedId, a new number, but another name and birth date: not a renumbering (a reused sourcedId, or
    # another district's export). Carrying Ava's records over would give them to this child.
    ava = _student(1, source_id="guid-ava", given_name="Ava")
    _import(node, tmp_path, "night1", [ava], skip_invalid=False)
    other = _student(7, source_id="guid-ava", given_name="Zoe", family_name="Nguyen", birth_date="2016-09-01")
    with pytest.raises(RosterIdsHeld) as raised:
        _import(node, tmp_path, "night2", [other], skip_invalid=False)
    (row,) = raised.value.rows
    assert row.field == "identifier" and "'S000001'" in row.message and "'S000007'" in row.message
    assert "Ava" in row.message and "Zoe" in row.message and "another child" in row.message
    skipped = _import(node, tmp_path, "night2", [other], skip_invalid=True)
    assert (skipped.renumbered, skipped.counts.inserted, skipped.marked_inactive) == (0, 0, 0)
    assert _held(node) == [("S000001", "guid-ava", "Ava", "active")]
    # Two students under one sourcedId (from before sourcedIds were checked): which was renumbered is not said.
    stored_students.upsert(node.db, [StudentRecord(sis_id="S1", source_id="guid-x", given_name="Ana",
                                                   family_name="Lopez", birth_date=None, sex=None, grade=None),
                                     StudentRecord(sis_id="S2", source_id="guid-x", given_name="Ana",
                                                   family_name="Lopez", birth_date=None, sex=None, grade=None)],
                           now="2026-01-01T00:00:00Z")  # fmt: skip
    with pytest.raises(RosterIdsHeld) as raised:
        _import(node, tmp_path, "night3", [ava, _student(9, source_id="guid-x")], skip_invalid=False)
    (row,) = raised.value.rows
    assert "'guid-x'" in row.message and "'S1', 'S2'" in row.message and "'S000009'" in row.message


def test_a_student_an_import_created_is_taken_over_by_the_roster_and_never_marked_inactive(
    node: Any, tmp_path: Path
) -> None:
    def imported(sis_id: str) -> StudentRecord:
        return StudentRecord(sis_id=sis_id, source_id=f"import:b.example.org:{sis_id}", given_name="Ana",
                             family_name="Lopez", birth_date="2012-03-04", sex="F", grade="07")  # fmt: skip

    stored_students.upsert(node.db, [imported("S000001"), imported("S000002")], now="2026-01-01T00:00:00Z",
                           origin="import")  # fmt: skip
    # The district's SIS now lists S000001 (under its own sourcedId): the roster takes the student over.
    result = _import(node, tmp_path, "roster", [_student(1)], skip_invalid=False)
    assert (result.counts.updated, result.marked_inactive) == (1, 0)
    assert _held(node) == [("S000001", "u-S000001", "Ana", "active"),
                           ("S000002", "import:b.example.org:S000002", "Ana", "active")]  # fmt: skip
    # Not the roster's, they stay active whatever a bulk roster lists.
    assert _import(node, tmp_path, "other", [_student(3)], skip_invalid=False).marked_inactive == 0
    assert [status for *_, status in _held(node)] == ["active", "active", "active"]


# --- students a bulk roster no longer lists ------------------------------------------------------------


def test_students_a_bulk_roster_no_longer_lists_are_marked_inactive(node: Any, tmp_path: Path) -> None:
    # More than a page of them, the roster spilled: they are found a page at a time.
    everyone = [_student(i) for i in range(1_200)]
    _import(node, tmp_path, "all", everyone, skip_invalid=False, spill_over=0)
    staying = everyone[::2]
    # A delta lists only who changed: nobody is marked.
    delta = _delta(staying[:3], files=("users.csv",))
    assert _import(node, tmp_path, "delta", [], bundle=delta, skip_invalid=False).marked_inactive == 0
    result = _import(node, tmp_path, "bulk", staying, skip_invalid=False, spill_over=0)
    assert (result.counts.unchanged, result.marked_inactive) == (600, 600)
    status = dict(node.db.execute("SELECT sis_id, enrollment_status FROM students"))
    assert {status[s["sis_id"]] for s in staying} == {"active"}
    assert {status[s["sis_id"]] for s in everyone[1::2]} == {"inactive"}
    assert _roster_audit(node)[-1] == (
        "roster.import.finished", {"inserted": 0, "updated": 0, "unchanged": 600, "marked_inactive": 600}
    )  # fmt: skip
    # Nothing more to mark the next night; and one who comes back is active again.
    again = _import(node, tmp_path, "back", [*staying, everyone[1]], skip_invalid=False)
    assert (again.counts.updated, again.marked_inactive) == (1, 0)
    assert node.db.execute("SELECT enrollment_status FROM students WHERE sis_id = 'S000001'").fetchone()[0] == "active"


def test_a_bundle_of_one_school_marks_only_that_schools_students(node: Any, tmp_path: Path) -> None:
    # A large district may export a bundle per school: one school's bundle says nothing of the other's.
    lincoln = [_student(i, school_id="0101") for i in range(4)]
    roosevelt = [_student(i, school_id="0102") for i in range(4, 8)]
    _import(node, tmp_path, "district", lincoln + roosevelt, skip_invalid=False)
    assert _import(node, tmp_path, "lincoln", lincoln[1:], skip_invalid=False).marked_inactive == 1
    assert _import(node, tmp_path, "roosevelt", roosevelt, skip_invalid=False).marked_inactive == 0
    inactive = [r[0] for r in node.db.execute("SELECT sis_id FROM students WHERE enrollment_status = 'inactive'")]
    assert inactive == ["S000000"]


def test_memory_does_not_grow_with_the_students_a_bulk_roster_no_longer_lists(node: Any, tmp_path: Path) -> None:
    few = write_bundle(tmp_path / "few", make_bundle([_student(i) for i in range(100)]))

    def peak_with(stored: int) -> int:
        node.db.execute("DELETE FROM student_match_keys")
        node.db.execute("DELETE FROM students")
        _import(node, tmp_path, f"stored{stored}", [_student(i) for i in range(stored)], skip_invalid=False,
                spill_over=0)  # fmt: skip
        peak = peak_python_memory(lambda: import_roster(node, actor="coord", path=few, skip_invalid=False,
                                                        spill_over=0))  # fmt: skip
        assert node.db.execute("SELECT count(*) FROM students WHERE enrollment_status = 'inactive'").fetchone()[0] \
            == stored - 100
        return peak

    peak_with(200)  # imports, caches
    peaks = [peak_with(10_000), peak_with(20_000)]
    # A page of stored students and a batch of SIS ids to mark are held at once, not one per student.
    assert peaks[1] - peaks[0] < 1 << 20, peaks
