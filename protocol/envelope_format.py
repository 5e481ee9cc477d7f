"""The envelope's bytes: binary framing, the signed header map, limits and receiver checks. Sans-IO.

Implements spec/envelope.md §3 (layout), §4 (header map), §6 (chunk arithmetic) and the non-cryptographic
checks of §7 (what a receiver MUST reject). Cryptography lives in ``crypto``; this module only turns bytes
into values and values into bytes, and checks values against a receiver's :class:`OpenPolicy`.

The framing in front of the header map is fixed binary on purpose: a receiver reads the sender's domain
and key id, the lengths and the signature from it without running a msgpack parser on unsigned bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from protocol.envelope_errors import (
    EnvelopeExcessiveKdfParams,
    EnvelopeExpired,
    EnvelopeMalformed,
    EnvelopeManifestMismatch,
    EnvelopeNotRecipient,
    EnvelopeNotYetValid,
    EnvelopeTooLarge,
    EnvelopeTruncated,
    EnvelopeUnsupportedContent,
    EnvelopeUnsupportedSuite,
    EnvelopeUnsupportedVersion,
    EnvelopeWeakKdfParams,
)
from protocol.errors import InvalidInput
from protocol.ids import parse_ulid, ulid
from protocol.manifest import DEFAULT_MAX_MANIFEST_LENGTH, DOMAIN_RE, KEY_ID_RE, Manifest
from protocol.msgpack_strict import MsgpackLimits, pack_canonical, unpack_strict

# spec/envelope.md §3
MAGIC = b"\x89SAT\r\n\x1a\n"
VERSION = 1
SUITE_MLKEM768_X25519 = 0x01
SUITE_NAMES = {SUITE_MLKEM768_X25519: "MLKEM768-X25519/HKDF-SHA256/ChaCha20Poly1305"}
ENCAPSULATION_LENGTH = {SUITE_MLKEM768_X25519: 1120 + 32 + 16}
STREAM_HEADER_LENGTH = 24
KEY_CHECK_LENGTH = 16
SIGNATURE_LENGTH = 64
MAX_DOMAIN_LENGTH = 253
MAX_KEY_ID_LENGTH = 64
MAX_HEADER_LENGTH = 8192
# spec/envelope.md §4 and §6
CONTENT_TYPE_RECORDS = "application/vnd.satchel.records;v=1"
CHUNK_OVERHEAD = 17
MIN_CHUNK_SIZE = 1 << 10
MAX_CHUNK_SIZE = 1 << 24
MANIFEST_SIGNATURE_LENGTH = 64
ENVELOPE_KINDS = ("import", "release", "transfer")

_HEADER_KEYS = (
    "argon2id_m",
    "argon2id_t",
    "chunk_size",
    "content_type",
    "created",
    "envelope_id",
    "expires",
    "kind",
    "manifest_length",
    "payload_digest",
    "payload_length",
    "recipient_domain",
    "recipient_key_id",
)
_U32 = (1 << 32) - 1
_U63 = (1 << 63) - 1


def ulid_text(raw: bytes) -> str:
    """The 26-character Crockford form of a 16-byte ULID."""
    return ulid(int.from_bytes(raw[:6], "big"), raw[6:16])


def ulid_bytes(text: str) -> bytes:
    """The 16 bytes of a ULID written in canonical (uppercase) Crockford form."""
    try:
        millis, randomness = parse_ulid(text, field="envelope_id")
    except InvalidInput:
        raise EnvelopeMalformed("an envelope id is a 26-character ULID", field="envelope_id") from None
    return millis.to_bytes(6, "big") + randomness


def _bad(field_name: str, what: str) -> EnvelopeMalformed:
    return EnvelopeMalformed(f"envelope {field_name}: {what}", field=field_name)


def _check_int(value: Any, name: str, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise _bad(name, f"must be an integer from {low} to {high}")


def check_domain(value: Any, name: str) -> None:
    """Raise unless ``value`` is a lowercase DNS name (spec §2.3)."""
    if type(value) is not str or not DOMAIN_RE.match(value):
        raise _bad(name, "must be a lowercase domain name")


def check_key_id(value: Any, name: str) -> None:
    """Raise unless ``value`` has the syntax of a Satchel key id (spec §2.3)."""
    if type(value) is not str or not KEY_ID_RE.match(value):
        raise _bad(name, "must be a key id of 1-64 characters a-z, 0-9 and '-'")


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """Argon2id v1.3 cost: ``time_cost`` passes over ``memory_kib`` KiB, one lane, 32-byte output."""

    time_cost: int
    memory_kib: int

    def __post_init__(self) -> None:
        _check_int(self.time_cost, "argon2id_t", 1, _U32)
        _check_int(self.memory_kib, "argon2id_m", 8, _U32)


DEFAULT_ARGON2 = Argon2Params(time_cost=3, memory_kib=256 * 1024)
_MIN_ARGON2 = Argon2Params(time_cost=3, memory_kib=64 * 1024)
_MAX_ARGON2 = Argon2Params(time_cost=8, memory_kib=1024 * 1024)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenPolicy:
    """What a receiver accepts. Defaults are the production values of spec/security.md §4."""

    min_argon2: Argon2Params = _MIN_ARGON2
    max_argon2: Argon2Params = _MAX_ARGON2
    max_header_length: int = 4096
    max_manifest_length: int = DEFAULT_MAX_MANIFEST_LENGTH
    max_payload_length: int = 64 << 30
    max_chunk_size: int = 4 << 20
    clock_skew: int = 300

    def __post_init__(self) -> None:
        _check_int(self.max_header_length, "max_header_length", 1, MAX_HEADER_LENGTH)
        _check_int(self.max_manifest_length, "max_manifest_length", 1, _U32)
        _check_int(self.max_payload_length, "max_payload_length", 1, _U63)
        _check_int(self.max_chunk_size, "max_chunk_size", MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
        _check_int(self.clock_skew, "clock_skew", 0, 86400)
        low, high = self.min_argon2, self.max_argon2
        if low.time_cost > high.time_cost or low.memory_kib > high.memory_kib:
            raise _bad("max_argon2", "must be at least min_argon2 in both time and memory")


DEFAULT_POLICY = OpenPolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeHeader:
    """Every signed field of an envelope: the binary framing's and the header map's."""

    version: int
    suite: int
    envelope_id: str
    kind: str
    sender_domain: str
    sender_key_id: str
    recipient_domain: str
    recipient_key_id: str
    created: int
    expires: int
    payload_length: int
    manifest_length: int
    payload_digest: bytes = field(repr=False)
    chunk_size: int
    argon2: Argon2Params
    content_type: str = CONTENT_TYPE_RECORDS

    def __post_init__(self) -> None:
        if self.version != VERSION:
            raise EnvelopeUnsupportedVersion("envelope version is not supported", field="version")
        if self.suite not in SUITE_NAMES:
            raise EnvelopeUnsupportedSuite("envelope cipher suite is not supported", field="suite")
        ulid_bytes(self.envelope_id)
        if self.kind not in ENVELOPE_KINDS:
            raise _bad("kind", "must be one of " + ", ".join(ENVELOPE_KINDS))
        check_domain(self.sender_domain, "sender_domain")
        check_domain(self.recipient_domain, "recipient_domain")
        check_key_id(self.sender_key_id, "sender_key_id")
        check_key_id(self.recipient_key_id, "recipient_key_id")
        _check_int(self.created, "created", 0, _U63)
        _check_int(self.expires, "expires", self.created + 1, _U63)
        _check_int(self.manifest_length, "manifest_length", 1, _U32)
        _check_int(
            self.payload_length, "payload_length", MANIFEST_SIGNATURE_LENGTH + self.manifest_length, _U63
        )
        if type(self.payload_digest) is not bytes or len(self.payload_digest) != 32:
            raise _bad("payload_digest", "must be 32 bytes")
        _check_int(self.chunk_size, "chunk_size", MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
        if self.chunk_size & (self.chunk_size - 1):
            raise _bad("chunk_size", "must be a power of two")
        if not isinstance(self.argon2, Argon2Params):
            raise _bad("argon2", "must be Argon2Params")
        if type(self.content_type) is not str or not 0 < len(self.content_type) <= 128:
            raise _bad("content_type", "must be a string of 1-128 characters")

    @property
    def envelope_id_bytes(self) -> bytes:
        return ulid_bytes(self.envelope_id)

    @property
    def chunk_count(self) -> int:
        return -(-self.payload_length // self.chunk_size)

    @property
    def body_length(self) -> int:
        """Bytes after the prefix: every chunk's ciphertext and tag."""
        return self.payload_length + CHUNK_OVERHEAD * self.chunk_count

    @property
    def documents_length(self) -> int:
        return self.payload_length - MANIFEST_SIGNATURE_LENGTH - self.manifest_length

    @property
    def envelope_length(self) -> int:
        """Length of the whole envelope in bytes (the header map encoding is canonical, hence unique)."""
        tail = (
            2 + ENCAPSULATION_LENGTH[self.suite] + STREAM_HEADER_LENGTH + KEY_CHECK_LENGTH + SIGNATURE_LENGTH
        )
        return len(encode_preamble(self)) + tail + self.body_length


