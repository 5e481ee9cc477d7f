from __future__ import annotations

import contextlib
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.csv_rows import CsvEncodingError, CsvMalformed, CsvMissingColumn, RowError
from protocol.errors import SatchelError
from protocol.oneroster import (
    RosterAmbiguousFile,
    RosterMissingFile,
    RosterParseResult,
    parse_oneroster,
    read_bundle_names,
    read_oneroster,
)
from protocol.roster import WHOLE, FieldMerge, StudentRecord
from storage.spill_map import SpillFile

from fixtures_oneroster import SAMPLE_STUDENTS, make_bundle, sample_bundle, student_dicts, write_bundle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"
ORGS = [
    "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId",
    "org-d,,,Sample District,district,D1,",
    "org-a,,,Lincoln Middle,school,0101,org-d",
    "org-b,,,Roosevelt Middle,school,,org-d",
]
USERS = (
    "sourcedId,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,identifier,grades,email"
)
ALICE = "u1,true,org-a,student,alice,{state:S1},Alice,Ames,1001,07,alice@example.org"
BOB = "u2,true,org-b,student,bob,,Bob,Bell,1002,8,"
TEACHER = "t1,true,org-a,teacher,tina,,Tina,Teach,T1,,"
DEMOGRAPHICS = "sourcedId,status,dateLastModified,birthDate,sex"
ENROLLMENTS = ",".join([
    "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId",
    "role,primary,beginDate,endDate",
])  # fmt: skip


