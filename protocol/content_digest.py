"""RFC 9530 Digest Fields: the ``Content-Digest`` header, computed while a body streams past.

Bodies can be gigabytes, so nothing here wants the whole body: a :class:`ContentDigester` is fed chunks
as the node reads or writes them, and the header is checked when the last chunk has gone through. Only
sha-256 and sha-512 count; RFC 9530 §5 lets a receiver ignore algorithms it does not support, and the
registry marks the others (md5, sha, unixsum, ...) insecure, so they never satisfy a check on their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

from protocol.errors import InvalidInput, SatchelError
from protocol.structured_fields import Item, StructuredFieldMalformed, parse_dictionary

CONTENT_DIGEST = "content-digest"  # RFC 9530 §2
# RFC 9530 §5 / IANA "Hash Algorithms for HTTP Digest Fields": the two "Active" algorithms.
SUPPORTED_ALGORITHMS: Mapping[str, str] = {"sha-256": "sha256", "sha-512": "sha512"}
DEFAULT_ALGORITHM = "sha-256"
# What every Satchel node sends: one member, canonical base64. Read without the general parser (which
# reads it the same way, only slower); anything else goes to the general parser.
_ONE_MEMBER = re.compile(r" *(sha-256|sha-512)=:([A-Za-z0-9+/]+={0,2}): *")


class DigestMissing(SatchelError):
    """A body arrived without the Content-Digest that the profile requires."""

    code = "digest.missing"
    default_hint = (
        "send Content-Digest: sha-256=:<base64 of SHA-256 of the body>: and cover it in the signature"
    )


class DigestMalformed(SatchelError, ValueError):
    code = "digest.malformed"
    default_hint = "Content-Digest is an RFC 8941 dictionary such as sha-256=:base64:"


class DigestUnsupportedAlgorithm(SatchelError):
    code = "digest.unsupported_algorithm"
    default_hint = "use sha-256 or sha-512"


class DigestMismatch(SatchelError):
    """The body received is not the body whose digest was signed."""

    code = "digest.mismatch"
    default_hint = "the body was changed in transit or the digest was computed over different bytes"


class ContentDigester:
    """Incremental Content-Digest over one or more algorithms; feed it every byte of the body, in order."""

    __slots__ = ("_hashes",)

    def __init__(self, algorithms: Iterable[str] = (DEFAULT_ALGORITHM,)) -> None:
        names = list(dict.fromkeys(algorithms))
        if not names:
            raise InvalidInput("a digester needs at least one algorithm", field=CONTENT_DIGEST)
        for name in names:
            if name not in SUPPORTED_ALGORITHMS:
                raise DigestUnsupportedAlgorithm(
                    f"unsupported digest algorithm {name!r}", field=CONTENT_DIGEST
                )
        self._hashes = {name: hashlib.new(SUPPORTED_ALGORITHMS[name]) for name in names}

    @classmethod
    def for_header(cls, value: str | None) -> ContentDigester:
        """A digester for every supported algorithm the received header names, to check it afterwards."""
        parsed = parse_content_digest(value)
        usable = [name for name in parsed if name in SUPPORTED_ALGORITHMS]
        if not usable:
            raise DigestUnsupportedAlgorithm(
                "Content-Digest names no supported algorithm", field=CONTENT_DIGEST
            )
        return cls(usable)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self._hashes)

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        for digest in self._hashes.values():
            digest.update(chunk)

    def digests(self) -> dict[str, bytes]:
        """Digests of everything fed so far; the digester can keep going afterwards."""
        return {name: digest.copy().digest() for name, digest in self._hashes.items()}

    def header_value(self) -> str:
        # RFC 8941 §4.1.2 with keys from SUPPORTED_ALGORITHMS: what serialize_dictionary would write.
        return ", ".join(
            f"{name}=:{base64.b64encode(raw).decode('ascii')}:" for name, raw in self.digests().items()
        )


def content_digest_header(body: bytes, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """The Content-Digest value for a body already in memory."""
    if algorithm == "sha-256":  # every small message a node signs: no digester needed
        # binascii directly: base64.b64encode is a Python call around it, on every answer a node signs
        return f"sha-256=:{binascii.b2a_base64(hashlib.sha256(body).digest(), newline=False).decode('ascii')}:"
    digester = ContentDigester((algorithm,))
    digester.update(body)
    return digester.header_value()


def parse_content_digest(value: str | None) -> dict[str, bytes]:
    """Every member of a Content-Digest header, supported or not, as algorithm -> digest bytes."""
    if value is None or not value.strip(" \t"):
        raise DigestMissing("Content-Digest is missing", field=CONTENT_DIGEST)
    one = _ONE_MEMBER.fullmatch(value)
    if one is not None:
        try:
            raw = base64.b64decode(one[2], validate=True)
        except (binascii.Error, ValueError):
            raw = None
        if raw is not None and base64.b64encode(raw).decode("ascii") == one[2]:
            return {one[1]: raw}
    try:
        members = parse_dictionary(value, field=CONTENT_DIGEST, reject_duplicates=True)
    except StructuredFieldMalformed as exc:
        raise DigestMalformed("Content-Digest is not a structured dictionary", field=CONTENT_DIGEST) from exc
    result: dict[str, bytes] = {}
    for name, member in members.items():
        # Parameters on members are undefined in RFC 9530; ignoring them is what §2 asks of receivers.
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise DigestMalformed(
                f"Content-Digest member {name!r} is not a byte sequence", field=CONTENT_DIGEST
            )
        result[name] = member.value
    return result


def verify_content_digest(value: str | None, digester: ContentDigester) -> dict[str, bytes]:
    """Check a received Content-Digest against the bytes fed to ``digester``; return the digests checked.

    Every supported algorithm in the header must match, not just one: otherwise a sender could pair a
    correct sha-256 with a wrong sha-512 and different receivers would disagree about the body.
    """
    claimed = {name: raw for name, raw in parse_content_digest(value).items() if name in SUPPORTED_ALGORITHMS}
    if not claimed:
        raise DigestUnsupportedAlgorithm(
            "Content-Digest names no supported algorithm (sha-256 or sha-512)", field=CONTENT_DIGEST
        )
    computed = digester.digests()
    missing = sorted(set(claimed) - set(computed))
    if missing:
        # A caller bug, not a peer's: build the digester with ContentDigester.for_header(value).
        raise InvalidInput(f"the digester did not compute {', '.join(missing)}", field=CONTENT_DIGEST)
    mismatched = [name for name, raw in claimed.items() if not hmac.compare_digest(raw, computed[name])]
    if mismatched:
        raise DigestMismatch(
            f"Content-Digest {', '.join(mismatched)} does not match the body received", field=CONTENT_DIGEST
        )
    return claimed


def verify_body_digest(value: str | None, body: bytes) -> dict[str, bytes]:
    """Convenience for a body already in memory."""
    if value is not None:
        digest = hashlib.sha256(body).digest()
        if value == f"sha-256=:{binascii.b2a_base64(digest, newline=False).decode('ascii')}:":  # as nodes write it
            return {"sha-256": digest}
    claimed = parse_content_digest(value)
    if set(claimed) == {"sha-256"}:  # the usual case, decided as verify_content_digest decides it
        if not hmac.compare_digest(claimed["sha-256"], hashlib.sha256(body).digest()):
            raise DigestMismatch(
                "Content-Digest sha-256 does not match the body received", field=CONTENT_DIGEST
            )
        return claimed
    digester = ContentDigester.for_header(value)
    digester.update(body)
    return verify_content_digest(value, digester)
