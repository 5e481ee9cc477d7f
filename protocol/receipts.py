"""Signed receipts: one party's statement about one step of a transfer (spec/transfer.md §5).

A receipt travels as a signed document (protocol.signed_document) under the purpose ``satchel/v1/receipt``,
so it stays verifiable long after the HTTP exchange that carried it: a district can show a parent, an
auditor or the other district exactly what was delivered, accepted or imported, and when.

Verification order: signature over the exact bytes, then the strict parse of the payload, then the check
that the signing key is one the receipt's ``from_domain`` publishes (through the caller's resolver).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from crypto import IdentityKey, IdentityPublicKey
from protocol.errors import InvalidInput, MalformedMessage, SatchelError, SignatureInvalid
from protocol.ids import parse_ulid
from protocol.json_strict import dumps_canonical, loads_object, member_name, take
from protocol.manifest import DOMAIN_RE
from protocol.signed_document import b64url, sign_document, unb64url, verify_document

# spec/transfer.md §5
PURPOSE = "satchel/v1/receipt"
RECEIPT_VERSION = 1
MAX_SIGNED_RECEIPT_BYTES = 64 * 1024
MAX_REASON = 2000
MAX_MESSAGE = 8000
MAX_REFERENCE = 64
MAX_SKIP_REASONS = 32
MAX_SKIP_LABEL = 200
MAX_COUNT = 10_000_000
MAX_SEQUENCE = 1_000_000
_WIRE_KEYS = frozenset(
    {"version", "kind", "transfer_id", "issuer", "from_domain", "to_domain", "sequence", "created",
     "envelope_sha256", "reason", "text", "reference", "counts"}
)  # fmt: skip
_COUNT_KEYS = frozenset({"students_total", "students_imported", "students_with_changes", "documents", "scores",
                         "skipped"})  # fmt: skip
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
# Newlines and tabs are fine in a reason or a message; other controls corrupt terminals and CSV exports.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_REFERENCE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


class ReceiptKind(StrEnum):
    DELIVERED = "delivered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    LOCKED = "locked"
    CANCELLED = "cancelled"
    IMPORTED = "imported"
    FAILED = "failed"
    MESSAGE = "message"


class Role(StrEnum):
    """The issuer's part in the transfer."""

    SENDER = "sender"
    RECEIVER = "receiver"


# Who may issue each kind: the sender cancels (with its reason) and writes messages; the rest are the
# receiver's statements about what it did with the envelope. The receiver confirms a cancellation too.
ISSUERS: dict[ReceiptKind, frozenset[Role]] = {
    ReceiptKind.DELIVERED: frozenset({Role.RECEIVER}),
    ReceiptKind.ACCEPTED: frozenset({Role.RECEIVER}),
    ReceiptKind.REJECTED: frozenset({Role.RECEIVER}),
    ReceiptKind.LOCKED: frozenset({Role.RECEIVER}),
    ReceiptKind.CANCELLED: frozenset({Role.SENDER, Role.RECEIVER}),
    ReceiptKind.IMPORTED: frozenset({Role.RECEIVER}),
    ReceiptKind.FAILED: frozenset({Role.RECEIVER}),
    ReceiptKind.MESSAGE: frozenset({Role.SENDER, Role.RECEIVER}),
}


class ReceiptInvalid(MalformedMessage):
    """A receipt (built here or received) breaks spec/transfer.md §5; ``field`` names the culprit."""

    code = "receipt.invalid"
    default_hint = "see spec/transfer.md §5 for the receipt fields and their limits"


class ReceiptUnsupportedVersion(ReceiptInvalid):
    """A receipt has a version this node does not implement."""

    code = "receipt.unsupported_version"
    default_hint = "the peer uses a newer receipt format; upgrade this node"


class ReceiptWrongSigner(SignatureInvalid):
    """The receipt verifies, but with a key its ``from_domain`` does not publish."""

    code = "receipt.wrong_signer"
    default_hint = "the receipt was not signed by the district it claims to come from; it was ignored"


class ReceiptConflict(SatchelError):
    """Other bytes under an issuer and sequence number the transfer has recorded already (spec/transfer.md §6)."""

    code = "receipt.conflict"
    default_hint = "a receipt's number is used once; the first one recorded stands: tell both nodes' operators"


