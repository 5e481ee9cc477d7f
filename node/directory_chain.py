"""Following a directory's key rotation from the key pinned for it (spec/directory.md, "A directory's key").

A district pins a directory's identity key once, from the fingerprint its operator reads out; a directory
mirroring another pins that one's. When the directory rotates its key, its listings come signed by the new
key, which its descriptor publishes endorsed by the old one (protocol.key_chain). A listing signed by a key
other than the pinned one is believed only if the directory's own descriptor shows that key reachable from
the pinned one by endorsements; the caller then pins the new key in place of the old, as a peer's chain is
followed, and an operator is needed only when there is no chain (a directory rebuilt from scratch, or an
impostor).
"""

from __future__ import annotations

import logging

import aiohttp

from crypto import IdentityPublicKey
from node.home import Node
from node.operators import record
from node.peers import fetch_descriptor
from protocol.directory import DirectoryEntryInvalid, VerifiedListing, listing_document, read_listing
from protocol.key_chain import KeyChanged, KeyRevoked, KnownKey, check_continuity
from storage import directory as store

log = logging.getLogger("satchel.directory")


def _repin_hint(base_url: str) -> str:
    return (
        "the directory's key changed without an endorsement from the key pinned here (a directory rebuilt from "
        "scratch looks so, and so does an impostor): phone its operator for the new fingerprint, then pin it again "
        f"with `satchel directories add {base_url} --fingerprint FP` (on a directory mirroring it, `satchel "
        f"directory mirror {base_url} --fingerprint FP`)"
    )


async def verified_listing(
    session: aiohttp.ClientSession, body: bytes, *, base_url: str, domain: str, pinned: IdentityPublicKey
) -> tuple[VerifiedListing, IdentityPublicKey]:
    """Verify a listing the directory at ``base_url`` answered, following its key chain from ``pinned`` if the
    listing is signed by another key. Returns the listing and the key that signed it: when that is not
    ``pinned``, the caller pins it in its place."""
    document = listing_document(body)
    key = pinned
    if document.signer != pinned:
        await _check_endorsed(session, base_url=base_url, domain=domain, pinned=pinned, signer=document.signer)
        key = document.signer
        log.info("directory %s signs with %s, endorsed from pinned %s", domain, key.key_id, pinned.key_id)
    return read_listing(document, directory=domain, directory_key=key), key


async def _check_endorsed(
    session: aiohttp.ClientSession,
    *,
    base_url: str,
    domain: str,
    pinned: IdentityPublicKey,
    signer: IdentityPublicKey,
) -> None:
    """Raise unless the directory's descriptor publishes ``signer`` reachable from ``pinned`` by endorsements."""
    descriptor = (await fetch_descriptor(session, base_url, expected_domain=domain)).descriptor
    if descriptor.role != "directory":
        raise DirectoryEntryInvalid(f"{base_url} is no longer a directory", field="url", hint=_repin_hint(base_url))
    published = {k.key_id: k.public_key for k in descriptor.keys_for("identity")}
    if published.get(signer.key_id) != signer.raw:
        raise DirectoryEntryInvalid(
            f"the listing is signed by {signer.key_id}, which {domain} does not publish (its pinned key is "
            f"{pinned.key_id})", hint=_repin_hint(base_url),
        )  # fmt: skip
    # The pinned key counts as not revoked, as a peer's key this node holds does (node.keyring): a directory
    # revokes its old key once the new one is out, and what the old key endorsed before stands.
    try:
        check_continuity(descriptor, signer.key_id, {pinned.key_id: KnownKey(pinned.raw)})
    except (KeyChanged, KeyRevoked):
        raise DirectoryEntryInvalid(
            f"the listing is signed by {signer.key_id}, which {domain}'s pinned key {pinned.key_id} does not "
            "endorse", hint=_repin_hint(base_url),
        ) from None  # fmt: skip


def follow_trusted(node: Node, directory: store.TrustedDirectory, key: IdentityPublicKey) -> None:
    """Pin ``key``, which verified_listing followed to, for a directory this district trusts; in a transaction."""
    store.follow_trusted_key(node.db, directory.base_url, directory.domain, key_id=key.key_id, public_key=key.raw)
    record(node, directory.domain, "directories.key_followed", directory.domain,
           {"url": directory.base_url, "from": directory.key_id, "to": key.key_id})  # fmt: skip
