"""A student the SIS renumbered takes the new number, and every column that names them follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import NotFound
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


NOW = "2026-01-01T00:00:00Z"


def _student(sis_id: str, source_id: str, given_name: str) -> StudentRecord:
    return StudentRecord(sis_id=sis_id, source_id=source_id, given_name=given_name, family_name="Lopez",
                         birth_date="2012-03-04", sex="F", grade="07")  # fmt: skip


def _renumber(db, old: str, new: str, now: str) -> None:
    with write_transaction(db):
        students.renumber(db, old, new, now=now)


def test_every_former_number_of_a_student_renumbered_twice_names_the_current_one(tmp_path: Path) -> None:
    # Other districts' copies name the child by whichever number they learnt: each must reach the child now.
    db = open_database(tmp_path / "satchel.db")
    students.upsert(db, [_student("S1", "guid-ava", "Ava")], now="2026-01-01T00:00:00Z")
    _renumber(db, "S1", "S2", "2026-02-01T00:00:00Z")
    _renumber(db, "S2", "S3", "2026-03-01T00:00:00Z")
    assert students.former(db, ["S1", "S2", "S3", "S404"]) == {
        "S1": students.FormerNumber("S1", "S3", "2026-02-01T00:00:00Z"),
        "S2": students.FormerNumber("S2", "S3", "2026-03-01T00:00:00Z"),
    }
    stored, was = students.resolve(db, "S1")
    assert stored.record.sis_id == "S3" and was is not None and was.current_sis_id == "S3"
    assert students.resolve(db, "S3")[1] is None
    # Acting on a student by a former number is refused, the hint naming the current one.
    with pytest.raises(NotFound) as refused:
        students.require(db, "S2")
    assert refused.value.hint == "SIS id S2 is the former number of student S3, renumbered on 2026-03-01: use S3"
    with pytest.raises(NotFound) as unknown:
        students.resolve(db, "S404")
    assert unknown.value.hint == "find it with `satchel students search`"


def test_a_former_number_given_to_a_new_student_names_the_new_student(tmp_path: Path) -> None:
    # The SIS gives a number back: by the roster to a new child, or by renumbering another child to it. The
    # number is a current id then, and the first child's mapping is dropped.
    db = open_database(tmp_path / "satchel.db")
    students.upsert(db, [_student("S1", "guid-ava", "Ava"), _student("B1", "guid-bea", "Bea")],
                    now="2026-01-01T00:00:00Z")  # fmt: skip
    _renumber(db, "S1", "S2", "2026-02-01T00:00:00Z")
    _renumber(db, "B1", "B2", "2026-02-01T00:00:00Z")
    students.upsert(db, [_student("S1", "guid-cal", "Cal")], now="2026-03-01T00:00:00Z")
    _renumber(db, "B2", "B1", "2026-04-01T00:00:00Z")  # back to the number she once held
    assert students.former(db, ["S1", "B1", "B2"]) == {
        "B2": students.FormerNumber("B2", "B1", "2026-04-01T00:00:00Z")
    }
    assert db.execute("SELECT former_sis_id FROM former_sis_ids ORDER BY 1").fetchall() == [("B2",)]
    stored, was = students.resolve(db, "S1")
    assert (stored.record.given_name, was) == ("Cal", None)
    # A student saved some other way under a former number still wins over the mapping.
    db.execute("INSERT INTO former_sis_ids VALUES ('S1', 'S2', '2026-02-01T00:00:00Z')")
    assert students.former(db, ["S1"]) == {}


def test_students_renumbered_before_take_their_former_numbers_from_the_audit_log(tmp_path: Path) -> None:
    # A home renumbered students before former numbers were kept: the student.renumbered audit entries
    # (oldest first) give them back, the chains followed and a number held now left out.
    from storage.migrations import MIGRATIONS

    db = open_database(tmp_path / "satchel.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0034_former_sis_ids")
    for sis_id, given_name in (("S3", "Ava"), ("S1", "Cal")):  # S1 given back to a new child since
        db.execute("INSERT INTO students (sis_id, source_id, given_name, family_name, origin, created_at, "
                   "updated_at) VALUES (?, ?, ?, 'Lopez', 'roster', ?, ?)",
                   [sis_id, f"guid-{given_name}", given_name, NOW, NOW])  # fmt: skip
    for seq, (old, new) in enumerate((("S1", "S2"), ("S2", "S3"), ("B1", "B2")), start=1):
        db.execute("INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, entry_hash) "
                   "VALUES (?, ?, 'coord', 'student.renumbered', ?, ?, '', '')",
                   [seq, f"2026-0{seq + 1}-01T00:00:00Z", new, json.dumps({"from": old, "to": new})])  # fmt: skip
    MIGRATIONS.apply(db)
    assert db.execute("SELECT * FROM former_sis_ids ORDER BY 1").fetchall() == [
        ("B1", "B2", "2026-04-01T00:00:00Z"), ("S2", "S3", "2026-03-01T00:00:00Z"),
    ]  # fmt: skip
