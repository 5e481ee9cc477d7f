"""The manifest: schema validation, canonical encoding, strict parsing and PII-free reprs."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Manifest, ManifestRecord, ManifestStudent, SatchelError
from protocol.manifest import (
    DOMAIN_RE,
    encode_manifest,
    metadata_text,
    metadata_texts,
    parse_checked_manifest,
    parse_manifest,
)
from protocol.msgpack_strict import pack_canonical, unpack_strict

KEY_ID = "ed25519-0123456789abcdef"
CHARS = st.characters(blacklist_categories=("Cc", "Cs"))
TEXT = st.text(CHARS, min_size=1, max_size=12)
STUDENT = ManifestStudent(sis_id="S1", given_name="Ann", family_name="Lee", birth_date="2010-02-03")
DOC = ManifestRecord(
    kind="document", record_id="d1", student_sis_id="S1", length=3, sha256=hashlib.sha256(b"abc").digest(),
    media_type="application/pdf", title="IEP 2025",
)  # fmt: skip


def manifest(**kw: Any) -> Manifest:
    fields: dict[str, Any] = dict(
        sender_domain="a.example.org", sender_key_id=KEY_ID, recipient_domain="b.example.org", created=1,
        students=(STUDENT,), records=(DOC,),
    )  # fmt: skip
    fields.update(kw)
    return Manifest(**fields)


students = st.builds(
    ManifestStudent, sis_id=TEXT, given_name=TEXT, family_name=TEXT,
    birth_date=st.dates().map(lambda d: d.isoformat()), middle_name=st.none() | TEXT, sex=st.none() | TEXT,
    grade=st.none() | TEXT, state_id=st.none() | TEXT, school=st.none() | TEXT, username=st.none() | TEXT,
    email=st.none() | TEXT, recipient_sis_id=st.none() | TEXT,
)  # fmt: skip
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(CHARS, max_size=10)
metadata = st.dictionaries(
    TEXT, scalars | st.lists(scalars, max_size=3) | st.dictionaries(TEXT, scalars), max_size=4
)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    people = draw(st.lists(students, min_size=1, max_size=4, unique_by=lambda s: s.sis_id))
    ids = [s.sis_id for s in people]
    records = []
    for i in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["document", "case", "assessment"]))
        common = dict(kind=kind, record_id=f"r{i}", student_sis_id=draw(st.sampled_from(ids)),
                      metadata=draw(metadata), corrects=draw(st.none() | TEXT))  # fmt: skip
        if kind == "document":
            common.update(length=draw(st.integers(0, 1 << 40)), sha256=draw(st.binary(min_size=32, max_size=32)),
                          media_type="text/plain", title=draw(TEXT), document_type=draw(st.none() | TEXT))  # fmt: skip
        records.append(ManifestRecord(**common))
    return manifest(students=tuple(people), records=tuple(records), created=draw(st.integers(0, 2**40)),
                    notes=draw(st.text(st.sampled_from("ab \n\t\r"), max_size=20)),
                    recipient_owner=draw(st.none() | TEXT))  # fmt: skip


@given(manifests())
def test_round_trip_is_exact_and_canonical(m: Manifest) -> None:
    data = encode_manifest(m)
    assert parse_manifest(data) == m
    assert encode_manifest(parse_manifest(data)) == data
    assert m.documents_length == sum(r.length or 0 for r in m.documents())


@given(manifests())
def test_parsing_checked_bytes_gives_the_same_manifest(m: Manifest) -> None:
    data = encode_manifest(m)
    checked, full = parse_checked_manifest(data), parse_manifest(data)
    assert checked == full
    assert encode_manifest(checked) == data
    # Equal is not enough: a dict equals a read-only map, a list a tuple; the types must be the same too.
    assert [_types(r.metadata) for r in checked.records] == [_types(r.metadata) for r in full.records]
    assert type(checked.students) is type(checked.records) is tuple


def _types(value: Any) -> Any:
    if isinstance(value, tuple):
        return ("tuple", [_types(v) for v in value])
    if hasattr(value, "items"):
        return (type(value).__name__, {k: _types(v) for k, v in value.items()})
    return type(value).__name__


def test_parsing_checked_bytes_still_applies_the_length_limit() -> None:
    data = encode_manifest(manifest())
    with pytest.raises(SatchelError) as info:
        parse_checked_manifest(data, max_length=len(data) - 1)
    assert info.value.code == "msgpack.limit_exceeded"


def test_documents_keep_their_order() -> None:
    case = ManifestRecord(kind="case", record_id="c", student_sis_id="S1")
    second = replace(DOC, record_id="d2", length=5)
    m = manifest(records=(DOC, case, second))
    assert [r.record_id for r in m.documents()] == ["d1", "d2"]
    assert m.documents_length == 8


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: replace(STUDENT, birth_date="2010-02-30"), "birth_date"),
        (lambda: replace(STUDENT, birth_date="10/02/2010"), "birth_date"),
        (lambda: replace(STUDENT, given_name=""), "given_name"),
        (lambda: replace(STUDENT, family_name="a\x00b"), "family_name"),
        (lambda: replace(STUDENT, school="x" * 201), "school"),
        (lambda: replace(STUDENT, sis_id=5), "sis_id"),
        (lambda: replace(DOC, kind="photo"), "kind"),
        (lambda: replace(DOC, sha256=b"short"), "sha256"),
        (lambda: replace(DOC, length=-1), "length"),
        (lambda: replace(DOC, length=True), "length"),
        (lambda: replace(DOC, title=None), "title"),
        (lambda: ManifestRecord(kind="case", record_id="c", student_sis_id="S1", length=3), "length"),
        (lambda: replace(DOC, metadata={"x": 1.5}), "metadata.x"),
        (lambda: replace(DOC, metadata={"a": {"b": {"c": {"d": 1}}}}), "metadata.a.b.c"),
        (lambda: replace(DOC, metadata={"a": [0] * 257}), "metadata.a"),
        (lambda: manifest(sender_domain="A.example.org"), "sender_domain"),
        (lambda: manifest(recipient_domain="localhost"), "recipient_domain"),
        (lambda: manifest(sender_key_id="Ed25519 key"), "sender_key_id"),
        (lambda: manifest(students=(STUDENT, STUDENT)), "students"),
        (lambda: manifest(records=(DOC, DOC)), "records"),
        (lambda: manifest(records=(replace(DOC, student_sis_id="S9"),)), "records[0].student"),
        (lambda: manifest(notes="\x07"), "notes"),
        (lambda: manifest(created=-1), "created"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(SatchelError) as info:
        build()
    assert info.value.code == "manifest.malformed"
    assert info.value.field == field


def _wire(**changes: Any) -> bytes:
    raw = unpack_strict(encode_manifest(manifest()), field="m")
    for path, value in changes.items():
        target = raw
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is KeyError:
            del target[leaf]
        else:
            target[leaf] = value
    return pack_canonical(raw)


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        (_wire(format=2), "manifest.malformed", "format"),
        (_wire(format=True), "manifest.malformed", "format"),
        (_wire(extra=1), "manifest.malformed", "manifest"),
        (_wire(notes=KeyError), "manifest.malformed", "manifest"),
        (_wire(created="1"), "manifest.malformed", "created"),
        (_wire(students=[]), "manifest.malformed", "records[0].student"),
        (_wire(students={}), "manifest.malformed", "students"),
        (_wire(records__0__sha256="ab" * 16), "manifest.malformed", "records[0].sha256"),
        (_wire(records__0__metadata=[]), "manifest.malformed", "records[0].metadata"),
        (_wire(records__0__nope=1), "manifest.malformed", "records[0]"),
        (_wire(students__0__birth_date=None), "manifest.malformed", "students[0].birth_date"),
        (encode_manifest(manifest()) + b"\x00", "msgpack.trailing_bytes", "manifest"),
        (pack_canonical([1]), "manifest.malformed", "manifest"),
    ],
)
def test_parser_refuses_schema_violations_with_codes(data: bytes, code: str, field: str) -> None:
    with pytest.raises(SatchelError) as info:
        parse_manifest(data)
    assert (info.value.code, info.value.field) == (code, field)


def test_size_limit_is_a_parameter() -> None:
    data = encode_manifest(manifest())
    assert parse_manifest(data, max_length=len(data)) == manifest()
    with pytest.raises(SatchelError) as info:
        parse_manifest(data, max_length=len(data) - 1)
    assert info.value.code == "msgpack.limit_exceeded"


def test_repr_shows_ids_and_counts_only() -> None:
    m = manifest(notes="private note", recipient_owner="owner@b.example.org")
    shown = repr(m) + repr(m.students) + repr(m.records)
    for private in ("Ann", "Lee", "2010-02-03", "private note", "owner@", "IEP 2025"):
        assert private not in shown
    assert "S1" in shown and "d1" in shown


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_satchel_errors(data: bytes) -> None:
    with contextlib.suppress(SatchelError):
        parse_manifest(data)


@given(st.integers(0, 10_000), st.integers(0, 255))
def test_damaged_manifests_raise_only_satchel_errors(position: int, value: int) -> None:
    data = bytearray(encode_manifest(manifest()))
    data[position % len(data)] = value
    with contextlib.suppress(SatchelError):
        parse_manifest(bytes(data))


def _is_domain(text: str) -> bool:
    """spec/README.md's words for a domain, read literally: the regular expression must agree with them."""
    labels = text.split(".")
    ldh = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    return (
        len(text) <= 253
        and len(labels) >= 2
        and all(0 < len(label) <= 63 and set(label) <= ldh and label[0] != "-" != label[-1] for label in labels)
        and labels[-1][0].isalpha()
    )


