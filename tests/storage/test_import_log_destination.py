"""Import results from before migration 0024 keep the destination values the log showed until then, except what
is known to have been different at the import: a student the import created had no account here."""

from __future__ import annotations

from pathlib import Path

from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS

NOW = "2026-12-05T00:00:00Z"


def test_migration_keeps_what_each_imported_student_holds_now(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0024_import_log_as_imported")
    with write_transaction(db):
        db.execute("INSERT INTO transfers (transfer_id, side, state, peer, created_at, updated_at)"
                   " VALUES ('T1', 'receiver', 'imported', 'a.example.org', ?, ?)", [NOW, NOW])  # fmt: skip
        db.execute("INSERT INTO imports (import_id, transfer_id, source_domain, source_name, source_school, status,"
                   " created_at, created_by) VALUES ('T1', 'T1', 'a.example.org', 'A', 'L', 'completed', ?, 'coord')",
                   [NOW])  # fmt: skip
        for sis_id, state_id, username, email in (("100001", "9000000101", "amartinez", "ava@b.example.org"),
                                                  ("T1-300001", "9000000901", "zara", "zara@b.example.org")):
            db.execute("INSERT INTO students (sis_id, source_id, given_name, family_name, state_id, username, email,"
                       " created_at, updated_at) VALUES (?, ?, 'G', 'F', ?, ?, ?, ?, ?)",
                       [sis_id, f"u-{sis_id}", state_id, username, email, NOW, NOW])  # fmt: skip
        # Linked to a student here; created here (the roster gave it an account since); linked to a student
        # purged since; skipped.
        for position, (sender, result, dest, created) in enumerate((
            ("100001", "imported", "100001", 0), ("300001", "imported", "T1-300001", 1),
            ("300002", "imported", "GONE-1", 0), ("300003", "skipped", None, 0),
        )):  # fmt: skip
            db.execute("INSERT INTO import_students (import_id, position, sender_sis_id, match_status, method,"
                       " result, destination_sis_id, created_student) VALUES ('T1', ?, ?, 'matched', 'sis_id', ?, ?,"
                       " ?)", [position, sender, result, dest, created])  # fmt: skip
    MIGRATIONS.apply(db)
    kept = db.execute("SELECT sender_sis_id, destination_sis_id, destination_state_id, destination_username,"
                      " destination_email FROM import_students ORDER BY position").fetchall()  # fmt: skip
    assert kept == [
        ("100001", "100001", "9000000101", "amartinez", "ava@b.example.org"),
        ("300001", "T1-300001", "9000000901", "", ""),
        ("300002", "GONE-1", None, None, None),
        ("300003", None, None, None, None),
    ]
    # What was sent is not known without the manifest: the log reads it there for these students.
    assert db.execute("SELECT count(*) FROM import_students WHERE sent_given_name IS NULL").fetchone() == (4,)
