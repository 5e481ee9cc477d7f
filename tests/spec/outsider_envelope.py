"""An envelope and transfer-code implementation written from spec/ alone, as another team would.

It reads spec/README.md, spec/envelope.md, spec/codes.md and the vectors, and nothing of Satchel's code: the
point is to show that the text is enough (tests/spec/test_outsider_envelope.py checks that this module imports
nothing of ours). Only the standard library and the libraries Satchel itself depends on are used, and those
for primitives only (ML-KEM-768, X25519, Ed25519, Argon2id, ChaCha20, Poly1305): HPKE, X-Wing, the canonical
msgpack decoder, secretstream and every check of envelope.md §7 are written here from the text.

Where the text did not suffice when this was first written (a spec defect, fixed since in the text), a comment
says which section now says it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import poly1305
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id


class OutsiderError(Exception):
    """A refusal, carrying the error code the spec gives for it."""

    def __init__(self, code: str, field: str | None = None) -> None:
        super().__init__(code if field is None else f"{code} ({field})")
        self.code = code
        self.field = field


# --- codes.md §1-§5 ------------------------------------------------------------------------------------------

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}

# codes.md §5 step 3: white space is exactly this set (also used by §7.1).
_WHITE = (
    {chr(c) for c in range(0x09, 0x0E)}
    | {chr(c) for c in range(0x1C, 0x20)}
    | {" ", "\u0085", "\u00a0", "\u1680", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"}
    | {chr(c) for c in range(0x2000, 0x200B)}
)
_SEPARATORS = _WHITE | {"-", "_", "\u2212"} | {chr(c) for c in range(0x2010, 0x2016)}


def _gf32_mul(a: int, b: int) -> int:
    # codes.md §4: GF(2)[x] / (x^5 + x^2 + 1)
    r = 0
    for _ in range(5):
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= 0b100101
    return r


def check_character(data: str) -> str:
    c, w = 0, 1
    for ch in data:
        w = _gf32_mul(w, 2)
        c ^= _gf32_mul(w, _VALUE[ch])
    return ALPHABET[c]


def display_code(canonical: str) -> str:
    full = canonical + check_character(canonical)
    return "-".join(full[i : i + 4] for i in range(0, 13, 4))


def parse_code(text: str) -> str:
    """codes.md §5: the canonical form (12 data characters) of what a person typed."""
    if len(text) > 128:
        raise OutsiderError("code.malformed")
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if c not in _SEPARATORS)
    # Unicode's full case mapping, as codes.md §5 step 4 now says (it said only "upper case"): ı and ß count.
    text = text.upper().replace("O", "0").replace("I", "1").replace("L", "1")
    if len(text) != 13 or any(c not in _VALUE for c in text):
        raise OutsiderError("code.malformed")
    if check_character(text[:12]) != text[12]:
        raise OutsiderError("code.typo")
    return text[:12]


def generate_code() -> str:
    v = int.from_bytes(os.urandom(8), "big") >> 4  # codes.md §3: 60 bits
    return "".join(ALPHABET[(v >> (55 - 5 * i)) & 31] for i in range(12))


# --- names (envelope.md §2.3) --------------------------------------------------------------------------------

# Two labels at least and no label ending in "-": §2.3 once said "one or more labels", which the transfer-code
# vectors contradicted; it now says two, and spec/README.md gives this pattern.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?")
_KEY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def is_domain(text: str) -> bool:
    return len(text) <= 253 and _DOMAIN.fullmatch(text) is not None


def is_key_id(text: str) -> bool:
    return _KEY_ID.fullmatch(text) is not None


# --- transfer codes (codes.md §7) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferCode:
    code: str
    source_domain: str

    @property
    def display(self) -> str:
        return display_code(self.code)


def parse_transfer_code(text: str) -> TransferCode:
    """codes.md §7.1, step by step."""
    if len(text) > 400:
        raise OutsiderError("code.source_invalid", "code")
    text = unicodedata.normalize("NFKC", text)
    start, end = 0, len(text)
    while start < end and text[start] in _WHITE:
        start += 1
    while end > start and text[end - 1] in _WHITE:
        end -= 1
    text = text[start:end]
    at = text.rfind("@")
    if at < 0 or all(c in _WHITE for c in text[:at]):
        raise OutsiderError("code.source_invalid", "code")
    domain = "".join(c for c in text[at + 1 :] if c not in _WHITE)
    domain = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in domain).rstrip(".")
    if not is_domain(domain):
        raise OutsiderError("code.source_invalid", "source_domain")
    try:
        code = parse_code(text[:at])
    except OutsiderError as e:
        raise OutsiderError(e.code, "code") from None
    return TransferCode(code=code, source_domain=domain)


CLAIM_SALT_LABEL = b"satchel/v1/transfer-code/salt"
CLAIM_ID_LABEL = b"satchel/v1/transfer-code/id"
CLAIM_PROOF_LABEL = b"satchel/v1/transfer-code/proof"


def claim_salt(source_domain: str) -> bytes:
    return hashlib.blake2b(CLAIM_SALT_LABEL + b"\x00" + source_domain.encode("ascii"), digest_size=16).digest()


def claim_key(code: str, source_domain: str) -> bytes:
    return argon2id(code.encode("ascii"), claim_salt(source_domain), t=3, m_kib=65536)


def claim_code_id(key: bytes) -> bytes:
    return hmac.new(key, CLAIM_ID_LABEL, hashlib.sha256).digest()[:16]


def claim_proof(key: bytes, destination: str, nonce: bytes) -> bytes:
    message = CLAIM_PROOF_LABEL + b"\x00" + destination.encode("ascii") + b"\x00" + nonce
    return hmac.new(key, message, hashlib.sha256).digest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def claim_body(key: bytes, destination: str, nonce: bytes) -> str:
    # codes.md §7.5, in canonical JSON (spec/README.md): sorted keys, no white space
    return (
        f'{{"code_id":"{b64url(claim_code_id(key))}","nonce":"{b64url(nonce)}",'
        f'"proof":"{b64url(claim_proof(key, destination, nonce))}"}}'
    )


def argon2id(password: bytes, salt: bytes, *, t: int, m_kib: int) -> bytes:
    return Argon2id(salt=salt, length=32, iterations=t, lanes=1, memory_cost=m_kib).derive(password)


# --- canonical msgpack (envelope.md §2.2) --------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    depth: int
    str_bytes: int
    bin_bytes: int
    array: int
    map: int


# §2.2's limits and order of errors were not in the text (only "too long or deep"): they are now.
HEADER_LIMITS = Limits(depth=1, str_bytes=256, bin_bytes=32, array=65536, map=32)
MANIFEST_LIMITS = Limits(depth=7, str_bytes=262144, bin_bytes=32, array=1 << 20, map=256)
_READ_NESTING = 1024


class _Float:
    """A float or a timestamp seen while reading: refused in the walk after the trailing-bytes check (§2.2 step 3)."""


class _Reader:
    def __init__(self, data: bytes, limits: Limits) -> None:
        self.data = data
        self.pos = 0
        self.limits = limits
        self.canonical = True

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise OutsiderError("msgpack.malformed")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def length(self, n: int, shortest_from: int, limit: int | None) -> int:
        """A length field of ``n`` bytes: over ``limit`` is refused at once, under ``shortest_from`` noted."""
        value = self.uint(n)
        if limit is not None and value > limit:
            raise OutsiderError("msgpack.limit_exceeded")
        if value < shortest_from:
            self.canonical = False
        return value

    def payload(self, n: int, limit: int) -> bytes:
        """A str, bin or ext payload: its bytes must all be there before its length is held against ``limit``."""
        data = self.take(n)
        if n > limit:
            raise OutsiderError("msgpack.limit_exceeded")
        return data


_STR_FORMS = {0xD9: (1, 32), 0xDA: (2, 256), 0xDB: (4, 65536)}
_BIN_FORMS = {0xC4: (1, 0), 0xC5: (2, 256), 0xC6: (4, 65536)}
_ARRAY_FORMS = {0xDC: (2, 16), 0xDD: (4, 65536)}
_MAP_FORMS = {0xDE: (2, 16), 0xDF: (4, 65536)}
_UINT_FLOOR = {1: 128, 2: 256, 4: 65536, 8: 1 << 32}
_INT_CEILING = {1: -32, 2: -128, 4: -32768, 8: -(1 << 31)}


def _decode(r: _Reader, nesting: int) -> Any:
    if nesting > _READ_NESTING:
        raise OutsiderError("msgpack.limit_exceeded")
    b = r.uint(1)
    if b <= 0x7F:
        return b
    if b >= 0xE0:
        return b - 0x100
    if b == 0xC0:
        return None
    if b in (0xC2, 0xC3):
        return b == 0xC3
    if 0xCC <= b <= 0xCF:
        size = 1 << (b - 0xCC)
        v = r.uint(size)
        if v < _UINT_FLOOR[size]:
            r.canonical = False
        return v
    if 0xD0 <= b <= 0xD3:
        size = 1 << (b - 0xD0)
        v = int.from_bytes(r.take(size), "big", signed=True)
        if v >= _INT_CEILING[size]:  # a non-negative or small value has a shorter form
            r.canonical = False
        return v
    if b in (0xCA, 0xCB):
        r.take(4 if b == 0xCA else 8)
        return _Float()
    if 0xA0 <= b <= 0xBF or b in _STR_FORMS:
        n = b - 0xA0 if b <= 0xBF else r.length(*_STR_FORMS[b], None)
        raw = r.payload(n, r.limits.str_bytes)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OutsiderError("msgpack.malformed") from None
    if b in _BIN_FORMS:
        return bytes(r.payload(r.length(*_BIN_FORMS[b], None), r.limits.bin_bytes))
    if 0x90 <= b <= 0x9F or b in _ARRAY_FORMS:
        n = b - 0x90 if b <= 0x9F else r.length(*_ARRAY_FORMS[b], r.limits.array)
        return [_decode(r, nesting + 1) for _ in range(n)]
    if 0x80 <= b <= 0x8F or b in _MAP_FORMS:
        n = b - 0x80 if b <= 0x8F else r.length(*_MAP_FORMS[b], r.limits.map)
        if n > r.limits.map:  # a fixmap may hold more entries than a small limit
            raise OutsiderError("msgpack.limit_exceeded")
        pairs = []
        for _ in range(n):
            key = _decode(r, nesting + 1)
            value = _decode(r, nesting + 1)
            if not isinstance(key, (str, bytes)):  # found once its value is read
                raise OutsiderError("msgpack.malformed")
            pairs.append((key, value))
        out: dict[str, Any] = {}
        previous = ""
        for key, value in pairs:  # once the map's last value is read, key by key
            if isinstance(key, bytes):
                raise OutsiderError("msgpack.malformed")
            if key in out:
                raise OutsiderError("msgpack.duplicate_key")
            if key.encode("utf-8") < previous.encode("utf-8"):
                r.canonical = False
            out[key] = value
            previous = key
        return out
    if b in (0xC7, 0xC8, 0xC9) or 0xD4 <= b <= 0xD8:
        # fixext 1-16, or ext 8/16/32, whose length counts against the bin limit
        n = 1 << (b - 0xD4) if b >= 0xD4 else r.length({0xC7: 1, 0xC8: 2, 0xC9: 4}[b], 0, None)
        ext_type = r.take(1)[0]
        data = r.payload(n, r.limits.bin_bytes) if b < 0xD4 else r.take(n)
        if ext_type == 0xFF and n in (4, 8, 12):
            # the timestamp extension (type -1) is read as a value, and refused in the walk like a float
            nanoseconds = 0 if n == 4 else (int.from_bytes(data[:4], "big") >> (2 if n == 8 else 0))
            if nanoseconds < 10**9:
                return _Float()
    # 0xC1 (never used) and the extension types
    raise OutsiderError("msgpack.malformed")


def _walk(value: Any, depth: int, limit: int) -> None:
    if depth > limit:
        raise OutsiderError("msgpack.limit_exceeded")
    if isinstance(value, _Float):
        raise OutsiderError("msgpack.malformed")
    if isinstance(value, list):
        for item in value:
            _walk(item, depth + 1, limit)
    elif isinstance(value, dict):
        for item in value.values():
            _walk(item, depth + 1, limit)


def decode_canonical(data: bytes, limits: Limits) -> Any:
    """§2.2: one canonical value within ``limits``, failures reported in the section's order."""
    r = _Reader(data, limits)
    value = _decode(r, 0)
    if r.pos != len(data):
        raise OutsiderError("msgpack.trailing_bytes")
    _walk(value, 0, limits.depth)
    if not r.canonical:
        raise OutsiderError("msgpack.not_canonical")
    return value


