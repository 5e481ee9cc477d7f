"""The record of disclosures as a letter: what was sent said in words, every line within the page's width."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.disclosure_letter import WIDTH, records_sent, render
from node.disclosure_record import Disclosure, Requester
from protocol.roster import StudentRecord

STUDENT = StudentRecord(sis_id="200101", source_id="200101", given_name="William", family_name="Thompson",
                        birth_date="2011-09-14", sex="M", grade="08")


def _disclosure(records: list[dict[str, str]], purpose: str = "IEP review", requested_by: Requester | None = None,
                by: tuple[str, str] = ("jane", "Jane Doe")) -> Disclosure:  # fmt: skip
    return Disclosure(at="2026-12-05T13:59:00Z", to_domain="shelbyville.k12.example", to_name="Shelbyville CUSD 4",
                      records=records, disclosed_by=by[0], disclosed_by_name=by[1], purpose=purpose,
                      transfer_id="01M9380G50N82A6A3AAA52C4YK", transfer_state="partially_imported",
                      requested_by=requested_by)  # fmt: skip


def test_records_are_named_by_kind_with_their_titles() -> None:
    records = [{"kind": "demographics", "id": "", "title": ""}, {"kind": "document", "id": "d1", "title": "IEP"},
               {"kind": "document", "id": "d2", "title": ""}, {"kind": "case", "id": "c1", "title": "BTAM-31"},
               *({"kind": "assessment", "id": f"a{n}", "title": "MAP Fall"} for n in range(3)),
               {"kind": "assessment", "id": "a9", "title": "ACCESS"}]  # fmt: skip
    assert records_sent(records) == (
        'demographics; document "IEP"; a document; case BTAM-31; 4 assessment results (MAP Fall, ACCESS)'
    )
    assert records_sent([{"kind": "assessment", "id": "a", "title": ""}]) == "1 assessment result"


def test_the_letter_names_the_people_the_records_and_the_time() -> None:
    asker = Requester(name="Bo Brown", email="bo@shelbyville.k12.example", phone="+1 217-555-0199",
                      domain="shelbyville.k12.example", request_id="01M9380SF8489T3H8RVJZ5BJMJ")  # fmt: skip
    letter = render("Springfield SD 186", "springfield.k12.example", STUDENT,
                    [_disclosure([{"kind": "demographics", "id": "", "title": ""}], requested_by=asker),
                     _disclosure([], by=("gone", "gone"))], date(2026, 12, 7))  # fmt: skip
    lines = letter.splitlines()
    assert lines[:7] == ["Record of disclosures", "Springfield SD 186 (springfield.k12.example)", "",
                         "Student:  William Thompson", "SIS id:   200101", "Born:     2011-09-14",
                         "Printed:  7 December 2026"]  # fmt: skip
    assert "1. 5 December 2026, 13:59 UTC" in lines and "2. 5 December 2026, 13:59 UTC" in lines
    assert "   Disclosed by:  Jane Doe (jane)" in lines and "   Disclosed by:  gone" in lines  # a removed operator
    assert "   Requested by:  Bo Brown <bo@shelbyville.k12.example>, +1 217-555-0199, shelbyville.k12.example" in lines
    assert "   Outcome:       received and opened" in lines  # partially imported there
    assert "   Transfer:      01M9380G50N82A6A3AAA52C4YK" in lines
    assert letter.count("Requested by") == 1


@pytest.mark.parametrize(("state", "opened", "words"), [
    ("sealed", False, "sealed here, not delivered yet"), ("undeliverable", False, "never delivered"),
    ("cancelled", False, "withdrawn by this district before it was opened"),
    ("rejected", False, "refused by the receiving district, never opened"),
    ("rejected", True, "received and opened, then refused by the receiving district"), (None, False, "unknown"),
])  # fmt: skip
def test_the_letter_says_whether_the_other_district_received_and_opened_it(
    state: str | None, opened: bool, words: str
) -> None:
    letter = render("Springfield SD 186", "springfield.k12.example", STUDENT,
                    [replace(_disclosure([]), transfer_state=state, opened=opened)], date(2026, 12, 7))  # fmt: skip
    assert f"   Outcome:       {words}" in letter.splitlines()
    assert '"Outcome" says whether it received and opened it' in " ".join(letter.splitlines())


def test_a_student_never_disclosed_gets_a_letter_that_says_so() -> None:
    letter = render("Springfield SD 186", "springfield.k12.example", STUDENT, [], date(2026, 12, 7))
    assert letter.endswith("No education records of this student have been disclosed to another district through "
                           "Satchel.")  # fmt: skip


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=300)


_NAME = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=200)


@given(titles=st.lists(_TEXT, max_size=30), purpose=_TEXT.filter(str.strip), district=_NAME, given=_NAME,
       family=_NAME)  # fmt: skip
def test_every_line_fits_the_page(titles: list[str], purpose: str, district: str, given: str, family: str) -> None:
    records = [{"kind": "document", "id": str(n), "title": t} for n, t in enumerate(titles)]
    student = StudentRecord.from_stored((STUDENT.sis_id, STUDENT.source_id, given, family, "", "", STUDENT.birth_date,
                                         "M", "08", "", "", "", "", "", None, "active"))  # fmt: skip
    letter = render(district, "springfield.k12.example", student, [_disclosure(records, purpose)], date(2026, 12, 7))
    assert all(len(line) <= WIDTH for line in letter.splitlines())
