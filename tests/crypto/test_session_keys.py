"""Session keys (spec/request-signing.md §11): both sides agree, on nothing else, and never on zeros."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import SessionKey, SessionShare
from protocol import InvalidInput, SignatureInvalid


def _pair(context: bytes = b"ctx", session_id: str = "hs-" + "A" * 22):
    client, server = SessionShare.generate(), SessionShare.generate()
    shares = {"client_share": client.public, "server_share": server.public}
    return (
        client.agree(server.public, session_id=session_id, context=context, **shares),
        server.agree(client.public, session_id=session_id, context=context, **shares),
        client,
        server,
    )


def test_both_sides_derive_the_same_two_keys_and_the_directions_differ() -> None:
    at_client, at_server, _, _ = _pair()
    message = b"signature base"
    assert at_client.to_server.sign_raw(message) == at_server.to_server.sign_raw(message)
    assert at_client.to_client.sign_raw(message) == at_server.to_client.sign_raw(message)
    assert at_client.to_server.sign_raw(message) != at_client.to_client.sign_raw(message)
    at_server.to_server.verify_raw(message, at_client.to_server.sign_raw(message))
    with pytest.raises(SignatureInvalid):
        at_server.to_client.verify_raw(message, at_client.to_server.sign_raw(message))


def test_the_context_and_the_shares_bind_the_keys() -> None:
    client, server = SessionShare.generate(), SessionShare.generate()
    shares = {"client_share": client.public, "server_share": server.public}
    one = client.agree(server.public, session_id="hs-" + "A" * 22, context=b"one", **shares)
    two = client.agree(server.public, session_id="hs-" + "A" * 22, context=b"two", **shares)
    assert one.to_server.sign_raw(b"m") != two.to_server.sign_raw(b"m")
    with pytest.raises(InvalidInput):  # shares that are not this session's
        client.agree(server.public, session_id="hs-" + "A" * 22, context=b"one",
                     client_share=SessionShare.generate().public, server_share=server.public)  # fmt: skip


@pytest.mark.parametrize("bad", [bytes(32), (1).to_bytes(32, "little"), bytes(31), bytes(33)])
def test_low_order_or_wrong_size_shares_are_refused(bad: bytes) -> None:
    client = SessionShare.generate()
    with pytest.raises(InvalidInput) as refused:
        client.agree(
            bad, client_share=client.public, server_share=bad, session_id="hs-" + "A" * 22, context=b""
        )
    assert refused.value.field == "share"


@given(st.binary(min_size=32, max_size=32))
def test_any_peer_share_either_agrees_or_is_refused_with_a_coded_error(share: bytes) -> None:
    client = SessionShare.generate()
    try:
        keys = client.agree(share, client_share=client.public, server_share=share, session_id="hs-" + "B" * 22,
                            context=b"c")  # fmt: skip
    except InvalidInput as exc:
        assert exc.code == "input.invalid"
    else:
        assert len(keys.to_server.sign_raw(b"x")) == 32


def test_secrets_never_print() -> None:
    at_client, _, client, _ = _pair()
    for thing in (at_client, at_client.to_server, client):
        assert "hidden" in repr(thing)
    with pytest.raises(InvalidInput):
        SessionKey("hs-" + "A" * 22, b"short")


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=600))
def test_session_keys_compute_hmac_sha256_as_the_standard_library_does(secret: bytes, message: bytes) -> None:
    # SessionKey keeps HMAC's two padded-key states and copies them per message (RFC 2104, not hmac.digest):
    # the tag must be HMAC-SHA256 all the same, or no other implementation of §11 could check it.
    import hmac

    key = SessionKey("hs-" + "A" * 22, secret)
    tag = hmac.digest(secret, message, "sha256")
    assert key.sign_raw(message) == tag
    assert key.verify_raw(message, tag) == message
    with pytest.raises(SignatureInvalid):
        key.verify_raw(message, bytes(b ^ 1 for b in tag))
