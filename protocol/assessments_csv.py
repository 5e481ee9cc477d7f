"""A district's assessment results CSV in, :class:`AssessmentResult` values and row errors out.

Columns (header names are not case-sensitive, order is free):

* ``student_sis_id`` (or ``student``), ``assessment``, ``subject``, ``date``: required. Dates are written
  YYYY-MM-DD, or all M/D/YYYY when the caller says so (``dates=US_DATES``: how Excel saves a US date; a
  file is never guessed at, since 3/4/2025 is a different day in other orders). They are stored ISO. Given
  ``dates_until`` (the caller's today), a date before 1900 or after it is an error: a typo of the year.
* ``score``, ``scale_score`` (decimal numbers), ``percentile`` (0-100), ``benchmark_category`` (text):
  optional columns, but each row needs at least one of them.
* ``result_id``: optional. When absent or empty the id is derived from student, assessment, subject and
  date (:func:`derive_result_id`), so importing the same file twice yields the same ids.

:func:`read_assessments_csv` reads a file given whole or as a stream of chunks and hands out the results
one by one; the one thing it keeps per row (the line of each result id, to find a second row of the same
result) can live in a mapping the caller supplies, so a caller that streams the file and the results needs
memory that does not grow with the file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from protocol.csv_rows import KEEP_ROW_ERRORS, CsvMissingColumn, CsvTable, RowError, RowErrors
from protocol.errors import InvalidInput
from protocol.roster import MAX_ID_LENGTH, check_plausible_date, check_text, parse_iso_date

DEFAULT_FILE_NAME = "assessments.csv"
# Purpose-tagged so a derived id can never collide with another hash Satchel computes over the same text.
_RESULT_ID_PURPOSE = b"satchel/v1/assessment-result-id\x00"
_DECIMAL = re.compile(r"[+-]?[0-9]{1,15}(?:\.[0-9]{1,6})?")
_REQUIRED = ("assessment", "subject", "date")
_MEASURES = ("score", "scale_score", "percentile", "benchmark_category")
ISO_DATES, US_DATES = "YYYY-MM-DD", "M/D/YYYY"
DATE_ORDERS = (ISO_DATES, US_DATES)
_US_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")


@dataclass(frozen=True, slots=True, kw_only=True)
class AssessmentResult:
    result_id: str
    student_sis_id: str
    assessment: str
    subject: str
    date: str
    score: Decimal | None = None
    scale_score: Decimal | None = None
    percentile: Decimal | None = None
    benchmark_category: str = ""

    def __post_init__(self) -> None:
        check_text("result_id", self.result_id, required=True, max_length=MAX_ID_LENGTH)
        check_text("student_sis_id", self.student_sis_id, required=True, max_length=MAX_ID_LENGTH)
        check_text("assessment", self.assessment, required=True)
        check_text("subject", self.subject, required=True)
        parse_iso_date(self.date, field="date")
        for name in ("score", "scale_score", "percentile"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, Decimal) or not value.is_finite()):
                raise InvalidInput(f"{name} must be a finite decimal number", field=name)
        if self.percentile is not None and not 0 <= self.percentile <= 100:
            raise InvalidInput("percentile is not between 0 and 100", field="percentile")
        check_text("benchmark_category", self.benchmark_category, required=False, max_length=64)
        measures = (self.score, self.scale_score, self.percentile, self.benchmark_category or None)
        if all(value is None for value in measures):
            raise InvalidInput(
                "a result needs a score, scale_score, percentile or benchmark_category", field="score"
            )

    def to_dict(self) -> dict[str, str | None]:
        """Plain strings (decimals keep their written digits) for JSON output and msgpack."""

        def text(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "result_id": self.result_id, "student_sis_id": self.student_sis_id,
            "assessment": self.assessment, "subject": self.subject, "date": self.date,
            "score": text(self.score), "scale_score": text(self.scale_score),
            "percentile": text(self.percentile), "benchmark_category": self.benchmark_category,
        }  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class AssessmentParseResult:
    results: tuple[AssessmentResult, ...]
    errors: tuple[RowError, ...]
    # Some dates of a file said to be YYYY-MM-DD are written M/D/YYYY: it wants dates=US_DATES.
    us_dates_refused: bool = False


def derive_result_id(student_sis_id: str, assessment: str, subject: str, date: str) -> str:
    """A stable id for a result that has none: ``ar-`` and 32 hex digits of a SHA-256 over the four keys."""
    digest = hashlib.sha256(_RESULT_ID_PURPOSE)
    for part in (student_sis_id, assessment, subject, date):
        encoded = part.encode("utf-8")
        # Length-prefixed so ("ab", "c") and ("a", "bc") hash differently.
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    return "ar-" + digest.hexdigest()[:32]


def _decimal(column: str, text: str) -> Decimal | None:
    if not text:
        return None
    if not _DECIMAL.fullmatch(text):
        raise InvalidInput(f"{column} must be a number like 42 or 87.5", field=column)
    return Decimal(text)


def _check_order(dates: str) -> None:
    if dates not in DATE_ORDERS:
        raise InvalidInput(f"dates are written {ISO_DATES} or {US_DATES}, not {dates}", field="dates")


def iso_date(value: str, dates: str) -> str:
    """``value`` written in the ``dates`` order, as YYYY-MM-DD (unchecked: the result's own check follows).

    Raises InvalidInput for a value not written in that order, saying so when it is a US date in a file
    said to be ISO, the usual slip with a sheet saved from Excel.
    """
    _check_order(dates)
    match = _US_DATE.fullmatch(value)
    if match is not None and int(match.group(1)) > 12:  # no month: day/month/year, as a UK or EU sheet has it
        raise InvalidInput(
            f"date {value} is written day/month/year: save the date column as {ISO_DATES} (in Excel: Format "
            "Cells > Custom > yyyy-mm-dd)", field="date",
        )  # fmt: skip
    if dates == US_DATES:
        if match is None:
            raise InvalidInput(f"date must be a date written {US_DATES}", field="date")
        month, day, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    if match is not None:
        raise InvalidInput(f"date {value} is written month/day/year, not {ISO_DATES}", field="date")
    return value


def looks_us(value: str) -> bool:
    """Whether ``value`` may be a month/day/year date (its first number can be a month)."""
    match = _US_DATE.fullmatch(value)
    return match is not None and int(match.group(1)) <= 12


def parse_assessments_csv(
    data: bytes, *, file: str = DEFAULT_FILE_NAME, dates: str = ISO_DATES, dates_until: date | None = None
) -> AssessmentParseResult:
    """Parse an assessment results CSV: file problems raise (``csv.*`` codes), row problems are listed.
    ``dates``: how the date column is written, ISO_DATES or US_DATES."""
    reading = read_assessments_csv(data, file=file, dates=dates, dates_until=dates_until, keep_errors=None)
    results = tuple(reading.results())
    return AssessmentParseResult(
        results=results, errors=reading.errors.kept(), us_dates_refused=reading.us_dates_refused
    )


def read_assessments_csv(
    data: bytes | Iterable[bytes], *, file: str = DEFAULT_FILE_NAME, dates: str = ISO_DATES,
    dates_until: date | None = None, seen: MutableMapping[str, int] | None = None,
    keep_errors: int | None = KEEP_ROW_ERRORS,
) -> AssessmentReading:  # fmt: skip
    """Check the date order and the header now (raising as :func:`parse_assessments_csv` does); the rows are
    read as :meth:`AssessmentReading.results` is iterated. ``seen`` keeps the line of each result id (a dict
    when not given); ``keep_errors`` bad rows are kept to be listed, and all counted (``None``: all kept)."""
    _check_order(dates)  # an unknown order is refused before any row is read
    table = CsvTable(data, file=file, required=_REQUIRED)
    student_column = next((c for c in ("student_sis_id", "student") if table.has(c)), None)
    if student_column is None:
        raise CsvMissingColumn(
            f"{file} has no student_sis_id column",
            field="student_sis_id",
            hint="Name the column holding each student's SIS id 'student_sis_id' (or 'student').",
        )
    return AssessmentReading(
        table, student_column, file, dates, {} if seen is None else seen, keep_errors, dates_until=dates_until
    )


class AssessmentReading:
    """A file being read: its valid results from :meth:`results`, its bad rows in ``errors`` as they are met
    (all of them counted, and the first kept, once the results have run out), and whether US dates were
    refused."""

    def __init__(
        self, table: CsvTable, student_column: str, file: str, dates: str, seen: MutableMapping[str, int],
        keep: int | None, *, dates_until: date | None = None,
    ) -> None:  # fmt: skip
        self._table, self._student_column, self._file, self._dates = table, student_column, file, dates
        self._id_lines = seen
        self.errors: RowErrors[RowError] = RowErrors(keep)
        self.us_dates_refused = False
        self.dates_until = dates_until  # later dates (and those before 1900) are refused

    def results(self) -> Iterator[AssessmentResult]:
        return (result for _, result in self.numbered())

    def numbered(self) -> Iterator[tuple[int, AssessmentResult]]:
        """The valid results with the line each starts on, for a check made outside the file (its student
        here) to name the row as the file's own checks do."""
        file, dates, student_column, id_lines = self._file, self._dates, self._student_column, self._id_lines
        for row in self._table:
            if isinstance(row, RowError):
                self.errors.append(row)
                continue
            problems: list[tuple[str, str]] = []
            values: dict[str, Decimal | None] = {}
            for column in ("score", "scale_score", "percentile"):
                try:
                    values[column] = _decimal(column, row.get(column))
                except InvalidInput as exc:
                    problems.append((column, exc.message))
            student, assessment = row.get(student_column), row.get("assessment")
            subject, when = row.get("subject"), row.get("date")
            try:
                when = iso_date(when, dates)  # before the id is derived: the same result whichever way it is written
                if self.dates_until is not None:
                    check_plausible_date(parse_iso_date(when, field="date"), field="date", today=self.dates_until)
            except InvalidInput as exc:
                problems.append(("date", exc.message))
                self.us_dates_refused = self.us_dates_refused or looks_us(when)
            result_id = row.get("result_id") or derive_result_id(student, assessment, subject, when)
            result: AssessmentResult | None = None
            if not problems:
                try:
                    result = AssessmentResult(
                        result_id=result_id, student_sis_id=student, assessment=assessment, subject=subject,
                        date=when, benchmark_category=row.get("benchmark_category"), **values,
                    )  # fmt: skip
                except InvalidInput as exc:
                    field = student_column if exc.field == "student_sis_id" else exc.field
                    problems.append((field or "", exc.message))
            first = id_lines.setdefault(result_id, row.line)
            if result is not None and first != row.line:
                why = "result_id" if row.get("result_id") else "student, assessment, subject and date"
                problems.append(
                    (
                        "result_id" if row.get("result_id") else student_column,
                        f"same {why} as line {first}; add a distinct result_id to keep both",
                    )
                )
            self.errors.extend(RowError(file=file, line=row.line, field=f or None, message=m) for f, m in problems)
            if result is not None and not problems:
                yield row.line, result
