"""Directory messages (spec/directory.md): entries, search results, join and update requests.

An *entry* is a district's own signed descriptor wrapped and signed by the directory that vetted it
(purpose ``satchel/v1/directory-entry``), so whoever trusts the directory can check both signatures. A
*listing* (search result or mirror feed) is signed by the directory that answers (purpose
``satchel/v1/directory-listing``); it carries the entries unchanged plus the keys of the directories they
came from, so an entry mirrored from a state directory into a national one stays verifiable to its
origin.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from crypto import IdentityKey, IdentityPublicKey
from protocol.descriptor import VerifiedDescriptor, verify_descriptor
from protocol.errors import MalformedMessage, SatchelError
from protocol.json_strict import dumps_canonical, loads_object, take
from protocol.receipts import check_domain, parse_timestamp
from protocol.signed_document import VerifiedDocument, b64url, sign_document, unb64url, verify_document

ENTRY_PURPOSE = "satchel/v1/directory-entry"
LISTING_PURPOSE = "satchel/v1/directory-listing"
VERSION = 1
# A listing document, signed: a search's 100 entries of about 6.5 KB each come to some 1.2 MB, a feed
# page (FEED_PAGE_BYTES of entries, base64 twice over) to some 3.6 MB.
MAX_LISTING_BYTES = 16 * 1024 * 1024
# A mirror-feed page carries entries up to this many bytes (signed entry documents, before base64), so a
# page stays well under MAX_LISTING_BYTES however large the directory grows.
FEED_PAGE_BYTES = 2 * 1024 * 1024
FEED_PAGE_MAX_ENTRIES = 1000
MAX_DOMAIN_LENGTH = 253
ENTRY_STATUSES = ("approved",)


class DirectoryEntryInvalid(SatchelError):
    """A directory entry or listing does not verify against the directory's key."""

    code = "directory.entry_invalid"
    default_hint = "the directory sent an entry that does not verify; tell the directory operator"


class DirectoryUntrusted(SatchelError):
    """An entry comes from a directory this node does not trust."""

    code = "directory.untrusted"
    default_hint = "pin the directory first with `satchel directories add URL --fingerprint FP`"


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryEntry:
    directory: str
    domain: str
    status: str
    approved_at: str
    issued_at: str
    descriptor: bytes  # the district's signed descriptor document, exact bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "directory": self.directory,
            "domain": self.domain,
            "status": self.status,
            "approved_at": self.approved_at,
            "issued_at": self.issued_at,
            "descriptor": b64url(self.descriptor),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedEntry:
    entry: DirectoryEntry
    district: VerifiedDescriptor
    signed: bytes  # the entry document as signed by its directory


def _domain(value: str, field: str) -> str:
    """A lower-case domain name, as a directory's and a district's are (spec/directory.md, "Entries")."""
    check_domain(value, field, MalformedMessage)
    return value


def _time(value: str, field: str) -> str:
    """A time written ``YYYY-MM-DDTHH:MM:SSZ`` (spec/README.md), kept as the text that was signed."""
    parse_timestamp(value, field=field, error=MalformedMessage)
    return value


def sign_entry(entry: DirectoryEntry, key: IdentityKey) -> bytes:
    return sign_document(ENTRY_PURPOSE, dumps_canonical(entry.to_json()), key)


# A directory's domain -> its key, or the keys any of which may have signed its entries (spec/directory.md,
# "A directory's key": while it signs them again after a key change, its earlier key signs some of them).
DirectoryKeys = Mapping[str, IdentityPublicKey | Collection[IdentityPublicKey]]


def verify_entry(data: bytes, *, directory_keys: DirectoryKeys) -> VerifiedEntry:
    """Verify an entry against the keys of the directories trusted for it."""
    entry, signer = read_entry(data)
    expected = directory_keys.get(entry.directory)
    if expected is None:
        raise DirectoryUntrusted(f"the entry for {entry.domain} comes from untrusted {entry.directory}")
    if signer not in ((expected,) if isinstance(expected, IdentityPublicKey) else expected):
        raise DirectoryEntryInvalid(f"the entry for {entry.domain} is not signed by {entry.directory}'s key")
    if entry.status not in ENTRY_STATUSES:
        raise DirectoryEntryInvalid(f"entry status {entry.status!r} is not published", field="status")
    district = verify_descriptor(entry.descriptor, expected_domain=entry.domain)
    return VerifiedEntry(entry=entry, district=district, signed=data)


def read_entry(data: bytes) -> tuple[DirectoryEntry, IdentityPublicKey]:
    """An entry's members and the key that signed it, its signature and form checked; nothing says yet that
    the key is its directory's (verify_entry does)."""
    document = verify_document(data, purpose=ENTRY_PURPOSE)
    what = "directory entry"
    obj = loads_object(document.payload, what=what)
    if take(obj, "version", int, what=what) != VERSION:
        raise MalformedMessage("unsupported directory entry version", field="version")
    # Members this version does not define are ignored (spec/directory.md, "Versions").
    entry = DirectoryEntry(
        directory=_domain(take(obj, "directory", str, what=what), "directory"),
        domain=_domain(take(obj, "domain", str, what=what), "domain"),
        status=take(obj, "status", str, what=what),
        approved_at=_time(take(obj, "approved_at", str, what=what), "approved_at"),
        issued_at=_time(take(obj, "issued_at", str, what=what), "issued_at"),
        descriptor=unb64url(take(obj, "descriptor", str, what=what), field="descriptor"),
    )
    return entry, document.signer


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDirectory:
    domain: str
    public_key: bytes

    def to_json(self) -> dict[str, str]:
        return {"domain": self.domain, "public_key": b64url(self.public_key)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    directory: str
    issued_at: str
    sources: tuple[SourceDirectory, ...]
    entries: tuple[bytes, ...]  # signed entry documents, exact bytes
    # On a page of the mirror feed that more entries follow: the domain to ask for them after.
    next: str | None = None
    # On a search answer: more entries matched than the directory answers with.
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": VERSION,
            "directory": self.directory,
            "issued_at": self.issued_at,
            "sources": [s.to_json() for s in self.sources],
            "entries": [b64url(e) for e in self.entries],
        }
        if self.next is not None:
            body["next"] = self.next
        if self.truncated:
            body["truncated"] = True
        return body


