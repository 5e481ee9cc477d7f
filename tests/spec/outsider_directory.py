"""An outside team's directory client and directory, written from spec/ alone.

It implements, from the text of spec/README.md, spec/descriptor.md (key ids, fingerprints, endorsements, the
key chain a peer follows, revocation) and spec/directory.md (signed entries, listings and their `sources`,
search, key look-up, the mirror feed, joining and updating, following a directory to a new key), and nothing of
Satchel's own packages: tests/spec/test_outsider_directory.py checks the imports. The encodings, signed documents
and request signing come from outsider_http, the earlier outsider written the same way.

Where the text once left an outside team guessing, the spec was fixed and this module follows the fixed text; it
must never learn anything from the code instead. Sans-IO but for the small aiohttp client at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import outsider_http as o
from outsider_http import Refused

DESCRIPTOR = "satchel/v1/descriptor"
ENDORSEMENT = "satchel/v1/key-endorsement"
ENTRY = "satchel/v1/directory-entry"
LISTING = "satchel/v1/directory-listing"
LISTING_TYPE = "application/satchel-directory-listing+json"
DESCRIPTOR_TYPE = "application/satchel-descriptor+json"
MAX_DESCRIPTOR, MAX_ENTRY, MAX_LISTING = 256 * 1024, 1024 * 1024, 16 * 1024 * 1024
MAX_CHAIN = 16  # descriptor.md, Key rotation: at most 16 links
MAX_PAGES = 10_000  # directory.md, Mirroring
ENTRY_MEMBERS = ("approved_at", "descriptor", "directory", "domain", "issued_at", "status", "version")


# --- descriptors with their key chain (descriptor.md) ------------------------------------------------------


@dataclass(frozen=True)
class Key:
    id: str
    use: str
    alg: str
    public: bytes
    not_before: str
    not_after: str | None
    endorsed_by: str | None = None
    endorsement: bytes | None = None


@dataclass
class Descriptor:
    """A verified descriptor (steps 1-7) with every listed key, and the identity keys its signer vouches for."""

    document: bytes
    signed_by: str
    signer_public: bytes
    payload: dict[str, Any]
    keys: dict[str, Key]
    revoked: frozenset[str]

    @property
    def domain(self) -> str:
        return str(self.payload["domain"])

    @property
    def role(self) -> str:
        return str(self.payload["role"])

    @property
    def base_url(self) -> str:
        return str(self.payload["base_url"])

    def serves_its_domain(self) -> bool:
        return o.Descriptor(self.signed_by, self.payload, {}).serves_its_domain()

    def identity(self) -> dict[str, bytes]:
        """Every listed Ed25519 identity key, vouched for or not."""
        return {k.id: k.public for k in self.keys.values() if k.use == "identity" and k.alg == "ed25519"}

    def vouched(self, known: Mapping[str, bytes] = {}) -> dict[str, bytes]:
        """descriptor.md, Key rotation: the signer and every listed identity key joined to it by valid
        endorsements made for this domain, in either direction. ``known`` lends the public key of an endorser
        the descriptor no longer lists (a key it revoked) so a chain through it can be checked."""
        identity = self.identity()
        edges = self._endorsement_edges({**known, **identity})
        reached = {self.signed_by}
        todo = [self.signed_by]
        while todo:
            here = todo.pop()
            for a, b in edges:
                for x, y in ((a, b), (b, a)):
                    if x == here and y not in reached and y in identity:
                        reached.add(y)
                        todo.append(y)
        return {kid: identity[kid] for kid in reached}

    def _endorsement_edges(self, publics: Mapping[str, bytes]) -> list[tuple[str, str]]:
        """(endorsed, endorser) for every listed identity key whose endorsement verifies."""
        edges = []
        for key in self.keys.values():
            if key.use != "identity" or key.endorsed_by is None or key.endorsement is None:
                continue
            endorser = publics.get(key.endorsed_by)
            if endorser is not None and endorsement_valid(key, self.domain, endorser, key.endorsement):
                edges.append((key.id, key.endorsed_by))
        return edges

    def chain_to(self, known: Mapping[str, bytes], *, revoked: Iterable[str] = (),
                 start: str | None = None) -> list[str] | None:  # fmt: skip
        """descriptor.md, Key rotation: the path of endorsements from the signer (or ``start``) to a key of
        ``known`` (the signer alone when it is known), at most 16 links, through no revoked key but the known one
        it ends at (what a key endorsed before its revocation stands); None without one."""
        start = self.signed_by if start is None else start
        banned = set(self.revoked) | set(revoked)
        if start in banned:
            return None
        if start in known:
            return [start]
        edges = self._endorsement_edges({**known, **self.identity()})
        paths = [[start]]
        for _ in range(MAX_CHAIN):
            longer = []
            for path in paths:
                for endorsed, endorser in edges:
                    if endorsed != path[-1] or endorser in path:
                        continue
                    if endorser in known:
                        return [*path, endorser]
                    if endorser not in banned:
                        longer.append([*path, endorser])
            paths = longer
        return None


def endorsement_payload(key: Key, domain: str) -> bytes:
    return o.canonical_json({"alg": key.alg, "domain": domain, "id": key.id, "not_before": key.not_before,
                             "public_key": o.b64url(key.public), "use": "identity"})  # fmt: skip


def endorsement_valid(key: Key, domain: str, endorser: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(endorser).verify(
            signature, ENDORSEMENT.encode() + b"\x00" + endorsement_payload(key, domain)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _time_or_null(value: Any, null: bool) -> bool:
    if value is None:
        return null
    try:
        o.parse_time(value)
    except ValueError:
        return False
    return True


def read_descriptor(data: bytes, *, domain: str | None = None) -> Descriptor:
    """Steps 1-7 of descriptor.md with every key object read; ``domain``: the domain it was looked up by."""
    checked = o.verify_descriptor(data)
    payload = checked.payload
    if payload.get("role") not in ("district", "directory"):
        raise Refused("message.malformed", "role")
    keys: dict[str, Key] = {}
    for raw in payload["keys"]:
        if raw.get("use") not in ("identity", "encryption") or not isinstance(raw.get("alg"), str):
            raise Refused("message.malformed", "keys.use")
        if not _time_or_null(raw.get("not_before"), False):
            raise Refused("message.malformed", "keys.not_before")
        if not _time_or_null(raw.get("not_after"), True):
            raise Refused("message.malformed", "keys.not_after")
        endorsed_by = raw.get("endorsed_by")
        by = signature = None
        if endorsed_by is not None:
            if not isinstance(endorsed_by, dict) or not isinstance(endorsed_by.get("key_id"), str):
                raise Refused("message.malformed", "keys.endorsed_by")
            try:
                signature = o.unb64url(endorsed_by.get("signature"))
            except ValueError as exc:
                raise Refused("message.malformed", "keys.endorsed_by.signature") from exc
            by = endorsed_by["key_id"]
        keys[raw["id"]] = Key(raw["id"], raw["use"], raw["alg"], o.unb64url(raw["public_key"]), raw["not_before"],
                              raw.get("not_after"), by, signature)  # fmt: skip
    revoked = payload.get("revoked_keys", [])
    if revoked is None:
        revoked = []
    if not isinstance(revoked, list) or not all(isinstance(k, str) for k in revoked):
        raise Refused("message.malformed", "revoked_keys")
    if domain is not None and payload["domain"] != domain:
        raise Refused("descriptor.mismatch", "domain")
    public = o.unb64url(o.strict_json(data)["public_key"])
    return Descriptor(data, checked.signed_by, public, payload, keys, frozenset(revoked))


@dataclass
class KeyBook:
    """What a peer knows of one domain's identity keys: those it pinned or followed, and those it learned were
    revoked (descriptor.md: refuse anything they sign from then on)."""

    domain: str
    keys: dict[str, bytes]
    revoked: set[str] = field(default_factory=set)

    def accept(self, descriptor: Descriptor) -> list[str]:
        """Take a newer descriptor of the domain: follow its chain from a known key, mark its revocations.
        Returns the chain followed; refuses a signer with no chain (descriptor.key_changed) or a revoked one."""
        if descriptor.domain != self.domain:
            raise Refused("descriptor.mismatch", "domain")
        if descriptor.signed_by in self.revoked | descriptor.revoked:
            raise Refused("descriptor.key_revoked")
        live = {k: v for k, v in self.keys.items() if k not in descriptor.revoked}
        chain = descriptor.chain_to(live or self.keys, revoked=self.revoked)
        if chain is None:
            raise Refused("descriptor.key_changed")
        self.revoked |= descriptor.revoked
        self.keys = {k: v for k, v in descriptor.vouched(self.keys).items() if k not in self.revoked}
        return chain

    def check_signer(self, key_id: str) -> bytes:
        if key_id in self.revoked:
            raise Refused("descriptor.key_revoked")
        if key_id not in self.keys:
            raise Refused("signature.key_unknown")
        return self.keys[key_id]


# --- entries (directory.md, Entries) -------------------------------------------------------------------------


@dataclass
class Entry:
    document: bytes
    payload_bytes: bytes
    members: dict[str, Any]
    signed_by: str
    district: Descriptor

    @property
    def reencodes_to_payload(self) -> bool:
        return o.canonical_json(self.members) == self.payload_bytes


def _json_object(payload_bytes: bytes) -> dict[str, Any]:
    """A signed payload's JSON object; a duplicate member, bytes that are not JSON or not an object are
    `message.malformed`, the duplicate named."""
    try:
        payload = o.strict_json(payload_bytes)
    except o.DuplicateKey as exc:
        raise Refused("message.malformed", exc.key) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused("message.malformed", None, "not JSON") from exc
    if not isinstance(payload, dict):
        raise Refused("message.malformed", None, "not an object")
    return payload


def parse_entry_payload(payload_bytes: bytes) -> dict[str, Any]:
    """Member checks in the README's order: a duplicate first, then a missing member (unknown ones are ignored,
    directory.md Versions), then values."""
    payload = _json_object(payload_bytes)
    for name in ENTRY_MEMBERS:
        if name not in payload:
            raise Refused("message.malformed", name, "missing")
    if payload["version"] != 1 or isinstance(payload["version"], bool):
        raise Refused("message.malformed", "version")
    for name in ("directory", "domain"):
        if not o.is_domain(payload[name]):
            raise Refused("message.malformed", name)
    for name in ("approved_at", "issued_at"):
        if not _time_or_null(payload[name], False):
            raise Refused("message.malformed", name)
    if not isinstance(payload["status"], str):
        raise Refused("message.malformed", "status")
    try:
        o.unb64url(payload["descriptor"])
    except ValueError as exc:
        raise Refused("message.malformed", "descriptor") from exc
    return {name: payload[name] for name in ENTRY_MEMBERS}


def verify_entry(data: bytes, trusted: Mapping[str, Iterable[bytes]]) -> Entry:
    """directory.md, Entries, in the order it gives; ``trusted``: directory domain -> its acceptable keys."""
    signer, public, payload_bytes = o.open_document(data, ENTRY, max_bytes=MAX_ENTRY)
    members = parse_entry_payload(payload_bytes)
    if members["directory"] not in trusted:
        raise Refused("directory.untrusted")
    if public not in set(trusted[members["directory"]]):
        raise Refused("directory.entry_invalid")
    if members["status"] != "approved":
        raise Refused("directory.entry_invalid", "status")
    district = read_descriptor(o.unb64url(members["descriptor"]), domain=members["domain"])
    return Entry(data, payload_bytes, members, signer, district)


def make_entry(key: o.NodeKey, *, directory: str, descriptor: bytes, domain: str, approved_at: str, issued_at: str,
               status: str = "approved") -> bytes:  # fmt: skip
    payload = {"version": 1, "directory": directory, "domain": domain, "status": status,
               "approved_at": approved_at, "issued_at": issued_at, "descriptor": o.b64url(descriptor)}  # fmt: skip
    return o.sign_document(key, ENTRY, o.canonical_json(payload))


# --- listings (directory.md, Listings, search and key lookup) -----------------------------------------------


class SignerNotPinned(Refused):
    """The listing verifies under a key other than the pinned one: the client fetches the directory's descriptor
    and follows the chain before reading it (directory.md, A directory's key)."""

    def __init__(self, key_id: str, public: bytes) -> None:
        super().__init__("directory.entry_invalid", None, f"listing signed by {key_id}, not the pinned key")
        self.key_id, self.public = key_id, public


@dataclass
class Listing:
    directory: str
    signed_by: str
    issued_at: str
    sources: list[tuple[str, bytes]]
    entries: list[Entry]
    dropped: list[tuple[int, Refused]]
    next: str | None
    truncated: bool


def verify_listing(data: bytes, *, directory: str, pinned: bytes) -> Listing:
    """Signature with the pinned key, the payload's members, then each entry on its own (failures dropped)."""
    signer, public, payload_bytes = o.open_document(data, LISTING, max_bytes=MAX_LISTING)
    if public != pinned:
        raise SignerNotPinned(signer, public)
    payload = _json_object(payload_bytes)
    for name in ("directory", "entries", "issued_at", "sources", "version"):
        if name not in payload:
            raise Refused("message.malformed", name, "missing")
    if payload["version"] != 1 or isinstance(payload["version"], bool):
        raise Refused("message.malformed", "version")
    if not o.is_domain(payload["directory"]) or payload["directory"] != directory:
        raise Refused("message.malformed", "directory")
    if not _time_or_null(payload["issued_at"], False):
        raise Refused("message.malformed", "issued_at")
    sources: list[tuple[str, bytes]] = []
    if not isinstance(payload["sources"], list):
        raise Refused("message.malformed", "sources")
    for source in payload["sources"]:
        if not isinstance(source, dict):
            raise Refused("message.malformed", "sources")
        if not o.is_domain(source.get("domain")):
            raise Refused("message.malformed", "sources.domain")
        try:
            key = o.unb64url(source.get("public_key"))
            if len(key) != 32:
                raise ValueError
        except ValueError as exc:
            raise Refused("message.malformed", "sources.public_key") from exc
        sources.append((source["domain"], key))
    entries = payload["entries"]
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise Refused("message.malformed", "entries")
    following = payload.get("next")
    if following is not None and not isinstance(following, str):
        raise Refused("message.malformed", "next")
    truncated = payload.get("truncated")
    if truncated is not None and not isinstance(truncated, bool):
        raise Refused("message.malformed", "truncated")
    # Each entry with a key of the directory it names: the listing's signer for the answering directory, and
    # any key `sources` gives under a domain (the answering directory vouches for them by signing the listing).
    trusted: dict[str, list[bytes]] = {directory: [public]}
    for domain, key in sources:
        trusted.setdefault(domain, []).append(key)
    good: list[Entry] = []
    dropped: list[tuple[int, Refused]] = []
    for index, text in enumerate(entries):
        try:
            good.append(verify_entry(o.unb64url(text), trusted))
        except ValueError:
            dropped.append((index, Refused("message.malformed", "entries")))
        except Refused as refused:
            dropped.append((index, refused))
    return Listing(directory, signer, payload["issued_at"], sources, good, dropped, following, bool(truncated))


def make_listing(key: o.NodeKey, *, directory: str, entries: Iterable[bytes], issued_at: str,
                 sources: Iterable[tuple[str, bytes]] = (), next: str | None = None, truncated: bool = False,
                 nulls: bool = False) -> bytes:  # fmt: skip
    """``nulls``: write an unset `next` and `truncated` as null, which a receiver MUST read as absent."""
    payload: dict[str, Any] = {"version": 1, "directory": directory, "issued_at": issued_at,
                               "sources": [{"domain": d, "public_key": o.b64url(k)} for d, k in sources],
                               "entries": [o.b64url(e) for e in entries]}  # fmt: skip
    if next is not None or nulls:
        payload["next"] = next
    if truncated or nulls:
        payload["truncated"] = True if truncated else None
    return o.sign_document(key, LISTING, o.canonical_json(payload))


def search_matches(descriptor: Descriptor, *, state: str, q: str = "", city: str = "", zip: str = "") -> bool:
    """Whether an outside directory answers a search with this district (directory.md, Listings): in the state
    (upper-cased), ``q`` a part of the name or domain or the whole NCES id, the whole city, the ZIP prefix."""
    p = descriptor.payload
    text = q.lower()
    return (
        p["state"] == state.upper()
        and (not q or text in p["name"].lower() or text in p["domain"] or q == p["nces_id"])
        and (not city or city.lower() == p["city"].lower())
        and p["zip"].startswith(zip)
    )


# --- descriptors this outsider signs (descriptor.md) ---------------------------------------------------------


def key_object(alg: str, use: str, public: bytes, *, not_before: str, not_after: str | None = None) -> dict[str, Any]:
    return {"alg": alg, "id": o.key_id(alg, public), "not_after": not_after, "not_before": not_before,
            "public_key": o.b64url(public), "use": use}  # fmt: skip


def endorse(old: o.NodeKey, new: dict[str, Any], domain: str) -> dict[str, Any]:
    """The new identity key's object with its endorsement by the old key (descriptor.md, Key rotation)."""
    key = Key(new["id"], "identity", new["alg"], o.unb64url(new["public_key"]), new["not_before"], None)
    signature = old.private.sign(ENDORSEMENT.encode() + b"\x00" + endorsement_payload(key, domain))
    return {**new, "endorsed_by": {"key_id": old.key_id, "signature": o.b64url(signature)}}


def make_descriptor(signer: o.NodeKey, *, role: str, domain: str, base_url: str, name: str, issued_at: str,
                    keys: list[dict[str, Any]], revoked: Iterable[str] = (), state: str = "IL",
                    city: str = "Springfield", zip: str = "62701") -> bytes:  # fmt: skip
    payload = {"version": 1, "role": role, "domain": domain, "name": name, "state": state, "city": city,
               "zip": zip, "nces_id": "", "base_url": base_url, "protocol_versions": ["satchel/1"],
               "transfers_enabled": False, "coordinator": None, "keys": keys, "revoked_keys": list(revoked),
               "issued_at": issued_at}  # fmt: skip
    return o.sign_document(signer, DESCRIPTOR, o.canonical_json(payload))


# --- a client of directories (aiohttp as a plain client) ----------------------------------------------------


@dataclass
class PinnedDirectory:
    """`satchel directories add URL --fingerprint FP`, as an outside client does it (directory.md)."""

    url: str
    domain: str
    key_id: str
    public: bytes
    followed: list[tuple[str, str]] = field(default_factory=list)


async def _get(http: Any, url: str) -> tuple[int, str, bytes]:
    async with http.get(url) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), await answer.read()