def encode_header_map(header: EnvelopeHeader) -> bytes:
    """The canonical msgpack header map of spec §4."""
    return pack_canonical(
        {
            "argon2id_m": header.argon2.memory_kib,
            "argon2id_t": header.argon2.time_cost,
            "chunk_size": header.chunk_size,
            "content_type": header.content_type,
            "created": header.created,
            "envelope_id": header.envelope_id_bytes,
            "expires": header.expires,
            "kind": header.kind,
            "manifest_length": header.manifest_length,
            "payload_digest": header.payload_digest,
            "payload_length": header.payload_length,
            "recipient_domain": header.recipient_domain,
            "recipient_key_id": header.recipient_key_id,
        }
    )


def encode_preamble(header: EnvelopeHeader, header_map: bytes | None = None) -> bytes:
    """Bytes from the magic through the header map: what the HPKE ``info`` hashes (spec §3)."""
    body = encode_header_map(header) if header_map is None else header_map
    sender, key_id = header.sender_domain.encode(), header.sender_key_id.encode()
    return b"".join(
        (
            MAGIC,
            bytes((header.version, header.suite, len(sender))),
            sender,
            bytes((len(key_id),)),
            key_id,
            struct.pack(">H", len(body)),
            body,
        )
    )


def encode_encapsulation(encapsulation: bytes) -> bytes:
    """The encapsulation field: its length (u16) and bytes, which follow the preamble (spec §3)."""
    return struct.pack(">H", len(encapsulation)) + encapsulation


