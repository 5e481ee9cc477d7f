"""The envelope's key schedule (spec/envelope.md §8.3): HPKE, Argon2id and HKDF, with purpose labels.

    preamble_hash = SHA-256(preamble)                      # magic .. header map
    hpke_secret   = HPKE.Open(sk_R, info = "satchel/v1/envelope/hpke" 0x00 preamble_hash, encapsulation)
    salt          = BLAKE2b-128("satchel/v1/envelope/argon2id-salt" 0x00 envelope_id)
    code_key      = Argon2id(code, salt, t, m, p=1, 32 bytes)
    prk           = HKDF-Extract(salt = SHA-256(preamble .. encapsulation), ikm = hpke_secret || code_key)
    payload_key   = HKDF-Expand(prk, "satchel/v1/envelope/payload-key", 32)
    key_check     = HKDF-Expand(prk, "satchel/v1/envelope/key-check", 16)

Both secrets feed the key: the recipient's private key alone does not open an envelope, nor does the code.
"""

from __future__ import annotations

import hashlib
import hmac

import nacl.pwhash.argon2id
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from crypto._codes import Code
from protocol.envelope_format import KEY_CHECK_LENGTH, Argon2Params

HPKE_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
HPKE_SECRET_LENGTH = 32
PURPOSE_ENVELOPE = b"satchel/v1/envelope"
PURPOSE_MANIFEST = b"satchel/v1/manifest"
LABEL_HPKE_INFO = b"satchel/v1/envelope/hpke"
LABEL_SALT = b"satchel/v1/envelope/argon2id-salt"
LABEL_PAYLOAD_KEY = b"satchel/v1/envelope/payload-key"
LABEL_KEY_CHECK = b"satchel/v1/envelope/key-check"


def hpke_info(preamble: bytes) -> bytes:
    """HPKE ``info``: binds the encapsulation to this envelope's framing and header map."""
    return LABEL_HPKE_INFO + b"\x00" + hashlib.sha256(preamble).digest()


def argon2_salt(envelope_id: bytes) -> bytes:
    return hashlib.blake2b(LABEL_SALT + b"\x00" + envelope_id, digest_size=16).digest()


def code_key(code: Code, envelope_id: bytes, params: Argon2Params) -> bytes:
    """Argon2id v1.3 of the code, salted by the envelope id. Costs ``params``; callers bound them first."""
    return nacl.pwhash.argon2id.kdf(
        32,
        code._kdf_input(),
        argon2_salt(envelope_id),
        opslimit=params.time_cost,
        memlimit=params.memory_kib * 1024,
    )


def _expand(prk: bytes, label: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, label).derive(prk)


def payload_keys(hpke_secret: bytes, code_secret: bytes, transcript: bytes) -> tuple[bytes, bytes]:
    """(payload_key, key_check) from both secrets, salted by the hash of the signed bytes so far."""
    salt = hashlib.sha256(transcript).digest()
    prk = hmac.digest(salt, hpke_secret + code_secret, "sha256")
    return _expand(prk, LABEL_PAYLOAD_KEY, 32), _expand(prk, LABEL_KEY_CHECK, KEY_CHECK_LENGTH)