def encode_canonical(value: Any) -> bytes:
    """The one canonical encoding of envelope.md §2.2 (for the sealer)."""
    if value is None:
        return b"\xc0"
    if value is False:
        return b"\xc2"
    if value is True:
        return b"\xc3"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack(">b", value)
        if value > 0:
            for tag, size, limit in ((0xCC, 1, 1 << 8), (0xCD, 2, 1 << 16), (0xCE, 4, 1 << 32), (0xCF, 8, 1 << 64)):
                if value < limit:
                    return bytes([tag]) + value.to_bytes(size, "big")
        for tag, size in ((0xD0, 1), (0xD1, 2), (0xD2, 4), (0xD3, 8)):
            if value >= -(1 << (8 * size - 1)):
                return bytes([tag]) + value.to_bytes(size, "big", signed=True)
        raise ValueError("integer out of range")
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _sized(len(raw), 0xA0, 31, (0xD9, 0xDA, 0xDB)) + raw
    if isinstance(value, bytes):
        n = len(value)
        if n < 256:
            return bytes([0xC4, n]) + value
        return (b"\xc5" + struct.pack(">H", n) if n < 65536 else b"\xc6" + struct.pack(">I", n)) + value
    if isinstance(value, list):
        return _sized(len(value), 0x90, 15, (None, 0xDC, 0xDD)) + b"".join(encode_canonical(v) for v in value)
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-8"))
        body = b"".join(encode_canonical(k) + encode_canonical(v) for k, v in items)
        return _sized(len(items), 0x80, 15, (None, 0xDE, 0xDF)) + body
    raise TypeError(type(value).__name__)