@dataclass(frozen=True, slots=True, kw_only=True)
class UnverifiedPrefix:
    """The framing of an envelope, read but NOT verified. Nothing here may be trusted before the signature."""

    version: int
    suite: int
    sender_domain: str
    sender_key_id: str
    header_map: bytes = field(repr=False)
    encapsulation: bytes = field(repr=False)
    stream_header: bytes = field(repr=False)
    key_check: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    signed_part: bytes = field(repr=False)
    preamble_length: int
    encapsulation_end: int
    length: int


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, name: str) -> bytes:
        if self.pos + n > len(self.data):
            raise EnvelopeTruncated(f"envelope ends inside its {name}", field=name)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self, name: str) -> int:
        return self.take(1, name)[0]

    def u16(self, name: str) -> int:
        return int.from_bytes(self.take(2, name), "big")


def _read_sender(cur: _Cursor) -> tuple[int, int, str, str]:
    data = cur.data
    if data[: len(MAGIC)] != MAGIC[: len(data)]:
        raise _bad("magic", "these bytes are not a Satchel envelope")
    cur.take(len(MAGIC), "magic")
    version = cur.byte("version")
    if version != VERSION:
        raise EnvelopeUnsupportedVersion(f"envelope version {version} is not supported", field="version")
    suite = cur.byte("suite")
    if suite not in SUITE_NAMES:
        raise EnvelopeUnsupportedSuite(f"envelope cipher suite {suite} is not supported", field="suite")
    names = []
    for name, limit in (("sender_domain", MAX_DOMAIN_LENGTH), ("sender_key_id", MAX_KEY_ID_LENGTH)):
        length = cur.byte(name)
        if not 1 <= length <= limit:
            raise _bad(name, f"length must be 1 to {limit}")
        raw = cur.take(length, name)
        text = raw.decode("ascii", errors="replace")
        (check_domain if name == "sender_domain" else check_key_id)(text, name)
        names.append(text)
    return version, suite, names[0], names[1]


