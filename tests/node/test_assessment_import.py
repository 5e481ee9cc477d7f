"""Assessment results streamed from a CSV of any size: the same outcome as read whole, all or nothing, saved a
batch at a time once all are checked, and memory that does not grow with the file."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import record_fixes
from node.assessment_import import SAVE_ROWS, AssessmentRowsInvalid, import_assessments
from protocol import SatchelError
from protocol.assessments_csv import read_assessments_csv
from protocol.roster import StudentRecord
from storage import students
from storage.spill_map import SpillFile

from support import peak_python_memory

HEADER = "student_sis_id,assessment,subject,date,score,scale_score,percentile,benchmark_category\n"
_SUBJECTS = ["Math", "Reading", "Science"]


def _outcome(data: Any, seen: Any = None) -> object:
    try:
        reading = read_assessments_csv(data, dates="M/D/YYYY", seen=seen)
        results = list(reading.results())
        return results, reading.errors.kept(), len(reading.errors), reading.us_dates_refused
    except SatchelError as exc:
        return type(exc).__name__, exc.message, exc.field


_CELLS = st.sampled_from(["101", "102", "MAP", "Math", "9/17/2026", "2026-09-17", "13/1/2026", "71", "-1", "x",
                          "", '"a,b"', "100.5"])  # fmt: skip
_ROWS = st.lists(st.lists(_CELLS, min_size=7, max_size=9).map(",".join), max_size=12)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_ROWS, st.sampled_from(["\n", "\r\n"]), st.integers(1, 40))
def test_streamed_and_spilled_reads_as_whole(rows: list[str], newline: str, chunk: int) -> None:
    # Rows repeat (a second row of a result), have bad dates, numbers and widths: every error path.
    data = (HEADER + newline.join(rows + rows[:2])).encode()
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    with tempfile.TemporaryDirectory() as folder, SpillFile(Path(folder)) as spill:
        assert _outcome(chunks, spill.mapping("lines")) == _outcome(data)


@pytest.fixture
def node(node: Any) -> Any:
    """The shared node, with 1,000 students for the results to name."""
    students.upsert(node.db, [StudentRecord(sis_id=f"S{i:05d}", source_id=f"S{i:05d}", given_name="Ana",
                                            family_name="Lopez", birth_date=None, sex=None, grade=None)
                              for i in range(1000)], now="2026-12-05T00:00:00Z")  # fmt: skip
    return node


def _csv(path: Path, rows: int, *extra: str) -> Path:
    # Each row a distinct result: 1,000 students x 3 subjects x 3 months x a year per 9,000 rows.
    lines = [f"S{i % 1000:05d},MAP Growth,{_SUBJECTS[i // 1000 % 3]},{2020 + i // 9000}-0{1 + i // 3000 % 3}-15,"
             f"{200 + i % 50},,," for i in range(rows)]  # fmt: skip
    path.write_text(HEADER + "\n".join([*lines, *extra]) + "\n")
    return path


def _stored(node: Any) -> list[tuple]:
    return node.db.execute("SELECT result_id, student_sis_id, subject, date, score FROM assessment_results "
                           "ORDER BY result_id").fetchall()  # fmt: skip


def test_an_import_stopped_by_an_error_part_way_says_so_in_the_audit_log(node: Any, tmp_path: Path) -> None:
    # A real constraint, as a damaged or hand-edited database might have, refuses a row of the second batch.
    path = _csv(tmp_path / "map.csv", 18_000)
    node.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON assessment_results WHEN NEW.date = '2021-03-15' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")  # fmt: skip
    with pytest.raises(Exception, match="refused by the test"):
        import_assessments(node, actor="coord", path=path, skip_invalid=False)
    assert len(_stored(node)) == 10_000  # the first batch stays saved
    assert _audit(node) == [
        ("assessments.import", {"results": 18_000, "skipped": 0}),
        ("assessments.import.stopped", {"inserted": 10_000, "updated": 0, "unchanged": 0, "skipped": 0,
                                        "moved_kept": 0, "purged": 0, "done": 10_000, "of": 18_000,
                                        "error": "IntegrityError", "reason": "refused by the test"}),
    ]  # fmt: skip
    node.db.execute("DROP TRIGGER refuse")
    again = import_assessments(node, actor="coord", path=path, skip_invalid=False)
    assert again == {"inserted": 8_000, "updated": 0, "unchanged": 10_000, "skipped": 0, "moved_kept": 0, "purged": 0}
    assert _audit(node)[-1] == ("assessments.import.finished", again)


def test_a_spilled_import_stores_what_an_in_memory_one_stores(node: Any, tmp_path: Path) -> None:
    path = _csv(tmp_path / "map.csv", 4500)
    spilled = import_assessments(node, actor="coord", path=path, skip_invalid=False, spill_over=0)
    assert spilled == {"inserted": 4500, "updated": 0, "unchanged": 0, "skipped": 0, "moved_kept": 0, "purged": 0}
    stored = _stored(node)
    node.db.execute("DELETE FROM assessment_results")
    assert import_assessments(node, actor="coord", path=path, skip_invalid=False) == spilled
    assert _stored(node) == stored and len(stored) == 4500
    again = import_assessments(node, actor="coord", path=path, skip_invalid=False, spill_over=0)
    assert again == {"inserted": 0, "updated": 0, "unchanged": 4500, "skipped": 0, "moved_kept": 0, "purged": 0}
    assert list(node.blobs.tmp_dir.iterdir()) == []  # the scratch file went


def test_a_bad_row_after_many_good_ones_stops_the_import_before_a_row_is_saved(node: Any, tmp_path: Path) -> None:
    # 4,500 good rows (three batches read) before a student that is not here and a second row of the first result.
    path = _csv(tmp_path / "map.csv", 4500, "S99999,MAP Growth,Math,2020-01-15,210,,,",
                "S00000,MAP Growth,Math,2020-01-15,200,,,")  # fmt: skip
    with pytest.raises(AssessmentRowsInvalid) as raised:
        import_assessments(node, actor="coord", path=path, skip_invalid=False, spill_over=0)
    rows = raised.value.rows
    assert [(r.line, r.field) for r in rows[:1]] == [(4503, "student_sis_id")]
    assert "same student, assessment, subject and date as line 2" in rows[0].message
    # A student not here is named with its line, as the file's own checks name theirs.
    assert (rows[1].file, rows[1].line, rows[1].field) == ("map.csv", 4502, "student_sis_id")
    assert rows[1].message == "no student with SIS id 'S99999' here"
    assert _stored(node) == []
    assert list(node.blobs.tmp_dir.iterdir()) == []
    assert _audit(node) == []
    skipped = import_assessments(node, actor="coord", path=path, skip_invalid=True, spill_over=0)
    assert skipped == {"inserted": 4500, "updated": 0, "unchanged": 0, "skipped": 2, "moved_kept": 0, "purged": 0}
    assert _audit(node) == [
        ("assessments.import", {"results": 4500, "skipped": 2}),
        ("assessments.import.finished", skipped),
    ]
    # Nothing to change and nothing skipped: nothing to audit.
    valid = _csv(tmp_path / "valid.csv", 4500)
    assert import_assessments(node, actor="coord", path=valid, skip_invalid=False)["unchanged"] == 4500
    assert len(_audit(node)) == 2


def _audit(node: Any) -> list[tuple[str, dict]]:
    rows = node.db.execute("SELECT action, details FROM audit_log WHERE action LIKE 'assessments.import%' "
                           "ORDER BY seq")  # fmt: skip
    return [(action, json.loads(details)) for action, details in rows]


def test_progress_is_told_in_bytes_read_then_in_results_saved(node: Any, tmp_path: Path) -> None:
    path = _csv(tmp_path / "map.csv", 25_000)
    read: list[tuple[int, int]] = []
    other = sqlite3.connect(node.config.db_path)  # another process's view: it sees only committed changes
    saved: list[tuple[int, int, int]] = []

    def told_saved(done: int, total: int) -> None:
        saved.append((done, total, other.execute("SELECT count(*) FROM assessment_results").fetchone()[0]))

    import_assessments(node, actor="coord", path=path, skip_invalid=False, reading=lambda d, t: read.append((d, t)),
                       progress=told_saved)  # fmt: skip
    size = path.stat().st_size
    assert len(read) >= 2 and read[-1] == (size, size)
    assert [d for d, _ in read] == sorted(d for d, _ in read)
    # So that the serving node's writes (which wait on its event loop) wait for a batch, not the import: told
    # after each batch is committed, and others see each batch as it is told.
    assert SAVE_ROWS == 10_000
    assert saved == [(10_000, 25_000, 10_000), (20_000, 25_000, 20_000), (25_000, 25_000, 25_000)]


def test_a_student_removed_between_check_and_save_has_its_rows_skipped(node: Any, tmp_path: Path) -> None:
    # As when a coordinator cancels, meanwhile, the import of the transfer that created the student: its
    # results and then itself go. The rows still to save for it are skipped, not an integrity error.
    path = _csv(tmp_path / "map.csv", 25_000)

    def saved(done: int, total: int) -> None:
        if done == SAVE_ROWS:
            node.db.execute("DELETE FROM assessment_results WHERE student_sis_id = 'S00999'")
            node.db.execute("DELETE FROM students WHERE sis_id = 'S00999'")

    counts = import_assessments(node, actor="coord", path=path, skip_invalid=False, progress=saved)
    # S00999 has one row in each 1,000: 10 were saved in the first batch (and deleted), 15 come later.
    assert counts == {"inserted": 24_985, "updated": 0, "unchanged": 0, "skipped": 15, "moved_kept": 0, "purged": 0}
    assert len(_stored(node)) == 24_985 - 10
    assert _audit(node)[-1] == ("assessments.import.finished", counts)


def _peak(node: Any, path: Path) -> int:
    node.db.execute("DELETE FROM assessment_results")
    return peak_python_memory(lambda: import_assessments(node, actor="coord", path=path, skip_invalid=False,
                                                         spill_over=0))  # fmt: skip


def test_memory_does_not_grow_with_the_file(node: Any, tmp_path: Path) -> None:
    # Both files are more than a read chunk (256 KiB, some 6,000 rows) long: below that, the chunk held grows
    # with the file, up to its size.
    small, large = _csv(tmp_path / "small.csv", 12_000), _csv(tmp_path / "large.csv", 36_000)
    _peak(node, small)  # warm: imports, caches
    peaks = [_peak(node, small), _peak(node, large)]
    # A read chunk (256 KiB), a batch of results read or saved, and the scratch file's page cache (SQLite's,
    # not Python's) are what is held. Read whole, the 24,000 more rows took 24 MB more.
    assert peaks[1] - peaks[0] < 1 << 20, peaks
    assert node.db.execute("SELECT count(*) FROM assessment_results").fetchone()[0] == 36_000


def _us_dated(path: Path, rows: int) -> Path:
    # As Excel saves a US date: every row is refused without --dates M/D/YYYY.
    lines = [f"S{i % 1000:05d},MAP Growth,{_SUBJECTS[i // 1000 % 3]},{1 + i // 3000 % 3}/15/{2020 + i // 9000},"
             f"{200 + i % 50},,," for i in range(rows)]  # fmt: skip
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def _refused(node: Any, path: Path) -> AssessmentRowsInvalid:
    with pytest.raises(AssessmentRowsInvalid) as raised:  # each result id's line spilled: only errors held
        import_assessments(node, actor="coord", path=path, skip_invalid=False, spill_over=0)
    return raised.value


def test_a_file_whose_every_row_is_bad_keeps_the_first_thousand_and_counts_all(node: Any, tmp_path: Path) -> None:
    small, large = _us_dated(tmp_path / "small.csv", 12_000), _us_dated(tmp_path / "large.csv", 36_000)
    refused = _refused(node, large)
    assert refused.count == 36_000 and refused.message.startswith("36000 row(s) of large.csv are invalid")
    assert [(r.line, r.field) for r in refused.rows] == [(line, "date") for line in range(2, 1002)]
    assert "--dates M/D/YYYY" in (refused.hint or "")
    _refused(node, small)  # warm
    peaks = [peak_python_memory(lambda p=p: _refused(node, p)) for p in (small, large)]  # type: ignore[misc]
    # An error kept for every row took 24,000 x about 210 bytes more: 5 MB.
    assert peaks[1] - peaks[0] < 1 << 20, peaks
    assert _stored(node) == []


@pytest.mark.parametrize("with_ids", [False, True], ids=["derived ids", "result_id column"])
def test_a_result_a_coordinator_moved_stays_moved_whatever_the_nightly_file_says(
    node: Any, tmp_path: Path, with_ids: bool
) -> None:
    # The SIS export put a score on S00001; a coordinator moved it to S00002, where it belongs. The next
    # nightly files still list it under S00001 (the export was not fixed) and must not undo the move: it
    # stays, is reported, and its new score is taken. Once the export is fixed, the row under S00002 is
    # that same result, not a second one, whether the file has result ids or they are derived from the
    # student (a fixed export then gives the row another id).
    def nightly(student: str, score: int) -> Path:
        header, row = HEADER, f"{student},MAP Growth,Math,2026-09-17,{score},,,"
        if with_ids:
            header, row = "result_id," + HEADER, "R-1," + row
        path = tmp_path / "nightly.csv"
        path.write_text(header + row + "\n")
        return path

    def held() -> list[tuple]:
        return node.db.execute("SELECT result_id, student_sis_id, score FROM assessment_results").fetchall()

    import_assessments(node, actor="coord", path=nightly("S00001", 200), skip_invalid=False)
    [(result_id, _, _)] = held()
    record_fixes.move_assessment(node, actor="coord", record_id=result_id, to="S00002")

    counts = import_assessments(node, actor="coord", path=nightly("S00001", 201), skip_invalid=False)
    assert held() == [(result_id, "S00002", "201")]
    assert counts == {"inserted": 0, "updated": 1, "unchanged": 0, "skipped": 0, "moved_kept": 1, "purged": 0}
    assert _audit(node)[-1] == ("assessments.import.finished", counts)
    kept: list[Any] = []
    again = import_assessments(node, actor="coord", path=nightly("S00001", 201), skip_invalid=False,
                               kept=kept.append)  # fmt: skip
    assert again == {"inserted": 0, "updated": 0, "unchanged": 1, "skipped": 0, "moved_kept": 1, "purged": 0}
    assert _audit(node)[-1] == ("assessments.import.finished", again)  # told each night, not only the first
    assert [(k.result_id, k.student_sis_id, k.listed_under, k.moved_by) for k in kept] == [
        (result_id, "S00002", "S00001", "coord")
    ]

    fixed = import_assessments(node, actor="coord", path=nightly("S00002", 202), skip_invalid=False)
    assert held() == [(result_id, "S00002", "202")]
    assert fixed == {"inserted": 0, "updated": 1, "unchanged": 0, "skipped": 0, "moved_kept": 0, "purged": 0}


@pytest.mark.parametrize("with_ids", [False, True], ids=["derived ids", "result_id column"])
def test_a_result_purged_here_stays_purged_whatever_the_nightly_file_says(
    node: Any, tmp_path: Path, with_ids: bool
) -> None:
    # An admin purged a result (it was on the wrong student); the nightly file still lists it. It is skipped
    # and told, each night, until an admin lifts the purge. A file fixed to name the right student gives a
    # derived id another value (another result), but keeps an explicit result_id: that one stays refused too.
    def nightly(student: str) -> Path:
        header, row = HEADER, f"{student},MAP Growth,Math,2026-09-17,200,,,"
        if with_ids:
            header, row = "result_id," + HEADER, "R-1," + row
        path = tmp_path / "nightly.csv"
        path.write_text(header + row + "\n")
        return path

    import_assessments(node, actor="coord", path=nightly("S00001"), skip_invalid=False)
    [(result_id, *_)] = _stored(node)
    record_fixes.purge_assessment(node, actor="admin", record_id=result_id)
    told: list[Any] = []
    counts = import_assessments(node, actor="coord", path=nightly("S00001"), skip_invalid=False, purged=told.append)
    assert counts == {"inserted": 0, "updated": 0, "unchanged": 0, "skipped": 1, "moved_kept": 0, "purged": 1}
    assert _stored(node) == []
    assert _audit(node)[-1] == ("assessments.import.finished", counts)
    assert [(t.result_id, t.listed_under, t.purged_from, t.purged_by) for t in told] == [
        (result_id, "S00001", "S00001", "admin")
    ]
    fixed = import_assessments(node, actor="coord", path=nightly("S00002"), skip_invalid=False)
    assert fixed["purged"] == int(with_ids) and fixed["inserted"] == 1 - int(with_ids)

    record_fixes.unpurge_assessment(node, actor="admin", record_id=result_id)
    back = import_assessments(node, actor="coord", path=nightly("S00001"), skip_invalid=False)
    assert back["purged"] == 0 and [r[0] for r in _stored(node)].count(result_id) == 1
    with pytest.raises(SatchelError) as caught:
        record_fixes.unpurge_assessment(node, actor="admin", record_id=result_id)
    assert caught.value.code == "not_found"