def _error_code(body: bytes) -> str:
    try:
        answer = o.strict_json(body)
        return str(answer["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "peer.bad_response"


async def fetch_descriptor(http: Any, base_url: str, *, domain: str | None = None) -> Descriptor:
    status, _, body = await _get(http, base_url + "/.well-known/satchel")
    if status != 200:
        raise Refused("peer.bad_response", None, f"descriptor answered {status}")
    return read_descriptor(body, domain=domain)


async def pin_directory(http: Any, url: str, fingerprint: str) -> PinnedDirectory:
    descriptor = await fetch_descriptor(http, url)
    if descriptor.role != "directory":
        raise Refused("input.invalid", "URL", "not a directory")

    def plain(text: str) -> str:  # descriptor.md: compared ignoring case and all but letters and digits
        return "".join(c for c in text.upper() if c.isalnum())

    if plain(o.fingerprint("ed25519", descriptor.signer_public)) != plain(fingerprint):
        raise Refused("directory.fingerprint_mismatch")
    return PinnedDirectory(url, descriptor.domain, descriptor.signed_by, descriptor.signer_public)


async def read_listing(http: Any, pinned: PinnedDirectory, path: str) -> Listing:
    """GET one read endpoint and verify its listing; a listing signed by a key the pinned one endorsed (in the
    directory's own descriptor) is followed once, as directory.md, A directory's key, says."""
    status, content_type, body = await _get(http, pinned.url + path)
    if status != 200:
        raise Refused(_error_code(body), None, f"answered {status}")
    if content_type.split(";")[0].strip() != LISTING_TYPE:
        raise Refused("peer.bad_response", None, f"content type {content_type}")
    try:
        return verify_listing(body, directory=pinned.domain, pinned=pinned.public)
    except SignerNotPinned as other:
        descriptor = await fetch_descriptor(http, pinned.url, domain=pinned.domain)
        if descriptor.role != "directory" or other.key_id not in descriptor.identity():
            raise
        if descriptor.identity()[other.key_id] != other.public:
            raise
        # The pinned key counts as not revoked: what it endorsed before its revocation stands (chain_to ends at a
        # known key whether or not the descriptor revoked it).
        if descriptor.chain_to({pinned.key_id: pinned.public}, start=other.key_id) is None:
            raise
        pinned.followed.append((pinned.key_id, other.key_id))
        pinned.key_id, pinned.public = other.key_id, other.public
        return verify_listing(body, directory=pinned.domain, pinned=pinned.public)


async def search(http: Any, pinned: PinnedDirectory, *, state: str | None, q: str = "", city: str = "",
                 zip: str = "") -> Listing:  # fmt: skip
    query = {k: v for k, v in (("state", state), ("q", q), ("city", city), ("zip", zip)) if v is not None}
    return await read_listing(http, pinned, "/satchel/v1/directory/search?" + urlencode(query))


async def lookup_key(http: Any, pinned: PinnedDirectory, keyid: str) -> Listing:
    return await read_listing(http, pinned, "/satchel/v1/directory/keys/" + quote(keyid, safe=""))


async def walk_feed(http: Any, pinned: PinnedDirectory, *, limit: int | None = None) -> list[Entry]:
    """The mirror feed page by page (directory.md, Mirroring): each next must sort after the after it answered."""
    entries: list[Entry] = []
    after = ""
    for _ in range(MAX_PAGES):
        query = {"after": after} if after else {}
        if limit is not None:
            query["limit"] = str(limit)
        page = await read_listing(http, pinned, "/satchel/v1/directory/entries?" + urlencode(query))
        entries += page.entries
        if page.next is None:
            return entries
        if page.next.encode() <= after.encode():
            raise Refused("peer.bad_response", None, "next does not sort after after")
        after = page.next
    raise Refused("peer.bad_response", None, "more than 10,000 pages")


async def post_membership(http: Any, outsider: o.Outsider, directory_url: str, descriptor: bytes, *,
                          update: bool = False) -> o.Exchange:  # fmt: skip
    """A district's join (or update): its signed descriptor in a signed request (directory.md, Joining)."""
    body = o.canonical_json({"descriptor": o.b64url(descriptor)})
    path = "/satchel/v1/directory/update" if update else "/satchel/v1/directory/join"
    msg = outsider.build("POST", directory_url + path, body=body, content_type="application/json")
    return await outsider.send(http, msg)


# --- an outside directory: what it does with a join or an update (directory.md, Joining) ---------------------


def _on_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")


def domain_verified(descriptor: Descriptor, *, dev: bool) -> bool:
    """Step 3: https on the domain or a host under it; plain http on loopback in development mode."""
    return descriptor.serves_its_domain() or (dev and _on_loopback(descriptor.base_url))


@dataclass
class Member:
    status: str  # pending, approved, rejected
    descriptor: Descriptor
    approved_at: str | None = None


@dataclass
class OutsideDirectory:
    """The directory's own bookkeeping: its key, its members; sans-IO but for the fetches of handle_membership."""

    key: o.NodeKey
    domain: str
    base_url: str
    members: dict[str, Member] = field(default_factory=dict)
    dev: bool = True
    # The key its entries are signed by: its identity key, or an earlier one while it has not signed them again
    # after a change of key (directory.md, A directory's key), which its listings then vouch for in `sources`.
    entry_key: o.NodeKey | None = None
    keys: list[dict[str, Any]] = field(default_factory=list)
    document: bytes = b""
    nulls: bool = False

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys = [key_object("ed25519", "identity", self.key.public, not_before=o.format_time(0))]
        self.document = self.descriptor()

    def descriptor(self) -> bytes:
        return make_descriptor(self.key, role="directory", domain=self.domain, base_url=self.base_url,
                               name="Outside Consortium", issued_at=self.keys[-1]["not_before"], keys=self.keys)

    def rotate(self, now: int, *, overlap: int = 7 * 86400) -> o.NodeKey:
        """descriptor.md, Key rotation: a new identity key endorsed by the old one, which stays listed for the
        overlap and keeps signing the entries until they are signed again. Returns the old key."""
        old, new = self.key, o.NodeKey.generate()
        self.keys = [{**k, "not_after": k["not_after"] or o.format_time(now + overlap)} for k in self.keys]
        self.keys.append(endorse(old, key_object("ed25519", "identity", new.public, not_before=o.format_time(now)),
                                 self.domain))  # fmt: skip
        self.key, self.entry_key = new, old
        self.document = self.descriptor()
        return old

    def approve(self, domain: str, now: str) -> None:
        member = self.members[domain]
        member.status, member.approved_at = "approved", now

    def entry(self, domain: str, now: str) -> bytes:
        member = self.members[domain]
        assert member.approved_at is not None
        return make_entry(self.entry_key or self.key, directory=self.domain, descriptor=member.descriptor.document,
                          domain=domain, approved_at=member.approved_at, issued_at=now)  # fmt: skip

    def published(self) -> list[Descriptor]:
        return sorted((m.descriptor for m in self.members.values() if m.status == "approved"),
                      key=lambda x: (x.payload["name"], x.domain))  # fmt: skip

    def listing(self, descriptors: Iterable[Descriptor], now: str, *, next: str | None = None,
                truncated: bool = False) -> bytes:  # fmt: skip
        earlier = [] if self.entry_key in (None, self.key) else [(self.domain, self.entry_key.public)]
        return make_listing(self.key, directory=self.domain, entries=[self.entry(x.domain, now) for x in descriptors],
                            issued_at=now, sources=earlier, next=next, truncated=truncated,
                            nulls=self.nulls)  # fmt: skip

    async def handle_membership(self, http: Any, received: o.Message, *, update: bool, now: int) -> tuple[int, Any]:
        """Steps 1-6 of Joining (or Updating): the answer's status and JSON body; Refused on a refusal."""
        origin = received.field("satchel-origin") or ""
        # Step 1: the key through the sender's Satchel-Origin (its descriptor there), or the member's known keys.
        sender = await fetch_descriptor(http, origin)
        keys = sender.vouched()
        held = self.members.get(sender.domain)
        if held is not None and held.status != "rejected":
            book = KeyBook(sender.domain, held.descriptor.vouched())
            try:
                book.accept(sender)
            except Refused as exc:
                raise Refused("signature.key_unknown") from exc
            keys = book.keys

        def resolve(keyid: str, _origin: str | None) -> Ed25519PublicKey:
            if keyid not in keys:
                raise Refused("signature.key_unknown")
            return Ed25519PublicKey.from_public_bytes(keys[keyid])

        checked = o.Receiver(authority=o.authority_of(self.base_url), resolve=resolve).verify_request(received,
                                                                                                    now=now)
        # Step 2: the submitted descriptor, for the domain whose key signed the request.
        try:
            body = o.strict_json(received.body)
            document = o.unb64url(body["descriptor"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Refused("input.invalid", "descriptor") from exc
        submitted = read_descriptor(document)
        if submitted.domain != sender.domain or checked.keyid not in keys:
            raise Refused("descriptor.mismatch", "domain")
        if update and held is None:
            raise Refused("directory.not_member")
        # Steps 3 and 4: the domain really serves it.
        if not domain_verified(submitted, dev=self.dev):
            raise Refused("directory.domain_not_verified")
        served = await fetch_descriptor(http, submitted.base_url)
        if not set(served.identity().values()) & set(submitted.identity().values()):
            raise Refused("directory.domain_not_verified")
        # Step 5: a pending or approved entry binds its keys.
        if held is not None and held.status != "rejected":
            if submitted.signed_by in submitted.revoked:
                raise Refused("descriptor.key_revoked")
            if submitted.chain_to(held.descriptor.vouched(), revoked=held.descriptor.revoked) is None:
                raise Refused("descriptor.key_changed")
            held.descriptor = submitted
            return 200, {"status": held.status, "domain": submitted.domain}
        self.members[submitted.domain] = Member("pending", submitted)
        return 202, {"status": "pending", "domain": submitted.domain}
