"""The manifest: what an envelope carries, signed by the sender (spec/envelope.md §5).

The manifest names the students (as the sender knows them), the records and, for each document, its
length and SHA-256 digest; documents follow it in the payload in the order of their records. The sender
signs the encoded manifest (purpose ``satchel/v1/manifest``) so an imported record keeps verifiable
provenance after import: store the manifest bytes and signature, and ``crypto.verify_manifest`` proves later
which district sent what, when, unchanged.

``repr`` of these classes shows ids and counts only: names, birth dates and notes are children's data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any

import msgpack

from protocol.envelope_errors import ManifestMalformed
from protocol.msgpack_strict import MsgpackLimitExceeded, MsgpackLimits, pack_canonical, unpack_strict

# spec/envelope.md §5.1
MANIFEST_FORMAT = 1
RECORD_KINDS = ("assessment", "case", "document")
DEFAULT_MAX_MANIFEST_LENGTH = 8 << 20
MAX_ID = 128
MAX_NAME = 200
MAX_SHORT = 64
MAX_NOTES = 65536
MAX_META_STR = 4096
MAX_META_ITEMS = 256
MAX_META_DEPTH = 3
MAX_DOCUMENT_LENGTH = 1 << 40

# spec/README.md (a domain) and envelope.md §2.3: lowercase LDH labels, none starting or ending with "-", a dot
# at least, the last label starting with a letter. Node configuration checks its own domain with it too.
DOMAIN_RE = re.compile(r"(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
KEY_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
# Control characters never belong in a name; lone surrogates cannot be encoded as UTF-8.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_NO_NEWLINE_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

_STUDENT_KEYS = (
    "birth_date",
    "email",
    "family_name",
    "given_name",
    "grade",
    "middle_name",
    "recipient_sis_id",
    "school",
    "sex",
    "sis_id",
    "state_id",
    "username",
)
_RECORD_KEYS = (
    "corrects",
    "document_type",
    "id",
    "kind",
    "length",
    "media_type",
    "metadata",
    "sha256",
    "student",
    "title",
)
_DOCUMENT_ONLY = ("length", "sha256", "media_type", "title", "document_type")
_MANIFEST_KEYS = (
    "created",
    "format",
    "notes",
    "recipient_domain",
    "recipient_owner",
    "records",
    "sender_domain",
    "sender_key_id",
    "students",
)


def _fail(field_name: str, what: str) -> ManifestMalformed:
    return ManifestMalformed(f"manifest field {field_name}: {what}", field=field_name)


def _text(value: Any, name: str, max_len: int, *, optional: bool = False, multiline: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is not str:
        raise _fail(name, "must be a string" + (" or nil" if optional else ""))
    if not value and not multiline:
        raise _fail(name, "must not be empty")
    if len(value) > max_len:
        raise _fail(name, f"is longer than {max_len} characters")
    if (_CONTROL_NO_NEWLINE_RE if multiline else _CONTROL_RE).search(value):
        raise _fail(name, "contains control characters or lone surrogates")


def _int(value: Any, name: str, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise _fail(name, f"must be an integer from {low} to {high}")


def _freeze_meta(value: Any, name: str, depth: int) -> Any:
    if value is None or type(value) in (bool, int, str):
        if type(value) is str:
            _text(value, name, MAX_META_STR, multiline=True)
        if type(value) is int:
            _int(value, name, -(1 << 63), (1 << 63) - 1)
        return value
    if depth >= MAX_META_DEPTH:
        raise _fail(name, f"nests deeper than {MAX_META_DEPTH} levels")
    if isinstance(value, list | tuple):
        if len(value) > MAX_META_ITEMS:
            raise _fail(name, f"has more than {MAX_META_ITEMS} items")
        return tuple(_freeze_meta(item, f"{name}[{i}]", depth + 1) for i, item in enumerate(value))
    if isinstance(value, Mapping):
        if len(value) > MAX_META_ITEMS:
            raise _fail(name, f"has more than {MAX_META_ITEMS} entries")
        frozen = {}
        for key in value:
            _text(key, f"{name} key", MAX_SHORT)
            frozen[key] = _freeze_meta(value[key], f"{name}.{key}", depth + 1)
        return MappingProxyType(frozen)
    raise _fail(name, "allows only nil, booleans, integers, strings, arrays and maps")


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestStudent:
    """A student as the sending district knows them."""

    sis_id: str
    given_name: str = field(repr=False)
    family_name: str = field(repr=False)
    birth_date: str = field(repr=False)
    middle_name: str | None = field(default=None, repr=False)
    sex: str | None = field(default=None, repr=False)
    grade: str | None = field(default=None, repr=False)
    state_id: str | None = field(default=None, repr=False)
    school: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    recipient_sis_id: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _text(self.sis_id, "sis_id", MAX_ID)
        for name in ("given_name", "family_name"):
            _text(getattr(self, name), name, MAX_NAME)
        for name in ("middle_name", "school", "email"):
            _text(getattr(self, name), name, MAX_NAME, optional=True)
        for name in ("sex", "grade"):
            _text(getattr(self, name), name, MAX_SHORT, optional=True)
        for name in ("state_id", "username", "recipient_sis_id"):
            _text(getattr(self, name), name, MAX_ID, optional=True)
        if type(self.birth_date) is not str or not _DATE_RE.match(self.birth_date):
            raise _fail("birth_date", "must be a date written YYYY-MM-DD")
        try:
            date.fromisoformat(self.birth_date)
        except ValueError:
            raise _fail("birth_date", "is not a calendar date") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestRecord:
    """A record about one student: a document (bytes follow in the payload), a case or an assessment."""

    kind: str
    record_id: str
    student_sis_id: str
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)
    length: int | None = None
    sha256: bytes | None = field(default=None, repr=False)
    media_type: str | None = None
    title: str | None = field(default=None, repr=False)
    document_type: str | None = None
    corrects: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in RECORD_KINDS:
            raise _fail("kind", "must be one of " + ", ".join(RECORD_KINDS))
        _text(self.record_id, "id", MAX_ID)
        _text(self.student_sis_id, "student", MAX_ID)
        _text(self.corrects, "corrects", MAX_ID, optional=True)
        if not isinstance(self.metadata, Mapping):
            raise _fail("metadata", "must be a map")
        object.__setattr__(self, "metadata", _freeze_meta(self.metadata, "metadata", 0))
        if self.kind != "document":
            for name in _DOCUMENT_ONLY:
                if getattr(self, name) is not None:
                    raise _fail(name, "is only allowed on document records")
            return
        _int(self.length, "length", 0, MAX_DOCUMENT_LENGTH)
        if type(self.sha256) is not bytes or len(self.sha256) != 32:
            raise _fail("sha256", "must be 32 bytes")
        _text(self.media_type, "media_type", MAX_SHORT * 2)
        _text(self.title, "title", MAX_NAME)
        _text(self.document_type, "document_type", MAX_SHORT, optional=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Everything an envelope carries besides the documents' bytes, as the sender states it."""

    sender_domain: str
    sender_key_id: str
    recipient_domain: str
    created: int
    students: tuple[ManifestStudent, ...]
    records: tuple[ManifestRecord, ...]
    notes: str = field(default="", repr=False)
    recipient_owner: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("sender_domain", "recipient_domain"):
            value = getattr(self, name)
            if type(value) is not str or not DOMAIN_RE.match(value):
                raise _fail(name, "must be a lowercase domain name")
        if type(self.sender_key_id) is not str or not KEY_ID_RE.match(self.sender_key_id):
            raise _fail("sender_key_id", "must be a key id such as ed25519-…")
        _int(self.created, "created", 0, (1 << 63) - 1)
        _text(self.notes, "notes", MAX_NOTES, multiline=True)
        _text(self.recipient_owner, "recipient_owner", MAX_NAME, optional=True)
        if not isinstance(self.students, list | tuple) or not isinstance(self.records, list | tuple):
            raise _fail("students", "students and records must be sequences")
        object.__setattr__(self, "students", tuple(self.students))
        object.__setattr__(self, "records", tuple(self.records))
        if not all(isinstance(s, ManifestStudent) for s in self.students):
            raise _fail("students", "must be ManifestStudent values")
        if not all(isinstance(r, ManifestRecord) for r in self.records):
            raise _fail("records", "must be ManifestRecord values")
        sis_ids = [s.sis_id for s in self.students]
        if len(set(sis_ids)) != len(sis_ids):
            raise _fail("students", "two students share a sis_id")
        record_ids = [r.record_id for r in self.records]
        if len(set(record_ids)) != len(record_ids):
            raise _fail("records", "two records share an id")
        known = set(sis_ids)
        for i, record in enumerate(self.records):
            if record.student_sis_id not in known:
                raise _fail(f"records[{i}].student", "names no student of this manifest")

    def documents(self) -> tuple[ManifestRecord, ...]:
        """The document records, in the order their bytes follow the manifest in the payload."""
        return tuple(r for r in self.records if r.kind == "document")

    @property
    def documents_length(self) -> int:
        """Total length of all documents: the payload length after the manifest block."""
        return sum(r.length or 0 for r in self.records)

    def __repr__(self) -> str:
        return (
            f"Manifest(sender_domain={self.sender_domain!r}, recipient_domain={self.recipient_domain!r}, "
            f"created={self.created}, students={len(self.students)}, records={len(self.records)})"
        )


