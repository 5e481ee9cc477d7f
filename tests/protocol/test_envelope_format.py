"""The envelope's framing and header map (spec/envelope.md §3-§4, §7): exact bytes, coded rejections."""

from __future__ import annotations

import contextlib
import struct
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Argon2Params, EnvelopeHeader, Manifest, ManifestStudent, OpenPolicy, SatchelError
from protocol.envelope_format import (
    DEFAULT_POLICY,
    ENCAPSULATION_LENGTH,
    MAGIC,
    check_header,
    check_manifest,
    encode_encapsulation,
    encode_header_map,
    encode_preamble,
    max_prefix_length,
    parse_header_map,
    parse_unverified_prefix,
    parse_unverified_sender,
    ulid_bytes,
    ulid_text,
)
from protocol.ids import parse_ulid, ulid
from protocol.msgpack_strict import pack_canonical, unpack_strict

HEADER = EnvelopeHeader(
    version=1, suite=1, envelope_id=ulid(1_767_225_600_000, bytes(range(10))), kind="transfer",
    sender_domain="a.example.org", sender_key_id="ed25519-aaaaaaaaaaaaaaaa", recipient_domain="b.example.org",
    recipient_key_id="mlkem768-x25519-bbbbbbbbbbbbbbbb", created=1_767_225_600, expires=1_767_312_000,
    payload_length=5000, manifest_length=300, payload_digest=bytes(range(32)), chunk_size=1024,
    argon2=Argon2Params(time_cost=3, memory_kib=65536),
)  # fmt: skip
TAIL = bytes(24) + bytes(16) + bytes(64)


def envelope_prefix(header: EnvelopeHeader = HEADER, header_map: bytes | None = None) -> bytes:
    return encode_preamble(header, header_map) + encode_encapsulation(bytes(1168)) + TAIL


def _code(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(SatchelError) as info:
        fn(*args, **kw)
    return info.value.code


@given(st.integers(0, (1 << 48) - 1), st.binary(min_size=10, max_size=10))
def test_ulids_agree_with_protocol_ids(millis: int, randomness: bytes) -> None:
    text = ulid(millis, randomness)
    raw = ulid_bytes(text)
    assert ulid_text(raw) == text
    assert parse_ulid(text) == (int.from_bytes(raw[:6], "big"), raw[6:])


def test_layout_is_exactly_as_specified() -> None:
    data = envelope_prefix()
    header_map = encode_header_map(HEADER)
    assert data[:8] == MAGIC == b"\x89SAT\r\n\x1a\n"
    assert data[8:10] == b"\x01\x01"
    assert data[10] == 13 and data[11:24] == b"a.example.org"
    assert data[24] == 24 and data[25:49] == b"ed25519-aaaaaaaaaaaaaaaa"
    assert (
        struct.unpack(">H", data[49:51])[0] == len(header_map)
        and data[51 : 51 + len(header_map)] == header_map
    )
    prefix = parse_unverified_prefix(data + b"body", max_header_length=4096)
    assert prefix.length == len(data) and prefix.signed_part == data[:-64]
    assert prefix.preamble_length == 51 + len(header_map)
    assert prefix.encapsulation_end == prefix.preamble_length + 2 + 1168
    assert HEADER.envelope_length == len(data) + HEADER.body_length
    assert HEADER.chunk_count == 5 and HEADER.body_length == 5000 + 5 * 17
    assert list(unpack_strict(header_map, field="h")) == sorted(unpack_strict(header_map, field="h"))


@st.composite
def headers(draw: st.DrawFn) -> EnvelopeHeader:
    created, manifest_length = draw(st.integers(0, 2**40)), draw(st.integers(1, 2**20))
    return replace(
        HEADER, kind=draw(st.sampled_from(["transfer", "release", "import"])), created=created,
        expires=created + draw(st.integers(1, 2**31)), manifest_length=manifest_length,
        payload_length=64 + manifest_length + draw(st.integers(0, 2**40)),
        chunk_size=draw(st.sampled_from([1 << k for k in range(10, 25)])),
        argon2=Argon2Params(time_cost=draw(st.integers(1, 2**32 - 1)), memory_kib=draw(st.integers(8, 2**32 - 1))),
        payload_digest=draw(st.binary(min_size=32, max_size=32)),
        envelope_id=ulid(draw(st.integers(0, (1 << 48) - 1)), draw(st.binary(min_size=10, max_size=10))),
    )  # fmt: skip


@given(headers())
def test_header_round_trip(header: EnvelopeHeader) -> None:
    prefix = parse_unverified_prefix(envelope_prefix(header), max_header_length=4096)
    assert parse_header_map(prefix) == header
    assert parse_unverified_sender(envelope_prefix(header)) == (header.sender_domain, header.sender_key_id)


def _patched(offset: int, value: bytes, data: bytes | None = None) -> bytes:
    data = envelope_prefix() if data is None else data
    return data[:offset] + value + data[offset + len(value) :]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (_patched(0, b"\x88"), "envelope.malformed"),
        (b"PK\x03\x04", "envelope.malformed"),
        (_patched(8, b"\x02"), "envelope.unsupported_version"),
        (_patched(8, b"\x00"), "envelope.unsupported_version"),
        (_patched(9, b"\x02"), "envelope.unsupported_suite"),
        (_patched(10, b"\x00"), "envelope.malformed"),
        (_patched(11, b"A"), "envelope.malformed"),
        (_patched(11, b"\xff"), "envelope.malformed"),
        (_patched(24, b"\x41"), "envelope.malformed"),
        (_patched(25, b"E"), "envelope.malformed"),
        (_patched(49, b"\x00\x00"), "envelope.malformed"),
        (_patched(49, b"\x10\x01"), "envelope.too_large"),
        (envelope_prefix()[:-1], "envelope.truncated"),
        (envelope_prefix()[:9], "envelope.truncated"),
        (b"", "envelope.truncated"),
    ],
)
def test_framing_errors(data: bytes, code: str) -> None:
    assert _code(parse_unverified_prefix, data, max_header_length=4096) == code