class ReceiptMismatch(SatchelError):
    """A valid receipt about another transfer, or from or to another district than this transfer's."""

    code = "receipt.mismatch"
    default_hint = "the receipt does not belong to this transfer; it was ignored"


class ReceiptDigestMismatch(ReceiptMismatch):
    """The receiver acknowledged bytes whose SHA-256 is not that of the envelope this node sealed."""

    code = "receipt.digest_mismatch"
    default_hint = "the receiver got different bytes than were sent; tell both nodes' operators"


def _bad(field: str, what: str) -> ReceiptInvalid:
    return ReceiptInvalid(f"receipt {field} {what}", field=field)


def check_text(
    value: Any, field: str, max_len: int, *, required: bool, error: type[SatchelError] = ReceiptInvalid
) -> None:
    """Free text a person wrote: at most ``max_len`` characters, no control characters but newline/tab."""
    if value is None:
        if required:
            raise error(f"{field} is required", field=field)
        return
    if type(value) is not str:
        raise error(f"{field} must be text", field=field)
    if required and not value.strip():
        raise error(f"{field} must not be empty", field=field)
    if len(value) > max_len:
        raise error(f"{field} is longer than {max_len} characters", field=field)
    if _CONTROL.search(value):
        raise error(f"{field} contains control characters", field=field)


def check_domain(value: Any, field: str, error: type[SatchelError] = ReceiptInvalid) -> None:
    if type(value) is not str or not DOMAIN_RE.match(value):
        raise error(f"{field} must be a lowercase domain name", field=field)


def check_ulid(value: Any, field: str, error: type[SatchelError] = ReceiptInvalid) -> None:
    try:
        parse_ulid(value, field=field)
    except InvalidInput:
        raise error(f"{field} must be a ULID (26 Crockford base32 characters)", field=field) from None


def check_time(value: Any, field: str, error: type[SatchelError] = ReceiptInvalid) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise error(f"{field} must be a timezone-aware time", field=field)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z and whole seconds (spec/README.md)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: Any, *, field: str, error: type[SatchelError] = ReceiptInvalid) -> datetime:
    if type(text) is not str or not _TIME_RE.match(text):
        raise error(f"{field} must be a UTC time written YYYY-MM-DDTHH:MM:SSZ", field=field)
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise error(f"{field} is not a calendar time", field=field) from None