def _sized(n: int, fix: int, fix_max: int, tags: tuple[int | None, int, int]) -> bytes:
    if n <= fix_max:
        return bytes([fix + n])
    if tags[0] is not None and n < 256:
        return bytes([tags[0], n])
    if n < 65536:
        return bytes([tags[1]]) + struct.pack(">H", n)
    return bytes([tags[2]]) + struct.pack(">I", n)


# --- envelope constants (envelope.md §2.1, §3, §8.3) ---------------------------------------------------------

MAGIC = b"\x89SAT\r\n\x1a\n"
VERSION = 1
SUITE = 1
ENC_LENGTH = 1168
SIG_PURPOSE = b"satchel/v1/envelope"
MANIFEST_PURPOSE = b"satchel/v1/manifest"
HPKE_INFO = b"satchel/v1/envelope/hpke"
SALT_PURPOSE = b"satchel/v1/envelope/argon2id-salt"
PAYLOAD_KEY_INFO = b"satchel/v1/envelope/payload-key"
KEY_CHECK_INFO = b"satchel/v1/envelope/key-check"
CONTENT_TYPE = "application/vnd.satchel.records;v=1"
KINDS = ("transfer", "release", "import")

DEFAULT_POLICY = {
    "max_header_length": 4096,
    "max_chunk_size": 4 << 20,
    "max_manifest_length": 8 << 20,
    "max_payload_length": 64 << 30,
    "min_argon2_t": 3,
    "min_argon2_m": 65536,
    "max_argon2_t": 8,
    "max_argon2_m": 1 << 20,
    "clock_skew": 300,
}


