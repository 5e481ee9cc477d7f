"""Canonical msgpack: unique encodings, and a decoder that refuses everything else with a coded error."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import SatchelError
from protocol.msgpack_strict import MsgpackLimits, pack_canonical, unpack_strict

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _code(data: bytes, **kw: object) -> str:
    with pytest.raises(SatchelError) as info:
        unpack_strict(data, field="test", **kw)  # type: ignore[arg-type]
    assert info.value.field == "test"
    return info.value.code


@given(values)
def test_canonical_round_trip(value: object) -> None:
    data = pack_canonical(value)
    assert unpack_strict(data, field="test", limits=MsgpackLimits(max_depth=64)) == value
    assert pack_canonical(unpack_strict(data, field="test", limits=MsgpackLimits(max_depth=64))) == data


def test_keys_are_sorted_and_tuples_are_arrays() -> None:
    assert pack_canonical({"b": 1, "a": (1, 2)}) == msgpack.packb({"a": [1, 2], "b": 1}, use_bin_type=True)


def test_duplicate_keys_trailing_bytes_and_wrong_types_are_refused() -> None:
    assert _code(b"\x82\xa1a\x01\xa1a\x02") == "msgpack.duplicate_key"
    assert _code(pack_canonical({"a": 1}) + b"\x00") == "msgpack.trailing_bytes"
    assert _code(msgpack.packb(1.5)) == "msgpack.malformed"
    assert _code(msgpack.packb(msgpack.ExtType(5, b"x"))) == "msgpack.malformed"
    assert _code(b"\xd6\xff\x00\x00\x00\x01") == "msgpack.malformed"  # timestamp extension
    assert _code(b"\x81\x01\x01") == "msgpack.malformed"  # integer key
    assert _code(b"\x81\xc4\x01a\x01") == "msgpack.malformed"  # binary key
    assert _code(b"\xa2\xff\xfe") == "msgpack.malformed"  # invalid UTF-8
    assert _code(b"") == "msgpack.malformed"
    assert _code(b"\xc1") == "msgpack.malformed"


def test_non_canonical_encodings_are_refused() -> None:
    assert _code(b"\x82\xa1b\x01\xa1a\x02") == "msgpack.not_canonical"  # unsorted keys
    assert _code(b"\xcc\x01") == "msgpack.not_canonical"  # 1 as uint8
    assert _code(b"\xd9\x01a") == "msgpack.not_canonical"  # str8 for a one-byte string
    assert _code(b"\xdc\x00\x00") == "msgpack.not_canonical"  # array16 for an empty array
    assert unpack_strict(b"\xcc\x01", field="test", canonical=False) == 1


def test_limits_are_parameters() -> None:
    small = MsgpackLimits(max_bytes=8, max_depth=2, max_str=3, max_bin=3, max_array=2, max_map=1)
    assert _code(pack_canonical("x" * 20), limits=small) == "msgpack.limit_exceeded"
    assert _code(pack_canonical("abcd"), limits=small) == "msgpack.limit_exceeded"
    assert _code(pack_canonical(b"abcd"), limits=small) == "msgpack.limit_exceeded"
    assert _code(pack_canonical([1, 2, 3]), limits=small) == "msgpack.limit_exceeded"
    assert _code(pack_canonical({"a": 1, "b": 2}), limits=small) == "msgpack.limit_exceeded"
    assert _code(pack_canonical([[[1]]]), limits=small) == "msgpack.limit_exceeded"
    assert _code(b"\x91" * 5000 + b"\x01", limits=MsgpackLimits(max_bytes=10**6)) == "msgpack.limit_exceeded"
    assert unpack_strict(pack_canonical([[1]]), field="test", limits=small) == [[1]]
    with pytest.raises(ValueError):
        MsgpackLimits(max_depth=-1)


def test_pack_canonical_refuses_what_it_cannot_encode_uniquely() -> None:
    for bad in (1.0, {1: 2}, 1 << 64, -(1 << 63) - 1):
        with pytest.raises((TypeError, OverflowError)):
            pack_canonical(bad)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_satchel_errors(data: bytes) -> None:
    with contextlib.suppress(SatchelError):
        unpack_strict(data, field="test")