def csv_bytes(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def parse(
    *users: str, today: date | None = None, dates_until: date | None = None, **files: list[str] | bytes
) -> RosterParseResult:
    bundle = {"orgs.csv": csv_bytes(*ORGS), "users.csv": csv_bytes(USERS, *users)}
    for name, content in files.items():
        bundle[f"{name.lower()}.csv"] = content if isinstance(content, bytes) else csv_bytes(*content)
    return parse_oneroster(bundle, today=today, dates_until=dates_until)


def only_error(result: RosterParseResult) -> RowError:
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def expected(students: list[dict[str, Any]]) -> tuple[StudentRecord, ...]:
    return tuple(StudentRecord.from_dict({"source_id": "u-" + s["sis_id"], **s}) for s in students)


# --- good bundles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_sample_bundle_parses_to_the_sample_students(version: str) -> None:
    result = parse_oneroster(sample_bundle(version))
    assert result.errors == ()
    assert result.version == version
    assert result.students == expected(SAMPLE_STUDENTS)


def test_minimal_11_bundle() -> None:
    result = parse(ALICE, TEACHER, BOB)
    assert result.errors == ()
    assert result.version == "1.1"
    alice, bob = result.students
    assert (alice.sis_id, alice.source_id, alice.state_id, alice.grade) == ("1001", "u1", "S1", "07")
    assert (alice.school_id, alice.school_name, alice.email) == (
        "0101",
        "Lincoln Middle",
        "alice@example.org",
    )
    # An org without identifier is known by its sourcedId; "8" is normalised to the CEDS code.
    assert (bob.school_id, bob.school_name, bob.grade) == ("org-b", "Roosevelt Middle", "08")
    assert alice.birth_date is None and alice.sex is None and alice.enrollment_start is None


def test_headers_are_case_insensitive_in_any_order_with_bom_and_lf() -> None:
    users = "\ufeffGIVENNAME,familyname,Role,SourcedId\nAlice,Ames,Student,u1\n".encode()
    result = parse_oneroster({"Orgs.csv": csv_bytes(*ORGS), "USERS.CSV": users})
    assert result.errors == ()
    assert [(s.sis_id, s.given_name) for s in result.students] == [("u1", "Alice")]


def test_lone_cr_line_endings_are_lines() -> None:
    result = parse_oneroster(
        {"orgs.csv": "\r".join(ORGS).encode(), "users.csv": f"{USERS}\r{ALICE}\r".encode()}
    )
    assert result.errors == () and len(result.students) == 1


def test_12_bundle_with_roles_primary_org_first() -> None:
    users = "sourcedId,enabledUser,username,givenName,familyName,preferredFirstName,identifier"
    roles = [
        "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId",
        "r1,active,,u1,secondary,student,,,org-a",
        "r2,active,,u1,primary,student,,,org-b",
        "r3,tobedeleted,,u2,primary,student,,,org-a",
        "r4,active,,t1,primary,teacher,,,org-a",
    ]
    result = parse_oneroster({
        "orgs.csv": csv_bytes(*ORGS),
        "users.csv": csv_bytes(users, "u1,true,al,Alice,Ames,Ali,1001", "u2,true,bo,Bob,Bell,,", "t1,true,t,T,T,,"),
        "roles.csv": csv_bytes(*roles),
    })  # fmt: skip
    assert result.errors == ()
    assert result.version == "1.2"
    (alice,) = result.students
    assert (alice.school_id, alice.preferred_name) == ("org-b", "Ali")


def test_school_comes_from_primary_org_then_org_list_then_enrollments() -> None:
    users = "sourcedId,orgSourcedIds,primaryOrgSourcedId,role,givenName,familyName"
    result = parse_oneroster({
        "orgs.csv": csv_bytes(*ORGS),
        "users.csv": csv_bytes(users, 'u1,"org-d,org-b",,student,A,A', "u2,org-a,org-b,student,B,B",
                               "u3,org-d,,student,C,C", "u4,org-d,,student,D,D"),
        "enrollments.csv": csv_bytes(ENROLLMENTS, "e1,,,c1,org-b,u3,student,,,", "e2,,,c1,org-d,u4,student,,,"),
    })  # fmt: skip
    assert result.errors == ()
    assert [s.school_id for s in result.students] == ["org-b", "org-b", "org-b", ""]


def test_state_id_sources() -> None:
    users = "sourcedId,role,givenName,familyName,userIds,metadata.stateId"
    result = parse_oneroster({
        "orgs.csv": csv_bytes(*ORGS),
        "users.csv": csv_bytes(
            users, 'u1,student,A,A,"{district:9},{State_ID:S1}",M1', "u2,student,B,B,SSID:S2,",
            "u3,student,C,C,{district:9},M3", 'u4,student,D,D,"{state:S4},{stateId:S4}",',
        ),
    })  # fmt: skip
    assert result.errors == ()
    assert [s.state_id for s in result.students] == ["S1", "S2", "M3", "S4"]


def test_demographics_and_enrollments_fill_the_record() -> None:
    result = parse(
        ALICE, BOB, TEACHER,
        demographics=[DEMOGRAPHICS, "u1,,,2012-03-14,female", "u2,tobedeleted,,2000-01-01,male", "t1,,,x,y"],
        enrollments=[ENROLLMENTS, "e1,,,c1,org-a,u1,student,,2024-08-19,", "e2,,,c2,org-a,u1,student,,2023-08-21,",
                     "e3,tobedeleted,,c3,org-a,u1,student,,2020-01-01,", "e4,,,c1,org-a,t1,teacher,,bad,"],
    )  # fmt: skip
    assert result.errors == ()
    alice, bob = result.students
    assert (alice.birth_date, alice.sex, alice.enrollment_start) == ("2012-03-14", "F", "2023-08-21")
    assert (bob.birth_date, bob.sex) == (None, None)


def test_today_makes_ended_enrollments_inactive() -> None:
    rows = [
        ENROLLMENTS,
        "e1,,,c1,org-a,u1,student,,2022-08-22,2023-06-15",
        "e2,,,c1,org-a,u2,student,,2022-08-22,",
    ]
    rows.append("e3,,,c1,org-a,u2,student,,2023-08-21,2024-06-14")
    alice, bob = parse(ALICE, BOB, enrollments=rows, today=date(2024, 1, 10)).students
    assert (alice.enrollment_status, alice.enrollment_start) == ("inactive", None)
    assert (bob.enrollment_status, bob.enrollment_start) == ("active", "2022-08-22")
    # Without a date nothing has ended.
    alice, _bob = parse(ALICE, BOB, enrollments=rows).students
    assert (alice.enrollment_status, alice.enrollment_start) == ("active", "2022-08-22")


def test_disabled_or_deleted_users_are_inactive() -> None:
    users = "sourcedId,status,enabledUser,role,givenName,familyName"
    result = parse_oneroster({
        "orgs.csv": csv_bytes(*ORGS),
        "users.csv": csv_bytes(users, "u1,,FALSE,student,A,A", "u2,tobedeleted,true,student,B,B", "u3,,,student,C,C"),
    })  # fmt: skip
    assert [s.enrollment_status for s in result.students] == ["inactive", "inactive", "active"]


def test_manifest_version_and_delta() -> None:
    manifest = csv_bytes("propertyName,value", "oneroster.version,1.1", "file.users,delta", "file.orgs,bulk")
    result = parse(ALICE, manifest=manifest)
    assert (result.version, result.delta) == ("1.1", True)


def _merges(manifest: list[str], **files: list[str]) -> dict[str, FieldMerge]:
    bundle = {"orgs.csv": csv_bytes(*ORGS), "users.csv": csv_bytes(USERS, ALICE, BOB),
              "manifest.csv": csv_bytes("propertyName,value", *manifest)}  # fmt: skip
    bundle |= {f"{name}.csv": csv_bytes(*content) for name, content in files.items()}
    reading = read_oneroster(bundle)
    assert reading.errors() == ()
    return {record.sis_id: merge for record, merge in reading.updates()}


def test_a_partial_bundle_says_which_fields_it_does_not_tell() -> None:
    demographics = [DEMOGRAPHICS, "u1,,,2012-03-14,female"]
    enrollments = [ENROLLMENTS, "e1,,,c1,org-a,u1,student,,2024-08-19,"]
    bulk = ["file.users,bulk", "file.orgs,bulk", "file.demographics,bulk", "file.enrollments,bulk"]
    # Bulk files tell every student's fields, a row or none (Bob: no birth date, no enrollment).
    assert _merges(bulk, demographics=demographics, enrollments=enrollments) == {"1001": WHOLE, "1002": WHOLE}
    # A delta tells what it has rows for; a delta enrollment is one of the student's, so the earlier date wins.
    delta = [line.replace("bulk", "delta") for line in bulk]
    assert _merges(delta, demographics=demographics, enrollments=enrollments) == {
        "1001": FieldMerge(earliest=frozenset({"enrollment_start"})),
        "1002": FieldMerge(keep=frozenset({"birth_date", "sex", "enrollment_start"})),
    }  # fmt: skip
    # A file not there, or marked absent (a copy left in the folder is not read), tells nothing.
    unread = FieldMerge(keep=frozenset({"birth_date", "sex"}))
    absent = ["file.users,bulk", "file.orgs,bulk", "file.demographics,absent", "file.enrollments,bulk"]
    assert _merges(absent, demographics=demographics, enrollments=enrollments) == {"1001": unread, "1002": unread}
    assert _merges(bulk[:2], enrollments=enrollments) == {"1001": unread, "1002": unread}


def test_a_delta_orgs_csv_lists_only_the_orgs_that_changed() -> None:
    # Alice's row names org-a, which did not change: not an error, and her school is not told.
    users = "sourcedId,enabledUser,orgSourcedIds,role,givenName,familyName,identifier"
    bundle = {"orgs.csv": csv_bytes(ORGS[0]), "users.csv": csv_bytes(users, "u1,true,org-a,student,Alice,Ames,1001"),
              "manifest.csv": csv_bytes("propertyName,value", "file.users,delta", "file.orgs,delta")}  # fmt: skip
    reading = read_oneroster(bundle)
    ((alice, merge),) = reading.updates()
    assert reading.errors() == () and (alice.school_id, alice.school_name) == ("", "")
    assert {"school_id", "school_name"} <= merge.keep
    # In a bulk orgs.csv it is an org that does not exist.
    bundle["manifest.csv"] = csv_bytes("propertyName,value", "file.users,bulk", "file.orgs,bulk")
    assert [e.field for e in read_oneroster(bundle).errors()] == ["orgSourcedIds"]


def test_sis_id_falls_back_to_sourced_id() -> None:
    (alice,) = parse("u1,true,org-a,student,alice,,Alice,Ames,,,").students
    assert alice.sis_id == alice.source_id == "u1"


# --- whole-file errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["users.csv", "orgs.csv"])
def test_missing_required_file(missing: str) -> None:
    bundle = sample_bundle()
    del bundle[missing]
    with pytest.raises(RosterMissingFile) as info:
        parse_oneroster(bundle)
    assert (info.value.code, info.value.field) == ("roster.missing_file", missing)
    assert missing in info.value.message and info.value.hint


def test_manifest_listing_a_missing_file() -> None:
    bundle = sample_bundle()
    del bundle["demographics.csv"]
    with pytest.raises(RosterMissingFile) as info:
        parse_oneroster(bundle)
    assert info.value.field == "demographics.csv" and "manifest.csv" in info.value.message


@pytest.mark.parametrize(
    ("file", "content", "column"),
    [
        ("users", "sourcedId,role,familyName\r\nu1,student,A\r\n", "givenName"),
        ("users", "sourcedId,givenName,familyName\r\n", "role"),
        ("orgs", "sourcedId,name\r\n", "type"),
        ("demographics", "birthDate,sex\r\n", "sourcedId"),
        ("enrollments", "userSourcedId\r\n", "role"),
        ("manifest", "propertyName\r\n", "value"),
    ],
)
def test_missing_column(file: str, content: str, column: str) -> None:
    bundle = sample_bundle()
    bundle[f"{file}.csv"] = content.encode()
    with pytest.raises(CsvMissingColumn) as info:
        parse_oneroster(bundle)
    assert (info.value.code, info.value.field) == ("csv.missing_column", column)
    assert f"{file}.csv" in info.value.message


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (csv_bytes(USERS, ALICE, "u2,true,org-a,student,jo,,José,Ñ,2,,").decode().encode("latin-1"), 3),
        ("\ufeffsourcedId,givenName\r\n".encode("utf-16"), None),
        (csv_bytes(USERS, ALICE) + b"u2,\x00\x00,\r\n", 3),
    ],
)
def test_encoding_errors(content: bytes, line: int | None) -> None:
    with pytest.raises(CsvEncodingError) as info:
        parse_oneroster({"orgs.csv": csv_bytes(*ORGS), "users.csv": content})
    assert info.value.code == "csv.encoding" and "UTF-8" in (info.value.hint or "")
    assert "users.csv" in info.value.message
    if line:
        assert f"line {line}" in info.value.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (csv_bytes(USERS, ALICE, 'u2,true,org-a,student,"bob,,Bob,Bell,2,,'), "line 3"),
        (csv_bytes(USERS, 'u2,true,org-a,student,"bo"b,,Bob,Bell,2,,'), "line 2"),
        (b"", "empty"),
        (b"\r\n\r\n", "empty"),
        (b"sourcedId,role,givenName,familyName,Role\r\n", "two columns"),
        (b"PK\x03\x04rest-of-a-workbook", "Excel"),
    ],
)
def test_malformed_csv(content: bytes, fragment: str) -> None:
    with pytest.raises(CsvMalformed) as info:
        parse_oneroster({"orgs.csv": csv_bytes(*ORGS), "users.csv": content})
    assert info.value.code == "csv.malformed"
    assert "users.csv" in info.value.message and fragment in info.value.message


