"""A student the SIS renumbered takes the new number, and every column that names them follows."""

from __future__ import annotations

from pathlib import Path

from protocol.roster import StudentRecord
from storage import students
from storage.database import open_database, write_transaction


def test_every_column_naming_a_student_by_sis_id_is_renumbered_or_kept_on_purpose(tmp_path: Path) -> None:
    # A table added later with a student's SIS id must say which it is, or a renumbered child loses it.
    db = open_database(tmp_path / "satchel.db")
    named = {(table, column.name) for table in db.table_names() for column in db[table].columns
             if column.name.endswith("sis_id")}  # fmt: skip
    assert named == {("students", "sis_id"), *students.RENUMBERED_COLUMNS, *students.KEPT_COLUMNS}


def test_renumber_moves_the_student_and_what_names_them_in_one_go(tmp_path: Path) -> None:
    db = open_database(tmp_path / "satchel.db")
    ava = StudentRecord(sis_id="S1", source_id="guid-ava", given_name="Ava", family_name="Lopez",
                        birth_date="2012-03-04", sex="F", grade="07")  # fmt: skip
    students.upsert(db, [ava], now="2026-01-01T00:00:00Z")
    db.execute("INSERT INTO assessment_results (result_id, student_sis_id, assessment, subject, date, created_at) "
               "VALUES ('R1', 'S1', 'MAP', 'Math', '2026-09-17', '2026-09-18')")  # fmt: skip
    keys = db.execute("SELECT key FROM student_match_keys WHERE sis_id = 'S1' ORDER BY key").fetchall()
    with write_transaction(db):
        students.renumber(db, "S1", "S9", now="2026-02-01T00:00:00Z")
    moved = students.get(db, "S9")
    assert moved is not None and students.get(db, "S1") is None
    assert moved.record == StudentRecord(**{**ava.to_dict(), "sis_id": "S9"})
    assert (moved.created_at, moved.updated_at) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    assert db.execute("SELECT student_sis_id FROM assessment_results").fetchall() == [("S9",)]
    assert (
        db.execute("SELECT key FROM student_match_keys WHERE sis_id = 'S9' ORDER BY key").fetchall() == keys
    )
    assert db.execute("SELECT count(*) FROM student_match_keys WHERE sis_id = 'S1'").fetchone() == (0,)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
