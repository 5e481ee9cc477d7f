"""The directory role: vetting districts, publishing signed entries, search, and mirroring.

A district joins with a signed request carrying its signed descriptor; the directory checks that the
domain really serves that descriptor at its well-known URL, and holds the entry pending until the
directory operator approves it. Entries are then signed by the directory. Updates (transfers switched,
contact or keys changed) must come signed by a key that chains to the one approved. Entries taken from
mirrored directories are kept apart from this directory's own, one per origin and domain; of a domain's
entries, this directory's own approved one is published, else one mirrored.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from crypto import IdentityPublicKey
from node import directory_resign
from node.bounded_read import read_body
from node.clock import now_iso
from node.directory_chain import verified_listing
from node.directory_client import pin_directory_descriptor
from node.home import Node
from node.keyring import Keyring, domain_proven
from node.operators import authorize, record
from node.peers import PeerBadResponse, fetch_descriptor_bytes
from protocol import InvalidInput, NotFound, SatchelError
from protocol.descriptor import Descriptor, verify_descriptor
from protocol.directory import (
    FEED_PAGE_BYTES,
    FEED_PAGE_MAX_ENTRIES,
    MAX_DOMAIN_LENGTH,
    MAX_LISTING_BYTES,
    DirectoryEntry,
    Listing,
    SourceDirectory,
    parse_descriptor_request,
    sign_entry,
    sign_listing,
)
from protocol.key_chain import KeyChanged, KeyRevoked, KnownKey, check_continuity
from protocol.signed_document import b64url, unb64url
from storage import directory as store
from storage import settings
from storage.database import write_transaction
from storage.directory import SEARCH_LIMIT, Entry

# A pull stops (and removes nothing) past this many pages: 10 million entries at the largest page size.
MAX_FEED_PAGES = 10_000


class NotADirectory(SatchelError):
    """A directory endpoint or command was used on a district node."""

    code = "directory.not_a_directory"
    default_hint = "this node is a district, not a directory; use the directory's URL"


class DomainNotVerified(SatchelError):
    """The joining district does not serve its descriptor over https under its own domain."""

    code = "directory.domain_not_verified"
    default_hint = "serve the node under the district's own domain over https, and join from that node"


class StateRequired(SatchelError):
    """A directory search did not name a state."""

    code = "directory.state_required"
    default_hint = "give the two-letter state to search in, e.g. --state IL"


class NotMember(SatchelError):
    """An update came from a district that never joined this directory."""

    code = "directory.not_member"
    default_hint = "join first with `satchel directory join URL`"


class EntryOutdated(SatchelError):
    """A district's entry stored by an older Satchel holds a descriptor this version refuses to publish."""

    code = "directory.entry_outdated"
    default_hint = (
        "reject it (`satchel directory reject DOMAIN`) and ask the district to join again: its node, once "
        "upgraded, sends a descriptor this version takes (or its next update replaces the entry)"
    )


def _stored_descriptor(entry: Entry, *, shown: bool) -> Descriptor:
    """The descriptor an entry was stored with. An older version stored what its own checks took (a name with
    a tab in it, before control characters were refused): ``shown=False`` reads it all the same, for its keys;
    to publish it (``shown=True``), such an entry is refused as outdated, not as a malformed message."""
    try:
        return verify_descriptor(entry.descriptor, check_shown=shown).descriptor
    except SatchelError as exc:
        raise EntryOutdated(
            f"the entry for {entry.domain} was stored by an older version of Satchel and this version refuses "
            f"its descriptor ({exc.code}: {exc.message})", field=exc.field,
            hint=EntryOutdated.default_hint.replace("DOMAIN", entry.domain),
        ) from exc  # fmt: skip


def require_directory(node: Node, *, operator: bool = False) -> None:
    """``operator``: asked by a command run on this home, whose operator needs another hint than a peer."""
    if node.config.node.role != "directory":
        raise NotADirectory(
            f"{node.config.node.domain} is not a directory",
            hint="this command runs on a directory's own home (made with `satchel directory init`); a district "
            "finds others with `satchel directory search`" if operator else None,
        )  # fmt: skip


def _domain_check(descriptor: Descriptor, *, dev_loopback: bool) -> None:
    if not domain_proven(descriptor, dev_loopback=dev_loopback):
        raise DomainNotVerified(
            f"{descriptor.base_url} is not an https URL under {descriptor.domain}", field="base_url"
        )


