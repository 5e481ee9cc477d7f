import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import InvalidInput
from protocol.ids import parse_ulid, ulid


@given(st.integers(0, (1 << 48) - 1), st.binary(min_size=10, max_size=10))
def test_round_trip_and_order(ms: int, rnd: bytes) -> None:
    text = ulid(ms, rnd)
    assert len(text) == 26 and parse_ulid(text) == (ms, rnd)
    assert ulid(ms, rnd) < ulid(ms + 1, rnd) if ms + 1 < 1 << 48 else True


def test_known_value() -> None:
    assert ulid(0, bytes(10)) == "0" * 26
    assert ulid(1469918176385, bytes(10)).startswith("01ARYZ6S41")


@given(st.text(max_size=40))
def test_parse_rejects_garbage_with_coded_error(text: str) -> None:
    try:
        ms, rnd = parse_ulid(text)
    except InvalidInput as exc:
        assert exc.field == "id"
    else:
        assert ulid(ms, rnd) == text


@pytest.mark.parametrize("bad", ["", "8" + "0" * 25, "0" * 25 + "U", "0" * 27])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ulid(bad)


def _reference_ulid(ms: int, rnd: bytes) -> str:
    """The format written out bit by bit: 26 groups of 5 bits, most significant first."""
    value = (ms << 80) | int.from_bytes(rnd, "big")
    return "".join("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[(value >> shift) & 31] for shift in range(125, -5, -5))


@given(st.integers(0, (1 << 48) - 1), st.binary(min_size=10, max_size=10))
def test_fast_encoding_equals_the_bitwise_definition(ms: int, rnd: bytes) -> None:
    assert ulid(ms, rnd) == _reference_ulid(ms, rnd)
