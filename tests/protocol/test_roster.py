from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import InvalidInput, SatchelError
from protocol.roster import (
    GRADE_CODES,
    SEX_CODES,
    StudentRecord,
    normalize_grade,
    normalize_sex,
    parse_iso_date,
)

from fixtures_oneroster import student_dicts

BASE: dict[str, Any] = {
    "sis_id": "100001",
    "source_id": "u-100001",
    "given_name": "Ava",
    "family_name": "Martinez",
    "birth_date": "2012-03-14",
    "sex": "F",
    "grade": "07",
}


def make(**changes: Any) -> StudentRecord:
    return StudentRecord(**{**BASE, **changes})


def test_minimal_record_has_documented_defaults() -> None:
    record = make()
    assert record.middle_name == record.preferred_name == record.state_id == ""
    assert record.enrollment_start is None
    assert record.enrollment_status == "active"
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.sis_id = "other"  # type: ignore[misc]


def test_field_order_is_storage_column_order() -> None:
    names = [f.name for f in dataclasses.fields(StudentRecord)]
    assert names[:4] == ["sis_id", "source_id", "given_name", "family_name"]
    assert names[-2:] == ["enrollment_start", "enrollment_status"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sis_id": ""}, "sis_id"),
        ({"source_id": ""}, "source_id"),
        ({"given_name": ""}, "given_name"),
        ({"family_name": "  Martinez"}, "family_name"),
        ({"middle_name": "Lin\nChen"}, "middle_name"),
        ({"preferred_name": "x" * 256}, "preferred_name"),
        ({"sis_id": "1" * 256}, "sis_id"),
        ({"birth_date": "2012-02-30"}, "birth_date"),
        ({"birth_date": "2012/03/14"}, "birth_date"),
        ({"birth_date": "20120314"}, "birth_date"),
        ({"sex": "female"}, "sex"),
        ({"grade": "7"}, "grade"),
        ({"grade": "other"}, "grade"),
        ({"state_id": "{state:1}"}, "state_id"),
        ({"state_id": "12 34"}, "state_id"),
        ({"email": "ava.example.org"}, "email"),
        ({"school_name": "Lincoln"}, "school_id"),
        ({"enrollment_start": "2024-13-01"}, "enrollment_start"),
        ({"enrollment_status": "withdrawn"}, "enrollment_status"),
        ({"username": None}, "username"),
        ({"sis_id": 100001}, "sis_id"),
    ],
)
def test_invalid_values_name_their_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        make(**changes)
    assert info.value.field == field
    assert info.value.code == "input.invalid"


def test_from_dict_refuses_unknown_and_missing_fields() -> None:
    with pytest.raises(InvalidInput) as info:
        StudentRecord.from_dict({**BASE, "ssn": "123"})
    assert info.value.field == "ssn"
    with pytest.raises(InvalidInput) as info:
        StudentRecord.from_dict({"sis_id": "1", "source_id": "1", "given_name": "A"})
    assert info.value.field == "family_name"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", None), ("  ", None), ("1", "01"), ("01", "01"), ("7", "07"), ("12", "12"), ("13", "13"),
        ("k", "KG"), ("KG", "KG"), ("Kindergarten", "KG"), ("0", "KG"), ("pk", "PK"), ("Pre-K", "PK"),
        ("tk", "TK"), ("other", "Other"), ("ug", "UG"), ("PS", "PS"), (" 08 ", "08"),
    ],
)  # fmt: skip
def test_normalize_grade(raw: str, code: str | None) -> None:
    assert normalize_grade(raw) == code


@pytest.mark.parametrize("raw", ["14", "-1", "7th", "²", "grade 7", "100"])
def test_normalize_grade_rejects(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        normalize_grade(raw, field="grades")
    assert info.value.field == "grades"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("female", "F"),
        ("Male", "M"),
        ("other", "X"),
        ("unspecified", None),
        ("", None),
        ("f", "F"),
        ("X", "X"),
    ],
)
def test_normalize_sex(raw: str, code: str | None) -> None:
    assert normalize_sex(raw) == code


def test_normalize_sex_rejects() -> None:
    with pytest.raises(InvalidInput):
        normalize_sex("unknown")


@given(st.text(max_size=12))
def test_normalize_grade_returns_a_code_or_raises_invalid_input(raw: str) -> None:
    try:
        result = normalize_grade(raw)
    except InvalidInput:
        return
    assert result is None or result in GRADE_CODES


@given(st.text(max_size=12))
def test_normalize_sex_returns_a_code_or_raises_invalid_input(raw: str) -> None:
    try:
        result = normalize_sex(raw)
    except InvalidInput:
        return
    assert result is None or result in SEX_CODES


@given(st.dates())
def test_every_calendar_date_parses(day: Any) -> None:
    assert parse_iso_date(day.isoformat(), field="d") == day.isoformat()


@given(st.text(max_size=12))
def test_parse_iso_date_accepts_only_canonical_dates(raw: str) -> None:
    try:
        parse_iso_date(raw, field="d")
    except InvalidInput as exc:
        assert exc.field == "d"
    else:
        assert len(raw) == 10 and raw[4] == raw[7] == "-"


@given(student_dicts(max_size=3))
def test_to_dict_from_dict_round_trip(students: list[dict[str, Any]]) -> None:
    for student in students:
        record = StudentRecord.from_dict(student)
        assert StudentRecord.from_dict(record.to_dict()) == record
        assert record.to_dict() == student


@given(student_dicts(max_size=3))
def test_from_stored_builds_the_record_its_values_came_from(students: list[dict[str, Any]]) -> None:
    for student in students:
        record = StudentRecord.from_dict(student)
        rebuilt = StudentRecord.from_stored(dataclasses.astuple(record))
        assert rebuilt == record and hash(rebuilt) == hash(record)
        with pytest.raises(dataclasses.FrozenInstanceError):
            rebuilt.sis_id = "other"  # type: ignore[misc]


def test_from_stored_wants_every_field() -> None:
    with pytest.raises(ValueError):
        StudentRecord.from_stored(dataclasses.astuple(make())[:-1])


_ANY_VALUE = st.none() | st.text(max_size=8) | st.integers() | st.sampled_from(["F", "KG", "2020-01-01", ""])


@given(
    st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(StudentRecord)] + ["x"]), _ANY_VALUE)
)
def test_arbitrary_mappings_raise_only_satchel_errors(data: dict[str, Any]) -> None:
    with contextlib.suppress(SatchelError):
        StudentRecord.from_dict(data)
