"""Outgoing signed requests to other nodes, with the response's signature and digest verified.

With ``sessions=True`` (a serving node, which calls the same peers again and again) requests are signed
in a session (spec/request-signing.md §11): the first call to a peer opens one with a node-key-signed
handshake, later calls sign with its HMAC key. A peer that restarted answers `signature.session_unknown`;
the call then opens a new session and is sent once more (it was refused before anything happened). A
peer without sessions (404) is called with node-key signatures, and asked again after a while.

A session is bound to both node keys that vouched for its handshake (§11), so it is used only while both
still hold: this node's own key is still its current one (after `keys rotate` the next call opens a new
session), and the peer's key is still known, valid and not revoked here (checked at most once a second,
as the server checks ours).
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
from aiohttp import web

from crypto import IdentityKey, SessionKeys, SessionShare
from node.bounded_read import read_body
from node.home import Node
from node.http_sessions import RECHECK_SECONDS
from node.keyring import Keyring
from node.peers import TRY_LATER_STATUSES, PeerBadResponse, PeerUnreachable, not_now
from node.progress import Progress, ProgressFile
from node.signed_http import MAX_BODY, SessionSigner, signed_request_headers
from protocol import SatchelError
from protocol.content_digest import verify_body_digest
from protocol.http_sessions import (
    RENEW_BEFORE,
    SESSION_PATH,
    offer_body,
    parse_answer,
    session_context,
)
from protocol.http_signatures import (
    HttpResponseView,
    SignatureInvalid,
    SignatureKeyRevoked,
    SignatureKeyUnknown,
    check_response_signature,
)
from protocol.json_strict import loads_object

# No total limit: an envelope of gigabytes takes a while; a stalled peer is caught by the read timeout.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
NO_SESSIONS_RETRY = 600  # seconds before asking a peer without sessions again
# Refusals of a session request that a fresh session (or sequence number) cures; nothing happened there.
_RETRY_IN_NEW_SESSION = frozenset({"signature.session_unknown", "signature.replayed"})
# Cured by a fresh session only when the session was opened with a key of ours that is no longer current
# (rotated, then revoked, while a request was on its way): the new session is opened with the current one.
_RETRY_WITH_CURRENT_KEY = frozenset({"signature.key_revoked"})


class PeerRefused(SatchelError):
    """The other node answered with a coded error; its code and message are kept for the operator."""

    code = "peer.refused"
    default_hint = "see the other node's reason above; nothing was changed there"

    def __init__(self, message: str, *, status: int, peer_code: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.status = status
        self.peer_code = peer_code


@dataclass(frozen=True, slots=True)
class PeerResponse:
    status: int
    body: bytes
    content_type: str
    peer_domain: str
    key_id: str = ""  # the key that signed the response: the peer's node key, or the session id

    def json(self) -> dict[str, Any]:
        return loads_object(self.body, what="peer response")


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """One request to send, as given to :meth:`PeerClient.call` (sent again as is after a new session)."""

    method: str
    path: str
    body: bytes = b""
    content_type: str | None = None
    expect_domain: str | None = None
    body_file: Path | None = None
    body_digest: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    body_offset: int = 0


@dataclass(slots=True)
class ClientSession:
    """A session this node opened with a peer: sign with ``signer``, verify answers with ``keys.to_client``.

    ``own_key_id`` and ``server_key_id`` are the node keys that vouched for the handshake."""

    keys: SessionKeys
    signer: SessionSigner
    peer_domain: str
    expires: int
    own_key_id: str
    server_key_id: str
    checked_at: float = field(default_factory=time.monotonic)  # when server_key_id was last resolved


class PeerClient:
    def __init__(
        self, node: Node, session: aiohttp.ClientSession, keyring: Keyring, *, sessions: bool = False,
        upload_progress: Progress | None = None,
    ) -> None:  # fmt: skip
        """``upload_progress`` hears how far each body streamed from a file (an envelope) has gone out."""
        self._node = node
        self._upload_progress = upload_progress
        self._session = session
        self._keyring = keyring
        self._use_sessions = sessions
        self._sessions: dict[str, ClientSession] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._no_sessions_until: dict[str, float] = {}

    async def call(
        self,
        base_url: str,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        expect_domain: str | None = None,
        body_file: Path | None = None,
        body_digest: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        body_offset: int = 0,
    ) -> PeerResponse:
        """Send a signed request; return the verified response, or raise PeerRefused for a coded error.

        A large body is streamed from ``body_file`` (memory stays flat), from byte ``body_offset`` to its end,
        with its precomputed Content-Digest header value in ``body_digest``.
        """
        outgoing = _Outgoing(
            method, path, body, content_type, expect_domain, body_file, body_digest, extra_headers, body_offset
        )
        session = await self._session_for(base_url, expect_domain) if self._use_sessions else None
        if session is None:
            return await self._send(base_url, outgoing, None)
        try:
            return await self._send(base_url, outgoing, session)
        except PeerRefused as exc:
            if not self._retries_in_new_session(exc.peer_code, session):
                raise
            if exc.peer_code != "signature.replayed":
                self._forget(base_url, session)
            session = await self._session_for(base_url, expect_domain)
            return await self._send(base_url, outgoing, session)

    async def learn_key(self, key_id: str, *, base_url: str, domain: str) -> None:
        """Hold ``domain``'s identity key ``key_id`` if the peer publishes it, before a document it signed is
        verified. In a session its old key opened, a peer that rotated since signs its receipts with the new key,
        and no handshake told this node of it. What cannot be learned is left to the verification to refuse."""
        with suppress(SatchelError):
            await self._keyring.resolve(key_id, origin=base_url, domain=domain)

    async def refresh_peer(self, domain: str) -> None:
        """Fetch ``domain``'s descriptor again and store what it says of its keys (as `satchel peers refresh`
        does): for a peer that refused an envelope sealed to an encryption key it has replaced since."""
        await self._keyring.refresh(domain)

    def _retries_in_new_session(self, peer_code: str, session: ClientSession) -> bool:
        """Whether a refusal of a request sent in ``session`` is cured by sending it once more in a new one."""
        if peer_code in _RETRY_IN_NEW_SESSION:
            return True
        return peer_code in _RETRY_WITH_CURRENT_KEY and session.own_key_id != self._own_key().public_key.key_id

    def _own_key(self) -> IdentityKey:
        return self._node.current_keys().identity

    def _forget(self, base_url: str, session: ClientSession) -> None:
        if self._sessions.get(base_url) is session:
            del self._sessions[base_url]

    async def _still_vouched(self, base_url: str, session: ClientSession) -> None:
        """Raise (and forget the session) once the peer's key that vouched for it is revoked, no longer valid
        or no longer known here; checked at most once a second, as the server checks ours."""
        if time.monotonic() - session.checked_at < RECHECK_SECONDS:
            return
        try:
            await self._keyring.resolve(session.server_key_id, origin=None, domain=session.peer_domain)
        except (SignatureKeyRevoked, SignatureKeyUnknown):
            self._forget(base_url, session)
            raise
        session.checked_at = time.monotonic()

    async def _usable(self, base_url: str, session: ClientSession) -> bool:
        if session.expires - RENEW_BEFORE <= time.time() or session.own_key_id != self._own_key().public_key.key_id:
            return False
        try:
            await self._still_vouched(base_url, session)
        except (SignatureKeyRevoked, SignatureKeyUnknown):
            return False
        return True

    async def _session_for(self, base_url: str, expect_domain: str | None) -> ClientSession | None:
        if self._no_sessions_until.get(base_url, 0.0) > time.monotonic():
            return None
        lock = self._opening.setdefault(base_url, asyncio.Lock())
        async with lock:  # many concurrent calls to a new peer: one handshake
            current = self._sessions.get(base_url)
            if current is not None and await self._usable(base_url, current):
                return current
            try:
                opened = await self.open_session(base_url, expect_domain)
            except PeerRefused as exc:
                if exc.status not in (404, 405):
                    raise
                self._no_sessions_until[base_url] = time.monotonic() + NO_SESSIONS_RETRY
                return None
            self._sessions[base_url] = opened
            return opened

    async def open_session(self, base_url: str, expect_domain: str | None = None) -> ClientSession:
        """The §11 handshake: offer a share signed with our node key, check the answer signed with theirs."""
        share = SessionShare.generate()
        offer = _Outgoing("POST", SESSION_PATH, offer_body(share.public), "application/json", expect_domain)
        own = self._own_key()  # the key the offer is signed with is the one the session is bound to
        response = await self._send(base_url, offer, None, node_key=own)
        answer = parse_answer(response.body)
        context = session_context(
            session_id=answer.session_id, expires=answer.expires, client_key_id=own.public_key.key_id,
            server_key_id=response.key_id, client_origin=self._node.config.node.base_url,
        )  # fmt: skip
        keys = share.agree(
            answer.share, client_share=share.public, server_share=answer.share, session_id=answer.session_id,
            context=context,
        )  # fmt: skip
        return ClientSession(keys, SessionSigner(keys.to_server), response.peer_domain, answer.expires,
                             own.public_key.key_id, response.key_id)  # fmt: skip

    def _open_body(self, path: Path, offset: int) -> BinaryIO:
        handle = path.open("rb") if self._upload_progress is None else ProgressFile(path, self._upload_progress)
        try:
            handle.seek(offset)  # aiohttp sends from here, and counts Content-Length from here
        except BaseException:
            handle.close()
            raise
        return handle

    async def _send(
        self, base_url: str, out: _Outgoing, session: ClientSession | None, *, node_key: IdentityKey | None = None
    ) -> PeerResponse:
        url = self._keyring.check_origin(base_url) + out.path
        view, headers = signed_request_headers(
            method=out.method, url=url, body=out.body, content_type=out.content_type,
            key=session.signer if session is not None else node_key or self._own_key(),
            origin=self._node.config.node.base_url, body_digest=out.body_digest, extra_headers=out.extra_headers,
        )  # fmt: skip
        expect_domain = out.expect_domain
        # Opened before the network is touched: a local file that cannot be read is this node's problem, not
        # an unreachable peer (which the outbox would blame and retry as such).
        with self._open_body(out.body_file, out.body_offset) if out.body_file is not None else nullcontext() as handle:
            data_arg = handle if handle is not None else (out.body or None)
            try:
                async with self._session.request(
                    out.method, url, data=data_arg, headers=headers, timeout=TIMEOUT, allow_redirects=False
                ) as response:
                    data = await read_body(response.content, MAX_BODY)
                    status, response_headers = response.status, tuple(response.headers.items())
                    content_type_got = response.headers.get("Content-Type", "")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise PeerUnreachable(f"could not reach {url}: {type(exc).__name__}", field="url") from exc
        if len(data) > MAX_BODY:
            raise PeerBadResponse(f"{url} answered more than {MAX_BODY:,} bytes", field="url",
                                  hint="answers between nodes are small; tell the other node's operator")  # fmt: skip
        if status in TRY_LATER_STATUSES and not any(name.lower() == "signature" for name, _ in response_headers):
            raise not_now(url, status, " without a signature")  # believed as far as "not now", no further
        peer, key_id = await self._verify(
            view, status, response_headers, data, base_url, expect_domain, session
        )
        if status >= 400:
            raise _refusal(status, data, url)
        return PeerResponse(status, data, content_type_got, peer, key_id)

    async def _verify(
        self,
        view: Any,
        status: int,
        headers: tuple,
        data: bytes,
        base_url: str,
        expect_domain: str | None,
        session: ClientSession | None,
    ) -> tuple[str, str]:
        unverified = check_response_signature(
            HttpResponseView(status=status, headers=headers, request=view), now=int(time.time()),
            has_body=bool(data),
        )  # fmt: skip
        if unverified.key_id.startswith("hs-"):
            # Only the session this request was sent in can have signed its answer.
            if session is None or unverified.key_id != session.keys.session_id:
                raise SignatureInvalid("the answer is signed with a session this request was not sent in")
            verified = unverified.verify(session.keys.to_client)
            await self._still_vouched(base_url, session)
            domain = session.peer_domain
        else:
            resolved = await self._keyring.resolve(unverified.key_id, origin=base_url, domain=expect_domain)
            verified = unverified.verify(resolved)
            domain = resolved.domain
        verify_body_digest(verified.content_digest, data)
        return domain, verified.key_id


def _refusal(status: int, data: bytes, url: str) -> PeerRefused:
    try:
        error = json.loads(data)["error"]
        code, message, hint = str(error["code"]), str(error["message"]), error.get("hint")
    except (ValueError, KeyError, TypeError):
        code, message, hint = "http.error", f"HTTP {status}", None
    return PeerRefused(
        f"{url} refused: {message} ({code})", status=status, peer_code=code,
        hint=str(hint) if hint else None,
    )  # fmt: skip


PEER_CLIENT = web.AppKey("peer_client", PeerClient)