# --- HKDF (RFC 5869), HPKE (RFC 9180) with X-Wing ------------------------------------------------------------


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


XWING_KEM_ID = 0x647A
XWING_LABEL = b"\\.//^\\"
_HPKE_SUITE_ID = b"HPKE" + struct.pack(">HHH", XWING_KEM_ID, 0x0001, 0x0003)


def _labeled_extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hkdf_extract(salt, b"HPKE-v1" + _HPKE_SUITE_ID + label + ikm)


def _labeled_expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return hkdf_expand(prk, struct.pack(">H", length) + b"HPKE-v1" + _HPKE_SUITE_ID + label + info, length)


def _hpke_key_and_nonce(shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
    psk_id_hash = _labeled_extract(b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash  # mode_base
    secret = _labeled_extract(shared_secret, b"secret", b"")
    return _labeled_expand(secret, b"key", context, 32), _labeled_expand(secret, b"base_nonce", context, 12)


def _xwing_combine(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    # The label last: §8.3 named X-Wing without a draft (the combiner changed between them); it is now written out.
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()


@dataclass(frozen=True)
class RecipientKey:
    """The 96-byte secret of envelope.md §10: ML-KEM-768 seed d || z, then the X25519 private key."""

    secret: bytes

    @property
    def mlkem(self) -> mlkem.MLKEM768PrivateKey:
        return mlkem.MLKEM768PrivateKey.from_seed_bytes(self.secret[:64])

    @property
    def x25519(self) -> x25519.X25519PrivateKey:
        return x25519.X25519PrivateKey.from_private_bytes(self.secret[64:96])

    def public_bytes(self) -> bytes:
        return self.mlkem.public_key().public_bytes_raw() + self.x25519.public_key().public_bytes_raw()


def xwing_decapsulate(key: RecipientKey, enc: bytes) -> dict[str, bytes]:
    """§8.3 Decap, with its steps named as the vectors' ``intermediate`` names them."""
    ct_m, ct_x = enc[:1088], enc[1088:1120]
    ss_m = key.mlkem.decapsulate(ct_m)
    ss_x = key.x25519.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    shared = _xwing_combine(ss_m, ss_x, ct_x, key.x25519.public_key().public_bytes_raw())
    return {"xwing_ss_mlkem": ss_m, "xwing_ss_x25519": ss_x, "kem_shared_secret": shared}


def hpke_open(key: RecipientKey, encapsulation: bytes, info: bytes) -> bytes:
    shared = xwing_decapsulate(key, encapsulation[:1120])["kem_shared_secret"]
    aead_key, nonce = _hpke_key_and_nonce(shared, info)
    return ChaCha20Poly1305(aead_key).decrypt(nonce, encapsulation[1120:], b"")


def hpke_seal(public: bytes, plaintext: bytes, info: bytes) -> bytes:
    pk_m = mlkem.MLKEM768PublicKey.from_public_bytes(public[:1184])
    pk_x = x25519.X25519PublicKey.from_public_bytes(public[1184:])
    ss_m, ct_m = pk_m.encapsulate()
    eph = x25519.X25519PrivateKey.generate()
    ct_x = eph.public_key().public_bytes_raw()
    shared = _xwing_combine(ss_m, eph.exchange(pk_x), ct_x, public[1184:])
    aead_key, nonce = _hpke_key_and_nonce(shared, info)
    return ct_m + ct_x + ChaCha20Poly1305(aead_key).encrypt(nonce, plaintext, b"")


# --- secretstream, from envelope.md §6 "For implementers without libsodium" ----------------------------------

TAG_MESSAGE = 0x00
TAG_FINAL = 0x03
_MASK = 0xFFFFFFFF


def _rotl(v: int, n: int) -> int:
    return ((v << n) & _MASK) | (v >> (32 - n))


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a: int, b: int, c: int, d: int) -> None:
        s[a] = (s[a] + s[b]) & _MASK
        s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & _MASK
        s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & _MASK
        s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & _MASK
        s[b] = _rotl(s[b] ^ s[c], 7)

    for _ in range(10):  # a column round, then a diagonal round
        for a, b, c, d in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15)):
            qr(a, b, c, d)
        for a, b, c, d in ((0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)):
            qr(a, b, c, d)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def _chacha20(key: bytes, nonce12: bytes, block_counter: int, data: bytes) -> bytes:
    nonce16 = struct.pack("<I", block_counter) + nonce12
    return Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor().update(data)


def _pad16(n: int) -> bytes:
    return b"\x00" * (-n % 16)


