"""An outside team's node for workflows 1 to 3 (push with a code, records requests, transfer codes), written
from spec/ alone.

It joins tests/spec/outsider_envelope.py (the envelope and the codes) and tests/spec/outsider_http.py (signed
HTTP, descriptors, receipts) into a node: it serves its signed descriptor (spec/descriptor.md) with its own
Ed25519 identity key and X-Wing encryption key, pushes an envelope as spec/transfer.md §4 says, serves the
endpoints a sender is sent receipts and messages at (§4, §5.3), and receives an envelope pushed to it, answering
with the signed receipts a receiver issues (§5.1). It asks for records and answers requests with signed
documents (spec/requests.md), and makes, answers and claims transfer codes (spec/codes.md §7). Like the two
modules it uses, it imports nothing of Satchel's (tests/spec/test_outsider_node.py checks the imports): what it
needed and the text did not say is a spec defect, fixed in the text; a comment names the section that now says
it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import outsider_envelope as env
import outsider_http as o

ENVELOPE_TYPE = "application/vnd.satchel.envelope"
RECEIPT_TYPE = "application/satchel-receipt+json"
DESCRIPTOR_TYPE = "application/satchel-descriptor+json"
REQUEST_TYPE = "application/satchel-records-request+json"
RESPONSE_TYPE = "application/satchel-request-response+json"


def now() -> int:
    return int(time.time())


# --- names (spec/README.md, envelope.md §2.3) -----------------------------------------------------------------


def ulid_text(envelope_id: bytes) -> str:
    """The 16-byte envelope id as a ULID: 128 bits in 26 Crockford base32 characters, the first 0-7."""
    value = int.from_bytes(envelope_id, "big")
    return "".join(o.CROCKFORD[(value >> (5 * (25 - i))) & 31] for i in range(26))


def ulid_bytes(text: str) -> bytes:
    value = 0
    for ch in text:
        value = value * 32 + o.CROCKFORD.index(ch)
    return value.to_bytes(16, "big")


# --- the descriptor (descriptor.md) ---------------------------------------------------------------------------


def make_descriptor(key: o.NodeKey, encryption_public: bytes, *, domain: str, base_url: str,
                    transfers_enabled: bool, features: tuple[str, ...] = ()) -> bytes:  # fmt: skip
    """A district's signed descriptor, listing its identity key and its X-Wing (mlkem768-x25519) key."""
    valid_from = o.format_time(now() - 3600)
    keys = [
        {"alg": "ed25519", "id": key.key_id, "not_after": None, "not_before": valid_from,
         "public_key": o.b64url(key.public), "use": "identity"},
        {"alg": "mlkem768-x25519", "id": o.key_id("mlkem768-x25519", encryption_public), "not_after": None,
         "not_before": valid_from, "public_key": o.b64url(encryption_public), "use": "encryption"},
    ]  # fmt: skip
    payload = {
        "version": 1, "role": "district", "domain": domain, "name": "Outside District", "state": "IL",
        "city": "Ogden", "zip": "61859", "nces_id": "", "base_url": base_url, "protocol_versions": ["satchel/1"],
        "transfers_enabled": transfers_enabled,
        "coordinator": {"name": "Olive Outsider", "title": "Registrar", "email": f"registrar@{domain}",
                        "phone": "+1 217-555-0199"},
        "keys": keys, "revoked_keys": [], "issued_at": o.format_time(now()),
    }  # fmt: skip
    if features:  # descriptor.md, *Features*: absent, none
        payload["features"] = list(features)
    return o.sign_document(key, "satchel/v1/descriptor", o.canonical_json(payload))


def encryption_key_of(descriptor: o.Descriptor) -> tuple[str, bytes]:
    """The newest valid `mlkem768-x25519` key a descriptor lists (descriptor.md, *Key rotation*)."""
    valid = []
    for entry in descriptor.payload["keys"]:
        if entry.get("use") != "encryption" or entry.get("alg") != "mlkem768-x25519":
            continue
        if o.parse_time(entry["not_before"]) > now():
            continue
        if entry.get("not_after") is not None and o.parse_time(entry["not_after"]) <= now():
            continue
        valid.append((entry["not_before"], entry["id"], o.unb64url(entry["public_key"])))
    if not valid:
        raise o.Refused("peer.no_encryption_key")
    _, key_id, public = max(valid)
    return key_id, public


def endorsed_keys(descriptor: o.Descriptor, known: dict[str, bytes]) -> dict[str, bytes]:
    """descriptor.md, *Key rotation*: the identity keys a descriptor lists that valid endorsements join to a
    key already ``known`` for its domain, in either direction along the chain (the known keys included, but
    those the descriptor revokes). Its signer is among them when a peer that knew ``known`` may follow it."""
    listed = {e["id"]: e for e in descriptor.payload["keys"]
              if e.get("use") == "identity" and e.get("alg") == "ed25519"}  # fmt: skip
    public = {**known, **{i: o.unb64url(e["public_key"]) for i, e in listed.items()}}
    reached = dict(known)
    changed = True
    while changed:
        changed = False
        for key_id, entry in listed.items():
            endorsement = entry.get("endorsed_by")
            if not isinstance(endorsement, dict):
                continue
            endorser = endorsement.get("key_id")
            if not isinstance(endorser, str) or (key_id in reached) == (endorser in reached) or endorser not in public:
                continue
            statement = o.canonical_json({"alg": entry["alg"], "domain": descriptor.domain, "id": key_id,
                                          "not_before": entry["not_before"], "public_key": entry["public_key"],
                                          "use": "identity"})  # fmt: skip
            try:
                Ed25519PublicKey.from_public_bytes(public[endorser]).verify(
                    o.unb64url(endorsement["signature"]), b"satchel/v1/key-endorsement\x00" + statement)
            except (InvalidSignature, ValueError):
                continue
            joined = key_id if endorser in reached else endorser
            reached[joined] = public[joined]
            changed = True
    # a revoked key's endorsement still stands, but the key itself is held no longer (*Revoking a key*)
    revoked = set(descriptor.payload.get("revoked_keys") or [])
    return {key_id: key for key_id, key in reached.items() if key_id not in revoked}


# --- receipts (transfer.md §5.1) ------------------------------------------------------------------------------


def receipt_payload(*, kind: str, transfer_id: str, issuer: str, from_domain: str, to_domain: str, sequence: int,
                    envelope_sha256: str | None = None, reason: str | None = None, text: str | None = None,
                    reference: str | None = None, counts: dict[str, Any] | None = None) -> bytes:  # fmt: skip
    return o.canonical_json({
        "version": 1, "kind": kind, "transfer_id": transfer_id, "issuer": issuer, "from_domain": from_domain,
        "to_domain": to_domain, "sequence": sequence, "created": o.format_time(now()),
        "envelope_sha256": envelope_sha256, "reason": reason, "text": text, "reference": reference, "counts": counts,
    })  # fmt: skip