def parse_unverified_sender(data: bytes) -> tuple[str, str]:
    """The (sender domain, sender key id) an envelope claims. Unverified: use it only to find the key."""
    _, _, domain, key_id = _read_sender(_Cursor(bytes(data[: 8 + 2 + 1 + MAX_DOMAIN_LENGTH + 1 + 64])))
    return domain, key_id


def parse_unverified_prefix(data: bytes, *, max_header_length: int) -> UnverifiedPrefix:
    """Split the framing of spec §3 out of ``data`` (the envelope's first bytes; more are ignored)."""
    cur = _Cursor(bytes(data))
    version, suite, sender_domain, sender_key_id = _read_sender(cur)
    header_length = cur.u16("header_length")
    if header_length == 0:
        raise _bad("header_length", "must not be zero")
    if header_length > max_header_length:
        raise EnvelopeTooLarge(f"the header map is longer than {max_header_length} bytes", field="header")
    header_map = cur.take(header_length, "header")
    preamble_length = cur.pos
    if cur.u16("encapsulation_length") != ENCAPSULATION_LENGTH[suite]:
        raise _bad("encapsulation_length", f"must be {ENCAPSULATION_LENGTH[suite]} for this suite")
    encapsulation = cur.take(ENCAPSULATION_LENGTH[suite], "encapsulation")
    encapsulation_end = cur.pos
    stream_header = cur.take(STREAM_HEADER_LENGTH, "stream_header")
    key_check = cur.take(KEY_CHECK_LENGTH, "key_check")
    signed_end = cur.pos
    signature = cur.take(SIGNATURE_LENGTH, "signature")
    return UnverifiedPrefix(
        version=version,
        suite=suite,
        sender_domain=sender_domain,
        sender_key_id=sender_key_id,
        header_map=header_map,
        encapsulation=encapsulation,
        stream_header=stream_header,
        key_check=key_check,
        signature=signature,
        signed_part=cur.data[:signed_end],
        preamble_length=preamble_length,
        encapsulation_end=encapsulation_end,
        length=cur.pos,
    )


def max_prefix_length(policy: OpenPolicy = DEFAULT_POLICY) -> int:
    """The longest prefix a receiver with ``policy`` accepts; reading this many bytes always suffices."""
    fixed = len(MAGIC) + 3 + MAX_DOMAIN_LENGTH + 1 + MAX_KEY_ID_LENGTH + 2 + 2
    tail = STREAM_HEADER_LENGTH + KEY_CHECK_LENGTH + SIGNATURE_LENGTH
    return fixed + policy.max_header_length + max(ENCAPSULATION_LENGTH.values()) + tail


def parse_header_map(prefix: UnverifiedPrefix) -> EnvelopeHeader:
    """Decode the header map of a prefix WHOSE SIGNATURE HAS BEEN VERIFIED into an :class:`EnvelopeHeader`."""
    limits = MsgpackLimits(max_bytes=MAX_HEADER_LENGTH, max_depth=1, max_str=256, max_bin=32, max_map=32)
    wire = unpack_strict(prefix.header_map, field="header", limits=limits)
    if type(wire) is not dict:
        raise _bad("header", "must be a map")
    if set(wire) != set(_HEADER_KEYS):
        missing = sorted(set(_HEADER_KEYS) - set(wire))
        unknown = len(set(wire) - set(_HEADER_KEYS))
        raise _bad("header", f"keys differ from spec §4 (missing {missing}, {unknown} unknown)")
    raw_id = wire["envelope_id"]
    if type(raw_id) is not bytes or len(raw_id) != 16:
        raise _bad("envelope_id", "must be 16 bytes")
    header = EnvelopeHeader(
        version=prefix.version,
        suite=prefix.suite,
        envelope_id=ulid_text(raw_id),
        kind=wire["kind"],
        sender_domain=prefix.sender_domain,
        sender_key_id=prefix.sender_key_id,
        recipient_domain=wire["recipient_domain"],
        recipient_key_id=wire["recipient_key_id"],
        created=wire["created"],
        expires=wire["expires"],
        payload_length=wire["payload_length"],
        manifest_length=wire["manifest_length"],
        payload_digest=wire["payload_digest"],
        chunk_size=wire["chunk_size"],
        argon2=Argon2Params(time_cost=wire["argon2id_t"], memory_kib=wire["argon2id_m"]),
        content_type=wire["content_type"],
    )
    if header.content_type != CONTENT_TYPE_RECORDS:
        raise EnvelopeUnsupportedContent("the envelope's content type is not supported", field="content_type")
    return header