def metadata_text(metadata: Mapping[str, Any], key: str, default: str = "") -> str:
    """A record's field as a receiver reads it from its ``metadata`` (spec/envelope.md §5.1, *What a receiver
    reads*): a string as it is, an integer in decimal; absent, nil or any other value is ``default``. Another
    implementation may send ``0`` or nil where Satchel writes strings: read with ``or`` and ``str``, the one
    was lost and the other became the text "None"."""
    value = metadata.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return default


def metadata_texts(metadata: Mapping[str, Any], keys: Iterable[str]) -> tuple[str, ...]:
    """``metadata_text`` of each of ``keys``, defaulting to "": an import reads a grade's 10,000 assessment
    results this way, most of whose values are strings already."""
    get = metadata.get
    return tuple([value if type(value := get(key)) is str else metadata_text(metadata, key) for key in keys])


def _student_wire(s: ManifestStudent) -> dict[str, Any]:
    return {
        "birth_date": s.birth_date,
        "email": s.email,
        "family_name": s.family_name,
        "given_name": s.given_name,
        "grade": s.grade,
        "middle_name": s.middle_name,
        "recipient_sis_id": s.recipient_sis_id,
        "school": s.school,
        "sex": s.sex,
        "sis_id": s.sis_id,
        "state_id": s.state_id,
        "username": s.username,
    }