@given(st.lists(st.text("ab9-", min_size=0, max_size=4), min_size=1, max_size=4).map(".".join))
def test_domain_re_is_the_domain_the_spec_describes(text: str) -> None:
    assert bool(DOMAIN_RE.match(text)) is _is_domain(text)


@pytest.mark.parametrize("text", ["a.example.org-", "a-.example.org", "example.-org", "org", "a..org", "a.9org"])
def test_not_domains(text: str) -> None:
    assert not DOMAIN_RE.match(text)


_META_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3),
    max_leaves=6,
)


@given(value=_META_VALUES)
def test_a_metadata_field_is_read_as_envelope_md_5_1_says(value: Any) -> None:
    """A string as it is, an integer in decimal (0 included), anything else (nil, booleans, containers) absent:
    the fields of a case or result sent by another implementation land as it meant them."""
    read = metadata_text({"team": value}, "team", "default")
    if isinstance(value, str):
        assert read == value
    elif isinstance(value, int) and not isinstance(value, bool):
        assert read == str(value)
    else:
        assert read == "default"
    assert metadata_text({"team": value}, "absent", "default") == "default"
    assert metadata_text({"n": 0}, "n") == "0" and metadata_text({"n": None}, "n") == ""


@given(metadata=st.dictionaries(st.sampled_from("abcde"), _META_VALUES, max_size=5),
       keys=st.lists(st.sampled_from("abcdef"), max_size=7))  # fmt: skip
def test_metadata_texts_reads_each_key_as_metadata_text_does(metadata: dict[str, Any], keys: list[str]) -> None:
    """The fast path for strings must not change what any other value (or an absent key) reads as."""
    assert metadata_texts(metadata, keys) == tuple(metadata_text(metadata, key) for key in keys)