async def handle_join(
    node: Node, keyring: Keyring, *, caller: str, body: bytes, update: bool
) -> dict[str, str]:
    require_directory(node)
    signed = parse_descriptor_request(body)
    verified = verify_descriptor(signed, expected_domain=caller)
    descriptor = verified.descriptor
    _domain_check(descriptor, dev_loopback=keyring.allow_loopback_http)
    # The district must really serve this identity at its own well-known URL (not only sign it).
    served = verify_descriptor(
        await fetch_descriptor_bytes(keyring.session(), keyring.check_origin(descriptor.base_url)),
        expected_domain=descriptor.domain,
    )
    if served.signer.key_id not in {k.key_id for k in descriptor.keys_for("identity")}:
        raise DomainNotVerified(f"{descriptor.base_url} serves another identity key", field="base_url")
    now = now_iso()
    own = node.config.node.domain
    with write_transaction(node.db):
        # Only this directory's own entry counts: one taken from a mirrored directory is that directory's
        # decision, so a join beside it waits for this operator's. A rejected entry binds no key: it publishes
        # nothing, and a join over it waits for the operator again, who checks the district as new (a district
        # rebuilt with a new key, which nothing endorses, is listed again that way).
        existing = store.get_entry(node.db, descriptor.domain, own)
        if existing is not None and existing.status != "rejected":
            _check_same_district(existing, descriptor, verified.signer.key_id)
        elif existing is None and update:
            raise NotMember(f"{descriptor.domain} has not joined this directory")
        status = existing.status if existing is not None and existing.status != "rejected" else "pending"
        # An update of an approved member is signed again at once, still approved when the operator approved it.
        approved_at = existing.decided_at if existing is not None else None
        entry = _sign(node, descriptor, signed, now, approved_at) if status == "approved" else None
        store.upsert_entry(node.db, descriptor, signed, status=status, origin=own, entry=entry, now=now, own=own)
        record(node, descriptor.domain, "directory.update" if existing else "directory.join", descriptor.domain,
               {"status": status, "signer": verified.signer.key_id})  # fmt: skip
    return {"status": status, "domain": descriptor.domain}


def _check_same_district(existing: Entry, descriptor: Descriptor, signer: str) -> None:
    # Only its keys are compared: an update from the district is how an entry an older version stored is
    # replaced by one this version publishes.
    old = _stored_descriptor(existing, shown=False)
    if signer in descriptor.revoked_keys:
        raise KeyRevoked(f"{descriptor.domain}'s descriptor is signed by {signer}, which it revokes", field="keys")
    known = {k.key_id: KnownKey(k.public_key) for k in old.keys_for("identity")}
    try:
        chain = check_continuity(descriptor, signer, known)
    except KeyChanged as exc:
        # Read by the district that sent the request: the generic hint (re-pin the peer) is not its to follow.
        raise KeyChanged(
            f"{descriptor.domain} is {existing.status} here under identity key {', '.join(known)}, which does not "
            f"endorse {signer}", field="keys",
            hint=f"if the district's node was rebuilt with a new key, its coordinator confirms the new fingerprint "
            f"with this directory's operator by phone, who rejects the old entry (`satchel directory reject "
            f"{descriptor.domain}`); then join again, and the operator approves the new entry",
        ) from exc
    # Revoked as far as this directory knew before this update: a key the update itself revokes still leads to
    # the key it endorsed before that. (A district that rotated, then revoked the old key, before its first
    # update got here was refused: listed under the revoked key for good, every later update refused alike.)
    revoked = [key_id for key_id in chain if key_id in old.revoked_keys]
    if revoked:
        raise KeyRevoked(f"key {revoked[0]} of {descriptor.domain} was revoked", field="keys")


def _sign(
    node: Node, descriptor: Descriptor, signed: bytes, now: str, approved_at: str | None = None
) -> bytes:
    entry = DirectoryEntry(
        directory=node.config.node.domain, domain=descriptor.domain, status="approved",
        approved_at=approved_at or now, issued_at=now, descriptor=signed,
    )  # fmt: skip
    return sign_entry(entry, node.current_keys().identity)


def decide(node: Node, *, actor: str | None, domain: str, approve: bool, reason: str = "") -> Entry:
    require_directory(node, operator=True)
    own = node.config.node.domain
    with write_transaction(node.db):
        user = authorize(node, actor, "settings.manage")
        existing = store.get_entry(node.db, domain, own)
        if existing is None:
            raise NotFound(
                f"no member request from {domain}", field="DOMAIN", hint="see `satchel directory list`"
            )
        now = now_iso()
        # A rejection signs nothing, so an entry this version cannot publish can always be rejected.
        entry = None
        if approve:
            entry = _sign(node, _stored_descriptor(existing, shown=True), existing.descriptor, now)
        status = "approved" if approve else "rejected"
        store.set_decision(node.db, domain, own=own, status=status, entry=entry, by=user.username, now=now)
        record(
            node, user.username, f"directory.{'approve' if approve else 'reject'}", domain, {"reason": reason}
        )
    result = store.get_entry(node.db, domain, own)
    assert result is not None
    return result


