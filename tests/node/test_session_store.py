"""The sessions a serving node holds: bounded per peer and in all, gone once expired (spec §11)."""

from __future__ import annotations

import pytest

from crypto import IdentityKey, SessionShare
from node.http_sessions import SessionStore
from node.peer_identity import PeerIdentity
from protocol.http_sessions import (
    SESSION_LIFETIME,
    SessionOfferInvalid,
    SessionUnknown,
    offer_body,
    parse_offer,
)

SERVER = IdentityKey.generate()
NOW = 1_767_225_600


def _open(store: SessionStore, domain: str, now: int = NOW) -> str:
    peer = PeerIdentity(domain, IdentityKey.generate().public_key.key_id, "pinned")
    answer = store.open(peer=peer, client_share=SessionShare.generate().public, server_key=SERVER,
                        client_origin=f"https://{domain}", now=now)  # fmt: skip
    return answer.session_id


def test_a_peer_keeps_at_most_its_share_of_sessions_the_oldest_go_first() -> None:
    store = SessionStore(max_sessions=100, max_per_peer=3)
    ids = [_open(store, "a.example.org") for _ in range(5)]
    other = _open(store, "b.example.org")
    for gone in ids[:2]:
        with pytest.raises(SessionUnknown):
            store.get(gone, now=NOW)
    for kept in [*ids[2:], other]:
        assert store.get(kept, now=NOW).session_id == kept
    assert len(store) == 4


def test_the_store_as_a_whole_is_bounded() -> None:
    store = SessionStore(max_sessions=4, max_per_peer=4)
    ids = [_open(store, f"d{i}.example.org") for i in range(6)]
    assert len(store) == 4
    with pytest.raises(SessionUnknown):
        store.get(ids[0], now=NOW)
    assert store.get(ids[-1], now=NOW).peer.domain == "d5.example.org"


def test_an_expired_session_is_unknown_and_forgotten() -> None:
    store = SessionStore()
    session_id = _open(store, "a.example.org")
    assert store.get(session_id, now=NOW + SESSION_LIFETIME - 1)
    with pytest.raises(SessionUnknown) as refused:
        store.get(session_id, now=NOW + SESSION_LIFETIME)
    assert refused.value.code == "signature.session_unknown"
    assert len(store) == 0


def test_each_session_has_its_own_keys() -> None:
    store = SessionStore()
    one, two = (store.get(_open(store, "a.example.org"), now=NOW) for _ in range(2))
    assert one.keys.to_server.sign_raw(b"m") != two.keys.to_server.sign_raw(b"m")


@pytest.mark.parametrize("share", [bytes(32), (1).to_bytes(32, "little")], ids=["zero", "one"])
def test_a_low_order_share_is_an_invalid_offer_not_invalid_input(share: bytes) -> None:
    # Well-formed on the wire (parse_offer takes it), so only the key agreement finds it out: §11 still
    # names the offer, not the caller's input in general.
    peer = PeerIdentity("b.example", IdentityKey.generate().public_key.key_id, "pinned")
    store = SessionStore()
    with pytest.raises(SessionOfferInvalid) as refused:
        store.open(peer=peer, client_share=parse_offer(offer_body(share)), server_key=SERVER,
                   client_origin="https://b.example", now=NOW)  # fmt: skip
    assert refused.value.code == "session.offer_invalid" and refused.value.field == "share"
    assert len(store) == 0
