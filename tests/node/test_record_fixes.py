"""Cases and assessment results that landed on the wrong student: moved by a coordinator, erased for good by
an admin, each audited on the students concerned; and a record whose copy is gone is imported again."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from node import record_fixes
from node.errors import PermissionDenied
from node.records import add_case
from protocol import InvalidInput, NotFound
from protocol.manifest import metadata_texts
from protocol.roster import StudentRecord
from storage import imports, records, students
from storage.database import write_transaction

NOW = "2026-12-05T00:00:00Z"


@pytest.fixture
def two(node: Any) -> Any:
    students.upsert(node.db, [
        StudentRecord(sis_id=sis, source_id=sis, given_name=given, family_name="Lopez", birth_date=None, sex=None,
                      grade=None) for sis, given in (("S1", "Ana"), ("S2", "Bea"))
    ], now=NOW)  # fmt: skip
    with write_transaction(node.db):
        fields = {"assessment": "STAR", "subject": "Math", "date": "2026-09-01", "percentile": "55"}
        values = metadata_texts(fields, records.RESULT_VALUE_FIELDS)
        records.add_assessment_results(node.db, [("R1", "S1", values, "{}")], now=NOW)
    return node


def _trail(node: Any, action: str) -> list[tuple[str, dict]]:
    rows = node.db.execute("SELECT subject, details FROM audit_log WHERE action = ? ORDER BY seq", [action])
    return [(subject, json.loads(details)) for subject, details in rows.fetchall()]


def test_a_case_is_moved_then_purged(two: Any) -> None:
    node = two
    case = add_case(node, actor="coord", student_sis_id="S1", case_number="TA-1", person_of_concern="Ana Lopez",
                    notes="what happened")  # fmt: skip
    with pytest.raises(InvalidInput, match="already on S1"):
        record_fixes.move_case(node, actor="coord", record_id="TA-1", to="S1")
    with pytest.raises(NotFound):
        record_fixes.move_case(node, actor="coord", record_id="TA-1", to="S9")
    moved = record_fixes.move_case(node, actor="coord", record_id="TA-1", to="S2")  # by its number
    assert moved.student_sis_id == "S2" and moved.case_id == case.case_id
    assert [s for s, _ in _trail(node, "case.move")] == ["S1", "S2"]
    with pytest.raises(PermissionDenied):
        record_fixes.purge_case(node, actor="coord", record_id=case.case_id)
    record_fixes.purge_case(node, actor="admin", record_id=case.case_id)
    assert records.list_cases(node.db) == []
    [(subject, details)] = _trail(node, "case.purge")
    assert subject == "S2" and details == {"case_id": case.case_id, "case_number": "TA-1"}  # no content


def test_a_result_is_moved_then_purged(two: Any) -> None:
    node = two
    with pytest.raises(NotFound, match="no assessment result"):
        record_fixes.move_assessment(node, actor="coord", record_id="nope", to="S2")
    assert record_fixes.move_assessment(node, actor="coord", record_id="R1", to="S2")["student_sis_id"] == "S2"
    assert records.list_assessment_results(node.db, "S1") == []
    assert [s for s, _ in _trail(node, "assessment.move")] == ["S1", "S2"]
    with pytest.raises(PermissionDenied):
        record_fixes.purge_assessment(node, actor="coord", record_id="R1")
    record_fixes.purge_assessment(node, actor="admin", record_id="R1")
    assert records.list_assessment_results(node.db, "S2") == []
    assert _trail(node, "assessment.purge") == [("S2", {"result_id": "R1"})]


def test_an_imported_record_counts_as_here_only_while_its_copy_is(two: Any) -> None:
    node = two
    case = add_case(node, actor="coord", student_sis_id="S1", case_number="TA-2", person_of_concern="Ana Lopez")
    with write_transaction(node.db):
        imports.remember_records(node.db, [
            ("a.example.org", "r-result", "assessment", "R1", "I1", "T1", "S1"),
            ("a.example.org", "r-case", "case", case.case_id, "I1", "T1", "S1"),
            ("a.example.org", "r-doc", "document", "D-gone", "I1", "T1", "S1"),
        ])  # fmt: skip
    wanted = ["r-result", "r-case", "r-doc", "r-never"]
    assert imports.imported_among(node.db, "a.example.org", wanted) == {
        "r-result": ("assessment", "R1", True), "r-case": ("case", case.case_id, True),
        "r-doc": ("document", "D-gone", False),
    }  # fmt: skip
    record_fixes.purge_assessment(node, actor="admin", record_id="R1")
    record_fixes.purge_case(node, actor="admin", record_id=case.case_id)
    found = imports.imported_among(node.db, "a.example.org", wanted)
    assert {k: here for k, (_kind, _id, here) in found.items()} == {"r-result": False, "r-case": False, "r-doc": False}
    assert imports.imported_among(node.db, "b.example.org", wanted) == {}


def test_a_gone_record_is_forgotten_only_as_it_was_and_never_held_twice(two: Any) -> None:
    # Two imports racing to bring back the same record: the second finds the mapping already renewed, forgets
    # nothing, and its insert breaks the key (its student is skipped) instead of making a second copy.
    node = two
    row = ("a.example.org", "r-doc", "document", "D-old", "I1", "T1", "S1")
    with write_transaction(node.db):
        imports.remember_records(node.db, [row])
    with write_transaction(node.db):
        imports.forget_gone(node.db, [("a.example.org", "r-doc", "D-old")])
        imports.remember_records(node.db, [(*row[:3], "D-new", "I2", "T2", "S1")])
    with pytest.raises(sqlite3.IntegrityError), write_transaction(node.db):
        imports.forget_gone(node.db, [("a.example.org", "r-doc", "D-old")])  # the other import's view: stale
        imports.remember_records(node.db, [(*row[:3], "D-third", "I3", "T3", "S1")])
    assert imports.imported_among(node.db, "a.example.org", ["r-doc"]) == {"r-doc": ("document", "D-new", False)}
