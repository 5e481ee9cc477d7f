"""Node keys: the Ed25519 identity key and the ML-KEM-768 + X25519 hybrid encryption key.

Private keys never print their bytes; equality is constant-time. Signatures are always made under a
purpose string (domain separation, ``satchel/v1/...``) so a signature made for one message kind can never
be replayed as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from protocol import InvalidInput, SignatureInvalid

ED25519 = "ed25519"
HYBRID_KEM = "mlkem768-x25519"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SECRET_PREFIX = {ED25519: "SATCHEL-ED25519-SECRET-V1", HYBRID_KEM: "SATCHEL-MLKEM768X25519-SECRET-V1"}


def crockford32(data: bytes) -> str:
    """Crockford base32 without padding (big-endian bit order)."""
    bits = int.from_bytes(data, "big")
    nbits = len(data) * 8
    out = []
    for shift in range(nbits - 5, -5, -5):
        out.append(_CROCKFORD[(bits >> shift) & 31] if shift >= 0 else _CROCKFORD[(bits << -shift) & 31])
    return "".join(out)


def _key_id(algorithm: str, public: bytes) -> str:
    digest = hashlib.sha256(b"satchel/v1/key-id\x00" + algorithm.encode() + b"\x00" + public).digest()
    return f"{algorithm}-{crockford32(digest[:10]).lower()}"


def fingerprint(algorithm: str, public: bytes) -> str:
    """125 bits of SHA-256 as five groups of five Crockford characters, for reading out over the phone."""
    digest = hashlib.sha256(b"satchel/v1/fingerprint\x00" + algorithm.encode() + b"\x00" + public).digest()
    chars = crockford32(digest[:16])[:25]
    return "-".join(chars[i : i + 5] for i in range(0, 25, 5))


def _signed_bytes(purpose: bytes, message: bytes) -> bytes:
    if not purpose.startswith(b"satchel/v1/") or b"\x00" in purpose:
        raise InvalidInput("purpose strings start with satchel/v1/ and contain no NUL", field="purpose")
    return purpose + b"\x00" + message


class IdentityPublicKey:
    """An Ed25519 public key that verifies Satchel signatures."""

    __slots__ = ("_raw",)
    algorithm = ED25519

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise InvalidInput("an Ed25519 public key is 32 bytes", field="public_key")
        self._raw = bytes(raw)

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def key_id(self) -> str:
        return _key_id(ED25519, self._raw)

    @property
    def fingerprint(self) -> str:
        return fingerprint(ED25519, self._raw)

    def verify(self, purpose: bytes, message: bytes, signature: bytes) -> bytes:
        """Return ``message`` if ``signature`` is valid for it under ``purpose``; raise otherwise."""
        try:
            nacl.signing.VerifyKey(self._raw).verify(_signed_bytes(purpose, message), bytes(signature))
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
            raise SignatureInvalid("signature does not verify") from exc
        return message

    def verify_raw(self, message: bytes, signature: bytes) -> bytes:
        """Plain Ed25519 (no purpose prefix), the counterpart of ``IdentityKey.sign_raw`` for RFC 9421."""
        try:
            nacl.signing.VerifyKey(self._raw).verify(bytes(message), bytes(signature))
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
            raise SignatureInvalid("signature does not verify") from exc
        return message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdentityPublicKey) and hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"IdentityPublicKey({self.key_id})"


class IdentityKey:
    """The node's Ed25519 signing key."""

    __slots__ = ("_signing",)
    algorithm = ED25519

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise InvalidInput("an Ed25519 seed is 32 bytes", field="identity_key")
        self._signing = nacl.signing.SigningKey(bytes(seed))

    @classmethod
    def generate(cls) -> IdentityKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def public_key(self) -> IdentityPublicKey:
        return IdentityPublicKey(bytes(self._signing.verify_key))

    def sign(self, purpose: bytes, message: bytes) -> bytes:
        return self._signing.sign(_signed_bytes(purpose, message)).signature

    def sign_raw(self, message: bytes) -> bytes:
        """Plain Ed25519 over ``message``, for external profiles that fix their own bytes (RFC 9421)."""
        return self._signing.sign(message).signature

    def export_secret(self) -> str:
        return _export(ED25519, bytes(self._signing))

    @classmethod
    def import_secret(cls, text: str) -> IdentityKey:
        return cls(_import(ED25519, text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdentityKey) and hmac.compare_digest(
            bytes(self._signing), bytes(other._signing)
        )

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"IdentityKey(public={self.public_key.key_id}, secret=<hidden>)"


class EncryptionPublicKey:
    """The hybrid ML-KEM-768 + X25519 public key envelopes are encapsulated to."""

    __slots__ = ("_mlkem", "_x25519")
    algorithm = HYBRID_KEM
    MLKEM_LEN = 1184

    def __init__(self, raw: bytes) -> None:
        if len(raw) != self.MLKEM_LEN + 32:
            raise InvalidInput(
                f"a {HYBRID_KEM} public key is {self.MLKEM_LEN + 32} bytes", field="public_key"
            )
        try:
            self._mlkem = mlkem.MLKEM768PublicKey.from_public_bytes(raw[: self.MLKEM_LEN])
        except ValueError as exc:
            raise InvalidInput("the ML-KEM-768 public key is not valid", field="public_key") from exc
        self._x25519 = x25519.X25519PublicKey.from_public_bytes(raw[self.MLKEM_LEN :])

    @property
    def raw(self) -> bytes:
        return self._mlkem.public_bytes_raw() + self._x25519.public_bytes_raw()

    @property
    def key_id(self) -> str:
        return _key_id(HYBRID_KEM, self.raw)

    @property
    def fingerprint(self) -> str:
        return fingerprint(HYBRID_KEM, self.raw)

    def hpke_key(self) -> hpke.MLKEM768X25519PublicKey:
        return hpke.MLKEM768X25519PublicKey(self._mlkem, self._x25519)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncryptionPublicKey) and hmac.compare_digest(self.raw, other.raw)

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"EncryptionPublicKey({self.key_id})"