def test_ambiguous_file_names() -> None:
    with pytest.raises(RosterAmbiguousFile) as info:
        parse_oneroster({"a/users.csv": b"", "b/Users.csv": b"", "orgs.csv": b""})
    assert info.value.code == "roster.ambiguous_file"


def test_read_bundle_names() -> None:
    names = ["export/Users.csv", "export/ORGS.CSV", "export/academicSessions.csv", "__MACOSX/export/._users.csv",
             "export/._orgs.csv", "export/readme.txt", "export\\demographics.csv", "export/"]  # fmt: skip
    assert read_bundle_names(names) == {
        "users.csv": "export/Users.csv", "orgs.csv": "export/ORGS.CSV",
        "academicsessions.csv": "export/academicSessions.csv", "demographics.csv": "export\\demographics.csv",
    }  # fmt: skip


# --- row errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("users", "line", "field", "fragment"),
    [
        ([ALICE, ALICE.replace("u1,", "u9,", 1)], 3, "identifier", "already appears on line 2"),
        ([BOB, "u2,true,org-a,student,x,,X,Y,2001,,"], 3, "sourcedId", "already appears on line 2"),
        (["u3,true,org-a,student,x,,X,Y,,,", "u4,true,org-a,student,x,,X,Y,u3,,"], 3, "identifier", "u3"),
        (["u1,true,org-a,student,x,,X,Y,1,7th,"], 2, "grades", "not a grade level"),
        (["u1,maybe,org-a,student,x,,X,Y,1,,"], 2, "enabledUser", "true or false"),
        (['u1,true,"org-a,org-zz",student,x,,X,Y,1,,'], 2, "orgSourcedIds", "org-zz"),
        (['u1,true,org-a,student,x,"{state:1},{state:2}",X,Y,1,,'], 2, "userIds", "different state ids"),
        (["u1,true,org-a,student,x,{state:1,X,Y,1,,"], 2, "userIds", "must look like {state:1234}"),
        (["u1,true,org-a,student,x,{ssid:1 2},X,Y,1,,"], 2, "userIds", "state_id"),
        (["u1,true,org-a,student,x,,,Y,1,,"], 2, "givenName", "required"),
        (["u1,true,org-a,student,x,,X,Y,1,,not-an-email"], 2, "email", "e-mail"),
        (["u1,true,org-a,student,x,,X,Y,1,,,extra"], 2, None, "12 values but the header has 11"),
        (["u1,true,org-a,student"], 2, None, "4 values"),
    ],
)
def test_user_row_errors(users: list[str], line: int, field: str | None, fragment: str) -> None:
    result = parse(*users, TEACHER)
    error = only_error(result)
    assert (error.file, error.line, error.field) == ("users.csv", line, field)
    assert fragment in error.message
    assert len(result.students) == len(users) - 1


