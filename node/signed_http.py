"""Signed HTTP between nodes (spec/request-signing.md): verify every request on the exact bytes received,
before any handler sees it, and sign every response to a signed request.

Routes are authenticated unless listed public. A verified request carries ``request[PEER]`` (who sent
it) and ``request[BODY]`` (its exact bytes, digest checked). The nonce goes into the replay store only
once everything else has verified, so a refused request stores nothing.

A request signed with a node key is checked against the key chain and its nonce stored in the replay
table; a request signed in a session (§11: HMAC-SHA256, keyid ``hs-…``) is checked against the session
this process holds and its sequence number against the session's window, and its answer is signed
with the session's response key.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator, Callable
from functools import lru_cache
from urllib.parse import urlsplit

from aiohttp import web

from crypto import IdentityKey, SessionKey
from node.appkeys import NODE, PUBLIC_ROUTES, REQUIRED_COMPONENTS, STREAMING_ROUTES
from node.bounded_read import read_body, read_chunk
from node.http_errors import Handler, error_answer
from node.http_sessions import SESSIONS, ServerSession, SessionStore
from node.keyring import KEYRING
from node.offloop_writer import OffLoopWriter
from node.peer_identity import PeerIdentity
from protocol import SatchelError
from protocol.content_digest import (
    CONTENT_DIGEST,
    ContentDigester,
    DigestMissing,
    content_digest_header,
    verify_body_digest,
    verify_content_digest,
)
from protocol.http_sessions import parse_sequence_nonce, sequence_nonce
from protocol.http_signatures import (
    DEFAULT_REQUEST_COMPONENTS,
    Component,
    HttpRequestView,
    HttpResponseView,
    SignatureMalformed,
    UnverifiedSignature,
    VerifiedSignature,
    check_request_headers,
    check_request_signature,
    encode_nonce,
    sign_answer,
    sign_request,
    sign_response,
)
from storage import nonces
from storage.database import write_transaction

ORIGIN_HEADER = "Satchel-Origin"
MAX_BODY = 4 * 1024 * 1024
REQUEST_LIFETIME = 120
RESPONSE_LIFETIME = 60
REQUEST_COMPONENTS = (*DEFAULT_REQUEST_COMPONENTS, Component(name="satchel-origin"))


class BodyTooLarge(SatchelError):
    """The body of a signed request is over the size limit."""

    code = "http.body_too_large"
    default_hint = f"bodies of signed requests are limited to {MAX_BODY // 2**20} MiB"


class ContentCodingRefused(SatchelError):
    """A signed request's body is content-coded (gzip, ...): Satchel messages are sent as they are signed."""

    code = "http.content_encoding"
    default_hint = "send the body without Content-Encoding; the Content-Digest covers the bytes as sent"


__all__ = ["ANSWER_KEY", "BODY", "PEER", "SESSION", "STREAM", "PeerIdentity", "SignedBodyStream",
           "signed_request_headers"]

PEER = web.RequestKey("peer", PeerIdentity)
SESSION = web.RequestKey("session", ServerSession)
BODY = web.RequestKey("body", bytes)
STREAM = web.RequestKey("stream", object)
_REQUEST_VIEW = web.RequestKey("request_view", HttpRequestView)
# The identity key a handler's answer rests on, when it must be the one that signs it: a session's answer is
# made with the server's key of the moment, and a key rotated between the handler and the signing would leave
# the client a session its answer's signature does not vouch for.
ANSWER_KEY = web.RequestKey("answer_key", IdentityKey)


@lru_cache(maxsize=4)  # asked twice per request, always about this node's one base URL
def _own_authority(base_url: str) -> tuple[str, str]:
    parts = urlsplit(base_url)
    return parts.scheme, parts.netloc.lower()


def request_view(request: web.Request, scheme: str) -> HttpRequestView:
    return HttpRequestView(
        method=request.method, target_uri=_target_uri(request, scheme), headers=tuple(request.headers.items())
    )


def _target_uri(request: web.Request, scheme: str) -> str:
    # Behind the district's TLS terminator the public scheme is the one in node.base_url. A request whose
    # target is in absolute form (RFC 9112 §3.2.2, as some proxies send it) names its own target URI.
    raw = request.raw_path
    return raw if raw.startswith(("http://", "https://")) else f"{scheme}://{request.host}{raw}"


REQUIRED_EVERYWHERE = ("satchel-origin",)  # what every request's signature covers beyond RFC 9421's defaults


