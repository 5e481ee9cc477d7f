"""Results moved before migration 0018 are known as moved, so the next nightly import does not undo them."""

from __future__ import annotations

from pathlib import Path

from storage import audit
from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS

NOW = "2026-12-05T00:00:00Z"


def test_migration_finds_the_moves_in_the_audit_log(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0018_assessment_moves")
    with write_transaction(db):
        for sis in ("S1", "S2", "S3"):
            db.execute("INSERT INTO students (sis_id, source_id, given_name, family_name, created_at, updated_at) "
                       "VALUES (?, ?, 'Ana', 'Lopez', ?, ?)", [sis, sis, NOW, NOW])  # fmt: skip
        for result_id, sis in (("R1", "S3"), ("R2", "S1")):
            db.execute("INSERT INTO assessment_results (result_id, student_sis_id, assessment, subject, date, "
                       "score, created_at) VALUES (?, ?, 'MAP', 'Math', '2026-09-17', '200', ?)",
                       [result_id, sis, NOW])  # fmt: skip
        # R1 moved twice, by two coordinators (each move is entered on both students); R2 never.
        for actor, current, to in (("ann", "S1", "S2"), ("bob", "S2", "S3")):
            audit.append(db, at=NOW, actor=actor, action="assessment.move", subject=current,
                         details={"result_id": "R1", "to": to})  # fmt: skip
            audit.append(db, at=NOW, actor=actor, action="assessment.move", subject=to,
                         details={"result_id": "R1", "from": current})  # fmt: skip
    MIGRATIONS.apply(db)
    moved = db.execute("SELECT result_id, moved_by FROM assessment_results ORDER BY result_id").fetchall()
    assert moved == [("R1", "bob"), ("R2", None)]
