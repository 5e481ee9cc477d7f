"""Signed-HTTP sessions held by a serving node (spec/request-signing.md §11).

Sessions live in this process's memory only, on purpose: when the node restarts they are gone, so a
request recorded in an old session can never be replayed (its key is unknown), and the per-session
replay window needs no storage. Peers notice the restart by `signature.session_unknown` and open a new
session. Memory is bounded: at most MAX_SESSIONS sessions, MAX_PER_PEER for one peer (the oldest go).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from aiohttp import web

from crypto import IdentityKey, SessionKeys, SessionShare
from node.keyring import Keyring
from node.peer_identity import PeerIdentity
from protocol import InvalidInput
from protocol.http_sessions import (
    SESSION_LIFETIME,
    ReplayWindow,
    SessionAnswer,
    SessionOfferInvalid,
    SessionUnknown,
    new_session_id,
    session_context,
)

MAX_SESSIONS = 1024
MAX_PER_PEER = 8
# A session re-checks its peer's key (revoked? still valid?) at most this often: revocation takes effect
# within a second, without a key-chain lookup on every request.
RECHECK_SECONDS = 1.0


@dataclass(slots=True)
class ServerSession:
    keys: SessionKeys
    peer: PeerIdentity
    expires: int
    server_key_id: str  # this node's identity key that vouched for the handshake
    window: ReplayWindow = field(default_factory=ReplayWindow)
    checked_at: float = field(default_factory=time.monotonic)

    @property
    def session_id(self) -> str:
        return self.keys.session_id


class SessionStore:
    def __init__(self, *, max_sessions: int = MAX_SESSIONS, max_per_peer: int = MAX_PER_PEER) -> None:
        self._sessions: OrderedDict[str, ServerSession] = OrderedDict()
        self._max_sessions = max_sessions
        self._max_per_peer = max_per_peer

    def __len__(self) -> int:
        return len(self._sessions)

    def open(
        self,
        *,
        peer: PeerIdentity,
        client_share: bytes,
        server_key: IdentityKey,
        client_origin: str,
        now: int,
    ) -> SessionAnswer:
        """A new session for ``peer`` (whose node-key-signed offer has verified); the answer to send back."""
        session_id = new_session_id(os.urandom(16))
        expires = now + SESSION_LIFETIME
        share = SessionShare.generate()
        context = session_context(
            session_id=session_id, expires=expires, client_key_id=peer.key_id,
            server_key_id=server_key.public_key.key_id, client_origin=client_origin,
        )  # fmt: skip
        try:
            keys = share.agree(
                client_share, client_share=client_share, server_share=share.public, session_id=session_id,
                context=context,
            )  # fmt: skip
        except InvalidInput as exc:  # a low-order share: well-formed JSON, but not an offer §11 accepts
            raise SessionOfferInvalid(f"the offered share is refused: {exc.message}", field="share") from exc
        self._make_room(peer.domain, now)
        self._sessions[session_id] = ServerSession(keys, peer, expires, server_key.public_key.key_id)
        return SessionAnswer(session_id, share.public, expires)

    def _make_room(self, domain: str, now: int) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]
        mine = [k for k, s in self._sessions.items() if s.peer.domain == domain]
        for key in mine[: max(0, len(mine) - self._max_per_peer + 1)]:
            del self._sessions[key]
        while len(self._sessions) >= self._max_sessions:
            self._sessions.popitem(last=False)

    def get(self, session_id: str, *, now: int) -> ServerSession:
        session = self._sessions.get(session_id)
        if session is None or session.expires <= now:
            self._sessions.pop(session_id, None)
            raise SessionUnknown(f"session {session_id} is not open on this node", field="Signature-Input")
        return session

    @staticmethod
    def recheck_due(session: ServerSession) -> bool:
        return time.monotonic() - session.checked_at >= RECHECK_SECONDS

    async def recheck(self, session: ServerSession, keyring: Keyring, *, own_revoked: frozenset[str]) -> None:
        """Refuse (and forget) the session once its peer's node key is revoked or no longer valid, or once this
        node has revoked its own key that vouched for it (``own_revoked``: its revoked identity keys, as its
        keys were last reloaded; a `satchel keys revoke` in another process moves them)."""
        if session.server_key_id in own_revoked:
            # Unknown from now on, as after a restart: the client opens a new session, which this node's
            # current key vouches for, and sends the request again (§11).
            self._sessions.pop(session.session_id, None)
            raise SessionUnknown(
                f"session {session.session_id} was opened under this node's identity key {session.server_key_id},"
                " which it has revoked since", field="Signature-Input",
            )  # fmt: skip
        try:
            await keyring.resolve(session.peer.key_id, origin=None, domain=session.peer.domain)
        except BaseException:
            self._sessions.pop(session.session_id, None)
            raise
        session.checked_at = time.monotonic()


SESSIONS = web.AppKey("sessions", SessionStore)
