"""cli.common.clip: a table cell cut to its column, marked when something was cut."""

from hypothesis import given
from hypothesis import strategies as st

from cli.common import clip


@given(st.text(max_size=120), st.integers(1, 100))
def test_a_cell_fits_its_column_and_says_when_it_was_cut(text: str, width: int) -> None:
    cell = clip(text, width)
    assert len(cell) <= width
    if len(text) <= width:
        assert cell == text
    else:
        assert cell.endswith("…") and text.startswith(cell[:-1])


def test_the_import_review_reason_of_the_demo() -> None:
    reason = "the state id supplied by the sender names this student; given name 'Bill' is a nickname of 'William'"
    assert clip(reason, 80) == reason[:79] + "…"
