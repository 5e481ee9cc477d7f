"""RFC 9530 Content-Digest: streaming computation and strict checking."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.content_digest import (
    ContentDigester,
    DigestMalformed,
    DigestMismatch,
    DigestMissing,
    DigestUnsupportedAlgorithm,
    content_digest_header,
    parse_content_digest,
    verify_body_digest,
    verify_content_digest,
)
from protocol.errors import InvalidInput, SatchelError

BODY = b'{"hello": "world"}'
# RFC 9530 §2 and RFC 9421 Appendix B.2 publish these for the body above.
SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
SHA512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"


def test_published_digests() -> None:
    assert content_digest_header(BODY) == SHA256
    assert content_digest_header(BODY, "sha-512") == SHA512
    both = ContentDigester(["sha-256", "sha-512"])
    both.update(BODY)
    assert both.header_value() == f"{SHA256}, {SHA512}"


def test_streaming_in_chunks_equals_whole() -> None:
    digester = ContentDigester()
    for start in range(0, len(BODY), 5):
        digester.update(memoryview(BODY)[start : start + 5])
    assert digester.header_value() == SHA256
    assert verify_content_digest(SHA256, digester) == {"sha-256": parse_content_digest(SHA256)["sha-256"]}


def test_for_header_computes_what_the_sender_claimed() -> None:
    value = f"md5=:AAAA:, {SHA512}"
    digester = ContentDigester.for_header(value)
    assert digester.algorithms == ("sha-512",)
    digester.update(BODY)
    assert set(verify_content_digest(value, digester)) == {"sha-512"}


def test_every_supported_member_must_match() -> None:
    wrong_512 = SHA512.replace("WZD", "AAA")
    with pytest.raises(DigestMismatch) as caught:
        verify_body_digest(f"{SHA256}, {wrong_512}", BODY)
    assert caught.value.code == "digest.mismatch"
    assert caught.value.field == "content-digest"
    assert caught.value.hint


@pytest.mark.parametrize(
    ("value", "body", "error", "code"),
    [
        (None, BODY, DigestMissing, "digest.missing"),
        ("  ", BODY, DigestMissing, "digest.missing"),
        (SHA256, BODY + b" ", DigestMismatch, "digest.mismatch"),
        ("sha-256=:AAAA:", BODY, DigestMismatch, "digest.mismatch"),
        ("md5=:AAAA:", BODY, DigestUnsupportedAlgorithm, "digest.unsupported_algorithm"),
        ("sha-256=abc", BODY, DigestMalformed, "digest.malformed"),
        ("sha-256=(:AAAA:)", BODY, DigestMalformed, "digest.malformed"),
        ("sha-256", BODY, DigestMalformed, "digest.malformed"),
        (f"{SHA256}, {SHA256}", BODY, DigestMalformed, "digest.malformed"),
        ("sha-256=:AAAA", BODY, DigestMalformed, "digest.malformed"),
    ],
)
def test_rejections(value: str | None, body: bytes, error: type[SatchelError], code: str) -> None:
    with pytest.raises(error) as caught:
        verify_body_digest(value, body)
    assert caught.value.code == code


def test_digester_must_cover_the_claimed_algorithms() -> None:
    digester = ContentDigester(["sha-256"])
    digester.update(BODY)
    with pytest.raises(InvalidInput):
        verify_content_digest(f"{SHA256}, {SHA512}", digester)
    with pytest.raises(DigestUnsupportedAlgorithm):
        ContentDigester(["md5"])
    with pytest.raises(InvalidInput):
        ContentDigester([])


def test_digests_can_be_read_midway() -> None:
    digester = ContentDigester()
    digester.update(BODY[:4])
    digester.digests()
    digester.update(BODY[4:])
    assert digester.header_value() == SHA256


@given(st.binary(max_size=2048), st.lists(st.integers(0, 2048), max_size=8))
def test_any_chunking_gives_the_whole_body_digest(body: bytes, cuts: list[int]) -> None:
    digester = ContentDigester(["sha-256", "sha-512"])
    edges = sorted({0, len(body), *(min(cut, len(body)) for cut in cuts)})
    for start, end in itertools.pairwise(edges):
        digester.update(body[start:end])
    verify_content_digest(digester.header_value(), digester)
    verify_body_digest(digester.header_value(), body)


@given(st.text())
def test_arbitrary_header_text_raises_only_satchel_errors(text: str) -> None:
    with contextlib.suppress(SatchelError):
        verify_body_digest(text, BODY)
