"""A district and its directories: trusting them, joining them, keeping them current, searching them."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import aiohttp

from crypto import IdentityPublicKey, fingerprint
from node.bounded_read import read_body
from node.clock import iso, new_id, now_iso, utc_now
from node.descriptor import build_descriptor, signed_descriptor
from node.directory_chain import follow_trusted, verified_listing
from node.home import Node
from node.keyring import Keyring
from node.operators import authorize, record
from node.peer_client import PeerClient
from node.peers import PeerUnreachable, fetch_descriptor
from protocol import InvalidInput, SatchelError
from protocol.directory import (
    MAX_LISTING_BYTES,
    VerifiedEntry,
    VerifiedListing,
    descriptor_request,
    verify_entry,
)
from protocol.signed_document import b64url, unb64url
from storage import directory as store
from storage import outbox, settings
from storage.database import write_transaction

log = logging.getLogger("satchel.directory")
JOIN_PATH = "/satchel/v1/directory/join"
UPDATE_PATH = "/satchel/v1/directory/update"
UPDATE_KIND = "directory.update"  # the outbox jobs that push this node's descriptor to a directory it joined
# An entry no answer of its directory has held for this long leaves the cache of search answers.
CACHE_DAYS = 30


class FingerprintMismatch(SatchelError):
    """The directory's identity fingerprint is not the one the operator was given."""

    code = "directory.fingerprint_mismatch"
    default_hint = (
        "check the fingerprint with the directory operator by phone; do not trust this URL until then"
    )


def _normalise_fingerprint(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum())


async def pin_directory_descriptor(
    keyring: Keyring, base_url: str, expected: str
) -> tuple[str, IdentityPublicKey]:
    """Fetch a directory's descriptor and check its identity fingerprint against what the operator read."""
    base_url = keyring.check_origin(base_url)
    verified = await fetch_descriptor(keyring.session(), base_url)
    if verified.descriptor.role != "directory":
        raise InvalidInput(f"{base_url} is a {verified.descriptor.role}, not a directory", field="URL")
    if _normalise_fingerprint(verified.signer.fingerprint) != _normalise_fingerprint(expected):
        raise FingerprintMismatch(
            f"{base_url} has fingerprint {verified.signer.fingerprint}, not {expected}", field="--fingerprint"
        )
    return verified.descriptor.domain, verified.signer


async def trust_directory(node: Node, keyring: Keyring, *, actor: str | None, base_url: str, fp: str) -> str:
    user = authorize(node, actor, "settings.manage")
    domain, key = await pin_directory_descriptor(keyring, base_url, fp)
    with write_transaction(node.db):
        store.add_trusted(node.db, base_url=keyring.check_origin(base_url), domain=domain, key_id=key.key_id,
                          public_key=key.raw, by=user.username, now=now_iso())  # fmt: skip
        record(
            node, user.username, "directories.add", domain, {"url": base_url, "fingerprint": key.fingerprint}
        )
    return domain


def descriptor_state_hash(node: Node) -> str:
    """What directories must know changed: the descriptor without its issue time."""
    data = build_descriptor(node).to_json()
    data.pop("issued_at")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


async def join(node: Node, client: PeerClient, keyring: Keyring, *, actor: str | None, base_url: str) -> str:
    user = authorize(node, actor, "settings.manage")
    base_url = keyring.check_origin(base_url)
    verified = await fetch_descriptor(keyring.session(), base_url)
    if verified.descriptor.role != "directory":
        raise InvalidInput(f"{base_url} is not a directory", field="URL")
    response = await client.call(
        base_url, "POST", JOIN_PATH, body=descriptor_request(signed_descriptor(node)),
        content_type="application/json", expect_domain=verified.descriptor.domain,
    )  # fmt: skip
    status = str(response.json().get("status", "pending"))
    with write_transaction(node.db):
        store.set_membership(node.db, base_url=base_url, domain=verified.descriptor.domain, status=status,
                             now=now_iso(), pushed_sha256=descriptor_state_hash(node))  # fmt: skip
        record(
            node,
            user.username,
            "directory.join",
            verified.descriptor.domain,
            {"url": base_url, "status": status},
        )
    return status


def queue_directory_updates(node: Node) -> list[str]:
    """Enqueue an update to every joined directory whose copy is stale. Call inside the change's transaction."""
    current = descriptor_state_hash(node)
    jobs = []
    body = descriptor_request(signed_descriptor(node))
    for base_url, domain, _status, pushed in store.memberships(node.db):
        if pushed == current:
            continue
        job_id = new_id()
        # Each update carries the whole descriptor: one still waiting is stale. Left to go after this one (it
        # backed off while the directory was down), it would put the older descriptor back there: after a
        # `keys revoke`, one listing the revoked key as valid, which the directory would then publish and
        # vouch for to anyone looking the key up.
        outbox.supersede(node.db, kind=UPDATE_KIND, url=base_url + UPDATE_PATH, now=now_iso())
        outbox.enqueue(node.db, job_id=job_id, kind=UPDATE_KIND, peer=domain, url=base_url + UPDATE_PATH,
                       payload=body, content_type="application/json", now=now_iso())  # fmt: skip
        store.set_membership(node.db, base_url=base_url, domain=domain, status=_status, now=now_iso(),
                             pushed_sha256=current)  # fmt: skip
        jobs.append(job_id)
    return jobs


@dataclass(frozen=True, slots=True)
class SearchResult:
    entries: tuple[VerifiedEntry, ...]
    from_cache: tuple[str, ...]  # directories that were unreachable, answered from the local cache
    rejected: tuple[tuple[str, str], ...]
    truncated: tuple[str, ...] = ()  # directories that had more matches than they answer with