def test_encapsulation_length_must_match_the_suite() -> None:
    preamble = encode_preamble(HEADER)
    data = preamble + struct.pack(">H", 1167) + bytes(1167) + TAIL + b"x"
    assert _code(parse_unverified_prefix, data, max_header_length=4096) == "envelope.malformed"
    assert ENCAPSULATION_LENGTH[1] == 1120 + 48


def _header_code(header_map: bytes) -> str:
    prefix = parse_unverified_prefix(envelope_prefix(header_map=header_map), max_header_length=4096)
    return _code(parse_header_map, prefix)


def _map(**changes: Any) -> bytes:
    raw = unpack_strict(encode_header_map(HEADER), field="h")
    for key, value in changes.items():
        if value is KeyError:
            del raw[key]
        else:
            raw[key] = value
    return pack_canonical(raw)


@pytest.mark.parametrize(
    ("header_map", "code"),
    [
        (_map(extra=1), "envelope.malformed"),
        (_map(kind=KeyError), "envelope.malformed"),
        (_map(kind="gift"), "envelope.malformed"),
        (_map(created="1"), "envelope.malformed"),
        (_map(created=True), "envelope.malformed"),
        (_map(expires=HEADER.created), "envelope.malformed"),
        (_map(envelope_id=b"\x00" * 15), "envelope.malformed"),
        (_map(payload_digest=b"\x00" * 31), "envelope.malformed"),
        (_map(payload_length=363), "envelope.malformed"),
        (_map(manifest_length=0), "envelope.malformed"),
        (_map(chunk_size=1000), "envelope.malformed"),
        (_map(chunk_size=512), "envelope.malformed"),
        (_map(chunk_size=1 << 25), "envelope.malformed"),
        (_map(argon2id_t=0), "envelope.malformed"),
        (_map(argon2id_m=7), "envelope.malformed"),
        (_map(recipient_domain="B.example.org"), "envelope.malformed"),
        (_map(recipient_key_id=""), "envelope.malformed"),
        (_map(content_type="text/plain"), "envelope.unsupported_content_type"),
        (pack_canonical([1]), "envelope.malformed"),
        (encode_header_map(HEADER) + b"\xc0", "msgpack.trailing_bytes"),
        (b"\x81\xa1a\x01"[:-1] + b"\x3f", "envelope.malformed"),
    ],
)
def test_header_map_errors(header_map: bytes, code: str) -> None:
    assert _header_code(header_map) == code


