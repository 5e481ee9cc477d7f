"""The key chain: who signed this? Local cache, then trusted directories, then the peer's well-known URL.

Fetches are de-duplicated: many requests signed by a key we have not seen yet, naming the same origin, cause
one lookup. Lookups a stranger's request sets off are bounded (node.discovery_gate) and reach only public
addresses outside development mode (node.public_addresses). A key is usable for a new request only inside
its validity window and while not revoked; descriptors whose identity key changed without an endorsement
chain from a key already known are refused loudly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from crypto import IdentityPublicKey
from node.bounded_read import read_body
from node.clock import now_iso
from node.config import is_loopback_host
from node.directory_chain import follow_trusted, verified_listing
from node.discovery_gate import MISS_SECONDS, DiscoveryGate
from node.home import Node
from node.peers import fetch_descriptor_bytes
from node.public_addresses import is_address_literal, is_public_address, public_only_session
from protocol import InvalidInput, NotFound, SatchelError
from protocol.descriptor import Descriptor, serves_its_domain, verify_descriptor
from protocol.directory import MAX_LISTING_BYTES
from protocol.http_signatures import SignatureKeyLookupLimited, SignatureKeyRevoked, SignatureKeyUnknown
from protocol.key_chain import KeyChanged, KnownKey, check_continuity, vouched_identity_keys
from storage import directory as directory_store
from storage import peers as peer_store
from storage.database import write_transaction
from storage.peers import PeerKey

log = logging.getLogger("satchel.keyring")
ORIGIN_FIELD = "Satchel-Origin"


class OriginNotAllowed(SatchelError):
    """A peer URL is not https (or loopback http in development mode), or not the URL the peer publishes."""

    code = "peer.origin_not_allowed"
    default_hint = "peers must be reached over https (plain http only on loopback in development mode)"


def domain_proven(descriptor: Descriptor, *, dev_loopback: bool) -> bool:
    """Whether the node serves from its own domain (protocol.descriptor.serves_its_domain); in development
    mode a node on loopback passes, as it has no certificate to show."""
    host = urlsplit(descriptor.base_url).hostname or ""
    return serves_its_domain(descriptor) or (dev_loopback and is_loopback_host(host))


def _no_owner(key_id: str, why: str = "") -> SignatureKeyUnknown:
    return SignatureKeyUnknown(
        f"no trusted node uses key {key_id}{why}", field="Signature-Input",
        hint="the calling node must be pinned (`satchel peers add URL`) or listed by a trusted directory",
    )  # fmt: skip


def _changed_owner(key_id: str, refused: KeyChanged, *, directory: bool) -> SignatureKeyUnknown:
    """The caller's own node serves ``key_id``, but this node knows that domain by a key that does not endorse
    it: a node rebuilt without its keys, or an impostor. Both operators read this, each from their side."""
    also = (
        ", and rejects its old entry (`satchel directory reject DOMAIN`) so that it can join again"
        if directory else ""
    )  # fmt: skip
    return SignatureKeyUnknown(
        f"no trusted node uses key {key_id}: its node's descriptor is refused here ({refused.message})",
        field="Signature-Input",
        hint="if that node was rebuilt with a new identity key, its operator confirms the new fingerprint by phone "
        f"with this node's operator, who re-pins it (`satchel peers add URL --repin`){also}",
    )


def _malformed(message: str) -> InvalidInput:
    return InvalidInput(
        message, field="url", hint="give the node's base URL, e.g. https://satchel.district.example"
    )


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    domain: str
    key: IdentityPublicKey
    trust: str

    def verify_raw(self, message: bytes, signature: bytes) -> bytes:
        return self.key.verify_raw(message, signature)


class Keyring:
    def __init__(
        self,
        node: Node,
        session: Callable[[], aiohttp.ClientSession],
        *,
        allow_loopback_http: bool = False,
    ) -> None:
        self._node = node
        self._session = session
        self.allow_loopback_http = allow_loopback_http
        # Keyed by origin too (and whether a stranger named it): a lookup a stranger set off, sent where the
        # stranger said, must not answer for a request that names the key's real origin.
        self._inflight: dict[tuple[str, str, bool], asyncio.Future[KeyChanged | None]] = {}
        # What _local found per key id, kept while the database is unchanged: every signed request asks,
        # and two queries plus building the key cost about as much as verifying the signature.
        # PRAGMA data_version moves whenever another connection (a `satchel` command, another process)
        # commits; this keyring clears the cache itself after its own writes (the only writer of peers in
        # a node's process). Validity windows and revocation are still checked on every request.
        self._cache: dict[tuple[str, str | None], tuple[PeerKey, str]] = {}
        self._public: dict[bytes, IdentityPublicKey] = {}
        self._cache_version: int | None = None
        self._gate = DiscoveryGate(per_minute=node.config.federation.key_lookups_per_minute)
        self._stranger_session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._stranger_session is not None:
            await self._stranger_session.close()

    def session(self) -> aiohttp.ClientSession:
        return self._session()

    # -- resolving keys that sign requests and responses --------------------------------------------

    async def resolve(
        self, key_id: str, *, origin: str | None, domain: str | None = None, claimed: bool = False
    ) -> ResolvedKey:
        """The verified owner of ``key_id``; ``origin`` (the caller's base URL) is the last resort.

        ``claimed``: the origin is what an incoming request says of itself, not a node this one chose to
        call, so looking the key up is bounded (node.discovery_gate) and goes to public addresses only.
        """
        found = self._local(key_id, domain)
        refused: KeyChanged | None = None
        if found is None:
            lookup = (key_id, origin or "", claimed)
            if claimed:
                self._admit_lookup(lookup)
            refused = await self._once(lookup, lambda: self._discover(key_id, origin, claimed=claimed))
            found = self._local(key_id, domain)
            if found is None and claimed:
                self._gate.missed(key_id, origin)
        if found is None:
            if refused is not None:
                raise _changed_owner(key_id, refused, directory=self._node.config.node.role == "directory")
            raise _no_owner(key_id)
        key, peer_trust = found
        now = now_iso()
        if key.status == "revoked":
            raise SignatureKeyRevoked(f"key {key_id} of {key.domain} was revoked", field="Signature-Input")
        if not key.valid_at(now):
            raise SignatureKeyUnknown(
                f"key {key_id} of {key.domain} is not valid now (valid {key.not_before} to {key.not_after})",
                field="Signature-Input",
                hint="the calling node must sign with its current key",
            )
        public = self._public.get(key.public_key)
        if public is None:
            public = self._public[key.public_key] = IdentityPublicKey(key.public_key)
        return ResolvedKey(key.domain, public, peer_trust)

    def _local(self, key_id: str, domain: str | None) -> tuple[PeerKey, str] | None:
        version = self._node.db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._cache_version:
            self.forget_cached()
            self._cache_version = version
        found = self._cache.get((key_id, domain))
        if found is None:
            key = peer_store.key_by_id(self._node.db, key_id, domain=domain)
            if key is None or key.use != "identity":
                return None
            peer = peer_store.get(self._node.db, key.domain)
            if peer is None:
                return None
            found = self._cache[(key_id, domain)] = (key, peer.trust)
        return found

    def _admit_lookup(self, lookup: tuple[str, str, bool]) -> None:
        """Refuse, before any lookup, what the gate says a stranger's request may not set off."""
        key_id, origin, _claimed = lookup
        if self._gate.recently_missed(key_id, origin):
            raise _no_owner(
                key_id, f" (it was looked up from this origin less than {MISS_SECONDS / 60:.0f} minutes ago)"
            )
        if lookup not in self._inflight and not self._gate.take():
            raise SignatureKeyLookupLimited(
                f"key {key_id} is unknown here, and this node has looked up as many unknown keys as it allows "
                "itself for now", field="Signature-Input", retry_after=60,
            )  # fmt: skip

    def forget_cached(self) -> None:
        """Drop what _local remembers; call after changing peers or their keys on this connection."""
        self._cache.clear()
        self._public.clear()

    async def _once(
        self, name: tuple[str, str, bool], work: Callable[[], Awaitable[KeyChanged | None]]
    ) -> KeyChanged | None:
        future = self._inflight.get(name)
        if future is None:
            future = asyncio.ensure_future(work())
            self._inflight[name] = future
            future.add_done_callback(lambda _: self._inflight.pop(name, None))
        return await asyncio.shield(future)

    async def _discover(self, key_id: str, origin: str | None, *, claimed: bool) -> KeyChanged | None:
        """Look ``key_id`` up; returns the key change its origin's descriptor was refused for, if it was."""
        for directory in directory_store.trusted(self._node.db):
            try:
                if await self._lookup_in_directory(directory, key_id):
                    return None
            except (SatchelError, aiohttp.ClientError, TimeoutError) as exc:
                log.info(
                    "directory %s could not resolve %s: %s", directory.domain, key_id, type(exc).__name__
                )
        if not origin:
            return None
        try:
            if claimed:
                await self._fetch_claimed(origin, key_id)
            else:
                await self.fetch_peer(origin, trust="web")
        except SatchelError as exc:
            log.info("origin %s could not resolve %s: %s", origin[:200], key_id, exc.code)
            return exc if isinstance(exc, KeyChanged) else None
        except Exception as exc:
            # The origin is often a stranger's to choose: whatever it makes go wrong costs the request a
            # signature.key_unknown, not a 500 and a traceback per request in this node's log.
            log.warning("origin %s could not resolve %s: %s: %s", origin[:200], key_id, type(exc).__name__,
                        str(exc)[:200])  # fmt: skip
        return None

    async def _fetch_claimed(self, origin: str, key_id: str) -> None:
        if self._gate.origin_resting(origin):
            log.info("origin %s did not give a key asked for less than a minute ago; not fetched", origin[:200])
            return
        gave_key = False
        try:
            descriptor = await self._fetch_public(origin)
            gave_key = key_id in {k.key_id for k in descriptor.keys_for("identity")}
        finally:
            if not gave_key:
                self._gate.origin_failed(origin)

    async def _fetch_public(self, origin: str) -> Descriptor:
        if self.allow_loopback_http:  # development: peers live on loopback
            return await self.fetch_peer(origin, trust="web")
        host = urlsplit(self.check_origin(origin)).hostname or ""
        if is_address_literal(host) and not is_public_address(host):
            raise OriginNotAllowed(f"{origin} is not a public address", field=ORIGIN_FIELD)
        if self._stranger_session is None:
            self._stranger_session = public_only_session()
        return await self.fetch_peer(origin, trust="web", session=self._stranger_session)

    async def _lookup_in_directory(self, directory: directory_store.TrustedDirectory, key_id: str) -> bool:
        url = f"{directory.base_url}/satchel/v1/directory/keys/{key_id}"
        async with self._session().get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status != 200:
                return False
            body = await read_body(response.content, MAX_LISTING_BYTES)
        pinned = IdentityPublicKey(directory.public_key)
        listing, signer = await verified_listing(
            self._session(), body, base_url=directory.base_url, domain=directory.domain, pinned=pinned
        )
        if signer != pinned:
            with write_transaction(self._node.db):
                follow_trusted(self._node, directory, signer)
        stored = False
        for verified in listing.entries:
            self.store_descriptor(
                verified.district.descriptor, verified.entry.descriptor, trust="directory",
                trusted_via=verified.entry.directory,
            )  # fmt: skip
            stored = True
        return stored

    # -- descriptors ----------------------------------------------------------------------------------

    def check_origin(self, base_url: str) -> str:
        # Operators type these: urllib raises a bare ValueError for what it cannot split (an unclosed "[")
        # and for a port beyond 65535, and aiohttp reports a URL with no host or an impossible port as a
        # node it could not reach, which sends the operator to check the wrong thing.
        try:
            parts = urlsplit(base_url)
        except ValueError:
            raise _malformed(f"{base_url} is not a well-formed URL") from None
        try:
            port_ok = parts.port != 0
        except ValueError:  # negative, beyond 65535 or not a number
            port_ok = False
        loopback = parts.hostname is not None and is_loopback_host(parts.hostname)
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback and self.allow_loopback_http):
            raise OriginNotAllowed(f"{base_url} is not an https URL", field="url")
        if not parts.hostname:
            raise _malformed(f"{base_url} has no host name")
        if not port_ok:
            raise _malformed(f"the port in {base_url} is not a number from 1 to 65535")
        return base_url.rstrip("/")

    async def fetch_peer(
        self,
        base_url: str,
        *,
        trust: str,
        expected_domain: str | None = None,
        pinned_by: str | None = None,
        repin: bool = False,
        session: aiohttp.ClientSession | None = None,
    ) -> Descriptor:
        """Fetch, verify and store a peer's descriptor, following its key chain from what is known."""
        base_url = self.check_origin(base_url)
        body = await fetch_descriptor_bytes(session or self._session(), base_url)
        verified = verify_descriptor(body, expected_domain=expected_domain)
        descriptor = verified.descriptor
        if descriptor.base_url.rstrip("/") != base_url:
            raise OriginNotAllowed(
                f"the node at {base_url} says its URL is {descriptor.base_url}", field="url",
                hint="use the URL the node publishes in its descriptor",
            )  # fmt: skip
        if trust == "web" and not self._may_claim(descriptor):
            raise OriginNotAllowed(
                f"{base_url} is not an https URL under {descriptor.domain}, the domain it claims", field="url",
                hint="a node found by its URL alone must be served from its own domain; pin it with `satchel "
                "peers add URL` after checking its fingerprint by phone",
            )  # fmt: skip
        with write_transaction(self._node.db):  # the re-pin's forgetting and the storing, together
            if repin:
                peer_store.forget_identity_keys(self._node.db, descriptor.domain)
            self.store_descriptor(descriptor, body, trust=trust, trusted_via=base_url, pinned_by=pinned_by,
                                  signer=verified.signer.key_id)  # fmt: skip
        return descriptor

    def _may_claim(self, descriptor: Descriptor) -> bool:
        """Whether a descriptor met by its URL alone may speak for its domain. Known by nothing but its own web
        site, a node is who its certificate says: anyone could otherwise claim another district's domain from
        a host of their own, and squat it before the real one is met. A domain already pinned or vetted (a
        pinned node may live anywhere) is guarded by its key chain instead, and keeps its trust."""
        if domain_proven(descriptor, dev_loopback=self.allow_loopback_http):
            return True
        known = peer_store.get(self._node.db, descriptor.domain)
        return known is not None and known.trust != "web"

    def _supersede_web(self, domain: str, trust: str) -> None:
        """Keys a domain's own web site gave are no evidence against the same domain pinned by an operator or
        vetted by a directory: those replace them (they would otherwise be refused as a key change)."""
        existing = peer_store.get(self._node.db, domain)
        if existing is not None and existing.trust == "web" and trust != "web":
            peer_store.forget_identity_keys(self._node.db, domain)

    def _check_chain(self, descriptor: Descriptor, signer: str) -> None:
        known = {
            k.key_id: KnownKey(k.public_key, revoked=k.status == "revoked")
            for k in peer_store.keys(self._node.db, descriptor.domain)
            if k.use == "identity"
        }
        check_continuity(descriptor, signer, known)

    def store_descriptor(
        self,
        descriptor: Descriptor,
        signed: bytes,
        *,
        trust: str,
        trusted_via: str,
        pinned_by: str | None = None,
        signer: str | None = None,
    ) -> None:
        """Store a descriptor after its key chain (``signer``: its signing key id, when the caller verified
        ``signed`` already)."""
        signer = signer or verify_descriptor(signed).signer.key_id
        try:
            with write_transaction(self._node.db):
                self._supersede_web(descriptor.domain, trust)
                self._check_chain(descriptor, signer)
                peer_store.store(
                    self._node.db, descriptor, signed, trust=trust, trusted_via=trusted_via, pinned_by=pinned_by,
                    now=now_iso(), vouched=vouched_identity_keys(descriptor, signer),
                )  # fmt: skip
        finally:
            self.forget_cached()  # committed or rolled back, what was cached may be stale either way

    async def refresh(self, domain: str) -> Descriptor:
        peer = peer_store.get(self._node.db, domain)
        if peer is None:  # an operator's question about a name, not a peer's signature: not signature.key_unknown
            raise NotFound(f"{domain} is not a known district", field="domain",
                           hint="`satchel peers list` shows the districts this node knows; add one with `satchel "
                                "peers add URL`, or find it with `satchel directory search`")  # fmt: skip
        return await self.fetch_peer(peer.base_url, trust=peer.trust, expected_domain=domain)


KEYRING = web.AppKey("keyring", Keyring)
