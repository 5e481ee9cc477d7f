"""A stranger's descriptor that lists another district's public identity key does not make that key its own
here: the key keeps resolving to the district that holds it (node.keyring, protocol.key_chain)."""

from __future__ import annotations

import pytest

from crypto import EncryptionKey, IdentityKey
from node import receiving
from node.keyring import Keyring
from protocol import SatchelError
from protocol.descriptor import Descriptor, sign_descriptor
from storage import peers

from support import published_key


def _signed(domain: str, signer: IdentityKey, *extra_identity: IdentityKey) -> tuple[Descriptor, bytes]:
    d = Descriptor(
        role="district", domain=domain, name=f"District {domain}", state="IL", city="X", zip="62700",
        nces_id="", base_url=f"https://satchel.{domain}", transfers_enabled=True, coordinator=None,
        keys=(published_key(signer, "identity"), *(published_key(k, "identity") for k in extra_identity),
              published_key(EncryptionKey.generate(), "encryption")),
        issued_at="2026-11-23T00:00:00Z",
    )  # fmt: skip
    return d, sign_descriptor(d, signer)


@pytest.mark.parametrize("squatter_first", [False, True])
async def test_a_stranger_listing_a_districts_key_does_not_take_it_over(node, squatter_first: bool) -> None:
    keyring = Keyring(node, lambda: None)  # type: ignore[arg-type,return-value]
    victim_key, attacker_key = IdentityKey.generate(), IdentityKey.generate()
    victim = _signed("z.example.org", victim_key)
    # A stranger known only from its own web site copies the district's public key in beside its own.
    squatter = _signed("c.example.com", attacker_key, victim_key)
    stores = [(victim, "pinned"), (squatter, "web")]
    for (descriptor, signed), trust in reversed(stores) if squatter_first else stores:
        keyring.store_descriptor(descriptor, signed, trust=trust, trusted_via=descriptor.base_url)
    victim_id = victim_key.public_key.key_id
    assert (await keyring.resolve(victim_id, origin=None)).domain == "z.example.org"
    assert peers.key_by_id(node.db, victim_id, domain="c.example.com") is None  # never stored as its key
    # An envelope signed by the district is still the district's.
    assert receiving._sender_key(node, "z.example.org", victim_id) == victim_key.public_key
    # The stranger's own key is its own.
    assert (await keyring.resolve(attacker_key.public_key.key_id, origin=None)).domain == "c.example.com"


async def test_a_key_id_two_domains_hold_names_neither(node) -> None:
    """Rows stored before identity keys had to be vouched for: a request's key id alone does not decide."""
    keyring = Keyring(node, lambda: None)  # type: ignore[arg-type,return-value]
    victim_key = IdentityKey.generate()
    for domain, signer in (("z.example.org", victim_key), ("c.example.com", IdentityKey.generate())):
        descriptor, signed = _signed(domain, signer)
        keyring.store_descriptor(descriptor, signed, trust="pinned", trusted_via=descriptor.base_url)
    key_id = victim_key.public_key.key_id
    node.db.execute("INSERT INTO peer_keys (key_id, domain, use, algorithm, public_key, not_before, first_seen)"
                    " SELECT key_id, 'c.example.com', use, algorithm, public_key, not_before, first_seen"
                    " FROM peer_keys WHERE key_id = ?", [key_id])  # fmt: skip
    keyring.forget_cached()
    assert peers.key_by_id(node.db, key_id) is None
    assert peers.key_by_id(node.db, key_id, domain="z.example.org") is not None
    with pytest.raises(SatchelError):  # unknown, not the wrong district's
        await keyring.resolve(key_id, origin=None)
    assert (await keyring.resolve(key_id, origin=None, domain="z.example.org")).domain == "z.example.org"
