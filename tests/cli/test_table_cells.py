"""cli.common.print_table and print_fields: text another district wrote cannot reorder the line it is on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.common import print_fields, print_table

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@given(st.text(alphabet=st.sampled_from([*BIDI, "a", "ש", "\n", "\t", " "]), max_size=40))
def test_no_bidi_control_reaches_the_terminal(text: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        printed: list[str] = []
        mp.setattr("click.echo", lambda line="", **_: printed.append(str(line)))
        print_table(["text", "marks"], [(text, "[signed]")])
        print_fields([("Note", text)])
    assert not any(c in BIDI for line in printed for c in line)
    assert printed[1].rstrip().endswith("[signed]") and "\n" not in printed[1]


def test_an_override_is_shown_as_what_it_is(capsys) -> None:
    print_table(["#", "details"], [(1, "text=pay \u202eFDP.exe [signed]")])
    print_fields([("Note", "\u2067x")])
    out = capsys.readouterr().out
    assert "text=pay <U+202E>FDP.exe [signed]" in out and "Note: <U+2067>x" in out
