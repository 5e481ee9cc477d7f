from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.assessments_csv import (
    ISO_DATES,
    US_DATES,
    AssessmentParseResult,
    AssessmentResult,
    derive_result_id,
    parse_assessments_csv,
)
from protocol.csv_rows import CsvEncodingError, CsvMalformed, CsvMissingColumn
from protocol.errors import InvalidInput, SatchelError

HEADER = "student_sis_id,assessment,subject,date,score,scale_score,percentile,benchmark_category"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "assessments-district-a.csv"


def parse(*lines: str, file: str = "assessments.csv") -> AssessmentParseResult:
    return parse_assessments_csv(("\r\n".join(lines) + "\r\n").encode(), file=file)


def test_good_rows() -> None:
    result = parse(
        HEADER,
        "100001,MAP Growth Fall,Mathematics,2024-09-12,42,221,67,At Benchmark",
        "100001,MAP Growth Fall,Reading,2024-09-13,,208.5,,",
        "100002,State ELA,ELA,2024-04-20,,,,Proficient",
    )
    assert result.errors == ()
    math, reading, ela = result.results
    assert math.score == Decimal(42) and math.scale_score == Decimal(221) and math.percentile == Decimal(67)
    assert math.benchmark_category == "At Benchmark"
    assert reading.score is None and reading.scale_score == Decimal("208.5")
    assert ela.benchmark_category == "Proficient" and ela.percentile is None
    assert math.result_id == derive_result_id("100001", "MAP Growth Fall", "Mathematics", "2024-09-12")
    assert math.to_dict()["scale_score"] == "221"


def test_student_header_alias_result_id_column_and_any_order() -> None:
    result = parse("Percentile,DATE,Subject,Assessment,Student,Result_ID", "50,2024-01-02,Math,Quiz,7,r-1")
    (row,) = result.results
    assert (row.student_sis_id, row.result_id, row.percentile) == ("7", "r-1", Decimal(50))


def test_derived_ids_are_stable_and_distinct() -> None:
    first = derive_result_id("1", "A", "Math", "2024-01-01")
    assert first == derive_result_id("1", "A", "Math", "2024-01-01")
    assert first.startswith("ar-") and len(first) == 35
    assert first != derive_result_id("1", "AM", "ath", "2024-01-01")
    rows = [HEADER, "1,A,Math,2024-01-01,3,,,"]
    assert parse(*rows).results == parse(*rows).results


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        (",MAP,Math,2024-09-12,1,,,", "student_sis_id", "required"),
        ("1,,Math,2024-09-12,1,,,", "assessment", "required"),
        ("1,MAP,,2024-09-12,1,,,", "subject", "required"),
        ("1,MAP,Math,09/12/2024,1,,,", "date", "YYYY-MM-DD"),
        ("1,MAP,Math,2024-09-12,forty,,,", "score", "number"),
        ("1,MAP,Math,2024-09-12,,1e5,,", "scale_score", "number"),
        ("1,MAP,Math,2024-09-12,,,101,", "percentile", "between 0 and 100"),
        ("1,MAP,Math,2024-09-12,,,-1,", "percentile", "between 0 and 100"),
        ("1,MAP,Math,2024-09-12,,,,", "score", "needs a score"),
        ("1,MAP,Math,2024-09-12,1,,", None, "7 values"),
    ],
)
def test_row_errors(row: str, field: str | None, fragment: str) -> None:
    result = parse(HEADER, "9,MAP,Math,2024-09-12,1,,,", row, file="fall.csv")
    (error,) = result.errors
    assert (error.file, error.line, error.field) == ("fall.csv", 3, field)
    assert fragment in error.message
    assert len(result.results) == 1


def test_duplicates_are_errors_on_the_second_row() -> None:
    result = parse(
        HEADER, "1,MAP,Math,2024-09-12,1,,,", "2,MAP,Math,2024-09-12,1,,,", "1,MAP,Math,2024-09-12,2,,,"
    )
    (error,) = result.errors
    assert (error.line, error.field) == (4, "student_sis_id")
    assert "line 2" in error.message
    with_ids = parse(HEADER + ",result_id", "1,MAP,Math,2024-09-12,1,,,,r1", "2,MAP,Math,2024-09-12,1,,,,r1")
    (error,) = with_ids.errors
    assert (error.line, error.field) == (3, "result_id")