def test_trailing_empty_cells_are_not_an_error() -> None:
    assert parse(ALICE + ",,,").errors == ()


def test_line_numbers_are_physical_lines() -> None:
    multiline = 'u2,true,org-a,student,bob,,"Bob\nJr",Bell,2,,'
    result = parse(multiline, "", "u3,true,org-a,student,x,,X,Y,3,99,")
    first, second = result.errors
    assert (first.line, first.field) == (2, "givenName")
    assert (second.line, second.field) == (5, "grades")
    assert str(second).startswith("users.csv line 5, grades: ")


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ("u1,,,2012-02-30,female", "birthDate", "calendar date"),
        ("u1,,,03/14/2012,female", "birthDate", "YYYY-MM-DD"),
        ("u1,,,2030-01-01,female", "birthDate", "future"),
        ("u1,,,2025-01-02,female", "birthDate", "future"),
        ("u1,,,0001-01-01,female", "birthDate", "before 1900"),
        ("u1,,,1899-12-31,female", "birthDate", "before 1900"),
        ("u1,,,2012-03-14,boy", "sex", "female, male, other or unspecified"),
    ],
)
def test_demographics_row_errors(row: str, field: str, fragment: str) -> None:
    result = parse(ALICE, BOB, demographics=[DEMOGRAPHICS, row], today=date(2025, 1, 1))
    error = only_error(result)
    assert (error.file, error.line, error.field) == ("demographics.csv", 2, field)
    assert fragment in error.message
    assert [s.sis_id for s in result.students] == ["1002"]


