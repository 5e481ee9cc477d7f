"""protocol.signed_document's base64url: one text for each byte string, everything else refused with the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import MalformedMessage
from protocol.signed_document import b64url, unb64url


@given(st.binary(max_size=100))
def test_round_trip(raw: bytes) -> None:
    assert unb64url(b64url(raw), field="x") == raw


@given(st.text(alphabet="ABCDEFabcdef0189-_+/=. \n!é", max_size=24))
def test_only_the_canonical_text_of_its_bytes_is_taken(text: str) -> None:
    try:
        raw = unb64url(text, field="proof")
    except MalformedMessage as exc:
        assert exc.field == "proof"
        return
    assert b64url(raw) == text


@pytest.mark.parametrize(
    "text",
    [
        "AQID+A",  # '+': the standard alphabet, not base64url
        "AQID/A",
        "AQIDBA==",  # padded
        "AQ ID",  # white space, which Python's decoder drops
        "AQ!ID",  # any other character, likewise dropped
        "AR",  # the last character's unused bits set: "AQ" is the one text of b"\x01"
        "A",  # a length no byte string encodes to
    ],
)
def test_texts_python_alone_would_decode_are_refused(text: str) -> None:
    with pytest.raises(MalformedMessage) as refused:
        unb64url(text, field="signature")
    assert refused.value.field == "signature"


def test_what_it_takes() -> None:
    assert unb64url("", field="x") == b""
    assert unb64url("AQ", field="x") == b"\x01"
    assert unb64url("-_8", field="x") == b"\xfb\xff"