@pytest.mark.parametrize(
    ("content", "error", "field"),
    [
        (b"assessment,subject,date,score\r\n", CsvMissingColumn, "student_sis_id"),
        (b"student,subject,date\r\n", CsvMissingColumn, "assessment"),
        (b"student,assessment,subject,date\r\n1,\xff,M,2024-01-01\r\n", CsvEncodingError, None),
        (b'student,assessment,subject,date\r\n1,"A,M,2024-01-01\r\n', CsvMalformed, None),
        (b"", CsvMalformed, None),
    ],
)
def test_file_errors(content: bytes, error: type[SatchelError], field: str | None) -> None:
    with pytest.raises(error) as info:
        parse_assessments_csv(content)
    assert info.value.code.startswith("csv.") and "assessments.csv" in info.value.message
    assert info.value.field == field


def test_result_validates_on_construction() -> None:
    with pytest.raises(InvalidInput) as info:
        AssessmentResult(result_id="r", student_sis_id="1", assessment="A", subject="M", date="2024-01-01",
                         score=Decimal("NaN"))  # fmt: skip
    assert info.value.field == "score"


def test_example_file_parses() -> None:
    result = parse_assessments_csv(EXAMPLE.read_bytes(), file=EXAMPLE.name)
    assert result.errors == () and len(result.results) >= 5


# --- properties -------------------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=10)
_NAME = _TEXT.map(str.strip).filter(bool)
_NUMBER = st.decimals(min_value=-999, max_value=9999, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def _results(draw: st.DrawFn) -> AssessmentResult:
    student, assessment, subject = draw(_NAME), draw(_NAME), draw(_NAME)
    when = draw(st.dates()).isoformat()
    return AssessmentResult(
        result_id=derive_result_id(student, assessment, subject, when),
        student_sis_id=student, assessment=assessment, subject=subject, date=when,
        score=draw(st.none() | _NUMBER), scale_score=draw(st.none() | _NUMBER),
        percentile=draw(st.none() | st.decimals(min_value=0, max_value=100, places=1)),
        benchmark_category=draw(st.just("Proficient") | _NAME.filter(lambda s: len(s) <= 64)),
    )  # fmt: skip


@given(st.lists(_results(), max_size=8, unique_by=lambda r: r.result_id))
def test_round_trip(results: list[AssessmentResult]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER.split(","))
    for r in results:
        d = r.to_dict()
        writer.writerow([d["student_sis_id"], *(d[k] or "" for k in HEADER.split(",")[1:])])
    parsed = parse_assessments_csv(out.getvalue().encode())
    assert parsed.errors == ()
    assert parsed.results == tuple(results)


_CSV_TEXT = st.lists(st.sampled_from([*',"\r\n .-5e', "2024-01-02", "101", "x"]), max_size=40).map("".join)


@given(st.binary(max_size=80) | _CSV_TEXT.map(lambda text: (HEADER + "\r\n" + text).encode()))
def test_arbitrary_bytes_raise_only_satchel_errors(data: bytes) -> None:
    try:
        result = parse_assessments_csv(data)
    except SatchelError:
        return
    assert all(e.line >= 2 for e in result.errors)


# --- dates written month/day/year (a sheet saved from Excel) --------------------------------------------


@given(st.dates(), st.booleans())
def test_a_us_date_is_the_same_result_as_its_iso_spelling(day, padded: bool) -> None:
    from protocol.assessments_csv import US_DATES

    us = f"{day.month:02d}/{day.day:02d}/{day.year:04d}" if padded else f"{day.month}/{day.day}/{day.year:04d}"
    iso = parse(HEADER, f"100001,MAP,Math,{day.isoformat()},,228,71,")
    excel = parse_assessments_csv(
        (HEADER + "\n" + f"100001,MAP,Math,{us},,228,71,\n").encode(), dates=US_DATES
    )
    assert excel.errors == () and excel.results == iso.results  # same date, same derived id


def test_a_us_date_in_a_file_said_to_be_iso_is_named_as_such() -> None:
    result = parse(HEADER, "100001,MAP,Math,9/17/2024,,228,71,", "100001,MAP,Reading,2024-09-18,,219,58,")
    assert [(e.line, e.field, e.message) for e in result.errors] == [
        (2, "date", "date 9/17/2024 is written month/day/year, not YYYY-MM-DD")
    ]
    assert result.us_dates_refused and len(result.results) == 1
    assert not parse(HEADER, "100001,MAP,Math,17.09.2024,,228,71,").us_dates_refused


@pytest.mark.parametrize("dates", [ISO_DATES, US_DATES])
def test_a_day_month_year_date_is_named_as_such_whichever_order_is_said(dates: str) -> None:
    # 17 is no month: telling the user to re-run with --dates M/D/YYYY only led to "not a calendar date".
    result = parse_assessments_csv((HEADER + "\n100001,MAP,Math,17/09/2024,,228,71,\n").encode(), dates=dates)
    assert [(e.field, e.message) for e in result.errors] == [
        ("date", "date 17/09/2024 is written day/month/year: save the date column as YYYY-MM-DD (in Excel: "
                 "Format Cells > Custom > yyyy-mm-dd)")
    ]  # fmt: skip
    assert not result.us_dates_refused


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("2024-09-17", "date must be a date written M/D/YYYY"),  # one order per file, never a mix
        ("2/30/2024", "date is not a calendar date"),
        ("13/1/2024", "date 13/1/2024 is written day/month/year: save the date column as YYYY-MM-DD (in Excel: "
                      "Format Cells > Custom > yyyy-mm-dd)"),
        ("9/17/24", "date must be a date written M/D/YYYY"),  # a two-digit year names no century
    ],
)
def test_a_file_said_to_be_us_still_refuses_what_is_not_a_us_date(written: str, message: str) -> None:
    from protocol.assessments_csv import US_DATES

    result = parse_assessments_csv(f"{HEADER}\n100001,MAP,Math,{written},,228,71,\n".encode(), dates=US_DATES)
    assert [(e.field, e.message) for e in result.errors] == [("date", message)]


