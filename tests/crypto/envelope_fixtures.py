"""Keys, manifests and strategies shared by the envelope tests (importable: tests/crypto is on sys.path)."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from hypothesis import strategies as st

from crypto import Code, EncryptionKey, IdentityKey, open_envelope, seal_envelope
from protocol import Argon2Params, Manifest, ManifestRecord, ManifestStudent, OpenedEnvelope, OpenPolicy

SENDER = IdentityKey(hashlib.sha256(b"test sender").digest())
OTHER_SENDER = IdentityKey(hashlib.sha256(b"test other sender").digest())
RECIPIENT = EncryptionKey(hashlib.sha512(b"test recipient").digest() + hashlib.sha256(b"x25519").digest())
OTHER_RECIPIENT = EncryptionKey(hashlib.sha512(b"test other").digest() + hashlib.sha256(b"x25519 2").digest())
SENDER_DOMAIN = "a.example.org"
RECIPIENT_DOMAIN = "b.example.org"
NOW = 1_767_225_600
EXPIRES = NOW + 86_400
FAST = Argon2Params(time_cost=1, memory_kib=8)
POLICY = OpenPolicy(min_argon2=FAST)
CHUNK = 1024
CODE = Code._from_int(0x0123456789ABCDE)

STUDENT = ManifestStudent(sis_id="S1", given_name="Ann", family_name="Lee", birth_date="2010-02-03")


def document_record(record_id: str, data: bytes, student: str = "S1") -> ManifestRecord:
    return ManifestRecord(
        kind="document",
        record_id=record_id,
        student_sis_id=student,
        length=len(data),
        sha256=hashlib.sha256(data).digest(),
        media_type="application/pdf",
        title=f"title {record_id}",
    )


def make_manifest(documents: list[bytes], *, students: tuple[ManifestStudent, ...] = (STUDENT,), **kw: Any):
    records = tuple(
        document_record(f"d{i}", d, students[i % len(students)].sis_id) for i, d in enumerate(documents)
    )
    return Manifest(
        sender_domain=SENDER_DOMAIN,
        sender_key_id=SENDER.public_key.key_id,
        recipient_domain=RECIPIENT_DOMAIN,
        created=NOW,
        students=students,
        records=records + tuple(kw.pop("extra_records", ())),
        **kw,
    )


def seal_bytes(
    documents: list[bytes],
    *,
    manifest: Manifest | None = None,
    code: Code = CODE,
    chunk_size: int = CHUNK,
    **kw: Any,
) -> bytes:
    out = io.BytesIO()
    seal_envelope(
        io.BytesIO(b"".join(documents)),
        out,
        manifest=manifest or make_manifest(documents),
        sender_key=kw.pop("sender_key", SENDER),
        recipient_key=kw.pop("recipient_key", RECIPIENT.public_key),
        code=code,
        now=kw.pop("now", NOW),
        expires=kw.pop("expires", EXPIRES),
        argon2=kw.pop("argon2", FAST),
        chunk_size=chunk_size,
        **kw,
    )
    return out.getvalue()


def open_bytes(envelope: bytes, *, code: Code = CODE, **kw: Any) -> tuple[OpenedEnvelope, bytes]:
    sink = io.BytesIO()
    opened = open_envelope(
        io.BytesIO(envelope),
        sink,
        code=code,
        sender_key=kw.pop("sender_key", SENDER.public_key),
        recipient_key=kw.pop("recipient_key", RECIPIENT),
        recipient_domain=kw.pop("recipient_domain", RECIPIENT_DOMAIN),
        now=kw.pop("now", NOW + 1),
        policy=kw.pop("policy", POLICY),
    )
    assert not kw
    return opened, sink.getvalue()


_CHARS = st.characters(blacklist_categories=("Cc", "Cs"))
_TEXT = st.text(_CHARS, min_size=1, max_size=20)
_SCALAR = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(_CHARS, max_size=20)
_META = (
    _SCALAR | st.lists(_SCALAR, max_size=3) | st.dictionaries(_TEXT, _SCALAR | st.lists(_SCALAR), max_size=3)
)
students = st.builds(
    ManifestStudent,
    sis_id=_TEXT,
    given_name=_TEXT,
    family_name=_TEXT,
    birth_date=st.dates().map(lambda d: d.isoformat()),
    middle_name=st.none() | _TEXT,
    grade=st.none() | st.sampled_from(["K", "01", "12"]),
    state_id=st.none() | _TEXT,
)


@st.composite
def manifests_with_documents(draw: st.DrawFn, max_document: int = 3 * CHUNK) -> tuple[Manifest, list[bytes]]:
    people = draw(st.lists(students, min_size=1, max_size=3, unique_by=lambda s: s.sis_id))
    documents = draw(st.lists(st.binary(max_size=max_document), max_size=3))
    extra = draw(
        st.lists(
            st.builds(
                ManifestRecord,
                kind=st.sampled_from(["case", "assessment"]),
                record_id=_TEXT.map(lambda t: "r-" + t),
                student_sis_id=st.sampled_from([s.sis_id for s in people]),
                metadata=st.dictionaries(_TEXT, _META, max_size=3),
            ),
            max_size=3,
            unique_by=lambda r: r.record_id,
        )
    )
    notes = draw(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
    )
    notes = "".join(c for c in notes if c in "\t\n\r" or not (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F))
    return make_manifest(documents, students=tuple(people), extra_records=extra, notes=notes), documents
