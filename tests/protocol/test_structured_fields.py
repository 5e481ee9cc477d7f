"""RFC 8941 parsing and canonical serialisation."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import SatchelError
from protocol.structured_fields import (
    InnerList,
    Item,
    StructuredFieldMalformed,
    Token,
    parse_dictionary,
    parse_item,
    parse_list,
    serialize_bare_item,
    serialize_dictionary,
    serialize_item,
    serialize_list,
    serialize_member,
)


def test_rfc9421_example_dictionary_members_reserialise_canonically() -> None:
    # RFC 9421 §2.1.2: the members of this field as they appear in a signature base.
    members = parse_dictionary("a=1, b=2;x=1;y=2, c=(a   b   c), d")
    assert serialize_member(members["a"]) == "1"
    assert serialize_member(members["d"]) == "?1"
    assert serialize_member(members["b"]) == "2;x=1;y=2"
    assert serialize_member(members["c"]) == "(a b c)"
    assert serialize_dictionary(members) == "a=1, b=2;x=1;y=2, c=(a b c), d"


def test_signature_input_shape() -> None:
    text = 'sig1=("@method" "signature";req;key="sig1");created=1618884473;keyid="k";nonce="n"'
    member = parse_dictionary(text)["sig1"]
    assert isinstance(member, InnerList)
    assert member.items[1] == Item(value="signature", params=(("req", True), ("key", "sig1")))
    assert member.params == (("created", 1618884473), ("keyid", "k"), ("nonce", "n"))
    assert "sig1=" + serialize_member(member) == text


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, "0"),
        (-999_999_999_999_999, "-999999999999999"),
        (Decimal("1.50"), "1.5"),
        (Decimal("-0.0"), "0.0"),
        (Decimal("2"), "2.0"),
        (Decimal("1.0005"), "1.0"),  # rounds half to even at three places
        (Decimal("1.0015"), "1.002"),
        ('say "hi" \\', '"say \\"hi\\" \\\\"'),
        (Token("text/html"), "text/html"),
        (Token("*x"), "*x"),
        (b"\x00\xffhello", ":AP9oZWxsbw==:"),
        (b"", "::"),
        (True, "?1"),
        (False, "?0"),
    ],
)
def test_bare_item_serialisation(value: object, wire: str) -> None:
    assert serialize_bare_item(value) == wire  # type: ignore[arg-type]


def test_parameters_and_lists() -> None:
    assert (
        serialize_item(Item(value=1, params=(("a", True), ("b", Token("c")), ("d", False)))) == "1;a;b=c;d=?0"
    )
    parsed = parse_list('1, "two";p, (3 4);q=?0, :AQ==:')
    assert serialize_list(parsed) == '1, "two";p, (3 4);q=?0, :AQ==:'
    assert parse_list("") == []
    assert parse_dictionary("") == {}


def test_missing_base64_padding_is_tolerated() -> None:
    # RFC 8941 §4.2.7: parsers SHOULD NOT fail when "=" padding is absent.
    assert parse_item(":AQ:").value == b"\x01"


def test_repeated_keys() -> None:
    assert serialize_dictionary(parse_dictionary("a=1, b=2, a=3")) == "a=3, b=2"
    with pytest.raises(StructuredFieldMalformed):
        parse_dictionary("a=1, a=2", reject_duplicates=True)


@pytest.mark.parametrize(
    "text",
    [
        "a=",
        "a=1,",
        "a=1 b=2",
        "A=1",
        "a=(1 2",
        "a=(1,2)",
        'a="unterminated',
        'a="bad \\x escape"',
        "a=:AQ==",
        "a=:A!==:",
        "a=:A===:",
        "a=:A:",
        "a=?2",
        "a=1.",
        "a=1.2345",
        "a=1234567890123.1",
        "a=1234567890123456",
        "a=-",
        "a=é",
        "a=1;",
        "a=1;B=2",
        "=1",
        ", a=1",
    ],
)
def test_malformed_dictionaries_are_refused_with_a_code(text: str) -> None:
    with pytest.raises(StructuredFieldMalformed) as caught:
        parse_dictionary(text, field="Example")
    assert caught.value.code == "structured_field.malformed"
    assert caught.value.field == "Example"


@pytest.mark.parametrize(
    "value",
    [10**15, Token("1abc"), Token(""), "tab\there", "é", Decimal("1e13"), Decimal("NaN"), 1.5, None],
)
def test_unserialisable_values(value: object) -> None:
    with pytest.raises(StructuredFieldMalformed):
        serialize_bare_item(value)  # type: ignore[arg-type]


def test_bad_keys_are_not_serialised() -> None:
    with pytest.raises(StructuredFieldMalformed):
        serialize_dictionary({"Upper": Item(value=1)})
    with pytest.raises(StructuredFieldMalformed):
        serialize_item(Item(value=1, params=(("", 1),)))


@given(st.text())
def test_arbitrary_text_never_crashes_the_parsers(text: str) -> None:
    for parse in (parse_dictionary, parse_list, parse_item):
        with contextlib.suppress(SatchelError):
            parse(text)


@given(st.text(alphabet=st.sampled_from(list('abc019=;,:?*"() \t-.AQ/+\\')), max_size=40))
def test_near_miss_text_parses_to_a_fixed_point_or_fails_cleanly(text: str) -> None:
    try:
        parsed = parse_dictionary(text)
    except SatchelError:
        return
    assert parse_dictionary(serialize_dictionary(parsed)) == parsed


_keys = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,6}", fullmatch=True)
_bare = st.one_of(
    st.integers(-(10**15) + 1, 10**15 - 1),
    st.decimals(min_value=-(10**11), max_value=10**11, places=3, allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
    st.from_regex(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]{0,8}", fullmatch=True).map(Token),
    st.binary(max_size=20),
    st.booleans(),
)
_params = st.lists(st.tuples(_keys, _bare), max_size=3, unique_by=lambda kv: kv[0]).map(tuple)
_items = st.builds(lambda v, p: Item(value=v, params=p), _bare, _params)
_members = st.one_of(
    _items, st.builds(lambda i, p: InnerList(items=tuple(i), params=p), st.lists(_items), _params)
)


@given(st.dictionaries(_keys, _members, max_size=5))
def test_dictionary_round_trip(members: dict[str, Item | InnerList]) -> None:
    assert parse_dictionary(serialize_dictionary(members)) == members