async def search(
    node: Node, keyring: Keyring, *, text: str | None, state: str, city: str | None, zip_code: str | None
) -> SearchResult:
    """Ask every trusted directory; verify every entry before showing it; fall back to the cache."""
    trusted = store.trusted(node.db)
    if not trusted:
        raise InvalidInput(
            "this node trusts no directory yet", field="directories",
            hint="add one with `satchel directories add URL --fingerprint FP`",
        )  # fmt: skip
    found: dict[str, VerifiedEntry] = {}
    cached_from: list[str] = []
    rejected: list[tuple[str, str]] = []
    truncated: list[str] = []
    query = {k: v for k, v in {"q": text, "state": state, "city": city, "zip": zip_code}.items() if v}
    for directory in trusted:
        key = IdentityPublicKey(directory.public_key)
        url = f"{directory.base_url}/satchel/v1/directory/search?{urlencode(query)}"
        try:
            async with keyring.session().get(url, timeout=aiohttp.ClientTimeout(total=15)) as response:
                if response.status != 200:
                    raise PeerUnreachable(f"{directory.domain} answered HTTP {response.status}")
                body = await read_body(response.content, MAX_LISTING_BYTES)
            listing, signer = await verified_listing(
                keyring.session(), body, base_url=directory.base_url, domain=directory.domain, pinned=key
            )
        except (aiohttp.ClientError, TimeoutError, PeerUnreachable) as exc:
            log.info("directory %s unreachable (%s); using cache", directory.domain, type(exc).__name__)
            cached_from.append(directory.domain)
            for entry in _cached(node, directory.domain, key):
                if _matches(entry, text=text, state=state, city=city, zip_code=zip_code):
                    found.setdefault(entry.entry.domain, entry)
            continue
        now = now_iso()
        with write_transaction(node.db):
            if signer != key:
                follow_trusted(node, directory, signer)
            # An answer names only the directories its own entries come from: what earlier answers named stays,
            # for the entries cached from them.
            # A domain's keys as this answer gives them; the directory's own earlier ones (vouched while it signs
            # its entries again after a key change) too, none once it is done.
            answered: dict[str, list[str]] = {directory.domain: []}
            for source in listing.listing.sources:
                answered.setdefault(source.domain, []).append(b64url(source.public_key))
            vouched = settings.get(node.db, f"directory.sources.{directory.domain}", {}) | answered
            settings.put(node.db, f"directory.sources.{directory.domain}", vouched)
            for entry in listing.entries:
                store.cache_entry(node.db, directory.domain, entry.district.descriptor, entry.signed, now)
                try:
                    # Verified entries teach the key chain too: a found district can be called at once.
                    keyring.store_descriptor(
                        entry.district.descriptor, entry.entry.descriptor, trust="directory",
                        trusted_via=directory.domain,
                    )  # fmt: skip
                except SatchelError as exc:
                    rejected.append((exc.code, exc.message))
                    continue
                found.setdefault(entry.entry.domain, entry)
            _prune_cache(node, directory.domain, listing, state=state, text=text, city=city, zip_code=zip_code)
            store.mark_directory_ok(node.db, directory.base_url, now)
        rejected += listing.rejected
        if listing.listing.truncated:
            truncated.append(directory.domain)
    ordered = sorted(found.values(), key=lambda e: e.district.descriptor.name)
    return SearchResult(tuple(ordered), tuple(cached_from), tuple(rejected), tuple(truncated))


def _prune_cache(
    node: Node,
    directory: str,
    answer: VerifiedListing,
    *,
    state: str,
    text: str | None,
    city: str | None,
    zip_code: str | None,
) -> None:
    """Keep the cache of a directory's answers to what it still publishes; inside the answer's transaction.

    An answer that holds every match shows which cached entries matching the same search it no longer
    lists (a district it dropped). Entries in no answer for CACHE_DAYS go too, so that the cache holds what
    the district searched lately, not all it ever found; only while the directory answers, since the cache
    is what a district has when it does not."""
    if not answer.listing.truncated:
        store.forget_unlisted(node.db, directory, listed={e.entry.domain for e in answer.entries},
                              state=state.upper(), text=text, city=city, zip_code=zip_code)  # fmt: skip
    store.forget_stale(node.db, directory, before=iso(utc_now() - timedelta(days=CACHE_DAYS)))


def _cached(node: Node, directory: str, key: IdentityPublicKey) -> list[VerifiedEntry]:
    """Entries cached from ``directory``, verified again with the source keys it vouched for then."""
    sources = settings.get(node.db, f"directory.sources.{directory}", {})
    keys = {
        domain: [IdentityPublicKey(unb64url(k, field="sources")) for k in ([raw] if isinstance(raw, str) else raw)]
        for domain, raw in sources.items()
    }  # one key per domain as stored before a domain could have several
    keys[directory] = [key, *keys.get(directory, ())]
    out = []
    for raw in store.cached_entries(node.db, directory):
        try:
            out.append(verify_entry(raw, directory_keys=keys))
        except SatchelError as exc:
            log.warning("cached entry from %s no longer verifies: %s", directory, exc.code)
    return out


def _matches(
    entry: VerifiedEntry, *, text: str | None, state: str, city: str | None, zip_code: str | None
) -> bool:
    d = entry.district.descriptor
    if d.state != state.upper():
        return False
    if text and text.lower() not in d.name.lower() and text.lower() not in d.domain and text != d.nces_id:
        return False
    if city and city.lower() != d.city.lower():
        return False
    return not (zip_code and not d.zip.startswith(zip_code))


def entry_fingerprints(entry: VerifiedEntry) -> dict[str, str]:
    return {k.key_id: fingerprint(k.algorithm, k.public_key) for k in entry.district.descriptor.keys}