def _check_int(value: Any, field: str, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise _bad(field, f"must be an integer from {low} to {high}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedStudents:
    """How many students were not imported for one reason ("conflicting state id")."""

    reason: str
    count: int

    def __post_init__(self) -> None:
        check_text(self.reason, "counts.skipped.reason", MAX_SKIP_LABEL, required=True)
        _check_int(self.count, "counts.skipped.count", 1, MAX_COUNT)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportCounts:
    """What an import did: "98 of 103 students imported", documents and scores written, why some were not."""

    students_total: int
    students_imported: int
    students_with_changes: int = 0
    documents: int = 0
    scores: int = 0
    skipped: tuple[SkippedStudents, ...] = ()

    def __post_init__(self) -> None:
        _check_int(self.students_total, "counts.students_total", 0, MAX_COUNT)
        _check_int(self.students_imported, "counts.students_imported", 0, self.students_total)
        _check_int(self.students_with_changes, "counts.students_with_changes", 0, self.students_imported)
        _check_int(self.documents, "counts.documents", 0, MAX_COUNT)
        _check_int(self.scores, "counts.scores", 0, MAX_COUNT)
        if not isinstance(self.skipped, tuple) or not all(
            isinstance(s, SkippedStudents) for s in self.skipped
        ):
            raise _bad("counts.skipped", "must be a tuple of SkippedStudents")
        if len(self.skipped) > MAX_SKIP_REASONS:
            raise _bad("counts.skipped", f"lists more than {MAX_SKIP_REASONS} reasons")
        if sum(s.count for s in self.skipped) > self.students_total - self.students_imported:
            raise _bad("counts.skipped", "counts more students than were not imported")

    @property
    def complete(self) -> bool:
        return self.students_imported == self.students_total


# Fields each kind must carry; every other optional field must be absent (None).
_REQUIRED: dict[ReceiptKind, frozenset[str]] = {
    ReceiptKind.DELIVERED: frozenset({"envelope_digest"}),
    ReceiptKind.ACCEPTED: frozenset(),
    ReceiptKind.REJECTED: frozenset({"reason"}),
    ReceiptKind.LOCKED: frozenset(),
    ReceiptKind.CANCELLED: frozenset(),
    ReceiptKind.IMPORTED: frozenset({"counts"}),
    ReceiptKind.FAILED: frozenset({"reference"}),
    ReceiptKind.MESSAGE: frozenset({"text"}),
}
_ALLOWED: dict[ReceiptKind, frozenset[str]] = {
    ReceiptKind.DELIVERED: frozenset({"envelope_digest"}),
    ReceiptKind.ACCEPTED: frozenset({"envelope_digest"}),
    ReceiptKind.REJECTED: frozenset({"envelope_digest", "reason"}),
    ReceiptKind.LOCKED: frozenset({"envelope_digest"}),
    ReceiptKind.CANCELLED: frozenset({"envelope_digest", "reason"}),
    ReceiptKind.IMPORTED: frozenset({"envelope_digest", "counts"}),
    ReceiptKind.FAILED: frozenset({"envelope_digest", "reason", "reference"}),
    ReceiptKind.MESSAGE: frozenset({"text"}),
}
_OPTIONAL = ("envelope_digest", "reason", "text", "reference", "counts")
_WIRE_NAME = {"envelope_digest": "envelope_sha256"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    kind: ReceiptKind
    transfer_id: str
    issuer: Role
    from_domain: str
    to_domain: str
    sequence: int
    created: datetime
    envelope_digest: bytes | None = None
    reason: str | None = None
    text: str | None = None
    reference: str | None = None
    counts: ImportCounts | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ReceiptKind):
            raise _bad("kind", "must be a ReceiptKind")
        if not isinstance(self.issuer, Role) or self.issuer not in ISSUERS[self.kind]:
            raise _bad("issuer", f"may not issue a {self.kind} receipt")
        check_ulid(self.transfer_id, "transfer_id")
        check_domain(self.from_domain, "from_domain")
        check_domain(self.to_domain, "to_domain")
        if self.from_domain == self.to_domain:
            raise _bad("to_domain", "must differ from from_domain")
        _check_int(self.sequence, "sequence", 1, MAX_SEQUENCE)
        check_time(self.created, "created")
        # The wire keeps whole seconds in UTC; normalising here keeps parse(encode(r)) == r.
        object.__setattr__(self, "created", self.created.astimezone(UTC).replace(microsecond=0))
        for name in _OPTIONAL:
            present = getattr(self, name) is not None
            wire = _WIRE_NAME.get(name, name)  # errors name the member a peer sent
            if name in _REQUIRED[self.kind] and not present:
                raise _bad(wire, f"is required in a {self.kind} receipt")
            if present and name not in _ALLOWED[self.kind]:
                raise _bad(wire, f"is not allowed in a {self.kind} receipt")
        if self.envelope_digest is not None and (
            type(self.envelope_digest) is not bytes or len(self.envelope_digest) != 32
        ):
            raise _bad("envelope_sha256", "must be 32 bytes")
        check_text(self.reason, "reason", MAX_REASON, required=self.kind is ReceiptKind.REJECTED)
        check_text(self.text, "text", MAX_MESSAGE, required=self.kind is ReceiptKind.MESSAGE)
        check_text(self.reference, "reference", MAX_REFERENCE, required=self.kind is ReceiptKind.FAILED)
        if self.reference is not None and not _REFERENCE_RE.match(self.reference):
            raise _bad("reference", "must be letters, digits, '.', '_' and '-'")
        if self.counts is not None and not isinstance(self.counts, ImportCounts):
            raise _bad("counts", "must be ImportCounts")

    def __repr__(self) -> str:
        # Reasons and messages may name a child; ids and kinds are enough in logs.
        return (
            f"Receipt(kind={self.kind.value!r}, transfer_id={self.transfer_id!r}, issuer={self.issuer.value!r}, "
            f"from_domain={self.from_domain!r}, to_domain={self.to_domain!r}, sequence={self.sequence})"
        )


def _counts_json(counts: ImportCounts | None) -> dict[str, Any] | None:
    if counts is None:
        return None
    return {
        "students_total": counts.students_total,
        "students_imported": counts.students_imported,
        "students_with_changes": counts.students_with_changes,
        "documents": counts.documents,
        "scores": counts.scores,
        "skipped": [{"reason": s.reason, "count": s.count} for s in counts.skipped],
    }


def encode_receipt(receipt: Receipt) -> bytes:
    """Canonical JSON with every key present (absent values as null), so equal receipts give equal bytes."""
    return dumps_canonical(
        {
            "version": RECEIPT_VERSION,
            "kind": receipt.kind.value,
            "transfer_id": receipt.transfer_id,
            "issuer": receipt.issuer.value,
            "from_domain": receipt.from_domain,
            "to_domain": receipt.to_domain,
            "sequence": receipt.sequence,
            "created": format_timestamp(receipt.created),
            "envelope_sha256": b64url(receipt.envelope_digest)
            if receipt.envelope_digest is not None
            else None,
            "reason": receipt.reason,
            "text": receipt.text,
            "reference": receipt.reference,
            "counts": _counts_json(receipt.counts),
        }
    )


def _exact_keys(obj: dict[str, Any], keys: frozenset[str], what: str, *, path: str = "") -> None:
    """Refuse unknown and missing members; ``path`` ("counts", "counts.skipped") prefixes the field named."""
    prefix = f"{path}." if path else ""
    unknown = sorted(set(obj) - keys)
    if unknown:
        name = member_name(unknown[0])  # a peer's text: named back only when it is a plain name
        raise ReceiptInvalid(f"{what} has unknown field {prefix + unknown[0][:40]!r}",
                             field=prefix + name if name else (path or None))  # fmt: skip
    missing = sorted(keys - set(obj))
    if missing:
        field = prefix + missing[0]
        raise ReceiptInvalid(f"{what} lacks the field {field!r}", field=field)


def _take_at(obj: dict[str, Any], key: str, kind: type, *, path: str) -> Any:
    """``take`` for a member inside counts, named by its dotted path (``counts.skipped.reason``)."""
    return take(obj, key, kind, what="receipt", path=path)


def _parse_counts(value: Any) -> ImportCounts | None:
    if value is None:
        return None
    what = "receipt counts"
    if not isinstance(value, dict):
        raise _bad("counts", "must be an object or null")
    _exact_keys(value, _COUNT_KEYS, what, path="counts")
    skipped = _take_at(value, "skipped", list, path="counts")
    if len(skipped) > MAX_SKIP_REASONS:
        raise _bad("counts.skipped", f"lists more than {MAX_SKIP_REASONS} reasons")
    items = []
    for item in skipped:
        if not isinstance(item, dict):
            raise _bad("counts.skipped", "entries must be objects")
        # Entries are named without their index: counts.skipped.reason, counts.skipped.count.
        _exact_keys(item, frozenset({"reason", "count"}), "receipt skipped entry", path="counts.skipped")
        items.append(
            SkippedStudents(
                reason=_take_at(item, "reason", str, path="counts.skipped"),
                count=_take_at(item, "count", int, path="counts.skipped"),
            )
        )
    return ImportCounts(
        students_total=_take_at(value, "students_total", int, path="counts"),
        students_imported=_take_at(value, "students_imported", int, path="counts"),
        students_with_changes=_take_at(value, "students_with_changes", int, path="counts"),
        documents=_take_at(value, "documents", int, path="counts"),
        scores=_take_at(value, "scores", int, path="counts"),
        skipped=tuple(items),
    )


def _enum(cls: type[ReceiptKind] | type[Role], value: str, field: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise _bad(field, "is not one of " + ", ".join(m.value for m in cls)) from None


def parse_receipt(payload: bytes) -> Receipt:
    """Parse receipt payload bytes (already signature-checked by :func:`verify_receipt`)."""
    what = "receipt"
    try:
        obj = loads_object(payload, what=what, max_bytes=MAX_SIGNED_RECEIPT_BYTES)
        version = take(obj, "version", int, what=what)
        if version != RECEIPT_VERSION:
            raise ReceiptUnsupportedVersion(f"receipt version {version} is not supported", field="version")
        _exact_keys(obj, _WIRE_KEYS, what)
        digest = take(obj, "envelope_sha256", str, what=what, optional=True)
        return Receipt(
            kind=_enum(ReceiptKind, take(obj, "kind", str, what=what), "kind"),
            transfer_id=take(obj, "transfer_id", str, what=what),
            issuer=_enum(Role, take(obj, "issuer", str, what=what), "issuer"),
            from_domain=take(obj, "from_domain", str, what=what),
            to_domain=take(obj, "to_domain", str, what=what),
            sequence=take(obj, "sequence", int, what=what),
            created=parse_timestamp(take(obj, "created", str, what=what), field="created"),
            envelope_digest=unb64url(digest, field="envelope_sha256") if digest is not None else None,
            reason=take(obj, "reason", str, what=what, optional=True),
            text=take(obj, "text", str, what=what, optional=True),
            reference=take(obj, "reference", str, what=what, optional=True),
            counts=_parse_counts(obj["counts"]),
        )
    except ReceiptInvalid:
        raise
    except MalformedMessage as exc:
        raise ReceiptInvalid(exc.message, field=exc.field) from exc


# (domain, key_id) -> the identity key that domain publishes under that id, or None if it publishes none.
ResolveKey = Callable[[str, str], IdentityPublicKey | None]
T = TypeVar("T")


def verify_signed_by_domain(
    data: bytes,
    *,
    purpose: str,
    parse: Callable[[bytes], T],
    domain_of: Callable[[T], str],
    resolve_key: ResolveKey,
    wrong_signer: type[SatchelError],
    max_bytes: int,
) -> T:
    """Verify a signed document, parse its payload, then check its claimed domain publishes the signing key.

    Shared by receipts and records requests: the document names its author's domain inside the signed
    payload, so the key can only be tied to a domain after the signature is known to cover that payload.
    """
    if len(data) > max_bytes:
        raise MalformedMessage(f"a signed {purpose} document is larger than {max_bytes} bytes")
    verified = verify_document(data, purpose=purpose)
    value = parse(verified.payload)
    domain = domain_of(value)
    published = resolve_key(domain, verified.signer.key_id)
    if published is None or published != verified.signer:
        raise wrong_signer(f"{domain} does not publish the key that signed this document", field="key_id")
    return value


def sign_receipt(receipt: Receipt, key: IdentityKey) -> bytes:
    """The signed document to store and send; its bytes are what the peer keeps as proof."""
    return sign_document(PURPOSE, encode_receipt(receipt), key)


def verify_receipt(data: bytes, resolve_key: ResolveKey) -> Receipt:
    """Return the receipt if it is signed by a key its ``from_domain`` publishes; raise a coded error if not."""
    return verify_signed_by_domain(
        data,
        purpose=PURPOSE,
        parse=parse_receipt,
        domain_of=lambda r: r.from_domain,
        resolve_key=resolve_key,
        wrong_signer=ReceiptWrongSigner,
        max_bytes=MAX_SIGNED_RECEIPT_BYTES,
    )


def check_receipt_for(
    receipt: Receipt, *, transfer_id: str, from_domain: str, to_domain: str, issuer: Role
) -> None:
    """Raise ReceiptMismatch unless ``receipt`` is about this transfer, between these districts, by this side."""
    for name, expected in (
        ("transfer_id", transfer_id), ("from_domain", from_domain), ("to_domain", to_domain), ("issuer", issuer),
    ):  # fmt: skip
        if getattr(receipt, name) != expected:
            raise ReceiptMismatch(f"the receipt's {name} is not this transfer's", field=name)


def receipt_path(receipt: Receipt) -> str:
    """The peer endpoint a receipt is POSTed to (spec/transfer.md §6). Delivered receipts are responses."""
    base = f"/satchel/v1/transfers/{receipt.transfer_id}"
    if receipt.kind is ReceiptKind.MESSAGE:
        return f"{base}/messages"
    if receipt.kind is ReceiptKind.CANCELLED and receipt.issuer is Role.SENDER:
        return f"{base}/cancel"
    return f"{base}/receipts"
