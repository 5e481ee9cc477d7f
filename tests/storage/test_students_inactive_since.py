"""Since when a student is inactive: set when the roster first finds them so, kept while they stay so, cleared when
they are back; students inactive before migration 0029 take their last change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from protocol.roster import StudentRecord
from storage import students
from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS


def _ana(sis_id: str = "S1", **changes: str) -> StudentRecord:
    return replace(StudentRecord(sis_id=sis_id, source_id=f"u-{sis_id}", given_name="Ana", family_name="Lopez",
                                 birth_date="2012-03-04", sex="F", grade="07"), **changes)  # fmt: skip


def _since(db, sis_id: str) -> str | None:
    return db.execute("SELECT inactive_since FROM students WHERE sis_id = ?", [sis_id]).fetchone()[0]


def test_inactive_since_follows_the_status(tmp_path: Path) -> None:
    db = open_database(tmp_path / "satchel.db")
    students.upsert(
        db, [_ana("S1"), _ana("S2", enrollment_status="inactive"), _ana("S3")], now="2026-01-01T00:00:00Z"
    )
    assert (_since(db, "S1"), _since(db, "S2")) == (None, "2026-01-01T00:00:00Z")
    # S1 leaves (its users.csv row says inactive); S2 stays inactive and its e-mail changes; S3 is no longer listed.
    students.upsert(db, [_ana("S1", enrollment_status="inactive"),
                         _ana("S2", enrollment_status="inactive", email="a@example.org")],
                    now="2026-02-01T00:00:00Z")  # fmt: skip
    students.mark_inactive(db, ["S3"], now="2026-03-01T00:00:00Z")
    assert students.inactive_since(db, ["S1", "S2", "S3", "S9"]) == {
        "S1": "2026-02-01T00:00:00Z", "S2": "2026-01-01T00:00:00Z", "S3": "2026-03-01T00:00:00Z"}  # fmt: skip
    # Back in the roster: active, inactive since nothing; leaving again starts again.
    students.upsert(db, [_ana("S1")], now="2026-04-01T00:00:00Z")
    assert _since(db, "S1") is None and students.inactive_since(db, ["S1"]) == {}
    students.upsert(db, [_ana("S1", enrollment_status="inactive")], now="2026-05-01T00:00:00Z")
    assert _since(db, "S1") == "2026-05-01T00:00:00Z"


def test_students_inactive_before_the_migration_take_their_last_change(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0029_students_inactive_since")
    with write_transaction(db):
        for sis_id, status, updated in (("S1", "active", "2025-09-01T00:00:00Z"),
                                        ("S2", "inactive", "2025-10-02T00:00:00Z")):  # fmt: skip
            db.execute("INSERT INTO students (sis_id, source_id, given_name, family_name, enrollment_status, "
                       "created_at, updated_at) VALUES (?, ?, 'Ana', 'Lopez', ?, ?, ?)",
                       [sis_id, sis_id, status, updated, updated])  # fmt: skip
    MIGRATIONS.apply(db)
    assert (_since(db, "S1"), _since(db, "S2")) == (None, "2025-10-02T00:00:00Z")
    assert students.inactive_since(db, ["S1", "S2"]) == {"S2": "2025-10-02T00:00:00Z"}
