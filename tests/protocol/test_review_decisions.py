"""The review decisions file (`satchel import decide ID --csv FILE`): bytes in, decisions or coded errors out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.csv_rows import CsvEncodingError, CsvMalformed, CsvMissingColumn
from protocol.errors import SatchelError
from protocol.review_decisions import (
    EXTRA_STUDENTS,
    Decision,
    ImportDecisionsInvalid,
    parse_decisions,
    same_proposal,
)

HEADER = "Student,Name,Match,DECISION"


def parse(*lines: str) -> list[Decision]:
    return parse_decisions(("\r\n".join((HEADER, *lines)) + "\r\n").encode(), file="review.csv")


def test_words_any_case_sis_ids_and_empty_rows() -> None:
    decided = parse('100001,"Martinez, Ava",uncertain,Confirm', "100002,x,new,", "100003,x,matched, NEW ",
                    "100004,x,uncertain,later", "100005,x,uncertain,B-9001", "", "100006,,,")  # fmt: skip
    assert [(d.line, d.student, d.kind, d.sis_id) for d in decided] == [
        (2, "100001", "confirm", None), (4, "100003", "new", None), (5, "100004", "later", None),
        (6, "100005", "link", "B-9001"),
    ]  # fmt: skip


def test_a_cell_the_review_file_led_with_an_apostrophe_is_read_without_it() -> None:
    (decided,) = parse("'-17,x,uncertain,'=B-1")
    assert (decided.student, decided.sis_id) == ("-17", "=B-1")
    (kept,) = parse("'17,x,uncertain,new")  # not a formula: the apostrophe is the id's
    assert kept.student == "'17"


def test_every_bad_row_is_listed_by_line_and_column() -> None:
    with pytest.raises(ImportDecisionsInvalid) as raised:
        parse("1,x,new,new", ",x,new,later", "1,x,new,later", "2,x,new,a\x07b", "3,x,new,new,extra")
    assert raised.value.code == "import.decisions_invalid" and raised.value.count == 4
    assert [(r.line, r.field) for r in raised.value.rows] == [(3, "Student"), (4, "Student"), (5, "DECISION"),
                                                               (6, None)]  # fmt: skip
    assert "decided on line 2 already" in raised.value.rows[1].message


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"", CsvMalformed), (b"\xff\xfe\x00S", CsvEncodingError), (b"Student,Name\n1,x\n", CsvMissingColumn),
     (b'Student,DECISION\n"1,new\n', CsvMalformed), (b"PK\x03\x04rest", CsvMalformed),
     (b"Student,DECISION\n1,n\xe9w\n", CsvEncodingError)],
)  # fmt: skip
def test_a_file_that_is_not_a_usable_csv(content: bytes, error: type[SatchelError]) -> None:
    with pytest.raises(error) as raised:
        parse_decisions(content, file="review.csv")
    assert raised.value.code.startswith("csv.") and "review.csv" in raised.value.message


_CELLS = st.sampled_from(["Student", "DECISION", "confirm", "new", "later", "B-9001", "100001", "'=1", "", " ",
                          '"', ",", ";", "\r\n", "\n", "\x00", "\xff", "é", "\x07"])  # fmt: skip


@given(st.one_of(st.binary(max_size=400), st.lists(_CELLS, max_size=60).map(lambda cells: "".join(cells).encode()),
                 st.lists(_CELLS, max_size=40).map(lambda cells: ("Student,DECISION\n" + "".join(cells)).encode()),
                 st.lists(_CELLS, max_size=40).map(lambda cells: ("Student;DECISION\n" + "".join(cells)).encode())))
def test_any_bytes_give_a_coded_error_or_valid_decisions(data: bytes) -> None:
    try:
        decided = parse_decisions(data, file="review.csv")
    except SatchelError as exc:
        assert exc.code and exc.hint is not None and exc.message
        return
    students = [d.student for d in decided]
    assert len(students) == len(set(students))
    assert all(d.line >= 2 and d.kind in ("confirm", "new", "later", "link") for d in decided)
    assert all((d.kind == "link") == (d.sis_id is not None) for d in decided)


def test_a_confirm_keeps_the_proposal_the_file_showed_when_it_has_the_column() -> None:
    # As Excel saves it again: a BOM, the columns moved, CRLF; "" is "nothing proposed", None "not in the file".
    data = b"\xef\xbb\xbfDECISION,proposed,Student\r\nconfirm,'-9,1\r\nconfirm,,2\r\nnew,B-1,3\r\n"
    assert [(d.student, d.proposed) for d in parse_decisions(data, file="review.csv")] == [("1", "-9"), ("2", ""),
                                                                                          ("3", "B-1")]  # fmt: skip
    (bare,) = parse_decisions(b"Student,DECISION\n1,confirm\n", file="review.csv")
    assert bare.proposed is None


def test_a_file_excel_saved_with_semicolons_is_read_as_written() -> None:
    # Excel saves "CSV" with semicolons where the decimal mark is a comma; the review file's cells hold commas.
    data = ('\ufeffStudent;Name;Proposed;DECISION\r\n100001;"Martinez, Ava; born\r\n2012";100001;confirm\r\n'
            "100002;Okonkwo, Zara;;new\r\n;;;\r\n").encode()
    assert [(d.line, d.student, d.kind, d.proposed) for d in parse_decisions(data, file="review.csv")] == [
        (2, "100001", "confirm", "100001"), (4, "100002", "new", "")]  # fmt: skip
    # A comma anywhere in the header: commas separate, and a ; is part of a value.
    (decided,) = parse_decisions(b"Student,DECISION\n1;2,B;1\n", file="review.csv")
    assert (decided.student, decided.sis_id) == ("1;2", "B;1")


_IDS = st.text(alphabet="0123456789-B٣", max_size=8)  # ٣: a digit, but not one a spreadsheet drops zeros before


@given(_IDS, st.one_of(st.none(), _IDS))
def test_a_proposed_cell_names_the_proposal_but_for_the_leading_zeros_a_spreadsheet_drops(
    cell: str, proposed: str | None
) -> None:
    same = same_proposal(cell, proposed)
    if cell == (proposed or ""):
        assert same
    if same and cell != (proposed or ""):  # only ids of ASCII digits, equal as numbers
        assert cell.isdigit() and cell.isascii() and (proposed or "").isascii() and int(cell) == int(proposed or "x")
    assert same_proposal("42", "0042") and same_proposal("", None) and not same_proposal("B-42", "B-042")


def test_a_file_deciding_for_more_students_than_the_import_has_is_refused_unread_beyond() -> None:
    # The rows past the one too many are not read: a bad byte there is not reached.
    rows = b"".join(b"%d,later\n" % i for i in range(EXTRA_STUDENTS + 2))
    data = b"Student,DECISION\n1,\n" + rows + b"5,n\xe9w\n"
    assert len(parse_decisions(data[: data.rindex(b"\n", 0, -8) + 1], file="review.csv", students=1)) == 101
    with pytest.raises(ImportDecisionsInvalid) as raised:
        parse_decisions(data, file="review.csv", students=1)
    assert raised.value.code == "import.decisions_invalid"
    assert [(r.line, r.field) for r in raised.value.rows] == [(EXTRA_STUDENTS + 4, "Student")]
    assert f"{EXTRA_STUDENTS} students more than the import's 1" in raised.value.rows[0].message
