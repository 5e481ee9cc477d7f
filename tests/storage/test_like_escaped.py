"""Searches match what a person typed as written: ``%`` and ``_`` are characters to find, not wildcards."""

from __future__ import annotations

import sqlite3
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from protocol.roster import StudentRecord
from storage import students
from storage.rows import like_escaped

_TEXT = st.text(alphabet=string.ascii_letters + "%_\\ ab", max_size=12)


@given(_TEXT, _TEXT)
def test_a_contains_pattern_matches_exactly_where_the_text_occurs(value: str, needle: str) -> None:
    conn = sqlite3.connect(":memory:")
    (found,) = conn.execute("SELECT ? LIKE ? ESCAPE '\\'", [value, f"%{like_escaped(needle)}%"]).fetchone()
    assert bool(found) == (needle.lower() in value.lower())  # LIKE folds ASCII case


def test_a_wildcard_typed_into_a_search_finds_no_student(node: Any) -> None:
    names = [("Ana", "Lopez"), ("Bo", "O_Neil"), ("Cy", "100% Smith")]
    students.upsert(node.db, [StudentRecord(sis_id=f"S{i}", source_id=f"S{i}", given_name=g, family_name=f,
                                            birth_date=None, sex=None, grade=None)
                              for i, (g, f) in enumerate(names)], now="2026-12-05T00:00:00Z")  # fmt: skip
    found = {text: [s.family_name for s in students.search(node.db, text=text)] for text in ("%", "_", "0%", "O_N")}
    assert found == {"%": ["100% Smith"], "_": ["O_Neil"], "0%": ["100% Smith"], "O_N": ["O_Neil"]}