def test_birth_dates_are_checked_against_dates_until_without_changing_what_today_means() -> None:
    # The node passes only dates_until: enrollments that ended before today still count (a roster exported
    # over the summer must not make every student inactive), but a birth date in the future is refused.
    row = "u1,,,2030-01-01,female"
    assert parse(ALICE, BOB, demographics=[DEMOGRAPHICS, row]).errors == ()  # no window: as before
    result = parse(ALICE, BOB, demographics=[DEMOGRAPHICS, row], dates_until=date(2025, 1, 1))
    assert only_error(result).field == "birthDate" and [s.sis_id for s in result.students] == ["1002"]
    edge = parse(ALICE, demographics=[DEMOGRAPHICS, "u1,,,2025-01-01,female"], dates_until=date(2025, 1, 1))
    assert edge.errors == () and edge.students[0].birth_date == "2025-01-01"
    assert parse(ALICE, demographics=[DEMOGRAPHICS, "u1,,,1900-01-01,female"],
                 dates_until=date(2025, 1, 1)).errors == ()  # fmt: skip


def test_duplicate_demographics() -> None:
    result = parse(ALICE, demographics=[DEMOGRAPHICS, "u1,,,2012-03-14,female", "u1,,,2012-03-15,female"])
    error = only_error(result)
    assert (error.line, error.field) == (3, "sourcedId")
    assert result.students == ()


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ("e1,,,c1,org-a,u1,student,,2024-8-19,", "beginDate", "YYYY-MM-DD"),
        ("e1,,,c1,org-a,u1,student,,2024-08-19,2024-13-01", "endDate", "calendar"),
        ("e1,,,c1,org-a,u1,student,,2024-08-19,2024-08-01", "endDate", "before beginDate"),
        ("e1,,,c1,org-zz,u1,student,,2024-08-19,", "schoolSourcedId", "org-zz"),
    ],
)
def test_enrollment_row_errors(row: str, field: str, fragment: str) -> None:
    result = parse(ALICE, BOB, enrollments=[ENROLLMENTS, row])
    error = only_error(result)
    assert (error.file, error.line, error.field) == ("enrollments.csv", 2, field)
    assert fragment in error.message
    assert [s.sis_id for s in result.students] == ["1002"]


