"""The values of a resumed envelope upload (spec/transfer.md §4.1): strict on what a peer sends."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import SatchelError
from protocol.content_digest import DigestUnsupportedAlgorithm
from protocol.envelope_upload import (
    ENVELOPE_DIGEST_HEADER,
    UPLOAD_OFFSET_HEADER,
    UploadState,
    encode_upload_state,
    parse_envelope_digest,
    parse_upload_offset,
    parse_upload_state,
)
from protocol.errors import InvalidInput

ID = "01M92KFXD8SBS8ESECXKAHSWMX"


@given(st.integers(min_value=2, max_value=1 << 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n - 1))))
def test_an_offset_inside_the_envelope_reads_back(case: tuple[int, int]) -> None:
    length, offset = case
    assert parse_upload_offset(str(offset), length=length) == offset


@pytest.mark.parametrize("value", ["0", "100", "101", "-5", "+5", " 5", "5 ", "0x10", "1e3", "", "٣", "1" * 20])
def test_an_offset_that_is_no_byte_inside_the_envelope_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_upload_offset(value, length=100)
    assert refused.value.field == UPLOAD_OFFSET_HEADER


@given(st.text(max_size=30))
def test_any_offset_text_is_read_or_refused_with_its_field(value: str) -> None:
    try:
        offset = parse_upload_offset(value, length=1 << 30)
    except InvalidInput as exc:
        assert exc.field == UPLOAD_OFFSET_HEADER
    else:
        assert str(offset) == value and 0 < offset < 1 << 30


def test_a_missing_offset_is_refused() -> None:
    with pytest.raises(InvalidInput, match="missing"):
        parse_upload_offset(None, length=100)


@given(st.binary(min_size=32, max_size=32))
def test_the_whole_envelope_digest_reads_back(digest: bytes) -> None:
    assert parse_envelope_digest(f"sha-256=:{base64.b64encode(digest).decode()}:") == digest


SHA512 = "sha-512=:" + base64.b64encode(b"x" * 64).decode() + ":"
SHORT = "sha-256=:" + base64.b64encode(b"x" * 31).decode() + ":"


@pytest.mark.parametrize("value", [None, "", SHA512, "md5=:AA==:", SHORT, "sha-256=abc"])
def test_a_whole_envelope_digest_without_a_sha256_is_refused(value: str | None) -> None:
    with pytest.raises(SatchelError) as refused:
        parse_envelope_digest(value)
    assert refused.value.field == ENVELOPE_DIGEST_HEADER
    if value and value.startswith(("sha-512", "md5")):
        assert isinstance(refused.value, DigestUnsupportedAlgorithm)


@given(st.integers(0, 1 << 50).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_an_upload_state_round_trips(case: tuple[int, int]) -> None:
    received, length = case
    state = UploadState(ID, received, length)
    assert parse_upload_state(encode_upload_state(state), envelope_id=ID) == state
    assert json.loads(encode_upload_state(state))["complete"] is (received == length)


@pytest.mark.parametrize("body", [
    {"envelope_id": "01M92KFXD8SBS8ESECXKAHSWMY", "received": 1, "length": 2},
    {"envelope_id": ID, "received": 3, "length": 2},
    {"envelope_id": ID, "received": -1, "length": 2},
    {"envelope_id": ID, "received": True, "length": 2},
    {"envelope_id": ID, "received": 1.0, "length": 2},
    {"envelope_id": ID, "received": "1", "length": 2},
    {"envelope_id": ID, "length": 2},
])  # fmt: skip
def test_an_upload_state_about_another_envelope_or_impossible_is_refused(body: dict) -> None:
    with pytest.raises(SatchelError):
        parse_upload_state(json.dumps(body).encode(), envelope_id=ID)


@given(st.binary(max_size=200))
def test_any_bytes_as_an_upload_state_are_read_or_refused_with_a_code(data: bytes) -> None:
    try:
        state = parse_upload_state(data, envelope_id=ID)
    except SatchelError as exc:
        assert exc.code
    else:
        assert 0 <= state.received <= state.length