def test_an_unknown_date_order_is_refused_before_reading() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_assessments_csv(f"{HEADER}\n".encode(), dates="D/M/YYYY")
    assert refused.value.field == "dates"


@pytest.mark.parametrize(("written", "message"), [
    ("0001-01-01", "date is before 1900: a typo of the year, or a placeholder"),
    ("1899-12-31", "date is before 1900: a typo of the year, or a placeholder"),
    ("2102-05-01", "date is in the future: a typo of the year?"),
    ("2025-01-02", "date is in the future: a typo of the year?"),
    ("12/31/9999", "date is in the future: a typo of the year?"),
])  # fmt: skip
def test_a_date_outside_1900_to_today_is_a_row_error(written: str, message: str) -> None:
    dates, today = (US_DATES, "1/1/2025") if "/" in written else (ISO_DATES, "2025-01-01")
    data = f"{HEADER}\n100001,MAP,Math,{written},,228,71,\n100001,MAP,Math,{today},,229,72,\n".encode()
    result = parse_assessments_csv(data, dates=dates, dates_until=date(2025, 1, 1))
    assert [(e.line, e.field, e.message) for e in result.errors] == [(2, "date", message)]
    assert [r.date for r in result.results] == ["2025-01-01"]  # today itself, and 1900-01-01, are fine
    assert parse_assessments_csv(data, dates=dates).errors == ()  # no window without the caller's today


def test_the_first_day_of_1900_is_in_the_window() -> None:
    data = f"{HEADER}\n100001,MAP,Math,1900-01-01,,228,71,\n".encode()
    assert parse_assessments_csv(data, dates_until=date(2025, 1, 1)).errors == ()
