"""Signed-HTTP sessions (spec/request-signing.md §11): the messages, the key context, the replay window.

Sans-IO. A client opens a session with ``POST /satchel/v1/sessions``, signed with its Ed25519 node key,
whose body is an :func:`offer_body`; the server answers (signed with its node key) an :func:`answer_body`.
Both then derive the session's HMAC keys (``crypto.SessionShare.agree``) with :func:`session_context`.
Requests in the session are signed with ``keyid`` = the session id and ``alg="hmac-sha256"``; their nonce
is a sequence number (:func:`sequence_nonce`), so the server's replay state is one
:class:`ReplayWindow` per session instead of a stored nonce per request.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from protocol.errors import InvalidInput, SatchelError
from protocol.json_strict import loads_object
from protocol.signature_errors import SignatureReplayed

SESSION_PATH = "/satchel/v1/sessions"
SESSION_LIFETIME = 900  # seconds; clients open a new session before this runs out
RENEW_BEFORE = 120  # a client stops using a session this long before it expires
WINDOW = 4096  # sequence numbers a request may lag behind the highest seen (concurrent requests)
SHARE_LENGTH = 32
_SESSION_ID = re.compile(r"hs-[A-Za-z0-9_-]{22}")
_SHARE = re.compile(r"[A-Za-z0-9_-]{43}")
_SEQUENCE = re.compile(r"[0-9]{22}")
MAX_SEQUENCE = 10**22 - 1


class SessionUnknown(SatchelError):
    """A request is signed with a session this node does not hold (it restarted, or the session expired)."""

    code = "signature.session_unknown"
    default_hint = f"open a new session with POST {SESSION_PATH}, signed with the node key, and send again"


class SessionOfferInvalid(SatchelError):
    """The body of a session request or answer is not what spec/request-signing.md §11 describes."""

    code = "session.offer_invalid"
    default_hint = 'send {"share": "<43 base64url characters: an X25519 public key>"}'


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _share(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not _SHARE.fullmatch(value):
        raise SessionOfferInvalid(f"{field} is not 43 base64url characters", field=field)
    try:
        raw = base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError) as exc:
        raise SessionOfferInvalid(f"{field} is not base64url", field=field) from exc
    if _b64url(raw) != value:
        raise SessionOfferInvalid(f"{field} is not canonical base64url", field=field)
    return raw


def offer_body(share: bytes) -> bytes:
    if len(share) != SHARE_LENGTH:
        raise InvalidInput(f"a share is {SHARE_LENGTH} bytes", field="share")
    return json.dumps({"share": _b64url(share)}, separators=(",", ":")).encode()


def _object(body: bytes, what: str) -> dict[str, object]:
    try:
        return loads_object(body, what=what, max_bytes=1024)
    except SatchelError as exc:
        raise SessionOfferInvalid(f"the {what} is not a JSON object: {exc.message}", field="body") from exc


def parse_offer(body: bytes) -> bytes:
    """The client's X25519 share from a session request body."""
    data = _object(body, "session offer")
    if set(data) != {"share"}:
        raise SessionOfferInvalid('the session offer has exactly one member, "share"', field="body")
    return _share(data["share"], "share")


@dataclass(frozen=True, slots=True)
class SessionAnswer:
    session_id: str
    share: bytes
    expires: int


def answer_body(answer: SessionAnswer) -> bytes:
    return json.dumps(
        {"session": answer.session_id, "share": _b64url(answer.share), "expires": answer.expires},
        separators=(",", ":"),
    ).encode()


def parse_answer(body: bytes) -> SessionAnswer:
    data = _object(body, "session answer")
    if set(data) != {"session", "share", "expires"}:
        raise SessionOfferInvalid("the session answer has session, share and expires", field="body")
    session_id, expires = data["session"], data["expires"]
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise SessionOfferInvalid("session is not hs- and 22 base64url characters", field="session")
    if type(expires) is not int or expires < 0:
        raise SessionOfferInvalid("expires is not a time in seconds", field="expires")
    return SessionAnswer(session_id, _share(data["share"], "share"), expires)


def new_session_id(random16: bytes) -> str:
    if len(random16) != 16:
        raise InvalidInput("a session id is made from 16 random bytes", field="session")
    return "hs-" + _b64url(random16)


def session_context(
    *, session_id: str, expires: int, client_key_id: str, server_key_id: str, client_origin: str
) -> bytes:
    """What both sides bind the keys to: the session, its end, and both node keys (HKDF info)."""
    parts = (session_id, str(expires), client_key_id, server_key_id, client_origin)
    if any("\x00" in part for part in parts):
        raise InvalidInput("session context parts contain no NUL", field="context")
    return "\x00".join(parts).encode("utf-8")


def sequence_nonce(sequence: int) -> str:
    """The nonce of the ``sequence``-th request of a session (from 1): 22 decimal digits."""
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise InvalidInput("a sequence number is from 1 to 10^22 - 1", field="nonce")
    return f"{sequence:022d}"


def parse_sequence_nonce(nonce: str) -> int | None:
    return int(nonce) if _SEQUENCE.fullmatch(nonce) and nonce != "0" * 22 else None


class ReplayWindow:
    """Each sequence number at most once, and none more than WINDOW behind the highest seen.

    A bit per number inside the window (the highest seen is bit 0): O(1) memory per session, however
    many requests it carries. ``check`` is for before the body arrives; ``accept`` records the number
    once the whole request has verified, and refuses a number some other request took meanwhile.
    """

    __slots__ = ("_bits", "_mask", "highest", "window")

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self.highest = 0
        self._bits = 0
        self._mask = (1 << window) - 1

    def _seen(self, sequence: int) -> bool:
        if sequence > self.highest:
            return False
        behind = self.highest - sequence
        return behind >= self.window or bool(self._bits >> behind & 1)

    def check(self, sequence: int) -> None:
        if sequence < 1 or self._seen(sequence):
            raise SignatureReplayed(
                f"sequence number {sequence} of this session was used already or is too old",
                field="Signature-Input",
                hint="send again: the next request of the session gets a new sequence number",
            )

    def accept(self, sequence: int) -> None:
        self.check(sequence)
        if sequence > self.highest:
            shift = sequence - self.highest
            # A jump past the whole window forgets it at once (and never shifts by a huge number).
            kept = (self._bits << shift) & self._mask if shift < self.window else 0
            self._bits = kept | 1
            self.highest = sequence
        else:
            self._bits |= 1 << (self.highest - sequence)
