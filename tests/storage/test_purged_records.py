"""Purges made before migration 0030 are remembered as those after it: the received records erased from stored
manifests (a transfer held when they were purged must not bring them back), and the results purged (the
nightly assessments CSV must not add them back)."""

from __future__ import annotations

import json
from pathlib import Path

from storage import audit, purges
from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS

NOW = "2026-12-05T00:00:00Z"


def test_migration_remembers_the_purges_made_before_it(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0030_purged_records")
    with write_transaction(db):
        for transfer_id, redacted in (("T1", {"records": ["C1", "D1"], "at": NOW}), ("T2", None)):
            db.execute("INSERT INTO transfers (transfer_id, side, state, peer, created_at, updated_at) VALUES"
                       " (?, 'receiver', 'imported', 'a.example.org', ?, ?)", [transfer_id, NOW, NOW])  # fmt: skip
            db.execute("INSERT INTO transfer_manifests (transfer_id, manifest, signature, redacted) VALUES"
                       " (?, x'00', x'00', ?)", [transfer_id, json.dumps(redacted) if redacted else None])  # fmt: skip
        audit.append(db, at=NOW, actor="admin", action="assessment.purge", subject="100002",
                     details={"result_id": "ar-1"})  # fmt: skip
        audit.append(
            db, at=NOW, actor="admin", action="case.purge", subject="100002", details={"case_id": "K"}
        )
    MIGRATIONS.apply(db)
    received = purges.among(db, "a.example.org", ["C1", "D1", "X"])
    assert sorted(received) == ["C1", "D1"] and received["C1"].purged_at == NOW
    [own] = purges.among(db, purges.OWN, ["ar-1", "K"]).values()
    assert (own.record_id, own.kind, own.student_sis_id, own.purged_by) == (
        "ar-1",
        "assessment",
        "100002",
        "admin",
    )
