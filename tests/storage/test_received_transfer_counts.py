"""Transfers opened here before migration 0036 get the counts of what they hold from the manifest kept at
acceptance, so that `transfers list|show` do not take them for sealed ones (storage.transfers.contents_known)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from protocol import Manifest, ManifestRecord, ManifestStudent
from protocol.manifest import encode_manifest
from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS
from storage.transfers import list_rows

ID_OPENED, ID_SEALED, ID_SENT = "01JC6Z2W4Q3RT5Y7ZK8M9N0P1A", "01JC6Z2W4Q3RT5Y7ZK8M9N0P1B", "01JC6Z2W4Q3RT5Y7ZK8M9N0P1C"


def _manifest() -> bytes:
    students = tuple(ManifestStudent(sis_id=f"S{i}", given_name="Ann", family_name="Lee", birth_date="2010-02-03")
                     for i in range(3))  # fmt: skip
    doc = ManifestRecord(kind="document", record_id="d1", student_sis_id="S1", length=3,
                         sha256=hashlib.sha256(b"abc").digest(), media_type="application/pdf", title="IEP")  # fmt: skip
    case = ManifestRecord(kind="case", record_id="c1", student_sis_id="S2")
    return encode_manifest(Manifest(sender_domain="a.example.org", sender_key_id="ed25519-0123456789abcdef",
                                    recipient_domain="b.example.org", created=1, students=students,
                                    records=(doc, case)))  # fmt: skip


def test_an_opened_transfer_gets_its_counts_from_its_manifest(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0036_received_transfer_counts")
    with write_transaction(db):
        for transfer_id, side, state, students in ((ID_OPENED, "receiver", "imported", 0),
                                                   (ID_SEALED, "receiver", "received", 0),
                                                   (ID_SENT, "sender", "delivered", 2)):
            db.execute("INSERT INTO transfers (transfer_id, side, state, peer, kind, students, expires_at,"
                       " envelope_digest, created_at, updated_at) VALUES (?, ?, ?, 'a.example.org', 'push', ?,"
                       " '2026-02-04T10:00:00Z', ?, '2026-01-05T10:00:00Z', '2026-01-05T10:00:00Z')",
                       [transfer_id, side, state, students, bytes(32)])  # fmt: skip
        db.execute("INSERT INTO transfer_manifests (transfer_id, manifest, signature, signer_key_id,"
                   " signer_public_key) VALUES (?, ?, x'00', 'k', x'00')", [ID_OPENED, _manifest()])  # fmt: skip
    MIGRATIONS.apply(db)
    rows = {r.transfer_id: r for r in list_rows(db, local_domain="b.example.org")}
    opened, sealed, sent = rows[ID_OPENED], rows[ID_SEALED], rows[ID_SENT]
    assert (opened.students, opened.records, opened.documents, opened.contents_known) == (3, 2, 1, True)
    assert (sealed.students, sealed.contents_known) == (0, False)
    assert (sent.students, sent.records, sent.contents_known) == (2, 0, True)