class SecretStream:
    """One direction of crypto_secretstream_xchacha20poly1305, with empty additional data."""

    def __init__(self, key: bytes, header: bytes) -> None:
        self.k = hchacha20(key, header[:16])
        self.counter = 1
        self.inonce = header[16:24]

    def _nonce(self) -> bytes:
        return struct.pack("<I", self.counter) + self.inonce

    def _mac(self, nonce: bytes, block: bytes, ciphertext: bytes) -> bytes:
        poly_key = _chacha20(self.k, nonce, 0, b"\x00" * 64)[:32]
        # len(message) mod 16 zero bytes, libsodium's padding: §6 used to say "up to a multiple of 16", which
        # opened only messages whose length is a multiple of 16 (the first thing this implementation hit).
        data = block + ciphertext + b"\x00" * (len(ciphertext) % 16) + struct.pack("<QQ", 0, 64 + len(ciphertext))
        return poly1305.Poly1305.generate_tag(poly_key, data)

    def _advance(self, mac: bytes, tag: int) -> None:
        self.inonce = bytes(a ^ b for a, b in zip(self.inonce, mac[:8], strict=True))
        self.counter = (self.counter + 1) & _MASK
        if self.counter == 0 or tag & 0x02:
            rekeyed = _chacha20(self.k, self._nonce(), 0, self.k + self.inonce)
            self.k, self.inonce, self.counter = rekeyed[:32], rekeyed[32:40], 1

    def push(self, message: bytes, tag: int) -> bytes:
        nonce = self._nonce()
        block = _chacha20(self.k, nonce, 1, bytes([tag]) + b"\x00" * 63)
        ciphertext = _chacha20(self.k, nonce, 2, message)
        mac = self._mac(nonce, block, ciphertext)
        self._advance(mac, tag)
        return block[:1] + ciphertext + mac

    def pull(self, sealed: bytes) -> tuple[bytes, int]:
        if len(sealed) < 17:
            raise OutsiderError("envelope.corrupt")
        nonce = self._nonce()
        keystream = _chacha20(self.k, nonce, 1, b"\x00" * 64)
        tag = sealed[0] ^ keystream[0]
        block = sealed[:1] + keystream[1:]
        ciphertext, mac = sealed[1:-16], sealed[-16:]
        if not hmac.compare_digest(self._mac(nonce, block, ciphertext), mac):
            raise OutsiderError("envelope.corrupt")
        message = _chacha20(self.k, nonce, 2, ciphertext)
        self._advance(mac, tag)
        return message, tag


# --- the header map (envelope.md §4) and the manifest (§5) ---------------------------------------------------


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


HEADER_KEYS = [
    "argon2id_m", "argon2id_t", "chunk_size", "content_type", "created", "envelope_id", "expires", "kind",
    "manifest_length", "payload_digest", "payload_length", "recipient_domain", "recipient_key_id",
]
_I63 = (1 << 63) - 1
_U32 = (1 << 32) - 1


def check_header(h: Any) -> dict[str, Any]:
    """§7 #10 (envelope.malformed) then #11."""

    def bad() -> OutsiderError:
        return OutsiderError("envelope.malformed")

    if not isinstance(h, dict) or sorted(h) != HEADER_KEYS:
        raise bad()
    if not (_is_int(h["argon2id_m"], 8, _U32) and _is_int(h["argon2id_t"], 1, _U32)):
        raise bad()
    cs = h["chunk_size"]
    if not _is_int(cs, 1 << 10, 1 << 24) or cs & (cs - 1):
        raise bad()
    if not _is_int(h["created"], 0, _I63) or not _is_int(h["expires"], h["created"] + 1, _I63):
        raise bad()
    if not (isinstance(h["envelope_id"], bytes) and len(h["envelope_id"]) == 16):
        raise bad()
    if h["kind"] not in KINDS or not isinstance(h["kind"], str):
        raise bad()
    if not _is_int(h["manifest_length"], 1, _U32):
        raise bad()
    if not (isinstance(h["payload_digest"], bytes) and len(h["payload_digest"]) == 32):
        raise bad()
    if not _is_int(h["payload_length"], 64 + h["manifest_length"], _I63):
        raise bad()
    if not isinstance(h["content_type"], str) or not 1 <= len(h["content_type"]) <= 128:
        raise bad()
    if not isinstance(h["recipient_domain"], str) or not is_domain(h["recipient_domain"]):
        raise bad()
    if not isinstance(h["recipient_key_id"], str) or not is_key_id(h["recipient_key_id"]):
        raise bad()
    if h["content_type"] != CONTENT_TYPE:
        raise OutsiderError("envelope.unsupported_content_type")
    return h


_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
_CONTROL_TEXT = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")

MANIFEST_KEYS = [
    "created", "format", "notes", "recipient_domain", "recipient_owner", "records", "sender_domain",
    "sender_key_id", "students",
]
STUDENT_KEYS = [
    "birth_date", "email", "family_name", "given_name", "grade", "middle_name", "recipient_sis_id", "school",
    "sex", "sis_id", "state_id", "username",
]
RECORD_KEYS = [
    "corrects", "document_type", "id", "kind", "length", "media_type", "metadata", "sha256", "student", "title",
]


def _malformed() -> OutsiderError:
    return OutsiderError("manifest.malformed")


def _text(v: Any, lo: int, hi: int, *, optional: bool = False, free: bool = False) -> None:
    if v is None and optional:
        return
    if not isinstance(v, str) or not lo <= len(v) <= hi:
        raise _malformed()
    if (_CONTROL_TEXT if free else _CONTROL).search(v):
        raise _malformed()


def _metadata_value(v: Any, depth: int) -> None:
    if v is None or isinstance(v, bool):
        return
    if isinstance(v, int):
        if not -(1 << 63) <= v <= _I63:
            raise _malformed()
        return
    if isinstance(v, str):
        _text(v, 0, 4096, free=True)
        return
    if isinstance(v, (list, dict)):
        if depth >= 2 or len(v) > 256:
            raise _malformed()
        if isinstance(v, dict):
            for k, item in v.items():
                _text(k, 1, 64)
                _metadata_value(item, depth + 1)
        else:
            for item in v:
                _metadata_value(item, depth + 1)
        return
    raise _malformed()


