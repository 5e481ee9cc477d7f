"""Key continuity: when may a node's new identity key replace the one a peer pinned?

A node rotates its identity key by publishing the new key alongside the old one, with an *endorsement*:
the old key's signature (purpose ``satchel/v1/key-endorsement``) over the new key's domain, id, use,
algorithm, public bytes and start. A peer that pinned any key of the chain follows it to the new key.
A descriptor signed by a key with no endorsement path to a pinned key is refused loudly: that is what an
impostor (or a node rebuilt from scratch) looks like, and only a person confirming the new fingerprint
by phone may re-pin it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crypto import IdentityKey, IdentityPublicKey
from protocol.descriptor import Descriptor, Endorsement, PublishedKey
from protocol.errors import SatchelError, SignatureInvalid
from protocol.json_strict import dumps_canonical
from protocol.signed_document import b64url

PURPOSE = b"satchel/v1/key-endorsement"
MAX_CHAIN = 16


class KeyChanged(SatchelError):
    """A peer's identity key changed with no endorsement chain from a key already trusted."""

    code = "descriptor.key_changed"
    default_hint = (
        "the node's identity key changed without a chain from the key you pinned; phone its coordinator to "
        "confirm the new fingerprint, then re-pin it with `satchel peers add URL --repin`"
    )


class KeyRevoked(SatchelError):
    """A descriptor is signed by a key already known to be revoked."""

    code = "descriptor.key_revoked"
    default_hint = "the node revoked this key; ask its operator which key to trust now"


@dataclass(frozen=True, slots=True)
class KnownKey:
    """A key a peer already trusts for a domain."""

    public_key: bytes
    revoked: bool = False


def endorsement_message(domain: str, key: PublishedKey) -> bytes:
    return dumps_canonical(
        {
            "domain": domain,
            "id": key.key_id,
            "use": key.use,
            "alg": key.algorithm,
            "public_key": b64url(key.public_key),
            "not_before": key.not_before,
        }
    )


def endorse(domain: str, key: PublishedKey, endorser: IdentityKey) -> Endorsement:
    signature = endorser.sign(PURPOSE, endorsement_message(domain, key))
    return Endorsement(key_id=endorser.public_key.key_id, signature=signature)


def vouched_identity_keys(descriptor: Descriptor, signer_key_id: str) -> frozenset[str]:
    """The descriptor's identity keys that its signer vouches for: the signer, and every key joined to it by
    endorsements valid for this domain (the older key that endorsed it, a newer key it endorsed, and on).

    A public key is public: any descriptor can list another district's key beside its own signer. Only a key
    linked to the signer by signatures made with it for this domain belongs to the domain; a peer that took
    the others as the domain's would credit the real holder's signatures to whoever copied its key in.
    """
    listed = {k.key_id: k for k in descriptor.keys_for("identity")}
    links: list[tuple[str, str]] = []  # (endorser, endorsed), each signature checked once
    for key in listed.values():
        endorsement = key.endorsement
        by = listed.get(endorsement.key_id) if endorsement is not None else None
        if endorsement is None or by is None:
            continue
        try:
            IdentityPublicKey(by.public_key).verify(
                PURPOSE, endorsement_message(descriptor.domain, key), endorsement.signature
            )
        except (SignatureInvalid, ValueError):
            continue
        links.append((by.key_id, key.key_id))
    vouched = {signer_key_id}
    grown = True
    while grown:
        grown = False
        for endorser, endorsed in links:
            if (endorser in vouched) != (endorsed in vouched):
                vouched |= {endorser, endorsed}
                grown = True
    return frozenset(vouched & listed.keys())


def check_continuity(
    descriptor: Descriptor, signer_key_id: str, known: Mapping[str, KnownKey]
) -> tuple[str, ...]:
    """Check the descriptor's signer is trusted given the keys already ``known`` for its domain.

    Returns the chain of key ids walked (signer first, ending at a known key). Raise KeyRevoked if the
    signer is a key already known as revoked, KeyChanged if no endorsement path reaches a known key.
    ``known`` empty means first contact: the caller decides trust (fingerprint by phone, directory).
    """
    if not known:
        return (signer_key_id,)
    listed = {k.key_id: k for k in descriptor.keys_for("identity")}
    chain: list[str] = []
    current = signer_key_id
    while len(chain) < MAX_CHAIN:
        if current in chain:
            break
        chain.append(current)
        if current in known:
            if known[current].revoked:
                raise KeyRevoked(f"key {current} of {descriptor.domain} was revoked", field="keys")
            return tuple(chain)
        entry = listed.get(current)
        if entry is None or entry.endorsement is None:
            break
        endorser_id = entry.endorsement.key_id
        endorser_raw = known[endorser_id].public_key if endorser_id in known else None
        if endorser_raw is None and endorser_id in listed:
            endorser_raw = listed[endorser_id].public_key
        if endorser_raw is None:
            break
        try:
            IdentityPublicKey(endorser_raw).verify(
                PURPOSE, endorsement_message(descriptor.domain, entry), entry.endorsement.signature
            )
        except SignatureInvalid:
            break
        current = endorser_id
    raise KeyChanged(
        f"{descriptor.domain} is now signed by {signer_key_id}, which no key you trust endorses", field="keys"
    )