# The sender's moves on a receiver's receipt (transfer.md §3.1: the table less its self-loops).
_BEFORE_ACCEPTED = {"sealed", "delivered", "cancel_requested", "expired"}
_SENDER_MOVES: dict[str, set[str]] = {
    "delivered": {"sealed"},
    "accepted": _BEFORE_ACCEPTED,
    "locked": _BEFORE_ACCEPTED,
    "import_failed": _BEFORE_ACCEPTED | {"accepted"},
    "partially_imported": _BEFORE_ACCEPTED | {"accepted", "import_failed"},
    "imported": _BEFORE_ACCEPTED | {"accepted", "import_failed", "partially_imported"},
    "rejected": _BEFORE_ACCEPTED | {"accepted", "import_failed", "partially_imported"},
    "cancelled": {"cancel_requested", "expired"},
}


def sender_event(receipt: dict[str, Any]) -> str:
    """§3.3: an `imported` receipt whose counts show skipped students is `receipt_partially_imported`."""
    kind = receipt["kind"]
    if kind == "imported":
        counts = receipt["counts"]
        return "imported" if counts["students_imported"] == counts["students_total"] else "partially_imported"
    return {"failed": "import_failed"}.get(kind, kind)


@dataclass
class Outgoing:
    """A transfer this node sent: what it sealed, and the receipts it verified (signed bytes kept as received)."""

    transfer_id: str
    peer: str
    code: str
    envelope: bytes
    state: str = "sealed"
    receipts: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages_sent: int = 0

    @property
    def sha256(self) -> str:
        return o.b64url(hashlib.sha256(self.envelope).digest())


@dataclass
class Incoming:
    """A transfer pushed to this node: the sealed envelope until the code opens it, its receipts both ways."""

    transfer_id: str
    peer: str
    envelope: bytes
    sender_key: bytes
    sender_key_id: str
    state: str = "received"
    wrong_codes: int = 0
    issued: list[bytes] = field(default_factory=list)  # our signed receipts, in sequence order
    received: dict[int, bytes] = field(default_factory=dict)  # the peer's, by sequence
    opened: env.Opened | None = None

    @property
    def sha256(self) -> str:
        return o.b64url(hashlib.sha256(self.envelope).digest())


@dataclass
class RecordsRequest:
    """A records request, asked here (`requester`) or of this node (`releaser`), and the responses to it."""

    request_id: str
    peer: str
    side: str
    signed: bytes
    payload: dict[str, Any]
    state: str = "requested"
    transfer_id: str | None = None
    answer: bytes | None = None  # the releaser's signed answer, given again to a redelivered request
    sent: list[bytes] = field(default_factory=list)  # our signed responses, messages included
    received: list[dict[str, Any]] = field(default_factory=list)  # the peer's, verified, in arrival order

    @property
    def parsed(self) -> dict[str, Any]:
        return self.payload


@dataclass
class IssuedCode:
    """A transfer code made here: its id and key (codes.md §7.2), what it releases, and its state (§7.3)."""

    code_id: bytes
    key: bytes | None
    manifest_for_peer: Callable[[str], dict[str, Any]]
    documents: list[bytes]
    school: str
    destination: str | None
    state: str = "active"
    claimed_by: str | None = None
    transfer_id: str | None = None
    failures: int = 0


def new_ulid() -> str:
    return ulid_text((now() * 1000).to_bytes(6, "big") + os.urandom(10))


