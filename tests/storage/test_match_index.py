from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest
import sqlite_utils

from protocol.matching import IncomingStudent, blocking_keys
from protocol.roster import StudentRecord
from storage import match_index, students
from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS

NOW = "2024-09-01T00:00:00Z"


def student(sis_id: str, **changes: object) -> StudentRecord:
    values = {"sis_id": sis_id, "source_id": sis_id, "given_name": "Sofia", "family_name": "Reyes",
              "birth_date": "2013-05-09", "sex": "F", "grade": "05", "state_id": f"ST{sis_id}"}  # fmt: skip
    return StudentRecord(**{**values, **changes})  # type: ignore[arg-type]


def stored_keys(db: sqlite_utils.Database, sis_id: str) -> set[str]:
    return {row[0] for row in db.execute("SELECT key FROM student_match_keys WHERE sis_id = ?", [sis_id])}


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    return open_database(tmp_path / "node.db")


def test_upsert_indexes_new_students(db: sqlite_utils.Database) -> None:
    records = [student("S1"), student("S2", given_name="Mateo", family_name="Cruz", sex="M")]
    with write_transaction(db):
        students.upsert(db, records, now=NOW)
    for record in records:
        assert stored_keys(db, record.sis_id) == blocking_keys(record)


def test_upsert_replaces_keys_of_changed_students_only(db: sqlite_utils.Database) -> None:
    students.upsert(db, [student("S1"), student("S2", given_name="Mateo")], now=NOW)
    before = stored_keys(db, "S2")
    renamed = student("S1", family_name="Reyes-Ortiz", birth_date="2013-05-10")
    counts = students.upsert(db, [renamed, student("S2", given_name="Mateo")], now=NOW)
    assert (counts.updated, counts.unchanged) == (1, 1)
    assert stored_keys(db, "S1") == blocking_keys(renamed)
    assert not stored_keys(db, "S1") & (blocking_keys(student("S1")) - blocking_keys(renamed))
    assert stored_keys(db, "S2") == before


def test_upsert_is_atomic_with_its_keys(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TRIGGER no_keys BEFORE INSERT ON student_match_keys BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    with pytest.raises(Exception, match="x"):
        students.upsert(db, [student("S1")], now=NOW)
    assert students.count(db) == 0


def test_migration_backfills_existing_students(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0003_match_keys")
    records = [student(f"S{n}", given_name=name) for n, name in enumerate(["Ana", "Luis", "José María"])]
    columns = [f.name for f in fields(StudentRecord)]
    for record in records:
        db.execute(
            f"INSERT INTO students ({', '.join(columns)}, created_at, updated_at) "
            f"VALUES ({', '.join('?' * len(columns))}, ?, ?)",
            [*record.to_dict().values(), NOW, NOW],
        )
    MIGRATIONS.apply(db)
    for record in records:
        assert stored_keys(db, record.sis_id) == blocking_keys(record)
    assert match_index.rebuild(db) == sum(len(blocking_keys(r)) for r in records)


def _incoming(**changes: object) -> IncomingStudent:
    values = {
        "sender_sis_id": "T1",
        "given_name": "Sofia",
        "family_name": "Reyes",
        "birth_date": "2013-05-09",
    }
    return IncomingStudent(**{**values, **changes})  # type: ignore[arg-type]


def test_candidates_find_students_despite_slips(db: sqlite_utils.Database) -> None:
    local = [student("S1"), student("S2", given_name="Lucia"), student("S3", family_name="Nguyen", given_name="Linh"),
             student("S4", given_name="Sofia", family_name="Reyes", birth_date="2009-01-01")]  # fmt: skip
    students.upsert(db, local, now=NOW)
    queries = [
        _incoming(family_name="Reyez"),
        _incoming(given_name="Reyes", family_name="Sofia"),
        _incoming(birth_date="2013-09-05"),
        _incoming(given_name="Zed", family_name="Quux", birth_date="2001-01-01"),
    ]
    found = match_index.candidates(db, queries)
    assert set(found) == {0, 1, 2, 3}
    assert found[0][0].sis_id == "S1" and {r.sis_id for r in found[0]} == {"S1", "S2"}
    assert found[1][0].sis_id == "S1" and found[2][0].sis_id == "S1"
    assert found[3] == []
    assert isinstance(found[0][0], StudentRecord)


def test_candidates_skip_unselective_keys_and_cap_the_list(db: sqlite_utils.Database) -> None:
    twins = [student(f"S{n}", given_name=name) for n, name in enumerate(["Ana", "Eva", "Ida", "Ola"])]
    students.upsert(db, twins, now=NOW)
    query = [_incoming(given_name="Ana")]
    assert len(match_index.candidates(db, query)[0]) == 4
    # Only Ana shares her given-name keys; the family-name key (4 rows) is now too common.
    assert [r.sis_id for r in match_index.candidates(db, query, limit_per_key=3)[0]] == ["S0"]
    assert [r.sis_id for r in match_index.candidates(db, query, max_candidates=1)[0]] == ["S0"]


def test_lookups_are_batched_beyond_one_statement(db: sqlite_utils.Database) -> None:
    many = [student(f"S{n:04d}", given_name=f"Kid{n}") for n in range(1203)]
    with write_transaction(db):
        students.upsert(db, many, now=NOW)
        students.upsert(db, [replace(student("X1"), state_id="STS0007")], now=NOW)
    by_sis = match_index.lookup_sis_ids(db, [r.sis_id for r in many] + ["nope"])
    assert len(by_sis) == 1203 and by_sis["S0042"] == many[42]
    by_state = match_index.lookup_state_ids(db, [r.state_id for r in many] + ["", "nope"])
    assert len(by_state) == 1203
    assert {r.sis_id for r in by_state["STS0007"]} == {"S0007", "X1"}