class RoutePlan:
    """What the middleware does for requests to one route: worked out from the app's route sets once, at the
    route's first request, as the look-ups cost about 1% of a small request."""

    __slots__ = ("public", "require", "streaming")

    def __init__(self, app: web.Application, key: tuple[str, str | None]) -> None:
        self.public = key in app[PUBLIC_ROUTES]
        self.streaming = key in app[STREAMING_ROUTES]
        self.require: tuple[str, ...] = app[REQUIRED_COMPONENTS].get(key, REQUIRED_EVERYWHERE)


ROUTE_PLANS = web.AppKey("route_plans", dict)  # aiohttp's route object -> RoutePlan, filled as routes are asked


def _plan(request: web.Request, app: web.Application) -> RoutePlan | None:
    """The route's plan; None for a request no route takes (aiohttp answers it 404 or 405)."""
    match = request.match_info
    route = match.route
    plan: RoutePlan | None = app[ROUTE_PLANS].get(route)
    if plan is None:
        if match.http_exception is not None:
            return None
        resource = route.resource
        plan = RoutePlan(app, (request.method, resource.canonical if resource is not None else None))
        if route.method == request.method:  # a route taking any method has one plan per method: not kept
            app[ROUTE_PLANS][route] = plan
    return plan


class SignedBodyStream:
    """A signed request's body, read in chunks while its Content-Digest is computed."""

    def __init__(
        self, request: web.Request, digest: str, remember: Callable[[], None], *, idle: float | None = None
    ) -> None:
        self._request = request
        self._idle = idle
        self._digester = ContentDigester.for_header(digest)
        self._digest = digest
        self._remember = remember
        self.length = 0

    async def chunks(self, size: int = 1 << 20, limit: int | None = None) -> AsyncIterator[bytes]:
        # The digest runs on a worker thread while the handler stores the chunk: on a gigabyte envelope
        # that takes one of the receiver's passes over the bytes off the event loop.
        hashing = OffLoopWriter(self._digester.update)
        try:
            while chunk := await read_chunk(self._request.content, size, self._idle):
                self.length += len(chunk)
                if limit is not None and self.length > limit:
                    raise BodyTooLarge(f"the body is larger than {limit} bytes", field="body")
                await hashing.write(chunk)
                yield chunk
            await hashing.drain()  # finish() checks the digest of every byte read
        finally:
            await hashing.settle()

    def sha256(self) -> bytes | None:
        """The SHA-256 of everything read, when the Content-Digest named it (it must have, to be checked)."""
        return self._digester.digests().get("sha-256")

    def finish(self) -> None:
        """Check the digest of everything read and record the nonce; raise if the body was not the one signed."""
        verify_content_digest(self._digest, self._digester)
        self.remember_nonce()

    def remember_nonce(self) -> None:
        self._remember()


@web.middleware
async def signed_http_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The node's one middleware: verifies a request's signature before any handler runs (public routes
    aside), answers whatever fails with a coded JSON error (node.http_errors), and signs the answer to every
    signed request, errors included.

    One middleware, not three in a row: aiohttp runs each as a coroutine of its own around the next, and on a
    node answering small signed requests those layers cost about 3% of its rate (goal 5 of issue 8).
    """
    answering = _Answering()
    try:
        response = await _verified(request, handler, answering)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # a redirect: aiohttp sends it as it is
        response = error_answer(request, exc)
    except Exception as exc:
        response = error_answer(request, exc)
    if "Signature" in request.headers and isinstance(response, web.Response):
        _sign_answer(request, response, answering)
    return response


class _Answering:
    """What signing a request's answer takes from checking the request, as far as that got."""

    __slots__ = ("session", "signature_field")

    def __init__(self) -> None:
        # The request's combined Signature field, when it was read on the fast path: the answer is then
        # signed without views. None: it was read with a view (request[_REQUEST_VIEW]), or not at all.
        self.signature_field: str | None = None
        self.session: ServerSession | None = None  # the session the request was signed in