class Answer(Exception):
    """A refusal to answer with the error body of spec/errors.md."""

    def __init__(self, status: int, code: str, message: str = "", field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.field = status, code, message, field


# Statuses for the refusals this node makes (transfer.md §9, request-signing.md §8, spec/errors.md).
_STATUS = {"signature.wrong_destination": 421, "receipt.invalid": 400, "receipt.unsupported_version": 400,
           "receipt.wrong_signer": 401, "receipt.mismatch": 409, "receipt.conflict": 409,
           "receipt.digest_mismatch": 409, "message.malformed": 400, "digest.mismatch": 400,
           "digest.missing": 400, "signature.malformed": 400, "envelope.malformed": 400,
           "transfer.disabled": 403, "transfer.envelope_conflict": 409,
           "envelope.expired": 410, "envelope.not_recipient": 403, "envelope.not_yet_valid": 422,
           "envelope.signature_invalid": 401, "signature.invalid": 401, "request.invalid": 400,
           "request.unsupported_version": 400, "request.wrong_signer": 401, "request.mismatch": 409}  # fmt: skip


class OutsideNode:
    """A district node of another implementation, on loopback."""

    def __init__(self, domain: str, port: int, *, transfers_enabled: bool = True,
                 features: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.domain = domain
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.key = o.NodeKey.generate()
        self.encryption = env.RecipientKey(os.urandom(96))  # ML-KEM-768 seed d || z, X25519 key (envelope.md §10)
        self.encryption_public = self.encryption.public_bytes()
        self.encryption_key_id = o.key_id("mlkem768-x25519", self.encryption_public)
        self.transfers_enabled = transfers_enabled
        self.features = features
        self.client = o.Outsider(key=self.key, origin=self.origin)
        self.pinned: dict[str, o.Descriptor] = {}  # domain -> descriptor its operator pinned
        self.receiver = o.Receiver(authority=o.authority_of(self.origin), resolve=self._resolve)
        self.outgoing: dict[str, Outgoing] = {}
        self.incoming: dict[str, Incoming] = {}
        self.log: list[tuple[str, str, int, str | None]] = []  # (method, path, status, error code) of every request
        self.session_peers: dict[str, str] = {}  # session id -> the domain whose node key opened it
        self.seen: list[tuple[str, str, int]] = []  # every request, whatever answered it
        self.requests: dict[str, RecordsRequest] = {}
        self.codes: dict[bytes, IssuedCode] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    # --- who it knows ---

    @property
    def descriptor(self) -> bytes:
        return make_descriptor(self.key, self.encryption_public, domain=self.domain, base_url=self.origin,
                               transfers_enabled=self.transfers_enabled, features=self.features)  # fmt: skip

    def published(self, domain: str) -> list[str]:
        peer = self.pinned.get(domain)
        return list(peer.identity_keys) if peer is not None else []

    def _resolve(self, keyid: str, origin: str | None) -> Ed25519PublicKey:
        for peer in self.pinned.values():
            if keyid in peer.identity_keys:
                return Ed25519PublicKey.from_public_bytes(peer.identity_keys[keyid])
        raise o.Refused("signature.key_unknown")

    def _signer_domain(self, keyid: str) -> str:
        return next(d for d, p in self.pinned.items() if keyid in p.identity_keys)

    async def _learn_key(self, received: o.Message) -> None:
        """request-signing.md §7.1 step 3 for the districts this node pinned: a key id it does not hold, from
        the origin of a pinned district, is looked up in that district's descriptor, and taken when a chain
        of endorsements joins its signer to the keys pinned (a rotation); otherwise the request is refused
        as signed by an unknown key, and a changed key waits for an operator to confirm it."""
        try:
            entry = o.parse_dictionary(received.field("signature-input") or "").get("sig1")
            keyid = dict(entry.params).get("keyid") if entry is not None else None
        except o.SFError:
            return
        origin = received.field("satchel-origin")
        if not isinstance(keyid, str) or keyid.startswith("hs-") or any(keyid in p.identity_keys
                                                                         for p in self.pinned.values()):  # fmt: skip
            return
        peer = next((p for p in self.pinned.values() if p.base_url == origin), None)
        if peer is None or origin is None:
            return
        async with aiohttp.ClientSession() as http:
            try:
                fetched = await self.fetch_descriptor(http, origin)
            except (o.Refused, aiohttp.ClientError):
                return
        if fetched.domain != peer.domain or fetched.base_url != origin:
            return
        keys = endorsed_keys(fetched, peer.identity_keys)
        if fetched.signed_by not in keys or keyid not in keys:
            # §7.1 step 3: the descriptor is refused (descriptor.key_changed), and the request with it as signed
            # by a key this node does not know, which its sender takes as transient (transfer.md §7)
            raise Answer(401, "signature.key_unknown",
                         f"descriptor.key_changed: {fetched.signed_by} is not endorsed by a key pinned here; "
                         "re-pin the district after confirming its fingerprint by phone")  # fmt: skip
        self.pinned[peer.domain] = o.Descriptor(fetched.signed_by, fetched.payload, keys)

    async def fetch_descriptor(self, http: aiohttp.ClientSession, base_url: str) -> o.Descriptor:
        async with http.get(base_url + "/.well-known/satchel") as answer:
            if answer.status != 200 or answer.headers.get("Content-Type") != DESCRIPTOR_TYPE:
                raise o.Refused("peer.bad_response")
            return o.verify_descriptor(await answer.read())

    def pin(self, descriptor: o.Descriptor, fingerprint_read_out: str) -> None:
        """descriptor.md step 8: pinned once the fingerprint read out by phone is the signer's."""
        signer = descriptor.identity_keys[descriptor.signed_by]
        if o.fingerprint("ed25519", signer) != fingerprint_read_out:
            raise o.Refused("descriptor.fingerprint_mismatch")
        self.pinned[descriptor.domain] = descriptor

    # --- the server ---

    async def start(self) -> None:
        @web.middleware
        async def seen(request: web.Request, handler: Any) -> web.StreamResponse:
            response = await handler(request)
            self.seen.append((request.method, request.path, response.status))
            return response

        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[seen])
        app.router.add_get("/.well-known/satchel", self._well_known)
        app.router.add_get("/satchel/v1/health", self._health)
        app.router.add_post("/satchel/v1/ping", self._ping)
        app.router.add_post("/satchel/v1/sessions", self._open_session)
        app.router.add_post("/satchel/v1/transfers/{id}/receipts", self._receipts)
        app.router.add_post("/satchel/v1/transfers/{id}/messages", self._receipts)
        app.router.add_post("/satchel/v1/transfers/{id}/cancel", self._cancel)
        app.router.add_post("/satchel/v1/envelopes", self._envelope)
        app.router.add_post("/satchel/v1/requests", self._records_request)
        app.router.add_post("/satchel/v1/requests/{id}/responses", self._records_response)
        app.router.add_post("/satchel/v1/codes/claims", self._code_claim)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _well_known(self, request: web.Request) -> web.Response:
        return web.Response(body=self.descriptor, content_type=DESCRIPTOR_TYPE)

    def _signed_answer(self, received: o.Message, status: int, body: bytes, content_type: str,
                       session: str | None = None) -> web.Response:  # fmt: skip
        """request-signing.md §4.2: every answer is signed, bound to the request's signature; in a session
        with its `to_client` key (§11, *Responses*), otherwise with the node key."""
        response = o.Message(headers=[("Content-Type", content_type)], body=body, status=status)
        if received.field("signature") is not None:
            t = now()
            keys = self.receiver.sessions.get(session) if session is not None else None
            if keys is not None and session is not None:
                o.sign(response, key=keys.to_client, keyid=session, alg="hmac-sha256", created=t, expires=t + 60,
                       nonce=o.new_nonce(), request=received)  # fmt: skip
            else:
                o.sign(response, key=self.key, keyid=self.key.key_id, alg="ed25519", created=t, expires=t + 60,
                       nonce=o.new_nonce(), request=received)  # fmt: skip
        return web.Response(status=status, body=body, headers=response.headers)

    async def _handle(self, request: web.Request, work: Callable[[o.Message, str, o.Checked], Any]) -> web.Response:
        body = await request.read()
        received = o.Message(headers=list(request.headers.items()), body=body, method=request.method,
                             target_uri=f"http://{request.host}{request.raw_path}")  # fmt: skip
        session: str | None = None
        try:
            await self._learn_key(received)
            try:
                checked = self.receiver.verify_request(received, now=now())
            except o.Refused as refused:
                status = 421 if refused.code == "signature.wrong_destination" else 401
                status = 400 if refused.code.startswith(("digest.", "signature.malformed")) else status
                raise Answer(status, refused.code, str(refused)) from refused
            if checked.keyid.startswith("hs-"):
                session, signer = checked.keyid, self.session_peers[checked.keyid]
            else:
                signer = self._signer_domain(checked.keyid)
            status, answer, content_type = await work(received, signer, checked)
        except Exception as failed:  # an Answer, or a fault of this node: said in its log and in a signed 500
            fault = failed if isinstance(failed, Answer) else Answer(500, "internal", repr(failed))
            error = {"code": fault.code, "message": fault.message or fault.code}
            if fault.field is not None:
                error["field"] = fault.field
            status, answer, content_type = fault.status, o.canonical_json({"error": error}), "application/json"
            self.log.append((request.method, request.path, status, f"{fault.code}: {fault.message}"))
        else:
            self.log.append((request.method, request.path, status, None))
        return self._signed_answer(received, status, answer, content_type, session)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "domain": self.domain, "role": "district"})

    async def _ping(self, request: web.Request) -> web.Response:
        """request-signing.md §12: a signed no-op; every caller it answers is one its operator pinned."""

        async def work(received: o.Message, signer: str, checked: o.Checked) -> tuple[int, bytes, str]:
            answer = {"pong": self.domain, "caller": signer, "caller_key": checked.keyid, "trust": "pinned"}
            return 200, o.canonical_json(answer), "application/json"

        return await self._handle(request, work)

    async def _open_session(self, request: web.Request) -> web.Response:
        """request-signing.md §11, the server's side: nodes MUST accept sessions, and a serving Satchel node
        delivers its receipts in one."""

        async def work(received: o.Message, signer: str, checked: o.Checked) -> tuple[int, bytes, str]:
            if checked.keyid.startswith("hs-"):
                raise Answer(400, "session.offer_invalid", "an offer signed inside a session")
            try:
                offer = o.strict_json(received.body)
                if not isinstance(offer, dict) or set(offer) != {"share"}:
                    raise ValueError("members")
                client_share = o.unb64url(offer["share"])
                if len(client_share) != 32:
                    raise ValueError("share")
                secret = X25519PrivateKey.generate()
                session_id = "hs-" + o.b64url(os.urandom(16))
                expires = now() + 900
                keys = o.derive_session(own_secret=secret, client_share=client_share,
                                        server_share=o.x25519_public(secret), session_id=session_id,
                                        expires=expires, client_keyid=checked.keyid, server_keyid=self.key.key_id,
                                        origin=received.field("satchel-origin") or "",
                                        own_is_client=False)  # fmt: skip
            except ValueError as exc:  # a low-order point makes the exchange fail too
                raise Answer(400, "session.offer_invalid", str(exc)) from exc
            self.receiver.sessions[session_id] = keys
            self.session_peers[session_id] = signer
            answer = {"session": session_id, "share": o.b64url(o.x25519_public(secret)), "expires": expires}
            return 200, o.canonical_json(answer), "application/json"

        return await self._handle(request, work)

    # --- the sender's side: receipts and messages from the receiver (§4, §5.3) ---

    async def _receipts(self, request: web.Request) -> web.Response:
        transfer_id = request.match_info["id"]

        async def work(received: o.Message, signer: str, checked: o.Checked) -> tuple[int, bytes, str]:
            ours = self.outgoing.get(transfer_id)
            theirs = self.incoming.get(transfer_id)
            if ours is None and theirs is None:
                raise Answer(404, "not_found", "no such transfer here")
            peer = ours.peer if ours is not None else theirs.peer  # type: ignore[union-attr]
            if signer != peer:  # §4: the signer's domain is the transfer's other district
                raise Answer(403, "transfer.actor_not_allowed")
            issuer = "receiver" if ours is not None else "sender"
            check = {"transfer_id": transfer_id, "from_domain": peer, "to_domain": self.domain, "issuer": issuer}
            try:
                verified = o.verify_receipt(received.body, published=self.published, check=check,
                                            envelope_sha256=ours.sha256 if ours is not None else None)  # fmt: skip
            except o.Refused as refused:
                raise Answer(_STATUS.get(refused.code, 400), refused.code, str(refused), refused.field) from refused
            receipt = verified["receipt"]
            if ours is not None:
                state = self._record_as_sender(ours, receipt, verified, received.body)
            else:
                assert theirs is not None
                kept = theirs.received.get(receipt["sequence"])
                if kept is not None and o.verify_receipt(kept, published=self.published)["payload"] != verified[
                        "payload"]:  # fmt: skip
                    raise Answer(409, "receipt.conflict")
                theirs.received.setdefault(receipt["sequence"], received.body)
                if receipt["kind"] == "cancelled" and theirs.state == "received":
                    theirs.state = "cancelled"
                state = theirs.state
            return 200, o.canonical_json({"transfer_id": transfer_id, "state": state}), "application/json"

        return await self._handle(request, work)

    def _record_as_sender(self, ours: Outgoing, receipt: dict[str, Any], verified: dict[str, Any],
                          signed: bytes) -> str:  # fmt: skip
        kept = ours.receipts.get(receipt["sequence"])
        if kept is not None:  # §5.3 step 6
            if kept["payload"] != verified["payload"]:
                raise Answer(409, "receipt.conflict")
            return ours.state
        ours.receipts[receipt["sequence"]] = {**verified, "signed": signed}
        if receipt["kind"] != "message":
            event = sender_event(receipt)
            if ours.state in _SENDER_MOVES.get(event, set()):
                ours.state = event
        return ours.state

    async def _cancel(self, request: web.Request) -> web.Response:
        """§4, §3.2: the sender's signed `cancelled` receipt; a transfer not opened yet is cancelled (one not
        received yet leaves a tombstone), and the receiver's own `cancelled` receipt follows (send_receipt)."""
        transfer_id = request.match_info["id"]

        async def work(received: o.Message, signer: str, checked: o.Checked) -> tuple[int, bytes, str]:
            check = {"transfer_id": transfer_id, "from_domain": signer, "to_domain": self.domain, "issuer": "sender"}
            try:
                verified = o.verify_receipt(received.body, published=self.published, check=check)
            except o.Refused as refused:
                raise Answer(_STATUS.get(refused.code, 400), refused.code, str(refused), refused.field) from refused
            if verified["receipt"]["kind"] != "cancelled":
                raise Answer(400, "receipt.invalid", "not a cancellation", "kind")
            incoming = self.incoming.get(transfer_id)
            if incoming is None:
                incoming = Incoming(transfer_id=transfer_id, peer=signer, envelope=b"", sender_key=b"",
                                    sender_key_id="", state="absent")  # fmt: skip
                self.incoming[transfer_id] = incoming
            if incoming.peer != signer:
                raise Answer(403, "transfer.actor_not_allowed")
            if incoming.state not in ("absent", "received", "cancelled"):
                raise Answer(409, "transfer.already_accepted")
            incoming.received.setdefault(verified["receipt"]["sequence"], received.body)
            if incoming.state != "cancelled":
                incoming.state = "cancelled"
                incoming.envelope = b""  # §3.4 delete_sealed_envelope
                self._issue(incoming, "cancelled")
            return 200, o.canonical_json({"transfer_id": transfer_id, "state": "cancelled"}), "application/json"

        return await self._handle(request, work)

    def reject(self, transfer_id: str, reason: str) -> bytes:
        """A coordinator refuses the transfer (§2 step 5): the `rejected` receipt, its reason required."""
        incoming = self.incoming[transfer_id]
        incoming.state = "rejected"
        return self._issue(incoming, "rejected", envelope_sha256=incoming.sha256, reason=reason)

    # --- the sender's side: pushing (§4) ---

    def seal(self, peer: o.Descriptor, *, manifest: dict[str, Any], documents: list[bytes], code: str,
             days: int = 14, argon2_t: int = 1, argon2_m: int = 64, kind: str = "transfer") -> Outgoing:  # fmt: skip
        recipient_key_id, recipient_public = encryption_key_of(peer)
        t = now()
        envelope = env.seal_envelope(
            manifest=manifest, documents=documents, sender_key=self.key.private, sender_domain=self.domain,
            sender_key_id=self.key.key_id, recipient_public_key=recipient_public, recipient_domain=peer.domain,
            recipient_key_id=recipient_key_id, code=code, now=t, expires=t + days * 86400, argon2_t=argon2_t,
            argon2_m=argon2_m, kind=kind,
        )  # fmt: skip
        envelope_id = envelope_id_of(envelope)
        out = Outgoing(transfer_id=ulid_text(envelope_id), peer=peer.domain, code=code, envelope=envelope)
        self.outgoing[out.transfer_id] = out
        return out

    def _envelope_request(self, peer: o.Descriptor, out: Outgoing, method: str, path: str, body: bytes,
                          extra: list[tuple[str, str]]) -> o.Message:  # fmt: skip
        headers = [("Satchel-Origin", self.origin), ("Content-Type", ENVELOPE_TYPE), *extra]
        msg = o.Message(headers=headers, body=body, method=method, target_uri=peer.base_url + path)
        t = now()
        o.sign(msg, key=self.key, keyid=self.key.key_id, alg="ed25519", created=t, expires=t + 120,
               nonce=o.new_nonce())  # fmt: skip
        return msg

    async def push(self, http: aiohttp.ClientSession, out: Outgoing) -> o.Exchange:
        """§4: POST the envelope, signed, with its Content-Digest and Satchel-Envelope-Id; a 200 carries the
        signed `delivered` receipt, verified before the transfer counts as delivered."""
        peer = self.pinned[out.peer]
        msg = self._envelope_request(peer, out, "POST", "/satchel/v1/envelopes", out.envelope,
                                     [("Satchel-Envelope-Id", out.transfer_id)])  # fmt: skip
        exchange = await self.client.send(http, msg)
        self.take_delivered(out, exchange)
        return exchange

    def take_delivered(self, out: Outgoing, exchange: o.Exchange) -> None:
        peer = self.pinned[out.peer]
        self.client.verify(exchange, peer)
        if exchange.response.status != 200:
            return
        if exchange.response.field("content-type") != RECEIPT_TYPE:
            raise o.Refused("peer.bad_response", detail=str(exchange.response.field("content-type")))
        check = {"transfer_id": out.transfer_id, "from_domain": out.peer, "to_domain": self.domain,
                 "issuer": "receiver"}  # fmt: skip
        verified = o.verify_receipt(exchange.response.body, published=self.published, check=check,
                                    envelope_sha256=out.sha256)  # fmt: skip
        if verified["receipt"]["kind"] not in ("delivered", "cancelled"):
            raise o.Refused("peer.bad_response", detail=verified["receipt"]["kind"])
        self._record_as_sender(out, verified["receipt"], verified, exchange.response.body)

    async def push_cut(self, out: Outgoing, cut_at: int) -> None:
        """The envelope POST of §4 broken off after ``cut_at`` bytes of its body: the connection closes, as a
        district's link drops mid-upload (§4.1)."""
        peer = self.pinned[out.peer]
        msg = self._envelope_request(peer, out, "POST", "/satchel/v1/envelopes", out.envelope,
                                     [("Satchel-Envelope-Id", out.transfer_id)])  # fmt: skip
        parts = urlsplit(peer.base_url)
        head = ["POST /satchel/v1/envelopes HTTP/1.1", f"Host: {parts.netloc}",
                f"Content-Length: {len(out.envelope)}", *(f"{k}: {v}" for k, v in msg.headers)]  # fmt: skip
        _, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + out.envelope[:cut_at])
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    async def upload_status(self, http: aiohttp.ClientSession, out: Outgoing) -> o.Exchange:
        """§4.1: how much of the envelope the receiver kept."""
        peer = self.pinned[out.peer]
        msg = self.client.build("GET", f"{peer.base_url}/satchel/v1/envelopes/{out.transfer_id}/upload")
        exchange = await self.client.send(http, msg)
        self.client.verify(exchange, peer)
        return exchange

    async def resume(self, http: aiohttp.ClientSession, out: Outgoing, offset: int) -> o.Exchange:
        """§4.1: PATCH the rest, its offset and the whole envelope's digest covered by the signature."""
        peer = self.pinned[out.peer]
        whole = "sha-256=:" + base64.b64encode(hashlib.sha256(out.envelope).digest()).decode() + ":"
        msg = self._envelope_request(peer, out, "PATCH", f"/satchel/v1/envelopes/{out.transfer_id}",
                                     out.envelope[offset:],
                                     [("Upload-Offset", str(offset)), ("Satchel-Envelope-Digest", whole)])  # fmt: skip
        exchange = await self.client.send(http, msg)
        self.take_delivered(out, exchange)
        return exchange

    async def message(self, http: aiohttp.ClientSession, out: Outgoing, text: str) -> o.Exchange:
        """§8: a signed `message` receipt from the sender, to the receiver's messages endpoint."""
        peer = self.pinned[out.peer]
        out.messages_sent += 1
        payload = receipt_payload(kind="message", transfer_id=out.transfer_id, issuer="sender",
                                  from_domain=self.domain, to_domain=out.peer, sequence=out.messages_sent,
                                  text=text)  # fmt: skip
        body = o.sign_document(self.key, "satchel/v1/receipt", payload)
        msg = self.client.build("POST", f"{peer.base_url}/satchel/v1/transfers/{out.transfer_id}/messages",
                                body=body, content_type=RECEIPT_TYPE)  # fmt: skip
        exchange = await self.client.send(http, msg)
        self.client.verify(exchange, peer)
        return exchange

    # --- the receiver's side (§4 steps 1-7, §3.5, §5) ---

    async def _envelope(self, request: web.Request) -> web.Response:
        async def work(received: o.Message, signer: str, checked: o.Checked) -> tuple[int, bytes, str]:
            if not self.transfers_enabled:
                raise Answer(403, "transfer.disabled")
            data = received.body
            transfer_id = received.field("satchel-envelope-id") or ""
            try:
                frame = read_frame(data)
            except env.OutsiderError as refused:
                raise Answer(400, refused.code, str(refused)) from refused
            if not o.is_ulid(transfer_id) or ulid_bytes(transfer_id) != frame["header"]["envelope_id"]:
                raise Answer(400, "envelope.malformed", "Satchel-Envelope-Id", "Satchel-Envelope-Id")
            if frame["sender_domain"] != signer:
                raise Answer(400, "envelope.malformed", "the envelope's sender is not the request's signer")
            peer = self.pinned[signer]
            if frame["sender_key_id"] not in peer.identity_keys:
                raise Answer(401, "envelope.signature_invalid")
            try:
                check_on_arrival(frame, sender_public=peer.identity_keys[frame["sender_key_id"]],
                                 recipient_domain=self.domain, recipient_key_id=self.encryption_key_id,
                                 at=now())  # fmt: skip
            except env.OutsiderError as refused:
                raise Answer(_STATUS.get(refused.code, 400), refused.code) from refused
            known = self.incoming.get(transfer_id)
            if known is not None:  # §6: a redelivery is answered with the stored receipt, byte for byte
                if known.envelope != data:
                    raise Answer(409, "transfer.envelope_conflict")
                return 200, known.issued[0], RECEIPT_TYPE
            incoming = Incoming(transfer_id=transfer_id, peer=signer, envelope=data,
                                sender_key=peer.identity_keys[frame["sender_key_id"]],
                                sender_key_id=frame["sender_key_id"])  # fmt: skip
            self.incoming[transfer_id] = incoming
            return 200, self._issue(incoming, "delivered", envelope_sha256=incoming.sha256), RECEIPT_TYPE

        return await self._handle(request, work)

    def _issue(self, incoming: Incoming, kind: str, **fields: Any) -> bytes:
        payload = receipt_payload(kind=kind, transfer_id=incoming.transfer_id, issuer="receiver",
                                  from_domain=self.domain, to_domain=incoming.peer,
                                  sequence=len(incoming.issued) + 1, **fields)  # fmt: skip
        signed = o.sign_document(self.key, "satchel/v1/receipt", payload)
        incoming.issued.append(signed)
        return signed

    def accept(self, transfer_id: str, code: str, *, limit: int = 5) -> tuple[bytes, env.Opened | None]:
        """A coordinator enters the code (§3.5): the receipt to send, and what the code opened (None: wrong)."""
        incoming = self.incoming[transfer_id]
        try:
            opened = env.open_envelope(
                incoming.envelope, code=code, sender_public_key=incoming.sender_key,
                sender_key_id=incoming.sender_key_id, recipient_secret_key=self.encryption.secret,
                recipient_key_id=self.encryption_key_id, recipient_domain=self.domain, now=now(),
                policy={"min_argon2_t": 1, "min_argon2_m": 8},
            )  # fmt: skip
        except env.OutsiderError as refused:
            if refused.code != "envelope.wrong_code_or_key":
                raise
            incoming.wrong_codes += 1
            if incoming.wrong_codes < limit:
                return b"", None
            incoming.state = "locked"
            return self._issue(incoming, "locked", envelope_sha256=incoming.sha256), None
        incoming.state, incoming.opened = "accepted", opened
        return self._issue(incoming, "accepted", envelope_sha256=incoming.sha256), opened

    def imported(self, transfer_id: str, counts: dict[str, Any]) -> bytes:
        incoming = self.incoming[transfer_id]
        complete = counts["students_imported"] == counts["students_total"]
        incoming.state = "imported" if complete else "partially_imported"
        return self._issue(incoming, "imported", envelope_sha256=incoming.sha256, counts=counts)

    async def send_receipt(self, http: aiohttp.ClientSession, transfer_id: str, signed: bytes) -> o.Exchange:
        """§3.4: every receipt but `delivered` goes to the sender's receipts endpoint (messages: /messages)."""
        incoming = self.incoming[transfer_id]
        peer = self.pinned[incoming.peer]
        msg = self.client.build("POST", f"{peer.base_url}/satchel/v1/transfers/{transfer_id}/receipts",
                                body=signed, content_type=RECEIPT_TYPE)  # fmt: skip
        exchange = await self.client.send(http, msg)
        self.client.verify(exchange, peer)
        return exchange

    # --- records requests (requests.md) ---

    @property
    def person(self) -> dict[str, str]:
        """Who asks or answers here (requests.md §3, a person): the coordinator the descriptor lists."""
        return {"name": "Olive Outsider", "email": f"registrar@{self.domain}", "phone": "+1 217-555-0199",
                "title": "Registrar"}  # fmt: skip

    def new_request(self, to_domain: str, *, student: dict[str, Any], enrolment: dict[str, Any] | None,
                    comments: str = "") -> RecordsRequest:  # fmt: skip
        """§3: every key present, absent values null, produced as canonical JSON and signed."""
        payload = o.canonical_json({
            "version": 1, "request_id": new_ulid(), "from_domain": self.domain, "to_domain": to_domain,
            "created": o.format_time(now()), "student": {k: student.get(k) for k in o.STUDENT_MEMBERS},
            "enrolment": enrolment, "requester": self.person, "comments": comments,
        })  # fmt: skip
        signed = o.sign_document(self.key, "satchel/v1/records-request", payload)
        request = RecordsRequest(request_id=o.strict_json(payload)["request_id"], peer=to_domain, side="requester",
                                 signed=signed, payload=o.strict_json(payload))  # fmt: skip
        self.requests[request.request_id] = request
        return request

    async def send_request(self, http: aiohttp.ClientSession, request: RecordsRequest) -> o.Exchange:
        """§6: POST the signed request; the answer is `{"state"}` (or, once answered, the signed answer)."""
        peer = self.pinned[request.peer]
        msg = self.client.build("POST", f"{peer.base_url}/satchel/v1/requests", body=request.signed,
                                content_type=REQUEST_TYPE)  # fmt: skip
        exchange = await self.client.send(http, msg)
        self.client.verify(exchange, peer)
        return exchange

    async def respond(self, http: aiohttp.ClientSession, request_id: str, kind: str, comments: str = "", *,
                      transfer_id: str | None = None) -> o.Exchange:  # fmt: skip
        """§4: a signed response (an answer, a cancellation or a message) to the peer's responses endpoint."""
        request = self.requests[request_id]
        payload = o.canonical_json({
            "version": 1, "kind": kind, "request_id": request_id, "from_domain": self.domain,
            "to_domain": request.peer, "created": o.format_time(now()), "person": self.person,
            "comments": comments, "transfer_id": transfer_id,
        })  # fmt: skip
        signed = o.sign_document(self.key, "satchel/v1/records-response", payload)
        if kind in ("released", "rejected"):
            request.state, request.answer = kind, signed
            request.transfer_id = transfer_id
        elif kind == "cancelled":
            request.state = "cancelled"
        request.sent.append(signed)
        peer = self.pinned[request.peer]
        msg = self.client.build("POST", f"{peer.base_url}/satchel/v1/requests/{request_id}/responses", body=signed,
                                content_type=RESPONSE_TYPE)  # fmt: skip
        exchange = await self.client.send(http, msg)
        self.client.verify(exchange, peer)
        return exchange

    async def release(self, http: aiohttp.ClientSession, request_id: str, *, manifest: dict[str, Any],
                      documents: list[bytes], code: str,
                      comments: str = "") -> tuple[Outgoing, o.Exchange]:  # fmt: skip
        """§2: only for an enrolment current today; the records go as a transfer of kind `release` (envelope.md
        §4), pushed as transfer.md §4 says, and the `released` answer names it."""
        request = self.requests[request_id]
        enrolment = request.parsed["enrolment"]
        today = time.strftime("%Y-%m-%d", time.gmtime())
        if enrolment is None or enrolment["start_date"] > today or (enrolment["end_date"] or today) < today:
            raise o.Refused("request.student_not_enrolled")
        out = self.seal(self.pinned[request.peer], manifest=manifest, documents=documents, code=code, kind="release")
        pushed = await self.push(http, out)
        if pushed.response.status != 200:
            raise o.Refused(pushed.error_code or "peer.bad_response")
        return out, await self.respond(http, request_id, "released", comments, transfer_id=out.transfer_id)

    async def _records_request(self, request: web.Request) -> web.Response:
        """§4 steps 1-5 for a request; §2: a redelivery changes nothing, and once answered gets the answer."""

        async def work(received: o.Message, signer: str, checked: o.Checked) -> tuple[int, bytes, str]:
            verified = self._verify_records(received.body, "satchel/v1/records-request", signer)
            parsed = verified["parsed"]
            if parsed["to_domain"] != self.domain:
                raise Answer(409, "request.mismatch", "addressed to another district", "to_domain")
            known = self.requests.get(parsed["request_id"])
            if known is not None:
                if known.side != "releaser" or known.payload != parsed:
                    raise Answer(409, "request.mismatch", "another request under a known id", "request_id")
                if known.answer is not None:
                    return 200, known.answer, RESPONSE_TYPE
                return 200, o.canonical_json({"state": known.state}), "application/json"
            self.requests[parsed["request_id"]] = RecordsRequest(
                request_id=parsed["request_id"], peer=signer, side="releaser", signed=received.body, payload=parsed)
            return 200, o.canonical_json({"state": "requested"}), "application/json"

        return await self._handle(request, work)

    async def _records_response(self, request: web.Request) -> web.Response:
        """§4 steps 1-7 for a response: answers move the request (§2), messages are kept once by payload."""
        request_id = request.match_info["id"]

        async def work(received: o.Message, signer: str, checked: o.Checked) -> tuple[int, bytes, str]:
            verified = self._verify_records(received.body, "satchel/v1/records-response", signer)
            parsed = verified["parsed"]
            if parsed["request_id"] != request_id:
                raise Answer(409, "request.mismatch", "about another request", "request_id")
            held = self.requests.get(request_id)
            if held is None:  # step 6: before comparing it with the request
                raise Answer(409, "request.not_received", "no such request here yet", "request_id")
            if held.peer != signer:
                raise Answer(409, "request.mismatch", "not a district of this request", "from_domain")
            if parsed["to_domain"] != self.domain:
                raise Answer(409, "request.mismatch", "addressed to another district", "to_domain")
            kind = parsed["kind"]
            if kind == "message":
                if all(r["parsed"] != parsed for r in held.received if r["parsed"]["kind"] == "message"):
                    held.received.append(verified)
                return 200, o.canonical_json({"state": held.state}), "application/json"
            # §2: the releaser's answers reach the requester, a cancellation the releaser
            allowed = {"cancelled"} if held.side == "releaser" else {"released", "rejected", "release_failed"}
            if kind not in allowed:
                raise Answer(403, "request.actor_not_allowed", f"{kind} does not come from {signer}", "kind")
            if any(r["payload"] == verified["payload"] for r in held.received):
                return 200, o.canonical_json({"state": held.state}), "application/json"  # delivered again
            if kind == "cancelled" and held.state in ("released", "rejected"):
                raise Answer(409, "request.already_answered")
            if kind == "release_failed" and held.state not in ("released", "requested"):
                held.received.append(verified)
                return 200, o.canonical_json({"state": held.state}), "application/json"
            held.received.append(verified)
            held.state = kind
            if kind == "released":
                held.transfer_id = parsed["transfer_id"]
            return 200, o.canonical_json({"state": held.state}), "application/json"

        return await self._handle(request, work)

    def _verify_records(self, body: bytes, purpose: str, signer: str) -> dict[str, Any]:
        try:
            verified = o.verify_records_document(body, purpose, published=self.published)
        except o.Refused as refused:
            raise Answer(_STATUS.get(refused.code, 400), refused.code, str(refused), refused.field) from refused
        if verified["parsed"]["from_domain"] != signer:  # step 5
            raise Answer(409, "request.mismatch", "not from the district whose node sent it", "from_domain")
        return verified

    # --- transfer codes (codes.md §7) ---

    async def claim(self, http: aiohttp.ClientSession, text: str, *, nonce: bytes | None = None) -> o.Exchange:
        """§7.1-§7.2 at the destination: parse what the coordinator typed, prove the code, never send it."""
        typed = env.parse_transfer_code(text)
        if typed.source_domain == self.domain:
            raise o.Refused("code.same_node")
        if typed.source_domain not in self.pinned:  # whom to ask must be a district pinned here
            raise o.Refused("peer.unknown", "source_domain")
        key = await asyncio.to_thread(env.claim_key, typed.code, typed.source_domain)
        body = env.claim_body(key, self.domain, nonce or os.urandom(16)).encode("ascii")
        return await self.send_claim(http, typed.source_domain, body)

    async def send_claim(self, http: aiohttp.ClientSession, source: str, body: bytes) -> o.Exchange:
        """§7.5: the claim's body, POSTed signed to the source."""
        peer = self.pinned[source]
        msg = self.client.build("POST", f"{peer.base_url}/satchel/v1/codes/claims", body=body,
                                content_type="application/json")  # fmt: skip
        exchange = await self.client.send(http, msg)
        self.client.verify(exchange, peer)
        return exchange

    def make_code(self, *, manifest_for_peer: Callable[[str], dict[str, Any]], documents: list[bytes],
                  school: str, destination: str | None = None) -> str:  # fmt: skip
        """§7: a code for one student, shown once as the grouped code, `@` and this domain; what is kept is
        the code's id and key (§7.2), never the code."""
        code = env.generate_code()
        key = env.claim_key(code, self.domain)
        issued = IssuedCode(code_id=env.claim_code_id(key), key=key, manifest_for_peer=manifest_for_peer,
                            documents=documents, school=school, destination=destination)  # fmt: skip
        self.codes[issued.code_id] = issued
        return f"{env.display_code(code)}@{self.domain}"

    def _code_state(self, issued: IssuedCode) -> str:
        """§7.3: a claimed code follows its transfer (used on `imported`, active again on `rejected`)."""
        out = self.outgoing.get(issued.transfer_id or "")
        if issued.state == "claimed" and out is not None:
            if out.state in ("imported", "partially_imported"):
                issued.state, issued.key = "used", None
            elif out.state == "rejected":
                issued.state, issued.claimed_by, issued.transfer_id = "active", None, None
        return issued.state

    async def _code_claim(self, request: web.Request) -> web.Response:
        """§7.2's checks in order (the per-peer rate of §7.4 left out: this node is a test's), then seal and
        answer; the envelope is pushed after the answer, as a source's outbox would."""

        async def work(received: o.Message, signer: str, checked: o.Checked) -> tuple[int, bytes, str]:
            try:
                body = o.strict_json(received.body)
            except ValueError as exc:
                raise Answer(400, "message.malformed", "not JSON") from exc
            if not isinstance(body, dict):
                raise Answer(400, "message.malformed", "not an object")
            values: dict[str, bytes] = {}
            for name, low, high in (("code_id", 16, 16), ("nonce", 16, 64), ("proof", 32, 32)):
                try:
                    values[name] = o.unb64url(body.get(name))
                except ValueError as exc:
                    raise Answer(400, "message.malformed", "not base64url", name) from exc
                if not low <= len(values[name]) <= high:
                    raise Answer(400, "message.malformed", "wrong length", name)
            # §7.5: members beside the three are ignored
            issued = self.codes.get(values["code_id"])
            if issued is not None and issued.key is not None:
                proof = env.claim_proof(issued.key, signer, values["nonce"])
                if not hmac.compare_digest(proof, values["proof"]):
                    issued.failures += 1
                    if issued.failures >= 5 and issued.state == "active":
                        issued.state, issued.key = "locked", None
                    raise Answer(404, "code.unknown", "no transfer code matches", "code_id")
            elif issued is None:
                raise Answer(404, "code.unknown", "no transfer code matches", "code_id")
            assert issued is not None
            if signer == self.domain:
                raise Answer(400, "code.same_node")
            if issued.destination is not None and signer != issued.destination:
                raise Answer(403, "code.wrong_destination")
            state = self._code_state(issued)
            refusals = {"used": (410, "code.used"), "locked": (423, "code.locked"), "revoked": (410, "code.revoked"),
                        "expired": (410, "code.expired")}  # fmt: skip
            if state in refusals:
                raise Answer(*refusals[state])
            if state == "claimed" and issued.claimed_by != signer:
                raise Answer(409, "code.in_use")
            if state == "active":
                out = self.seal(self.pinned[signer], manifest=issued.manifest_for_peer(signer),
                                documents=issued.documents, code=env.display_code(env.generate_code()),
                                kind="import")  # fmt: skip
                issued.state, issued.claimed_by, issued.transfer_id = "claimed", signer, out.transfer_id
                self._tasks.add(asyncio.create_task(self._push_soon(out)))
            assert issued.transfer_id is not None
            out = self.outgoing[issued.transfer_id]
            answer = {"transfer_id": out.transfer_id, "district": "Outside District", "school": issued.school,
                      "scope": "student", "envelope_code": out.code}  # fmt: skip
            return 200, o.canonical_json(answer), "application/json"

        return await self._handle(request, work)

    async def _push_soon(self, out: Outgoing) -> None:
        await asyncio.sleep(0.2)  # after the claim's answer has gone
        async with aiohttp.ClientSession() as http:
            await self.push(http, out)