def test_org_and_role_row_errors() -> None:
    orgs = [*ORGS, "org-a,,,Dup,school,,", ",,,Nameless,school,,", "org-x,,,,school,,", "org-y,,,Y,,,"]
    roles = ["userSourcedId,role,orgSourcedId,roleType", "u1,student,org-q,primary", ",student,org-a,primary"]
    users = "sourcedId,givenName,familyName"
    result = parse_oneroster({
        "orgs.csv": csv_bytes(*orgs), "roles.csv": csv_bytes(*roles),
        "users.csv": csv_bytes(users, "u1,A,A", "u2,B,B"),
    })  # fmt: skip
    assert [(e.file, e.line, e.field) for e in result.errors] == [
        ("orgs.csv", 5, "sourcedId"), ("orgs.csv", 6, "sourcedId"), ("orgs.csv", 7, "name"),
        ("orgs.csv", 8, "type"), ("roles.csv", 2, "orgSourcedId"), ("roles.csv", 3, "userSourcedId"),
    ]  # fmt: skip
    assert result.students == ()


def test_errors_are_sorted_by_file_then_line() -> None:
    result = parse(
        "u1,true,org-a,student,x,,,Y,1,,", "u2,true,org-a,student,x,,X,Y,2,bad,", "u3,true,org-a,student,x,,X,Y,3,,",
        demographics=[DEMOGRAPHICS, "u3,,,bad,"],
    )  # fmt: skip
    assert [(e.file, e.line) for e in result.errors] == [
        ("users.csv", 2),
        ("users.csv", 3),
        ("demographics.csv", 2),
    ]


# --- properties -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@given(students=student_dicts())
def test_round_trip(version: str, students: list[dict[str, Any]]) -> None:
    result = parse_oneroster(make_bundle(students, version=version))
    assert result.errors == ()
    assert result.students == tuple(StudentRecord.from_dict(s) for s in students)


@given(students=student_dicts(), bad=st.lists(st.integers(0, 5), max_size=3), spilled=st.booleans())
def test_students_after_check_are_those_a_checking_pass_builds(
    students: list[dict[str, Any]], bad: list[int], spilled: bool
) -> None:
    """check() marks a student whose record fails; students() then builds the rest without checking them
    again: the same records, and never the failing one."""
    for i in bad:  # an e-mail only the record's own checks refuse (the row itself reads fine)
        if i < len(students):
            students[i] = {**students[i], "email": "not-an-email"}
    bundle = make_bundle(students)
    checking = list(read_oneroster(bundle).students())  # no check(): every record checked as it is built
    with tempfile.TemporaryDirectory() as folder, SpillFile(Path(folder)) as spill:
        reading = read_oneroster(bundle, spill=spill.mapping if spilled else None)
        passed = reading.check()
        assert reading.check() == passed  # again: the same verdict, and no second spill table
        handed_out = list(reading.students())
        assert list(reading.students()) == handed_out  # as often as wanted
    assert handed_out == checking and passed == len(checking)
    assert len(checking) == len(students) - len({i for i in bad if i < len(students)})
    assert reading.error_count == len(students) - len(checking)


_CSV_ALPHABET = st.sampled_from(
    [*',"\r\n{}:;-\x00 \ufeffaé1', "student", "true", "org-a", "u1", "2024-01-02"]
)
_CSV_TEXT = st.lists(_CSV_ALPHABET, max_size=40).map("".join)
_SAMPLE = sample_bundle("1.2")


@st.composite
def _damaged_bundle(draw: st.DrawFn) -> dict[str, bytes]:
    bundle = dict(_SAMPLE)
    name = draw(st.sampled_from(sorted(bundle)))
    original = bundle[name]
    header = original.split(b"\r\n", 1)[0] + b"\r\n"
    start = draw(st.integers(0, len(original)))
    end = draw(st.integers(start, min(len(original), start + 40)))
    bundle[name] = draw(
        st.binary(max_size=60)
        | _CSV_TEXT.map(lambda text: header + text.encode())
        | st.binary(max_size=20).map(lambda junk: original[:start] + junk + original[end:])
    )
    return bundle