async def _verified(request: web.Request, handler: Handler, answering: _Answering) -> web.StreamResponse:
    """The handler's answer to a request whose signature verified, or to a public one; raises otherwise."""
    app = request.app  # a property: read once
    plan = _plan(request, app)
    if plan is None or plan.public:
        return await handler(request)
    node = app[NODE]
    scheme, authority = _own_authority(node.config.node.base_url)
    now = int(time.time())
    require = plan.require
    has_body = request.body_exists
    # Requests from Satchel nodes are read from their fields alone (no view: a third of a small request's
    # cost); any other shape goes to the general RFC 9421 code, which then decides alone.
    unverified = check_request_headers(
        request.headers.items(), method=request.method, target_uri=_target_uri(request, scheme), now=now,
        expected_authority=authority, has_body=has_body, require_components=require,
    )  # fmt: skip
    if unverified is None:
        view = request_view(request, scheme)
        request[_REQUEST_VIEW] = view
        unverified = check_request_signature(
            view, now=now, expected_authority=authority, has_body=has_body, require_components=require
        )
    else:
        answering.signature_field = unverified.signature_field or ""
    remember: Callable[[], None]
    if unverified.key_id.startswith("hs-"):
        session = app[SESSIONS].get(unverified.key_id, now=now)
        if SessionStore.recheck_due(session):
            own_revoked = node.current_keys().revoked_identity  # reloaded when node_keys changed
            await app[SESSIONS].recheck(session, app[KEYRING], own_revoked=own_revoked)
        verified, remember = _verified_in_session(request, session, unverified), _nothing
        answering.session = session
    else:
        resolved = await app[KEYRING].resolve(
            unverified.key_id, origin=request.headers.get(ORIGIN_HEADER), claimed=True
        )
        verified = unverified.verify(resolved)
        request[PEER] = PeerIdentity(resolved.domain, verified.key_id, resolved.trust)

        def remember() -> None:
            with write_transaction(node.db, durable=False):  # one per request: a lost nonce harms nothing
                nonces.remember(
                    node.db, verified.key_id, verified.nonce, keep_until=verified.replay_until, now=now
                )

    coding = request.headers.get("Content-Encoding", "").strip().lower() or "identity"
    if coding != "identity":  # before any byte is read: aiohttp would decode it, and hash the decoded bytes
        raise ContentCodingRefused(f"the body is sent with Content-Encoding {coding[:40]!r}", field="Content-Encoding")
    idle = node.config.server.body_idle_seconds
    if plan.streaming:
        # Gigabyte bodies: the handler streams them through SignedBodyStream, which checks the digest at
        # the end; nothing may be committed before finish() returns.
        if verified.content_digest is None:
            raise DigestMissing("a streamed body must be covered by Content-Digest", field="Content-Digest")
        request[STREAM] = SignedBodyStream(request, verified.content_digest, remember, idle=idle)
        return await handler(request)
    body = await read_body(request.content, MAX_BODY, idle=idle) if has_body else b""
    if len(body) > MAX_BODY:
        raise BodyTooLarge("the request body is too large", field="body")
    if body or verified.content_digest is not None:
        verify_body_digest(verified.content_digest, body)
    remember()
    request[BODY] = body
    return await handler(request)


def _nothing() -> None:
    """A session request's nonce is its sequence number, which _verified_in_session has taken already."""


def _verified_in_session(
    request: web.Request, session: ServerSession, unverified: UnverifiedSignature
) -> VerifiedSignature:
    verified = unverified.verify(session.keys.to_server)
    sequence = parse_sequence_nonce(verified.nonce)
    if sequence is None:
        raise SignatureMalformed(
            "in a session the nonce is a 22-digit sequence number", field="Signature-Input"
        )
    # Taken now, not after the body: a gigabyte upload must not find its number pushed out of the window
    # by the requests that went by meanwhile. A number is only ever burnt by its key's holder.
    session.window.accept(sequence)
    request[PEER] = session.peer
    request[SESSION] = session
    return verified