def check_manifest(m: Any) -> dict[str, Any]:
    """§5.1: every rule, manifest.malformed on the first break."""
    if not isinstance(m, dict) or sorted(m) != MANIFEST_KEYS:
        raise _malformed()
    if not _is_int(m["created"], 0, _I63) or not _is_int(m["format"], 1, 1):
        raise _malformed()
    _text(m["notes"], 0, 65536, free=True)
    for name, syntax in (("recipient_domain", is_domain), ("sender_domain", is_domain), ("sender_key_id", is_key_id)):
        if not isinstance(m[name], str) or not syntax(m[name]):
            raise _malformed()
    _text(m["recipient_owner"], 1, 200, optional=True)
    if not isinstance(m["students"], list) or not isinstance(m["records"], list):
        raise _malformed()
    sis_ids: set[str] = set()
    for s in m["students"]:
        if not isinstance(s, dict) or sorted(s) != STUDENT_KEYS:
            raise _malformed()
        _text(s["birth_date"], 10, 10)
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", s["birth_date"]):
            raise _malformed()
        try:
            date.fromisoformat(s["birth_date"])
        except ValueError:
            raise _malformed() from None
        for name, hi in (("family_name", 200), ("given_name", 200), ("sis_id", 128)):
            _text(s[name], 1, hi)
        for name, hi in (
            ("email", 200), ("grade", 64), ("middle_name", 200), ("recipient_sis_id", 128), ("school", 200),
            ("sex", 64), ("state_id", 128), ("username", 128),
        ):
            _text(s[name], 1, hi, optional=True)
        if s["sis_id"] in sis_ids:
            raise _malformed()
        sis_ids.add(s["sis_id"])
    ids: set[str] = set()
    for r in m["records"]:
        if not isinstance(r, dict) or sorted(r) != RECORD_KEYS:
            raise _malformed()
        _text(r["id"], 1, 128)
        if r["id"] in ids:
            raise _malformed()
        ids.add(r["id"])
        if r["kind"] not in ("document", "case", "assessment") or not isinstance(r["kind"], str):
            raise _malformed()
        _text(r["corrects"], 1, 128, optional=True)
        if not isinstance(r["student"], str) or r["student"] not in sis_ids:
            raise _malformed()
        if not isinstance(r["metadata"], dict) or len(r["metadata"]) > 256:
            raise _malformed()
        for k, v in r["metadata"].items():
            _text(k, 1, 64)
            _metadata_value(v, 0)
        if r["kind"] == "document":
            if not _is_int(r["length"], 0, 1 << 40):
                raise _malformed()
            _text(r["media_type"], 1, 128)
            _text(r["title"], 1, 200)
            _text(r["document_type"], 1, 64, optional=True)
            if not (isinstance(r["sha256"], bytes) and len(r["sha256"]) == 32):
                raise _malformed()
        elif any(r[k] is not None for k in ("length", "media_type", "title", "document_type", "sha256")):
            raise _malformed()
    return m


# --- opening (envelope.md §8.2) ------------------------------------------------------------------------------


@dataclass
class Opened:
    header: dict[str, Any]
    manifest: dict[str, Any]
    manifest_bytes: bytes
    manifest_signature: bytes
    documents: list[bytes]
    chunk_count: int
    intermediate: dict[str, bytes] = field(default_factory=dict)


def code_key(code: str, envelope_id: bytes, t: int, m_kib: int) -> tuple[bytes, bytes]:
    salt = hashlib.blake2b(SALT_PURPOSE + b"\x00" + envelope_id, digest_size=16).digest()
    return salt, argon2id(code.encode("ascii"), salt, t=t, m_kib=m_kib)


def _hkdf_salt(preamble: bytes, encapsulation: bytes) -> bytes:
    return hashlib.sha256(preamble + struct.pack(">H", len(encapsulation)) + encapsulation).digest()


def _verify(public: bytes, purpose: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, purpose + b"\x00" + message)
    except InvalidSignature:
        return False
    return True