@given(_damaged_bundle(), st.none() | st.dates())
def test_damaged_files_raise_only_satchel_errors(bundle: dict[str, bytes], today: date | None) -> None:
    try:
        result = parse_oneroster(bundle, today=today)
    except SatchelError:
        return
    assert all(isinstance(s, StudentRecord) for s in result.students)
    assert all(e.line >= 1 for e in result.errors)


@given(st.dictionaries(st.sampled_from(["users.csv", "orgs.csv", "roles.csv", "manifest.csv", "x.txt"]),
                       st.binary(max_size=40)))  # fmt: skip
def test_arbitrary_bundles_raise_only_satchel_errors(bundle: dict[str, bytes]) -> None:
    with contextlib.suppress(SatchelError):
        parse_oneroster(bundle)


# --- shipped fixtures and examples ------------------------------------------------------------------


def test_write_bundle_uses_oneroster_file_names(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "roster", sample_bundle())
    names = sorted(p.name for p in folder.iterdir())
    assert "academicSessions.csv" in names and "users.csv" in names
    found = read_bundle_names(names)
    files = {key: (folder / name).read_bytes() for key, name in found.items()}
    assert parse_oneroster(files).students == expected(SAMPLE_STUDENTS)


def _example(name: str) -> RosterParseResult:
    folder = EXAMPLES / name
    found = read_bundle_names(p.name for p in folder.iterdir())
    return parse_oneroster({key: (folder / file).read_bytes() for key, file in found.items()})


def test_example_rosters_parse_cleanly() -> None:
    a, b = _example("roster-district-a"), _example("roster-district-b")
    assert a.errors == () and b.errors == ()
    assert len(a.students) == 12 and len(b.students) == 8
    assert {s.school_id for s in a.students} == {"0101", "0102"}
    assert {s.grade for s in a.students} <= {"06", "07", "08"}
    # The transfer demo relies on students known to both districts under slightly different data.
    births_a = {s.birth_date: s for s in a.students}
    shared = [(births_a[s.birth_date], s) for s in b.students if s.birth_date in births_a]
    assert len(shared) >= 2
    assert all(old != new and old.sis_id != new.sis_id for old, new in shared)


# --- a delta's rows of students its users.csv does not list ----------------------------------------------

_POOL = [f"u{i}" for i in range(6)]  # u0-u3 held (u3 twice), u4-u5 not
_HELD = {
    f"u{i}": [StudentRecord(sis_id=f"S{i}{twice}", source_id=f"u{i}", given_name="Ann", family_name="Held",
                            birth_date=f"2010-01-0{i + 1}", sex="F", grade="07", school_id="0101",
                            school_name="Lincoln Middle", enrollment_start="2024-08-19" if i % 2 else None)
              for twice in (("", "b") if i == 3 else ("",))]
    for i in range(4)
}  # fmt: skip


class _Held:
    """protocol.oneroster.StoredStudents over a dict, as a home's database answers."""

    def by_source_id(self, source_ids: Any) -> dict[str, list[StudentRecord]]:
        return {s: _HELD[s] for s in source_ids if s in _HELD}

    def by_sis_id(self, sis_ids: Any) -> dict[str, StudentRecord]:
        every = {r.sis_id: r for records in _HELD.values() for r in records}
        return {s: every[s] for s in sis_ids if s in every}


def _joined(record: StudentRecord, merge: FieldMerge) -> StudentRecord:
    """``record`` saved over the student it names, as storage.students.upsert_merged joins them."""
    (old,) = [r for records in _HELD.values() for r in records if r.sis_id == record.sis_id]
    values = {}
    for name in record.to_dict():
        new, stored = getattr(record, name), getattr(old, name)
        if name in merge.keep:
            new = stored
        elif name in merge.earliest and stored is not None:
            new = stored if new is None else min(new, stored)
        values[name] = new
    return StudentRecord(**values)


_DATES = st.sampled_from(["2009-05-05", "2011-02-03", "2023-08-21", "2025-01-06"])


