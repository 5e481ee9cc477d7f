"""Transfer-code claims: proving knowledge of a code to the node that made it, without sending the code.

Both sides derive ``key = Argon2id(code, salt = BLAKE2b-128("satchel/v1/transfer-code/salt" 0x00 source))``
with fixed costs (spec/codes.md §7). The source keeps ``key`` (never the code); a claim carries
``code_id = HMAC-SHA256(key, "satchel/v1/transfer-code/id")[:16]`` to find it and
``proof = HMAC-SHA256(key, "satchel/v1/transfer-code/proof" 0x00 destination 0x00 nonce)``. Whoever sees a
claim learns nothing that can be tested against a guessed code for less than one Argon2id per guess.
"""

from __future__ import annotations

import hashlib
import hmac

import nacl.pwhash.argon2id

from crypto._codes import Code
from protocol import InvalidInput

CLAIM_TIME_COST = 3
CLAIM_MEMORY_KIB = 64 * 1024
_SALT = b"satchel/v1/transfer-code/salt"
_ID = b"satchel/v1/transfer-code/id"
_PROOF = b"satchel/v1/transfer-code/proof"


def transfer_code_credentials(code: Code, source_domain: str) -> tuple[bytes, bytes]:
    """(code_id, key) for a transfer code made by ``source_domain``; the key must stay secret."""
    if not isinstance(code, Code):
        raise TypeError("code must be a Code (see parse_code)")
    salt = hashlib.blake2b(_SALT + b"\x00" + source_domain.encode("ascii"), digest_size=16).digest()
    key = nacl.pwhash.argon2id.kdf(
        32, code._kdf_input(), salt, opslimit=CLAIM_TIME_COST, memlimit=CLAIM_MEMORY_KIB * 1024
    )
    return hmac.digest(key, _ID, "sha256")[:16], key


def transfer_code_proof(key: bytes, *, destination: str, nonce: bytes) -> bytes:
    """The claim's proof: bound to the claiming district and a fresh nonce, so it cannot be replayed."""
    if len(key) != 32 or not 16 <= len(nonce) <= 64:
        raise InvalidInput("a claim key is 32 bytes and a nonce 16 to 64 bytes", field="nonce")
    return hmac.digest(key, _PROOF + b"\x00" + destination.encode("ascii") + b"\x00" + nonce, "sha256")


def check_transfer_code_proof(key: bytes, *, destination: str, nonce: bytes, proof: bytes) -> bool:
    """Constant-time check of a claim's proof."""
    return hmac.compare_digest(transfer_code_proof(key, destination=destination, nonce=nonce), proof)
