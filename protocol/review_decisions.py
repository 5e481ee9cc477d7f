"""A coordinator's review decisions for an import, filled into the CSV `satchel import review ID --csv FILE`
wrote: bytes in, one decision per row whose DECISION cell is filled out (sans-IO; node.import_review checks
them against the import and records them).

A DECISION cell holds ``confirm`` (the proposed match: the local student proposed, or a new student when none
was), ``new``, ``later``, or the SIS id of a student here. A row left blank is no decision. What makes the
whole file unusable raises protocol.csv_rows's errors; bad rows are all listed, by line and column, in one
:class:`ImportDecisionsInvalid`, and then nothing of the file is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocol.csv_rows import CsvTable, RowError, RowErrors, RowsInvalid
from protocol.errors import InvalidInput
from protocol.roster import MAX_ID_LENGTH, check_text

# Column names as `import review --csv` writes them (read without regard to case).
STUDENT_COLUMN = "Student"
DECISION_COLUMN = "DECISION"
# What `confirm` meant when the file was written: checked against the proposal when the file is read (a preview
# run again meanwhile may propose another student). A file without the column is not checked.
PROPOSED_COLUMN = "Proposed"
WORDS = ("confirm", "new", "later")
# `import review --csv` leads a cell that starts like a formula with an apostrophe (node.import_log): a
# spreadsheet saving the file again may keep it, and it is not part of the id.
_FORMULA_START = ("=", "+", "-", "@")

# Rows naming students the import does not have are listed one by one (a typo, a row pasted from another
# file), up to this many beyond the import's own students; more, and the file is not this import's.
EXTRA_STUDENTS = 100

Kind = Literal["confirm", "new", "later", "link"]


class ImportDecisionsInvalid(RowsInvalid):
    """Rows of a review decisions file (`satchel import decide ID --csv FILE`) are invalid or do not fit the
    import (an unknown student, an unknown SIS id, a student already imported); each is listed by line and
    column. Nothing of the file was recorded."""

    code = "import.decisions_invalid"
    default_hint = (
        "fix the rows listed (DECISION is confirm, new, later or a SIS id of a student here; leave it empty to "
        "decide later), then run `satchel import decide` again"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One filled-in row: ``line`` is the physical line it starts on (the header is line 1)."""

    line: int
    student: str  # the sending district's SIS id of the incoming student
    kind: Kind
    sis_id: str | None = None  # for "link": the local student typed
    proposed: str | None = None  # the Proposed cell ("" for none), None when the file has no such column

    def __post_init__(self) -> None:
        if self.line < 2 or not self.student or (self.kind == "link") != (self.sis_id is not None):
            raise InvalidInput("a decision needs a data line, a student, and a SIS id exactly when it links")


def _cell(value: str) -> str:
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def same_proposal(cell: str, proposed: str | None) -> bool:
    """Whether a Proposed cell still names ``proposed`` (None: nothing proposed). A spreadsheet saving the file
    again drops the leading zeros of an id all of digits (0042 comes back as 42): that is still the same."""
    now = proposed or ""
    if cell == now:
        return True
    return cell.isdigit() and now.isdigit() and cell.isascii() and now.isascii() and int(cell) == int(now)


def parse_decisions(data: bytes, *, file: str, students: int | None = None) -> list[Decision]:
    """The decisions in ``data``, in file order; raises csv_rows's errors for a file that is not a usable
    CSV, :class:`ImportDecisionsInvalid` listing every bad row. ``students``: how many incoming students the
    import has; a file deciding for EXTRA_STUDENTS more is refused at the first row too many, unread further,
    rather than every row of it held."""
    table = CsvTable(data, file=file, required=(STUDENT_COLUMN.lower(), DECISION_COLUMN.lower()), semicolons=True)
    errors: RowErrors[RowError] = RowErrors()
    decisions: list[Decision] = []
    first_line: dict[str, int] = {}
    with_proposed = table.has(PROPOSED_COLUMN.lower())
    for row in table:
        if isinstance(row, RowError):
            errors.append(row)
            continue
        wanted = _cell(row.get(DECISION_COLUMN.lower()))
        if not wanted:
            continue
        student = _cell(row.get(STUDENT_COLUMN.lower()))

        def bad(column: str, message: str, line: int = row.line) -> None:
            errors.append(RowError(file=file, line=line, field=column, message=message))

        try:
            check_text(STUDENT_COLUMN, student, required=True, max_length=MAX_ID_LENGTH)
        except InvalidInput as exc:
            bad(STUDENT_COLUMN, exc.message)
            continue
        if student in first_line:
            bad(STUDENT_COLUMN, f"student {student} is decided on line {first_line[student]} already; keep one row")
            continue
        first_line[student] = row.line
        if students is not None and len(first_line) > students + EXTRA_STUDENTS:
            bad(STUDENT_COLUMN, f"the file decides for {EXTRA_STUDENTS} students more than the import's {students}: "
                "it is not this import's review file (see `satchel import review ID --csv FILE`)")  # fmt: skip
            raise ImportDecisionsInvalid(f"{file} decides for more students than the import has; nothing was recorded",
                                         errors.kept(), count=len(errors))  # fmt: skip
        if wanted.lower() in WORDS:
            proposed = _cell(row.get(PROPOSED_COLUMN.lower())) if with_proposed else None
            decisions.append(Decision(line=row.line, student=student, kind=wanted.lower(),  # type: ignore[arg-type]
                                      proposed=proposed))  # fmt: skip
            continue
        try:
            check_text(DECISION_COLUMN, wanted, required=True, max_length=MAX_ID_LENGTH)
        except InvalidInput as exc:
            bad(DECISION_COLUMN, f"{exc.message}; write confirm, new, later or a SIS id")
            continue
        decisions.append(Decision(line=row.line, student=student, kind="link", sis_id=wanted))
    if errors:
        raise ImportDecisionsInvalid(
            f"{len(errors)} row(s) of {file} are invalid; nothing was recorded", errors.kept(), count=len(errors)
        )
    return decisions