class _Prefix:
    """Reads the prefix field by field: the data ending inside it is envelope.truncated (§7 #7)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise OutsiderError("envelope.truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def open_envelope(
    data: bytes,
    *,
    code: str,
    sender_public_key: bytes,
    sender_key_id: str,
    recipient_secret_key: bytes,
    recipient_key_id: str,
    recipient_domain: str,
    now: int,
    policy: dict[str, int] | None = None,
) -> Opened:
    policy = {**DEFAULT_POLICY, **(policy or {})}
    canonical_code = parse_code(code)
    p = _Prefix(data)
    # steps 1-4; §7 #1-#7 in order
    if data[: len(MAGIC)] != MAGIC[: min(len(data), len(MAGIC))]:
        raise OutsiderError("envelope.malformed")
    p.take(len(MAGIC))
    if p.take(1)[0] != VERSION:
        raise OutsiderError("envelope.unsupported_version")
    if p.take(1)[0] != SUITE:
        raise OutsiderError("envelope.unsupported_suite")
    d = p.take(1)[0]
    if not 1 <= d <= 253:
        raise OutsiderError("envelope.malformed")
    sender_domain = p.take(d).decode("latin-1")
    if not is_domain(sender_domain):
        raise OutsiderError("envelope.malformed")
    k = p.take(1)[0]
    if not 1 <= k <= 64:
        raise OutsiderError("envelope.malformed")
    framed_key_id = p.take(k).decode("latin-1")
    if not is_key_id(framed_key_id):
        raise OutsiderError("envelope.malformed")
    h = int.from_bytes(p.take(2), "big")
    if h == 0:
        raise OutsiderError("envelope.malformed")
    if h > policy["max_header_length"]:
        raise OutsiderError("envelope.too_large")
    header_bytes = p.take(h)
    preamble = data[: p.pos]
    e = int.from_bytes(p.take(2), "big")
    if e != ENC_LENGTH:
        raise OutsiderError("envelope.malformed")
    encapsulation = p.take(e)
    stream_header = p.take(24)
    key_check = p.take(16)
    signed = data[: p.pos]
    signature = p.take(64)
    # steps 5-6: the caller resolved the key by (domain, key id); #8
    if sender_key_id != framed_key_id or not _verify(sender_public_key, SIG_PURPOSE, signed, signature):
        raise OutsiderError("envelope.signature_invalid")
    # steps 7-11
    header = check_header(decode_canonical(header_bytes, HEADER_LIMITS))
    if header["recipient_domain"] != recipient_domain or header["recipient_key_id"] != recipient_key_id:
        raise OutsiderError("envelope.not_recipient")
    if (
        header["chunk_size"] > policy["max_chunk_size"]
        or header["manifest_length"] > policy["max_manifest_length"]
        or header["payload_length"] > policy["max_payload_length"]
    ):
        raise OutsiderError("envelope.too_large")
    t, m = header["argon2id_t"], header["argon2id_m"]
    if t < max(1, policy["min_argon2_t"]) or m < max(8, policy["min_argon2_m"]):
        raise OutsiderError("envelope.weak_kdf_params")
    if t > policy["max_argon2_t"] or m > policy["max_argon2_m"]:
        raise OutsiderError("envelope.excessive_kdf_params")
    if header["created"] > now + policy["clock_skew"]:
        raise OutsiderError("envelope.not_yet_valid")
    if now >= header["expires"]:
        raise OutsiderError("envelope.expired")
    # steps 13-16
    salt, ck = code_key(canonical_code, header["envelope_id"], t, m)
    info = HPKE_INFO + b"\x00" + hashlib.sha256(preamble).digest()
    try:
        hpke_secret = hpke_open(RecipientKey(recipient_secret_key), encapsulation, info)
        decapsulated = True
    except (InvalidTag, ValueError):
        hpke_secret, decapsulated = b"", False
    hkdf_salt = _hkdf_salt(preamble, encapsulation)
    prk = hkdf_extract(hkdf_salt, hpke_secret + ck)
    payload_key = hkdf_expand(prk, PAYLOAD_KEY_INFO, 32)
    expected_check = hkdf_expand(prk, KEY_CHECK_INFO, 16)
    if not (hmac.compare_digest(expected_check, key_check) and decapsulated):
        raise OutsiderError("envelope.wrong_code_or_key")
    intermediate = {
        "hpke_info": info, **xwing_decapsulate(RecipientKey(recipient_secret_key), encapsulation[:1120]),
        "hpke_secret": hpke_secret, "argon2id_salt": salt, "code_key": ck, "hkdf_salt": hkdf_salt, "prk": prk,
        "payload_key": payload_key, "key_check": expected_check,
    }
    # steps 17-20
    body = data[p.pos :]
    opened = _read_payload(body, header, sender_domain, framed_key_id, sender_public_key, payload_key, stream_header)
    opened.intermediate = intermediate
    return opened


def _read_payload(
    body: bytes,
    header: dict[str, Any],
    sender_domain: str,
    sender_key_id: str,
    sender_public_key: bytes,
    payload_key: bytes,
    stream_header: bytes,
) -> Opened:
    chunk_size, payload_length = header["chunk_size"], header["payload_length"]
    manifest_end = 64 + header["manifest_length"]
    n = -(-payload_length // chunk_size)
    stream = SecretStream(payload_key, stream_header)
    pos = 0
    head = b""  # manifest signature and manifest, until complete
    manifest: dict[str, Any] | None = None
    manifest_bytes = signature = b""
    documents: list[bytes] = []
    pending: list[tuple[int, bytes]] = []  # (length, sha256) of the documents still to come
    current = bytearray()
    for i in range(n):
        plain_len = min(chunk_size, payload_length - i * chunk_size)
        sealed = body[pos : pos + plain_len + 17]
        if len(sealed) < plain_len + 17:
            raise OutsiderError("envelope.truncated")
        pos += plain_len + 17
        plain, tag = stream.pull(sealed)
        if tag != (TAG_FINAL if i == n - 1 else TAG_MESSAGE):
            raise OutsiderError("envelope.corrupt")
        if manifest is None:
            take = min(len(plain), manifest_end - len(head))
            head += plain[:take]
            plain = plain[take:]
            if len(head) == manifest_end:
                signature, manifest_bytes = head[:64], head[64:]
                manifest = _check_manifest_block(
                    manifest_bytes, signature, header, sender_domain, sender_key_id, sender_public_key
                )
                pending = [(r["length"], r["sha256"]) for r in manifest["records"] if r["kind"] == "document"]
                _close_finished(current, pending, documents)
        while plain:
            length, _ = pending[0]
            take = min(len(plain), length - len(current))
            current += plain[:take]
            plain = plain[take:]
            _close_finished(current, pending, documents)
    if pos != len(body):
        raise OutsiderError("envelope.trailing_bytes")
    assert manifest is not None and not pending
    return Opened(
        header=header, manifest=manifest, manifest_bytes=manifest_bytes, manifest_signature=signature,
        documents=documents, chunk_count=n,
    )


def _close_finished(current: bytearray, pending: list[tuple[int, bytes]], documents: list[bytes]) -> None:
    # zero-length documents finish as soon as they start
    while pending and len(current) == pending[0][0]:
        if hashlib.sha256(current).digest() != pending[0][1]:
            raise OutsiderError("envelope.document_digest_mismatch")
        documents.append(bytes(current))
        current.clear()
        pending.pop(0)


def _check_manifest_block(
    manifest_bytes: bytes,
    signature: bytes,
    header: dict[str, Any],
    sender_domain: str,
    sender_key_id: str,
    sender_public_key: bytes,
) -> dict[str, Any]:
    # §7 #21-#24, #23a between #23 and #24
    if hashlib.sha256(manifest_bytes).digest() != header["payload_digest"]:
        raise OutsiderError("envelope.manifest_mismatch")
    if not _verify(sender_public_key, MANIFEST_PURPOSE, manifest_bytes, signature):
        raise OutsiderError("manifest.signature_invalid")
    manifest = check_manifest(decode_canonical(manifest_bytes, MANIFEST_LIMITS))
    # #23a: §7 used to list this under both #22 and #24, with different codes; Satchel checks it here.
    if manifest["sender_key_id"] != sender_key_id:
        raise OutsiderError("manifest.signature_invalid")
    if manifest["sender_domain"] != sender_domain or manifest["recipient_domain"] != header["recipient_domain"]:
        raise OutsiderError("envelope.manifest_mismatch")
    total = sum(r["length"] for r in manifest["records"] if r["kind"] == "document")
    if total != header["payload_length"] - 64 - header["manifest_length"]:
        raise OutsiderError("envelope.manifest_mismatch")
    return manifest


# --- sealing (envelope.md §8.1) ------------------------------------------------------------------------------


def seal_envelope(
    *,
    manifest: dict[str, Any],
    documents: list[bytes],
    sender_key: Ed25519PrivateKey,
    sender_domain: str,
    sender_key_id: str,
    recipient_public_key: bytes,
    recipient_domain: str,
    recipient_key_id: str,
    code: str,
    now: int,
    expires: int,
    kind: str = "transfer",
    argon2_t: int = 3,
    argon2_m: int = 256 * 1024,
    chunk_size: int = 65536,
) -> bytes:
    if not (
        manifest["sender_domain"] == sender_domain
        and manifest["sender_key_id"] == sender_key_id
        and manifest["recipient_domain"] == recipient_domain
        and now < expires
    ):
        raise ValueError("the manifest does not name this sender and recipient, or the envelope expired")
    manifest_bytes = encode_canonical(manifest)
    manifest_signature = sender_key.sign(MANIFEST_PURPOSE + b"\x00" + manifest_bytes)
    envelope_id = (now * 1000).to_bytes(6, "big") + os.urandom(10)
    payload = manifest_signature + manifest_bytes + b"".join(documents)
    header = {
        "argon2id_m": argon2_m, "argon2id_t": argon2_t, "chunk_size": chunk_size, "content_type": CONTENT_TYPE,
        "created": now, "envelope_id": envelope_id, "expires": expires, "kind": kind,
        "manifest_length": len(manifest_bytes), "payload_digest": hashlib.sha256(manifest_bytes).digest(),
        "payload_length": len(payload), "recipient_domain": recipient_domain, "recipient_key_id": recipient_key_id,
    }
    header_bytes = encode_canonical(header)
    domain, key_id = sender_domain.encode("ascii"), sender_key_id.encode("ascii")
    preamble = (
        MAGIC + bytes([VERSION, SUITE, len(domain)]) + domain + bytes([len(key_id)]) + key_id
        + struct.pack(">H", len(header_bytes)) + header_bytes
    )
    hpke_secret = os.urandom(32)
    info = HPKE_INFO + b"\x00" + hashlib.sha256(preamble).digest()
    encapsulation = hpke_seal(recipient_public_key, hpke_secret, info)
    _, ck = code_key(parse_code(code), envelope_id, argon2_t, argon2_m)
    prk = hkdf_extract(_hkdf_salt(preamble, encapsulation), hpke_secret + ck)
    payload_key = hkdf_expand(prk, PAYLOAD_KEY_INFO, 32)
    stream_header = os.urandom(24)
    signed = (
        preamble + struct.pack(">H", len(encapsulation)) + encapsulation + stream_header
        + hkdf_expand(prk, KEY_CHECK_INFO, 16)
    )
    out = [signed, sender_key.sign(SIG_PURPOSE + b"\x00" + signed)]
    stream = SecretStream(payload_key, stream_header)
    n = -(-len(payload) // chunk_size)
    for i in range(n):
        tag = TAG_FINAL if i == n - 1 else TAG_MESSAGE
        out.append(stream.push(payload[i * chunk_size : (i + 1) * chunk_size], tag))
    return b"".join(out)
