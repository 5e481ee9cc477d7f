"""Assessment results streamed from a CSV of any size: the same outcome as read whole, all or nothing, and
memory that does not grow with the file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.assessment_import import AssessmentRowsInvalid, import_assessments
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
        return results, reading.errors, reading.us_dates_refused
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
    lines = [f"S{i % 1000:05d},MAP Growth,{_SUBJECTS[i // 1000 % 3]},{2026 + i // 9000}-0{1 + i // 3000 % 3}-15,"
             f"{200 + i % 50},,," for i in range(rows)]  # fmt: skip
    path.write_text(HEADER + "\n".join([*lines, *extra]) + "\n")
    return path


def _stored(node: Any) -> list[tuple]:
    return node.db.execute("SELECT result_id, student_sis_id, subject, date, score FROM assessment_results "
                           "ORDER BY result_id").fetchall()  # fmt: skip


def test_a_spilled_import_stores_what_an_in_memory_one_stores(node: Any, tmp_path: Path) -> None:
    path = _csv(tmp_path / "map.csv", 4500)
    spilled = import_assessments(node, actor="coord", path=path, skip_invalid=False, spill_over=0)
    assert spilled == {"inserted": 4500, "updated": 0, "unchanged": 0, "skipped": 0}
    stored = _stored(node)
    node.db.execute("DELETE FROM assessment_results")
    assert import_assessments(node, actor="coord", path=path, skip_invalid=False) == spilled
    assert _stored(node) == stored and len(stored) == 4500
    again = import_assessments(node, actor="coord", path=path, skip_invalid=False, spill_over=0)
    assert again == {"inserted": 0, "updated": 0, "unchanged": 4500, "skipped": 0}
    assert list(node.blobs.tmp_dir.iterdir()) == []  # the scratch file went


def test_a_bad_row_after_batches_were_written_undoes_them_all(node: Any, tmp_path: Path) -> None:
    # 4,500 good rows (three batches) before a student that is not here and a second row of the first result.
    path = _csv(tmp_path / "map.csv", 4500, "S99999,MAP Growth,Math,2026-01-15,210,,,",
                "S00000,MAP Growth,Math,2026-01-15,200,,,")  # fmt: skip
    with pytest.raises(AssessmentRowsInvalid) as raised:
        import_assessments(node, actor="coord", path=path, skip_invalid=False, spill_over=0)
    rows = raised.value.rows
    assert [(r.line, r.field) for r in rows[:1]] == [(4503, "student_sis_id")]
    assert "same student, assessment, subject and date as line 2" in rows[0].message
    assert rows[1][0] == "map.csv" and "no student with SIS id 'S99999'" in rows[1][3]
    assert _stored(node) == []
    assert list(node.blobs.tmp_dir.iterdir()) == []
    skipped = import_assessments(node, actor="coord", path=path, skip_invalid=True, spill_over=0)
    assert skipped == {"inserted": 4500, "updated": 0, "unchanged": 0, "skipped": 2}


def test_progress_is_told_in_bytes_of_the_file(node: Any, tmp_path: Path) -> None:
    path = _csv(tmp_path / "map.csv", 9000)
    told: list[tuple[int, int]] = []
    import_assessments(node, actor="coord", path=path, skip_invalid=False, progress=lambda d, t: told.append((d, t)))
    size = path.stat().st_size
    assert len(told) >= 2 and told[-1] == (size, size)
    assert [d for d, _ in told] == sorted(d for d, _ in told)


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
    # A read chunk (256 KiB), a batch of 2,000 results and the scratch file's page cache (SQLite's, not
    # Python's) are what is held. Read whole, the 24,000 more rows took 24 MB more.
    assert peaks[1] - peaks[0] < 1 << 20, peaks
    assert node.db.execute("SELECT count(*) FROM assessment_results").fetchone()[0] == 36_000