@given(
    listed=st.sets(st.sampled_from(_POOL)),
    demographics=st.lists(st.tuples(st.sampled_from([*_POOL, "t1"]), _DATES, st.sampled_from(["male", "", "other"]),
                                    st.sampled_from(["", "tobedeleted"])), max_size=6),
    enrollments=st.lists(st.tuples(st.sampled_from([*_POOL, "t1"]), _DATES, st.sampled_from(["student", "teacher"]),
                                   st.sampled_from(["", "tobedeleted"])), max_size=6),
    spilled=st.booleans(),
)  # fmt: skip
def test_a_delta_applies_rows_of_unlisted_students_to_those_held_and_refuses_the_others(
    listed: set[str], demographics: list[tuple[str, str, str, str]], enrollments: list[tuple[str, str, str, str]],
    spilled: bool,
) -> None:
    users = [f"{u},true,org-a,student,,,Given,Fam,L{u},07," for u in sorted(listed)]
    bundle = {
        "manifest.csv": csv_bytes("propertyName,value", "file.users,delta", "file.orgs,bulk"),
        "orgs.csv": csv_bytes(*ORGS), "users.csv": csv_bytes(USERS, *users, TEACHER),
        "demographics.csv": csv_bytes(DEMOGRAPHICS, *(f"{u},{status},,{birth},{sex}"
                                                      for u, birth, sex, status in demographics)),
        "enrollments.csv": csv_bytes(ENROLLMENTS, *(f"e{n},{status},,c1,org-a,{u},{role},,{begin},"
                                                    for n, (u, begin, role, status) in enumerate(enrollments))),
    }  # fmt: skip
    # What the rows say of each student users.csv does not list: (file, line) of each row, birth and sex, starts.
    rows: dict[str, list[tuple[str, int]]] = {}
    told: dict[str, dict[str, Any]] = {}
    for line, (u, birth, sex, status) in enumerate(demographics, start=2):
        if u not in listed and status != "tobedeleted":
            rows.setdefault(u, []).append(("demographics.csv", line))
            told.setdefault(u, {}).setdefault("demographics", []).append((birth, {"male": "M", "other": "X"}.get(sex)))
    for line, (u, begin, role, status) in enumerate(enrollments, start=2):
        if u not in listed and status != "tobedeleted" and role == "student":
            rows.setdefault(u, []).append(("enrollments.csv", line))
            told.setdefault(u, {}).setdefault("starts", []).append(begin)
    expected_errors, expected, not_held = set(), {}, set()
    for u, said in told.items():
        if len(said.get("demographics", ())) > 1:
            continue  # a second demographics row: the student is dropped for that error
        held = _HELD.get(u, [])
        if not held and "starts" not in said:
            not_held.add(u)  # not read, but counted and named
        if len(held) == 1:
            record = held[0]
            if "demographics" in said:
                ((birth, sex),) = said["demographics"]
                record = replace(record, birth_date=birth, sex=sex)
            if "starts" in said:
                starts = [*said["starts"], *([record.enrollment_start] if record.enrollment_start else [])]
                record = replace(record, enrollment_start=min(starts))
            expected[record.sis_id] = record
        elif held or "starts" in said:  # demographics alone of one not held may be a teacher's: not read
            expected_errors |= {(file, line, "sourcedId" if file == "demographics.csv" else "userSourcedId")
                                for file, line in rows[u]}  # fmt: skip

    with tempfile.TemporaryDirectory() as folder, SpillFile(Path(folder)) as spill:
        reading = read_oneroster(bundle, spill=spill.mapping if spilled else None)
        passed = reading.check(stored=_Held())
        updates = list(reading.updates())
        errors = reading.errors()
    # A listed student with a second demographics row is dropped for that error, as ever.
    twice = {u for u in listed if sum(d[0] == u and d[3] != "tobedeleted" for d in demographics) > 1}
    kept = sorted(listed - twice)
    assert passed == len(kept) + len(expected)
    assert [r.sis_id for r, _ in updates[: len(kept)]] == [f"L{u}" for u in kept]
    assert {r.sis_id: _joined(r, merge) for r, merge in updates[len(kept):]} == expected
    refused = {(e.file, e.line, e.field) for e in errors if "held here" in e.message}
    assert refused == expected_errors
    assert all(repr(e.message.split("'")[1]) in e.message for e in errors if "held here" in e.message)
    assert reading.demographics_not_held == len(not_held)
    assert reading.demographics_not_held_ids() == tuple(sorted(not_held))
    # Without the students held (parse_oneroster, a caller with no database), only users.csv's are handed out.
    assert [r.sis_id for r in read_oneroster(bundle).students()] == [f"L{u}" for u in kept]
