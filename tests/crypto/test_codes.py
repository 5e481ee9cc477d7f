"""Authentication codes: format, entropy, normalisation and the check character (spec/codes.md)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import Code, generate_code, parse_code
from crypto._codes import ALPHABET, ENTROPY_BITS, check_symbol
from protocol import SatchelError

SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]$")
values = st.integers(min_value=0, max_value=(1 << 60) - 1)


def _error(text: str) -> str:
    with pytest.raises(SatchelError) as info:
        parse_code(text)
    assert text.strip() == "" or text not in info.value.message
    return info.value.code


def test_generated_codes_have_the_documented_shape_and_entropy() -> None:
    assert ENTROPY_BITS == 60 >= 50
    codes = {generate_code().reveal() for _ in range(200)}
    assert len(codes) == 200
    assert all(SHAPE.match(c) for c in codes)
    assert not set("ILOU") & set("".join(codes))


@given(values)
def test_reveal_and_parse_round_trip(value: int) -> None:
    code = Code._from_int(value)
    assert parse_code(code.reveal()) == code
    assert parse_code(code.reveal().lower().replace("-", " ")) == code


def test_normalisation_of_what_people_type() -> None:
    code = Code._from_int(0x1F2E3D4C5B6A798)
    text = code.reveal()
    for typed in (
        text.lower(), text.replace("-", ""), " " + text.replace("-", " ") + " ", text.replace("-", "\u2013"),
        text.replace("-", " - "), "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in text),
    ):  # fmt: skip
        assert parse_code(typed) == code
    confusable = Code("0111" + "0" * 8)
    assert parse_code("oIl1-0000-0000-" + check_symbol("011100000000")) == confusable
    assert parse_code("OiL1 oooo OOOO " + check_symbol("011100000000")) == confusable


def test_every_single_typo_and_every_swap_is_caught_locally() -> None:
    for value in (0, (1 << 60) - 1, 0x123456789ABCDEF, 0x0F0F0F0F0F0F0F0):
        full = Code._from_int(value).reveal().replace("-", "")
        for i in range(len(full)):
            for replacement in ALPHABET:
                if replacement != full[i]:
                    assert _error(full[:i] + replacement + full[i + 1 :]) == "code.typo"
            for j in range(i + 1, len(full)):
                if full[i] != full[j]:
                    swapped = list(full)
                    swapped[i], swapped[j] = swapped[j], swapped[i]
                    assert _error("".join(swapped)) == "code.typo"


@pytest.mark.parametrize(
    "text",
    ["", "ABC", "0" * 12, "0" * 14, "0000-0000-000U-0", "0000-0000-0000-*", "0000/0000/0000/0", "x" * 500],
)
def test_malformed_text_is_not_a_typo(text: str) -> None:
    assert _error(text) == "code.malformed"


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_a_code_error(text: str) -> None:
    try:
        parse_code(text)
    except SatchelError as exc:
        assert exc.code in {"code.malformed", "code.typo"}


def test_a_code_never_shows_itself() -> None:
    code = Code._from_int(0x0ABCDEF01234567)
    assert repr(code) == str(code) == f"{code}" == "Code(<hidden>)"
    with pytest.raises(TypeError):
        hash(code)
    assert code != "anything" and code == Code._from_int(0x0ABCDEF01234567)
    with pytest.raises(ValueError):
        Code._from_int(1 << 60)