class EncryptionKey:
    """The private half of the hybrid KEM key: a 64-byte ML-KEM seed and a 32-byte X25519 key."""

    __slots__ = ("_mlkem", "_secret", "_x25519")
    algorithm = HYBRID_KEM

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 96:
            raise InvalidInput(f"a {HYBRID_KEM} secret is 96 bytes", field="encryption_key")
        self._secret = bytes(secret)
        self._mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(self._secret[:64])
        self._x25519 = x25519.X25519PrivateKey.from_private_bytes(self._secret[64:])

    @classmethod
    def generate(cls) -> EncryptionKey:
        ml = mlkem.MLKEM768PrivateKey.generate()
        xk = x25519.X25519PrivateKey.generate()
        return cls(ml.private_bytes_raw() + xk.private_bytes_raw())

    @property
    def public_key(self) -> EncryptionPublicKey:
        return EncryptionPublicKey(
            self._mlkem.public_key().public_bytes_raw() + self._x25519.public_key().public_bytes_raw()
        )

    def hpke_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(self._mlkem, self._x25519)

    def export_secret(self) -> str:
        return _export(HYBRID_KEM, self._secret)

    @classmethod
    def import_secret(cls, text: str) -> EncryptionKey:
        return cls(_import(HYBRID_KEM, text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncryptionKey) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"EncryptionKey(public={self.public_key.key_id}, secret=<hidden>)"


def _export(algorithm: str, secret: bytes) -> str:
    return f"{_SECRET_PREFIX[algorithm]} {base64.b64encode(secret).decode()}\n"


def _import(algorithm: str, text: str) -> bytes:
    prefix, _, body = text.strip().partition(" ")
    if prefix != _SECRET_PREFIX[algorithm]:
        raise InvalidInput(
            f"not a {algorithm} secret key file", field="key_file", hint="check the home's keys/ directory"
        )
    try:
        return base64.b64decode(body, validate=True)
    except ValueError as exc:
        raise InvalidInput(f"the {algorithm} secret key file is corrupt", field="key_file") from exc