def envelope_id_of(envelope: bytes) -> bytes:
    return read_frame(envelope)["header"]["envelope_id"]


def read_frame(data: bytes) -> dict[str, Any]:
    """envelope.md §3 and §8.2 steps 1-4: the framing and the header map, read before any key is at hand."""
    magic = env.MAGIC
    if len(data) < len(magic) + 3 or data[: len(magic)] != magic:
        raise env.OutsiderError("envelope.malformed")
    if data[len(magic)] != env.VERSION:
        raise env.OutsiderError("envelope.unsupported_version")
    if data[len(magic) + 1] != env.SUITE:
        raise env.OutsiderError("envelope.unsupported_suite")
    pos = len(magic) + 2
    try:
        d = data[pos]
        sender_domain = data[pos + 1 : pos + 1 + d].decode("ascii")
        pos += 1 + d
        k = data[pos]
        sender_key_id = data[pos + 1 : pos + 1 + k].decode("ascii")
        pos += 1 + k
        h = int.from_bytes(data[pos : pos + 2], "big")
        header = env.check_header(env.decode_canonical(data[pos + 2 : pos + 2 + h], env.HEADER_LIMITS))
        pos += 2 + h
        # the encapsulation (its length first), the stream header and the key check, then the signature
        signed_end = pos + 2 + int.from_bytes(data[pos : pos + 2], "big") + 24 + 16
    except (IndexError, UnicodeDecodeError):
        raise env.OutsiderError("envelope.truncated") from None
    if len(data) < signed_end + 64:
        raise env.OutsiderError("envelope.truncated")
    return {"sender_domain": sender_domain, "sender_key_id": sender_key_id, "header": header,
            "signed": data[:signed_end], "signature": data[signed_end : signed_end + 64]}  # fmt: skip