def _record_wire(r: ManifestRecord) -> dict[str, Any]:
    return {
        "corrects": r.corrects,
        "document_type": r.document_type,
        "id": r.record_id,
        "kind": r.kind,
        "length": r.length,
        "media_type": r.media_type,
        "metadata": r.metadata,
        "sha256": r.sha256,
        "student": r.student_sis_id,
        "title": r.title,
    }


def encode_manifest(manifest: Manifest) -> bytes:
    """The manifest's canonical msgpack bytes (what the sender signs and the header's digest covers)."""
    return pack_canonical(
        {
            "created": manifest.created,
            "format": MANIFEST_FORMAT,
            "notes": manifest.notes,
            "recipient_domain": manifest.recipient_domain,
            "recipient_owner": manifest.recipient_owner,
            "records": [_record_wire(r) for r in manifest.records],
            "sender_domain": manifest.sender_domain,
            "sender_key_id": manifest.sender_key_id,
            "students": [_student_wire(s) for s in manifest.students],
        }
    )


def _map(value: Any, name: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if type(value) is not dict:
        raise _fail(name, "must be a map")
    if set(value) != set(keys):
        missing = sorted(set(keys) - set(value))
        unknown = len(set(value) - set(keys))
        raise _fail(name, f"keys differ from the schema (missing {missing}, {unknown} unknown)")
    return value


def _list(value: Any, name: str) -> list[Any]:
    if type(value) is not list:
        raise _fail(name, "must be an array")
    return value


def _with_index(name: str, index: int, exc: ManifestMalformed) -> ManifestMalformed:
    inner = exc.field or "?"
    return _fail(f"{name}[{index}].{inner}", exc.message.split(": ", 1)[-1])


def parse_manifest(data: bytes, *, max_length: int = DEFAULT_MAX_MANIFEST_LENGTH) -> Manifest:
    """Parse canonical manifest bytes. Call only on bytes whose signature has been verified."""
    limits = MsgpackLimits(
        max_bytes=max_length,
        max_depth=4 + MAX_META_DEPTH,
        max_str=MAX_NOTES * 4,
        max_bin=32,
        max_array=1 << 20,
        max_map=MAX_META_ITEMS,
    )
    top = _map(unpack_strict(data, field="manifest", limits=limits), "manifest", _MANIFEST_KEYS)
    if type(top["format"]) is not int or top["format"] != MANIFEST_FORMAT:
        raise _fail("format", f"must be {MANIFEST_FORMAT}")
    students = []
    for i, raw in enumerate(_list(top["students"], "students")):
        wire = _map(raw, f"students[{i}]", _STUDENT_KEYS)
        try:
            students.append(ManifestStudent(**wire))
        except ManifestMalformed as exc:
            raise _with_index("students", i, exc) from None
    records = []
    for i, raw in enumerate(_list(top["records"], "records")):
        wire = _map(raw, f"records[{i}]", _RECORD_KEYS)
        if type(wire["metadata"]) is not dict:
            raise _fail(f"records[{i}].metadata", "must be a map")
        try:
            records.append(
                ManifestRecord(
                    kind=wire["kind"],
                    record_id=wire["id"],
                    student_sis_id=wire["student"],
                    metadata=wire["metadata"],
                    length=wire["length"],
                    sha256=wire["sha256"],
                    media_type=wire["media_type"],
                    title=wire["title"],
                    document_type=wire["document_type"],
                    corrects=wire["corrects"],
                )
            )
        except ManifestMalformed as exc:
            raise _with_index("records", i, exc) from None
    return Manifest(
        sender_domain=top["sender_domain"],
        sender_key_id=top["sender_key_id"],
        recipient_domain=top["recipient_domain"],
        created=top["created"],
        students=tuple(students),
        records=tuple(records),
        notes=top["notes"],
        recipient_owner=top["recipient_owner"],
    )


def parse_checked_manifest(data: bytes, *, max_length: int = DEFAULT_MAX_MANIFEST_LENGTH) -> Manifest:
    """The :class:`Manifest` that ``parse_manifest(data)`` returns, for bytes it has accepted before.

    The caller vouches for that, typically by the SHA-256 of the exact bytes it checked (see
    storage.manifest_checks). Parsing is a pure function of the bytes, so checking them again could only
    repeat the earlier verdict; this skips the checks (a third of importing a grade) and builds the same
    values: tuples for arrays and read-only maps in metadata, exactly as :func:`parse_manifest` does.
    Never call it on bytes that were not checked: malformed input would come through unchecked.
    """
    if len(data) > max_length:  # the bytes were checked against some limit; the caller's still applies
        raise MsgpackLimitExceeded(f"manifest: longer than {max_length} bytes", field="manifest")
    top = msgpack.unpackb(data, raw=False, use_list=False)  # arrays as tuples, as _freeze_meta makes them
    new, put = object.__new__, object.__setattr__
    students = []
    for wire in top["students"]:
        student = new(ManifestStudent)
        for key in _STUDENT_KEYS:
            put(student, key, wire[key])
        students.append(student)
    records = []
    for wire in top["records"]:
        record = new(ManifestRecord)
        for key, name in _RECORD_FIELDS:
            put(record, name, wire[key])
        put(record, "metadata", _frozen(wire["metadata"]))
        records.append(record)
    manifest = new(Manifest)
    for key in ("sender_domain", "sender_key_id", "recipient_domain", "created", "notes", "recipient_owner"):
        put(manifest, key, top[key])
    put(manifest, "students", tuple(students))
    put(manifest, "records", tuple(records))
    return manifest


# (wire key, attribute) of ManifestRecord, metadata aside (it is frozen on the way in)
_RECORD_FIELDS = tuple((key, "record_id" if key == "id" else "student_sis_id" if key == "student" else key)
                       for key in _RECORD_KEYS if key != "metadata")  # fmt: skip


def _frozen(value: Any) -> Any:
    """What _freeze_meta makes of checked metadata (arrays already tuples), without the checks."""
    if type(value) is dict:
        kinds = set(map(type, value.values()))
        if dict in kinds or tuple in kinds:
            return MappingProxyType({k: _frozen(v) for k, v in value.items()})
        return MappingProxyType(value)  # freshly decoded, referenced nowhere else: no copy needed
    if type(value) is tuple:
        kinds = set(map(type, value))
        if dict in kinds or tuple in kinds:
            return tuple(_frozen(v) for v in value)
    return value