def check_header(
    header: EnvelopeHeader,
    *,
    recipient_domain: str,
    recipient_key_ids: Collection[str],
    now: float,
    policy: OpenPolicy,
) -> None:
    """A receiver's checks of spec/envelope.md §8.2 steps 8-11 on a verified header, in the spec's order."""
    if header.recipient_domain != recipient_domain or header.recipient_key_id not in recipient_key_ids:
        raise EnvelopeNotRecipient(
            f"the envelope is for {header.recipient_domain} key {header.recipient_key_id}",
            field="recipient_key_id" if header.recipient_domain == recipient_domain else "recipient_domain",
        )
    if header.chunk_size > policy.max_chunk_size:
        raise EnvelopeTooLarge(f"chunk size above {policy.max_chunk_size} bytes", field="chunk_size")
    if header.manifest_length > policy.max_manifest_length:
        raise EnvelopeTooLarge(f"manifest above {policy.max_manifest_length} bytes", field="manifest_length")
    if header.payload_length > policy.max_payload_length:
        raise EnvelopeTooLarge(f"payload above {policy.max_payload_length} bytes", field="payload_length")
    cost, low, high = header.argon2, policy.min_argon2, policy.max_argon2
    if cost.time_cost < low.time_cost or cost.memory_kib < low.memory_kib:
        raise EnvelopeWeakKdfParams(
            f"Argon2id t={cost.time_cost} m={cost.memory_kib}KiB is below the minimum "
            f"t={low.time_cost} m={low.memory_kib}KiB",
            field="argon2",
        )
    if cost.time_cost > high.time_cost or cost.memory_kib > high.memory_kib:
        raise EnvelopeExcessiveKdfParams(
            f"Argon2id t={cost.time_cost} m={cost.memory_kib}KiB is above the maximum "
            f"t={high.time_cost} m={high.memory_kib}KiB",
            field="argon2",
        )
    if header.created > now + policy.clock_skew:
        raise EnvelopeNotYetValid("the envelope was created in the future", field="created")
    if now >= header.expires:
        raise EnvelopeExpired("the envelope has expired", field="expires")


def check_manifest(header: EnvelopeHeader, manifest: Manifest) -> None:
    """Raise unless a verified manifest agrees with the verified header it came under (spec §8.2 step 18)."""
    for name in ("sender_domain", "sender_key_id", "recipient_domain"):
        if getattr(manifest, name) != getattr(header, name):
            raise EnvelopeManifestMismatch(f"the manifest's {name} differs from the header's", field=name)
    if manifest.documents_length != header.documents_length:
        raise EnvelopeManifestMismatch(
            "the manifest's document lengths do not add up to the header's payload length", field="records"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenedEnvelope:
    """An envelope that opened completely: every chunk authenticated and every digest matched.

    ``manifest_bytes`` and ``manifest_signature`` are what to store for provenance (``crypto.verify_manifest``).
    The documents' bytes went to the caller's staging sink, in ``manifest.documents()`` order.
    """

    header: EnvelopeHeader
    manifest: Manifest
    manifest_bytes: bytes = field(repr=False)
    manifest_signature: bytes = field(repr=False)