def listing(node: Node, entries: list[Entry]) -> bytes:
    """A signed listing of ``entries`` with the keys of every directory they originate from."""
    return sign_listing(_listing(node, entries), node.current_keys().identity)


def _listing(
    node: Node, entries: list[Entry], *, next_after: str | None = None, truncated: bool = False
) -> Listing:
    require_directory(node)
    own = node.config.node.domain
    # While its own entries are signed again after a key change, those not reached yet are signed by an
    # earlier key of this directory's, which the listing vouches for as it does the keys of those it mirrors.
    sources = [SourceDirectory(domain=own, public_key=key.raw) for key in directory_resign.vouched_keys(node)]
    origins = {e.origin for e in entries}
    mirrored = set()
    for _, domain, key in store.mirrors(node.db):
        if domain in origins:
            mirrored.add(domain)
            # Before the key pinned for it, which a receiver that takes one key per domain keeps (the last).
            sources += [SourceDirectory(domain=domain, public_key=k) for k in _earlier_keys(node, domain) if k != key]
            sources.append(SourceDirectory(domain=domain, public_key=key))
    return Listing(
        directory=own,
        issued_at=now_iso(),
        sources=tuple(sources),
        entries=tuple(e.entry for e in entries if e.entry is not None and (e.origin == own or e.origin in mirrored)),
        next=next_after,
        truncated=truncated,
    )


def _earlier_keys_setting(domain: str) -> str:
    return f"directory.mirror.earlier_keys.{domain}"


def _earlier_keys(node: Node, domain: str) -> list[bytes]:
    """The earlier keys of its own that a mirrored directory vouched for in its last pull (while it signed its
    entries again after a key change): some of the entries taken from it are signed by one of them."""
    return [unb64url(k, field="sources") for k in settings.get(node.db, _earlier_keys_setting(domain), [])]


def feed_query(after: str | None, limit: str | None) -> tuple[str, int]:
    """The (after, limit) of a mirror-feed request, from its query parameters as given."""
    if after is not None and len(after) > MAX_DOMAIN_LENGTH:
        raise InvalidInput(f"after is longer than a domain ({MAX_DOMAIN_LENGTH} characters)", field="after",
                           hint="pass the `next` of the previous page, unchanged")  # fmt: skip
    if limit is None:
        return after or "", FEED_PAGE_MAX_ENTRIES
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 9) or not 1 <= int(limit) <= FEED_PAGE_MAX_ENTRIES:
        raise InvalidInput(f"limit must be a whole number from 1 to {FEED_PAGE_MAX_ENTRIES}", field="limit",
                           hint="leave it out to get the largest pages")  # fmt: skip
    return after or "", int(limit)


def feed_page(node: Node, *, after: str = "", limit: int = FEED_PAGE_MAX_ENTRIES) -> Listing:
    """One page of the mirror feed, unsigned (node.feed_cache signs it and keeps it): the approved entries
    this directory publishes, first-hand or mirrored, whose domain sorts after ``after``, at most ``limit``
    of them and about FEED_PAGE_BYTES, with ``next`` set when more follow."""
    require_directory(node)
    rows = store.approved_page(node.db, after=after, limit=limit + 1)
    page: list[Entry] = []
    size = 0
    for row in rows[:limit]:
        size += len(row.entry or b"")
        if page and size > FEED_PAGE_BYTES:
            break
        page.append(row)
    more = len(page) < len(rows)
    return _listing(node, page, next_after=page[-1].domain if more else None)


def search(
    node: Node, *, state: str | None, text: str | None, city: str | None, zip_code: str | None
) -> bytes:
    require_directory(node)
    if not state:
        raise StateRequired("a directory search needs a state", field="state")
    found = store.search_entries(node.db, state=state.upper(), text=text, city=city, zip_code=zip_code,
                                 limit=SEARCH_LIMIT + 1)  # fmt: skip
    answer = _listing(node, found[:SEARCH_LIMIT], truncated=len(found) > SEARCH_LIMIT)
    return sign_listing(answer, node.current_keys().identity)


def entries_with_key(node: Node, key_id: str) -> bytes:
    require_directory(node)
    return listing(node, store.approved_entries_with_key(node.db, key_id))


async def add_mirror(
    node: Node, keyring: Keyring, *, actor: str | None, base_url: str, fingerprint: str
) -> str:
    """Pin another directory to mirror; returns its domain."""
    require_directory(node, operator=True)
    user = authorize(node, actor, "settings.manage")
    domain, key = await pin_directory_descriptor(keyring, base_url, fingerprint)
    if domain == node.config.node.domain:
        # Its own entries would come back as a mirror's, replacing what members asked for here (a pending
        # join request was lost that way).
        raise InvalidInput(
            f"{base_url} is this directory itself", field="URL",
            hint="mirror another state's directory: its URL and the fingerprint its operator reads to you",
        )  # fmt: skip
    with write_transaction(node.db):
        store.add_mirror(node.db, base_url=base_url, domain=domain, public_key=key.raw, by=user.username,
                         now=now_iso())  # fmt: skip
        record(node, user.username, "directory.mirror.add", domain, {"url": base_url})
    return domain


