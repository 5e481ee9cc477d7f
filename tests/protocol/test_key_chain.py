"""Which identity keys a descriptor's signer vouches for (protocol.key_chain.vouched_identity_keys)."""

from __future__ import annotations

from dataclasses import replace

from crypto import IdentityKey
from protocol.descriptor import Descriptor, PublishedKey
from protocol.key_chain import endorse, vouched_identity_keys

OLD, NEW, OLDER, STRANGER = (IdentityKey(bytes([n] * 32)) for n in (1, 2, 3, 4))


def _key(key: IdentityKey) -> PublishedKey:
    return PublishedKey(key_id=key.public_key.key_id, use="identity", algorithm="ed25519",
                        public_key=key.public_key.raw, not_before="2026-01-01T00:00:00Z")  # fmt: skip


def _descriptor(*keys: PublishedKey, domain: str = "a.example.org") -> Descriptor:
    return Descriptor(role="district", domain=domain, name="District A", state="IL", city="Springfield",
                      zip="62701", nces_id="", base_url=f"https://satchel.{domain}", transfers_enabled=True,
                      coordinator=None, keys=keys, issued_at="2026-11-23T00:00:00Z")  # fmt: skip


def _endorsed(key: IdentityKey, by: IdentityKey, domain: str = "a.example.org") -> PublishedKey:
    listed = _key(key)
    return replace(listed, endorsement=endorse(domain, listed, by))


def _id(key: IdentityKey) -> str:
    return key.public_key.key_id


def test_a_rotated_chain_is_vouched_for_from_either_end() -> None:
    # OLDER endorsed OLD, OLD endorsed NEW: signed by NEW after rotation, or by OLD before the switch.
    chain = _descriptor(_key(OLDER), _endorsed(OLD, OLDER), _endorsed(NEW, OLD))
    assert vouched_identity_keys(chain, _id(NEW)) == {_id(NEW), _id(OLD), _id(OLDER)}
    assert vouched_identity_keys(chain, _id(OLD)) == {_id(NEW), _id(OLD), _id(OLDER)}


def test_a_key_copied_in_from_another_district_is_not_vouched_for() -> None:
    # The stranger's own descriptor lists district A's public key beside its signer: nothing links them.
    squatted = _descriptor(_key(STRANGER), _key(OLD), domain="c.example.com")
    assert vouched_identity_keys(squatted, _id(STRANGER)) == {_id(STRANGER)}
    # Nor does A's endorsement of its next key, copied along: it was made for a.example.org.
    copied = _descriptor(_key(STRANGER), _key(OLD), _endorsed(NEW, OLD), domain="c.example.com")
    assert vouched_identity_keys(copied, _id(STRANGER)) == {_id(STRANGER)}
    # An endorsement the stranger makes itself vouches for a key it holds, under its own domain only.
    own = _descriptor(_key(STRANGER), _endorsed(NEW, STRANGER, "c.example.com"), domain="c.example.com")
    assert vouched_identity_keys(own, _id(STRANGER)) == {_id(STRANGER), _id(NEW)}


def test_a_forged_endorsement_vouches_for_nothing() -> None:
    good = _endorsed(NEW, OLD)
    assert good.endorsement is not None
    forged = replace(good, endorsement=replace(good.endorsement, signature=bytes(64)))
    assert vouched_identity_keys(_descriptor(_key(OLD), forged), _id(OLD)) == {_id(OLD)}