def check_on_arrival(frame: dict[str, Any], *, sender_public: bytes, recipient_domain: str, recipient_key_id: str,
                     at: int, skew: int = 300) -> None:  # fmt: skip
    """Of envelope.md §7's checks that need no code (transfer.md §4 step 4), those this small node makes, in
    §8.2's order: the signature, the recipient, the times (the limits are left to the opening)."""
    try:
        Ed25519PublicKey.from_public_bytes(sender_public).verify(
            frame["signature"], env.SIG_PURPOSE + b"\x00" + frame["signed"])
    except InvalidSignature:
        raise env.OutsiderError("envelope.signature_invalid") from None
    header = frame["header"]
    if header["recipient_domain"] != recipient_domain or header["recipient_key_id"] != recipient_key_id:
        raise env.OutsiderError("envelope.not_recipient")
    if header["created"] > at + skew:
        raise env.OutsiderError("envelope.not_yet_valid")
    if at >= header["expires"]:
        raise env.OutsiderError("envelope.expired")


def manifest_for(*, sender: OutsideNode, recipient_domain: str, students: list[dict[str, Any]],
                 records: list[dict[str, Any]], notes: str = "") -> dict[str, Any]:  # fmt: skip
    """envelope.md §5.1, every key present, absent values nil."""
    student_keys = ("birth_date", "email", "family_name", "given_name", "grade", "middle_name", "recipient_sis_id",
                    "school", "sex", "sis_id", "state_id", "username")  # fmt: skip
    record_keys = ("corrects", "document_type", "id", "kind", "length", "media_type", "metadata", "sha256",
                   "student", "title")  # fmt: skip
    return {
        "created": now(), "format": 1, "notes": notes, "recipient_domain": recipient_domain, "recipient_owner": None,
        "sender_domain": sender.domain, "sender_key_id": sender.key.key_id,
        "students": [{k: s.get(k) for k in student_keys} for s in students],
        "records": [{k: r.get(k) for k in record_keys} for r in records],
    }  # fmt: skip


def document_record(record_id: str, student: str, data: bytes, *, title: str, media_type: str,
                    document_type: str | None, metadata: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {"id": record_id, "kind": "document", "student": student, "length": len(data), "media_type": media_type,
            "title": title, "document_type": document_type, "sha256": hashlib.sha256(data).digest(),
            "metadata": metadata, "corrects": None}  # fmt: skip


def record(record_id: str, kind: str, student: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"id": record_id, "kind": kind, "student": student, "metadata": metadata}

