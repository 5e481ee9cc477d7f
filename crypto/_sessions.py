"""Session keys for signed HTTP (spec/request-signing.md §11): X25519, then HKDF-SHA256 into two HMAC keys.

Two nodes that exchange many small messages agree on a session once, over a request and response both
signed with their Ed25519 identity keys, and then sign with HMAC-SHA256 (RFC 9421 §3.3.3): a few
microseconds instead of an Ed25519 signature and verification per message. Each direction has its own
key, so a response can never be turned round into a request.

    shared     = X25519(own ephemeral secret, peer's share)
    okm        = HKDF-SHA256(ikm = shared, salt = client share || server share,
                             info = "satchel/v1/http-session" 0x00 context, length = 64)
    to_server  = okm[0:32]   (signs requests)
    to_client  = okm[32:64]  (signs responses)

The shares are ephemeral, so the keys die with the session. They only authenticate (the bodies are not
encrypted here; what must stay secret travels in envelopes), so a quantum computer later could not use
them: there is nothing left to forge once the session has expired.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol import InvalidInput, SignatureInvalid

SHARE_LENGTH = 32
_INFO = b"satchel/v1/http-session\x00"
_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it


class SessionKey:
    """One direction's HMAC-SHA256 key; ``sign_raw``/``verify_raw`` fit the RFC 9421 code like node keys."""

    __slots__ = ("_inner", "_outer", "_secret", "key_id")
    algorithm = "hmac-sha256"

    def __init__(self, key_id: str, secret: bytes) -> None:
        if len(secret) != 32:
            raise InvalidInput("a session key is 32 bytes", field="secret")
        self.key_id = key_id
        self._secret = bytes(secret)
        # HMAC (RFC 2104) hashes the padded key first on each side; those two states are taken once here and
        # copied per message, which halves the cost of hmac.digest for the small messages of a session.
        block = self._secret.ljust(_BLOCK, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def sign_raw(self, message: bytes) -> bytes:
        """HMAC-SHA256 of the message (a node signs and checks two of these for every session request)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def verify_raw(self, message: bytes, signature: bytes) -> bytes:
        if not hmac.compare_digest(self.sign_raw(message), bytes(signature)):
            raise SignatureInvalid("signature does not verify")
        return message

    def __repr__(self) -> str:
        return f"SessionKey({self.key_id}, secret=<hidden>)"


class SessionKeys:
    """The two keys of one session: ``to_server`` signs requests, ``to_client`` signs responses."""

    __slots__ = ("session_id", "to_client", "to_server")

    def __init__(self, session_id: str, okm: bytes) -> None:
        self.session_id = session_id
        self.to_server = SessionKey(session_id, okm[:32])
        self.to_client = SessionKey(session_id, okm[32:])

    def __repr__(self) -> str:
        return f"SessionKeys({self.session_id}, secrets=<hidden>)"


class SessionShare:
    """An ephemeral X25519 key pair: ``public`` goes to the peer, ``agree`` makes the session's keys."""

    __slots__ = ("_secret", "public")

    def __init__(self, secret: x25519.X25519PrivateKey) -> None:
        self._secret = secret
        self.public = secret.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> SessionShare:
        return cls(x25519.X25519PrivateKey.generate())

    @classmethod
    def from_secret_bytes(cls, secret: bytes) -> SessionShare:
        """For test vectors only: a share is otherwise always fresh."""
        return cls(x25519.X25519PrivateKey.from_private_bytes(secret))

    def agree(
        self, peer_share: bytes, *, client_share: bytes, server_share: bytes, session_id: str, context: bytes
    ) -> SessionKeys:
        """The session's keys; ``context`` (protocol.http_sessions.session_context) binds who and when."""
        if len(peer_share) != SHARE_LENGTH:
            raise InvalidInput(f"a session share is {SHARE_LENGTH} bytes", field="share")
        if self.public not in (client_share, server_share) or peer_share not in (client_share, server_share):
            raise InvalidInput("the shares given are not this session's", field="share")
        try:
            shared = self._secret.exchange(x25519.X25519PublicKey.from_public_bytes(peer_share))
        except ValueError as exc:  # a low-order point: the "shared" secret would be all zeros
            raise InvalidInput("the session share is not a usable X25519 public key", field="share") from exc
        okm = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=client_share + server_share, info=_INFO + context
        ).derive(shared)
        return SessionKeys(session_id, okm)

    def __repr__(self) -> str:
        return "SessionShare(secret=<hidden>)"