def _sign_answer(request: web.Request, response: web.Response, answering: _Answering) -> None:
    """Sign the answer to a signed request: Content-Digest, Signature-Input and Signature fields added."""
    app = request.app
    node = app[NODE]
    body = response.body
    if not isinstance(body, bytes):
        body = b""
    headers = response.headers
    kind = headers.get("Content-Type")  # a handler's answer names its type (reading it through aiohttp parses it)
    if kind is None:
        if response.content_type == "application/octet-stream" and not body:
            response.content_type = "application/json"
        kind = headers["Content-Type"] = headers.get("Content-Type", response.content_type)
    digest = headers[CONTENT_DIGEST] = content_digest_header(body)
    session = answering.session
    key = session.keys.to_client if session is not None else request.get(ANSWER_KEY) or node.current_keys().identity
    now = int(time.time())
    key_id = key.key_id if isinstance(key, SessionKey) else key.public_key.key_id
    nonce = app[ANSWER_NONCES].next()
    try:
        answered = answering.signature_field
        signature_headers = None if answered is None or "Signature-Input" in headers else sign_answer(
            response.status, content_digest=digest, content_type=kind, request_signature=answered,
            key_id=key_id, sign=key.sign_raw, created=now, expires=now + RESPONSE_LIFETIME, nonce=nonce,
        )  # fmt: skip
        if signature_headers is None:
            scheme, _ = _own_authority(node.config.node.base_url)
            view = HttpResponseView(
                status=response.status,
                headers=tuple(headers.items()),
                request=request.get(_REQUEST_VIEW) or request_view(request, scheme),
            )
            signature_headers = sign_response(
                view, key_id=key_id, sign=key.sign_raw, created=now, expires=now + RESPONSE_LIFETIME, nonce=nonce,
                has_body=bool(body),
            )  # fmt: skip
    except SatchelError:
        # The request's own signature fields, or its target (a Host that is no host), were unusable:
        # nothing to bind a signature to. The answer (often the error saying so) goes unsigned.
        return
    for name, value in signature_headers:
        headers[name] = value


class AnswerNonces:
    """The nonces of a node's signed answers: 24 base64url characters (18 random bytes) each, drawn from the
    operating system 256 at a time (a system call and an encoding per answer were 2-3% of a small one's cost).
    Nonces are public and need only be fresh: drawing them ahead keeps nothing secret in memory."""

    __slots__ = ("_at", "_pool")

    _BATCH = 256

    def __init__(self) -> None:
        self._pool: list[str] = []
        self._at = 0

    def next(self) -> str:
        if self._at == len(self._pool):
            # 18 bytes are 24 characters with no padding, so one encoding of the batch cuts into nonces.
            text = base64.urlsafe_b64encode(os.urandom(18 * self._BATCH)).decode("ascii")
            self._pool = [text[i : i + 24] for i in range(0, len(text), 24)]
            self._at = 0
        self._at += 1
        return self._pool[self._at - 1]


ANSWER_NONCES = web.AppKey("answer_nonces", AnswerNonces)


class SessionSigner:
    """Signs requests in a client's session: HMAC with the request key, sequence numbers as nonces."""

    __slots__ = ("_next", "key")

    def __init__(self, key: SessionKey) -> None:
        self.key = key
        self._next = 0

    def nonce(self) -> str:
        self._next += 1
        return sequence_nonce(self._next)


def signed_request_headers(
    *,
    method: str,
    url: str,
    body: bytes,
    content_type: str | None,
    key: IdentityKey | SessionSigner,
    origin: str,
    body_digest: str | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> tuple[HttpRequestView, list[tuple[str, str]]]:
    """Headers for an outgoing signed request, and the view that was signed (to verify the response).

    ``key`` is the node key, or a session's signer (§11). A streamed body (a file) passes its precomputed
    ``body_digest`` header value instead of ``body``. ``extra_headers`` are sent and covered too.
    """
    headers: list[tuple[str, str]] = [("Satchel-Origin", origin), *extra_headers]
    has_body = bool(body) or body_digest is not None
    if has_body or content_type:
        headers.append(("Content-Type", content_type or "application/octet-stream"))
        headers.append(("Content-Digest", body_digest or content_digest_header(body)))
    authority = urlsplit(url).netloc
    headers.append(("Host", authority))
    view = HttpRequestView(method=method, target_uri=url, headers=tuple(headers))
    now = int(time.time())
    covered = (*_components(view), *(Component(name=name.lower()) for name, _ in extra_headers))
    if isinstance(key, SessionSigner):
        key_id, sign, nonce = key.key.key_id, key.key.sign_raw, key.nonce()
    else:
        key_id, sign, nonce = key.public_key.key_id, key.sign_raw, encode_nonce(os.urandom(16))
    signature = sign_request(
        view, key_id=key_id, sign=sign, created=now, expires=now + REQUEST_LIFETIME, nonce=nonce,
        components=covered, has_body=has_body,
    )  # fmt: skip
    all_headers = [*headers, *signature]
    return HttpRequestView(method=method, target_uri=url, headers=tuple(all_headers)), all_headers


def _components(view: HttpRequestView) -> tuple[Component, ...]:
    present = {name.lower() for name, _ in view.headers}
    return tuple(
        c for c in REQUEST_COMPONENTS if c.name not in ("content-digest", "content-type") or c.name in present
    )