def test_receiver_checks_run_in_the_specified_order() -> None:
    def check(header: EnvelopeHeader = HEADER, **kw: Any) -> None:
        args: dict[str, Any] = dict(recipient_domain=HEADER.recipient_domain,
                                    recipient_key_ids=[HEADER.recipient_key_id], now=HEADER.created,
                                    policy=DEFAULT_POLICY)  # fmt: skip
        args.update(kw)
        check_header(header, **args)

    check()
    weak = replace(HEADER, argon2=Argon2Params(time_cost=1, memory_kib=8))
    assert _code(check, weak, recipient_domain="c.example.org") == "envelope.not_recipient"
    assert _code(check, recipient_key_ids=["mlkem768-x25519-other"]) == "envelope.not_recipient"
    check(recipient_key_ids=["mlkem768-x25519-other", HEADER.recipient_key_id])
    assert _code(check, replace(HEADER, chunk_size=1 << 23), now=0) == "envelope.too_large"
    assert _code(check, policy=OpenPolicy(max_manifest_length=299)) == "envelope.too_large"
    assert _code(check, policy=OpenPolicy(max_payload_length=4999)) == "envelope.too_large"
    assert _code(check, weak, now=HEADER.expires) == "envelope.weak_kdf_params"
    assert _code(check, replace(HEADER, argon2=Argon2Params(time_cost=9, memory_kib=65536))) == (
        "envelope.excessive_kdf_params"
    )
    assert _code(check, replace(HEADER, argon2=Argon2Params(time_cost=3, memory_kib=2 << 20))) == (
        "envelope.excessive_kdf_params"
    )
    assert _code(check, now=HEADER.created - 301) == "envelope.not_yet_valid"
    check(now=HEADER.created - 300)
    check(now=HEADER.expires - 1)
    assert _code(check, now=HEADER.expires) == "envelope.expired"


def test_manifest_must_agree_with_the_header() -> None:
    student = ManifestStudent(sis_id="S", given_name="A", family_name="B", birth_date="2000-01-01")
    good = Manifest(sender_domain="a.example.org", sender_key_id="ed25519-aaaaaaaaaaaaaaaa",
                    recipient_domain="b.example.org", created=1, students=(student,), records=())  # fmt: skip
    header = replace(HEADER, payload_length=64 + HEADER.manifest_length)
    check_manifest(header, good)
    for bad in (replace(good, recipient_domain="c.example.org"), replace(good, sender_key_id="ed25519-x")):
        assert _code(check_manifest, header, bad) == "envelope.manifest_mismatch"
    assert _code(check_manifest, HEADER, good) == "envelope.manifest_mismatch"


def test_policy_and_parameters_validate() -> None:
    for bad in (
        dict(time_cost=0, memory_kib=8),
        dict(time_cost=1, memory_kib=7),
        dict(time_cost=1.0, memory_kib=8),
    ):
        with pytest.raises(SatchelError):
            Argon2Params(**bad)  # type: ignore[arg-type]
    with pytest.raises(SatchelError):
        OpenPolicy(max_header_length=0)
    with pytest.raises(SatchelError):
        OpenPolicy(max_chunk_size=1 << 30)
    with pytest.raises(SatchelError):
        OpenPolicy(min_argon2=Argon2Params(time_cost=9, memory_kib=8))
    assert max_prefix_length() >= len(envelope_prefix())
    assert max_prefix_length(OpenPolicy(max_header_length=100)) < max_prefix_length()


@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_satchel_errors(data: bytes) -> None:
    for candidate in (data, MAGIC + data, envelope_prefix()[:49] + data):
        with contextlib.suppress(SatchelError):
            parse_unverified_sender(candidate)
            parse_header_map(parse_unverified_prefix(candidate, max_header_length=4096))


@given(st.binary(max_size=400))
def test_arbitrary_header_maps_raise_only_satchel_errors(header_map: bytes) -> None:
    if not header_map:
        return
    prefix = parse_unverified_prefix(envelope_prefix(header_map=header_map), max_header_length=4096)
    with contextlib.suppress(SatchelError):
        parse_header_map(prefix)