@dataclass(frozen=True, slots=True)
class MirrorSync:
    """What one pull of a mirrored directory changed here."""

    entries: int  # its first-hand entries, taken (new or updated)
    removed: int  # entries taken from it before that it no longer publishes
    pages: int


async def sync_mirrors(
    node: Node, keyring: Keyring, *, page_size: int = FEED_PAGE_MAX_ENTRIES
) -> dict[str, MirrorSync]:
    """Pull every mirrored directory's feed, page by page; each entry keeps its origin's signature.

    Each page is verified and stored on its own, so memory holds one page whatever the directory's size.
    Entries taken from a directory before and absent from a whole, completed pull are removed: a district
    it dropped (or whose entry no longer verifies) is not published here on its word any more. A pull that
    fails part-way removes nothing. This directory's own entries (members' requests, the operator's
    decisions) are kept beside those taken, never replaced by them, and published first once approved.
    """
    require_directory(node, operator=True)
    return {domain: await _sync_one(node, keyring, base_url, domain, IdentityPublicKey(public_key), page_size)
            for base_url, domain, public_key in store.mirrors(node.db)}  # fmt: skip


async def _sync_one(
    node: Node, keyring: Keyring, base_url: str, domain: str, key: IdentityPublicKey, page_size: int
) -> MirrorSync:
    feed = keyring.check_origin(base_url) + "/satchel/v1/directory/entries"
    seen: set[str] = set()
    earlier: set[str] = set()  # its own earlier keys the pages vouch for (see _earlier_keys)
    after: str | None = None
    pages = 0
    own = node.config.node.domain
    while True:
        query = {"limit": str(page_size)} | ({"after": after} if after is not None else {})
        url = f"{feed}?{urlencode(query)}"
        async with keyring.session().get(url) as response:
            if response.status != 200:
                raise PeerBadResponse(f"{url} answered HTTP {response.status}", field="url",
                                      hint=f"check that {domain} is up; the next pull tries again")  # fmt: skip
            body = await read_body(response.content, MAX_LISTING_BYTES)
        verified, signer = await verified_listing(
            keyring.session(), body, base_url=base_url, domain=domain, pinned=key
        )
        pages += 1
        now = now_iso()
        with write_transaction(node.db):
            if signer != key:
                # From now on the feed's entries come signed by the new key, and this directory's listings
                # vouch for it in `sources`; those still held under the old key are taken again by this pull.
                store.follow_mirror_key(node.db, base_url, signer.raw)
                record(node, domain, "directory.mirror.key_followed", domain,
                       {"url": base_url, "from": key.key_id, "to": signer.key_id})  # fmt: skip
                key = signer
            vouched = {b64url(s.public_key) for s in verified.listing.sources if s.domain == domain} - earlier
            if vouched:  # while the pull goes on, the entries it took so far are published: keep them verifiable
                earlier |= vouched
                held = settings.get(node.db, _earlier_keys_setting(domain), [])
                settings.put(node.db, _earlier_keys_setting(domain), sorted(vouched | set(held)))
            for item in verified.entries:
                if item.entry.directory != domain:
                    continue  # only first-hand entries of the mirrored directory: no chains of hearsay
                store.upsert_entry(
                    node.db, item.district.descriptor, item.entry.descriptor, status="approved", origin=domain,
                    entry=item.signed, now=now, own=own,
                )  # fmt: skip
                seen.add(item.entry.domain)
        following = verified.listing.next
        if following is None:
            break
        if (after is not None and following <= after) or pages >= MAX_FEED_PAGES:
            why = f"more than {MAX_FEED_PAGES:,} pages" if pages >= MAX_FEED_PAGES else (
                f"page {pages} points back to {following!r}")  # fmt: skip
            raise PeerBadResponse(f"{domain}'s feed does not come to an end ({why})", field="next",
                                  hint=f"tell {domain}'s operator; nothing was removed here")  # fmt: skip
        after = following
    with write_transaction(node.db):
        gone = sorted(store.mirrored_domains(node.db, domain) - seen)
        store.remove_entries(node.db, gone, origin=domain, own=own, now=now_iso())
        store.mark_mirror_synced(node.db, base_url, now_iso())
        settings.put(node.db, _earlier_keys_setting(domain), sorted(earlier))
        if gone:
            record(node, domain, "directory.mirror.removed", domain, {"domains": gone[:100], "count": len(gone)})
    return MirrorSync(entries=len(seen), removed=len(gone), pages=pages)
