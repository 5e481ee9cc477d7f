import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import Code, generate_code, parse_code
from protocol import SatchelError
from protocol.transfer_code import (
    CodeSameNode,
    TransferCode,
    TransferCodeSourceInvalid,
    check_usable_here,
    format_transfer_code,
    parse_transfer_code,
    split_transfer_code,
)

CODE = Code._from_int(0x123456789ABCDEF)
SOURCE = "springfield.k12.example"


def test_format_and_parse_round_trip() -> None:
    text = format_transfer_code(TransferCode(code=CODE, source_domain=SOURCE))
    assert text == f"{CODE.reveal()}@{SOURCE}"
    parsed = parse_transfer_code(text)
    assert parsed.code == CODE and parsed.source_domain == SOURCE
    fresh = generate_code()
    assert parse_transfer_code(TransferCode(code=fresh, source_domain=SOURCE).reveal()).code == fresh


@pytest.mark.parametrize(
    "typed",
    [
        f"  {CODE.reveal().lower()} @ Springfield.K12.Example. ",
        f"{CODE.reveal().replace('-', ' ')}＠springfield.k12.example",  # full-width at sign
        f"{CODE.reveal()}@springfield.k12.example\n",
    ],
)
def test_what_people_type_is_normalised(typed: str) -> None:
    parsed = parse_transfer_code(typed)
    assert parsed.code == CODE and parsed.source_domain == SOURCE


@pytest.mark.parametrize(
    ("typed", "field"),
    [
        # The whole text a person typed is "code"; only a bad part after the '@' is "source_domain".
        (CODE.reveal(), "code"),
        (f"@{SOURCE}", "code"),
        (f"   @{SOURCE}", "code"),
        (f"{CODE.reveal()}@", "source_domain"),
        (f"{CODE.reveal()}@localhost", "source_domain"),
        (f"{CODE.reveal()}@bad_domain.example", "source_domain"),
        (f"{CODE.reveal()}@bücher.example", "source_domain"),
        ("x" * 401 + "@a.example", "code"),
    ],
)
def test_a_missing_or_bad_source_is_coded(typed: str, field: str) -> None:
    with pytest.raises(TransferCodeSourceInvalid) as caught:
        parse_transfer_code(typed)
    assert caught.value.code == "code.source_invalid"
    assert caught.value.field == field
    assert CODE.reveal() not in caught.value.message


def test_the_code_part_is_checked_by_crypto() -> None:
    typo = CODE.reveal()[:-1] + ("0" if CODE.reveal()[-1] != "0" else "1")
    with pytest.raises(SatchelError) as caught:
        parse_transfer_code(f"{typo}@{SOURCE}")
    assert caught.value.code == "code.typo"
    with pytest.raises(SatchelError) as malformed:
        parse_transfer_code(f"ABC@{SOURCE}")
    assert malformed.value.code == "code.malformed"


def test_the_code_parser_can_be_injected() -> None:
    seen: list[str] = []

    def fake_parse(text: str) -> Code:
        seen.append(text)
        return CODE

    parsed = parse_transfer_code(f"anything at all@{SOURCE}", parse_code=fake_parse)
    assert parsed.code == CODE and seen == ["anything at all"]
    assert split_transfer_code(f"a@b@{SOURCE}") == ("a@b", SOURCE)


def test_never_on_the_node_that_made_it() -> None:
    parsed = parse_transfer_code(f"{CODE.reveal()}@{SOURCE}")
    check_usable_here(parsed, own_domain="shelbyville.k12.example")
    with pytest.raises(CodeSameNode) as caught:
        check_usable_here(parsed, own_domain=SOURCE)
    assert caught.value.code == "code.same_node"


def test_repr_never_shows_the_code() -> None:
    parsed = parse_transfer_code(f"{CODE.reveal()}@{SOURCE}")
    assert CODE.reveal() not in repr(parsed) and CODE.reveal()[:4] not in repr(parsed)
    assert repr(parsed) == f"TransferCode(<hidden>@{SOURCE})"


def test_construction_is_validated() -> None:
    with pytest.raises(SatchelError):
        TransferCode(code="7K2Q-M9XD-RT4B-J", source_domain=SOURCE)  # type: ignore[arg-type]
    with pytest.raises(SatchelError):
        TransferCode(code=CODE, source_domain="Springfield.K12.Example")


@given(st.text(max_size=80))
def test_arbitrary_text_raises_only_satchel_errors(text: str) -> None:
    with contextlib.suppress(SatchelError):
        parse_transfer_code(text)


@given(st.integers(0, (1 << 60) - 1), st.sampled_from([SOURCE, "a.example.org", "xn--bcher-kva.example"]))
def test_every_code_round_trips(value: int, domain: str) -> None:
    code = Code._from_int(value)
    parsed = parse_transfer_code(TransferCode(code=code, source_domain=domain).reveal())
    assert parsed.code == code and parsed.source_domain == domain
    assert parse_code(parsed.reveal().rpartition("@")[0]) == code


@pytest.mark.parametrize("typed", [f"@{SOURCE}", f"   @{SOURCE}"])
def test_a_code_with_nothing_before_its_at_is_said_to_lack_the_code(typed: str) -> None:
    # It has its '@': saying it lacked one sent people looking for the wrong mistake.
    with pytest.raises(TransferCodeSourceInvalid) as caught:
        parse_transfer_code(typed)
    assert caught.value.message == "the transfer code has nothing before its '@': the code itself is missing"