def sign_listing(listing: Listing, key: IdentityKey) -> bytes:
    return sign_document(LISTING_PURPOSE, dumps_canonical(listing.to_json()), key)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedListing:
    listing: Listing
    entries: tuple[VerifiedEntry, ...]
    rejected: tuple[tuple[str, str], ...]  # (reason code, message) for entries that did not verify


def verify_listing(data: bytes, *, directory: str, directory_key: IdentityPublicKey) -> VerifiedListing:
    """Verify a listing from a pinned directory, then every entry in it down to the district's descriptor.

    Entries that fail are dropped and reported in ``rejected``; a listing whose own signature fails
    raises, since nothing in it can be believed.
    """
    return read_listing(listing_document(data), directory=directory, directory_key=directory_key)


def listing_document(data: bytes) -> VerifiedDocument:
    """A listing's signed document, its signature checked with the key it names. Whose key that is, is the
    caller's to decide: the key pinned for the directory, or one it endorsed since (spec/directory.md,
    "A directory's key"); then read_listing."""
    return verify_document(data, purpose=LISTING_PURPOSE, max_bytes=MAX_LISTING_BYTES)


def read_listing(
    document: VerifiedDocument, *, directory: str, directory_key: IdentityPublicKey
) -> VerifiedListing:
    """verify_listing, for a document listing_document checked; ``directory_key`` is the directory's key now,
    which signed the listing and the directory's own entries."""
    if document.signer != directory_key:
        raise DirectoryEntryInvalid(f"the listing is not signed by {directory}'s pinned key")
    what = "directory listing"
    obj = loads_object(document.payload, what=what, max_bytes=MAX_LISTING_BYTES)
    if take(obj, "version", int, what=what) != VERSION:
        raise MalformedMessage("unsupported directory listing version", field="version")
    if _domain(take(obj, "directory", str, what=what), "directory") != directory:
        raise MalformedMessage("the listing is for another directory", field="directory")
    sources = []
    for item in take(obj, "sources", list, what=what):
        if not isinstance(item, dict):
            raise MalformedMessage("sources must be objects", field="sources")
        domain, key = (take(item, name, str, what="source", path="sources") for name in ("domain", "public_key"))
        sources.append(SourceDirectory(domain=_domain(domain, "sources.domain"),
                                       public_key=unb64url(key, field="sources.public_key")))  # fmt: skip
    raw_entries = take(obj, "entries", list, what=what)
    if not all(isinstance(e, str) for e in raw_entries):
        raise MalformedMessage("entries must be strings", field="entries")
    listing = Listing(
        directory=directory,
        issued_at=_time(take(obj, "issued_at", str, what=what), "issued_at"),
        sources=tuple(sources),
        entries=tuple(unb64url(e, field="entries") for e in raw_entries),
        next=take(obj, "next", str, what=what, optional=True),
        truncated=bool(take(obj, "truncated", bool, what=what, optional=True)),
    )
    if listing.next is not None and not 0 < len(listing.next) <= MAX_DOMAIN_LENGTH:
        raise MalformedMessage(f"next must be a domain of 1 to {MAX_DOMAIN_LENGTH} characters", field="next")
    keys = listing_keys(listing, directory_key)
    verified, rejected = [], []
    for raw in listing.entries:
        try:
            verified.append(verify_entry(raw, directory_keys=keys))
        except SatchelError as exc:
            rejected.append((exc.code, exc.message))
    return VerifiedListing(listing=listing, entries=tuple(verified), rejected=tuple(rejected))


def listing_keys(listing: Listing, directory_key: IdentityPublicKey) -> dict[str, list[IdentityPublicKey]]:
    """The keys the entries of ``listing``, signed by ``directory_key``, are verified with: the answering
    directory's own and the keys its ``sources`` vouch for, those of the directories it mirrors and, while it
    signs its entries again after a key change, its own earlier ones (spec/directory.md, "A directory's
    key"); a domain may have several."""
    keys: dict[str, list[IdentityPublicKey]] = {}
    for source in listing.sources:
        keys.setdefault(source.domain, []).append(IdentityPublicKey(source.public_key))
    keys[listing.directory] = [directory_key, *keys.get(listing.directory, ())]
    return keys


def parse_descriptor_request(body: bytes) -> bytes:
    """Join and update requests carry ``{"descriptor": b64url(signed descriptor)}``; return its bytes."""
    obj = loads_object(body, what="directory request")
    return unb64url(take(obj, "descriptor", str, what="directory request"), field="descriptor")


def descriptor_request(signed_descriptor: bytes) -> bytes:
    return dumps_canonical({"descriptor": b64url(signed_descriptor)})
