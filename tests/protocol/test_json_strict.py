import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import MalformedMessage
from protocol.json_strict import MAX_INTEGER_DIGITS, dumps_canonical, loads_object, member_name, take


@pytest.mark.parametrize(
    "data",
    [b'{"a":1,"a":2}', b"[1]", b'{"a":NaN}', b"\xff", b"{", b"[" * 100_000 + b"]" * 100_000],
)
def test_rejects(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        loads_object(data, what="test", max_bytes=10**7)


@given(st.integers(MAX_INTEGER_DIGITS + 1, 6000), st.booleans(), st.integers(0, 3))
def test_a_number_of_too_many_digits_is_malformed_not_a_crash(digits: int, negative: bool, depth: int) -> None:
    # Past 4,300 digits Python's own int() raises ValueError, which reached a peer as a 500.
    number = ("-" if negative else "") + "9" * digits
    data = ('{"n":' + "[" * depth + number + "]" * depth + "}").encode()
    with pytest.raises(MalformedMessage) as raised:
        loads_object(data, what="the request body")
    assert raised.value.message == f"the request body holds a number of more than {MAX_INTEGER_DIGITS} digits"


def test_numbers_up_to_the_limit_are_read() -> None:
    biggest = int("9" * MAX_INTEGER_DIGITS)
    assert loads_object(f'{{"a":{biggest},"b":-{biggest}}}'.encode(), what="t") == {"a": biggest, "b": -biggest}


def test_size_limit() -> None:
    with pytest.raises(MalformedMessage):
        loads_object(b'{"a":"' + b"x" * 100 + b'"}', what="test", max_bytes=50)


def test_take_types() -> None:
    obj = {"n": True, "s": "x"}
    with pytest.raises(MalformedMessage) as info:
        take(obj, "n", int, what="t")
    assert info.value.field == "n"
    assert take(obj, "s", str, what="t") == "x"
    assert take(obj, "missing", str, what="t", optional=True) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_canonical_round_trip(obj: dict) -> None:
    data = dumps_canonical(obj)
    assert loads_object(data, what="t") == obj
    assert dumps_canonical(loads_object(data, what="t")) == data


@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    try:
        value = loads_object(data, what="t")
    except MalformedMessage as exc:
        assert exc.code == "message.malformed"
    else:
        assert isinstance(value, dict)


@pytest.mark.parametrize(
    ("key", "field"),
    [("note", "note"), ("student_id", "student_id"), ("x\x1b[2J", None), ("a b", None), ("é", None),
     ("k" * 40, "k" * 40), ("k" * 41, None), ("", None)],
)  # fmt: skip
def test_a_peer_s_member_name_goes_back_as_the_field_only_when_plain(key: str, field: str | None) -> None:
    assert member_name(key) == field
    with pytest.raises(MalformedMessage) as refused:
        loads_object(f"{{{json.dumps(key)}: 1, {json.dumps(key)}: 2}}".encode(), what="x")  # given twice
    assert refused.value.field == field
