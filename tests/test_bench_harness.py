"""The benchmark harness of issue 8 (not the benchmarks: nothing here is timed or judged by speed). Here, not
in tests/bench, which pytest does not collect (`norecursedirs`): the benchmarks stay out of `make test`.

What `make bench` promises beyond the numbers: every goal printed with its ratio and verdict, a JSON file
with median, min and max of every run, informational rows never counted as goals, and workloads that the
same seed makes again byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.common import ROOT, Row, ratio_row, stats
from tests.bench.report import markdown_table, text_table
from tests.bench.workloads import make_grade, random_chunks


def _row(ratio: float, *, info: bool = False) -> Row:
    return ratio_row("9", "a goal", baseline="base", measured="satchel", base=stats([100.0, 90.0, 110.0]),
                     got=stats([100.0 * ratio] * 3), unit="MiB/s", at_least=0.6, info=info)  # fmt: skip


@pytest.mark.parametrize(("ratio", "verdict"), [(0.6, "yes"), (0.61, "yes"), (0.59, "NO")])
def test_a_goal_is_met_from_the_ratio_of_medians_at_its_edge(ratio: float, verdict: str) -> None:
    row = _row(ratio)
    assert row.ratio == pytest.approx(ratio)
    line = text_table([row]).splitlines()[2]
    assert line.split()[0] == "9" and line.split()[-1] == verdict and f"{ratio:.2f}" in line.split()
    assert f"| {verdict} |" in markdown_table([row])


def test_an_informational_row_has_no_verdict_and_is_not_counted_as_a_goal() -> None:
    row = _row(0.1, info=True)
    assert row.met is None and row.info
    assert text_table([row]).splitlines()[2].split()[-1] == "info"


def test_stats_report_median_min_and_max_of_every_run() -> None:
    got = stats([3.0, 1.0, 2.0, 10.0, 4.0])
    assert (got.median, got.min, got.max) == (3.0, 1.0, 10.0)
    assert got.to_json()["runs"] == [3.0, 1.0, 2.0, 10.0, 4.0]


def test_workloads_are_made_again_byte_for_byte_from_their_seed() -> None:
    assert b"".join(random_chunks("grade/1", 100_000, 4096)) == b"".join(random_chunks("grade/1", 100_000))
    assert b"".join(random_chunks("grade/1", 4096)) != b"".join(random_chunks("grade/2", 4096))
    small = make_grade(students=20, results_per_student=2, documents=10, scale=0.01)
    again = make_grade(students=20, results_per_student=2, documents=10, scale=0.01)
    assert small == again and small.document_bytes > 0
    # The scale multiplies the documents' sizes and nothing else (goal 2 compares two grades that way).
    doubled = make_grade(students=20, results_per_student=2, documents=10, scale=0.02)
    assert doubled.students == small.students and doubled.assessments == small.assessments
    assert doubled.document_bytes == pytest.approx(2 * small.document_bytes, rel=0.01)


def test_a_quick_run_prints_each_goal_with_its_ratio_and_verdict_and_writes_the_json(tmp_path: Path) -> None:
    """Goal 3 end to end at the harness's quick size: two real nodes, a real transfer, the import and the
    baseline, its floor row too."""
    out = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--quick", "--only", "3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    lines = {line.split()[0]: line.split() for line in run.stdout.splitlines() if line[:2] in ("3 ", "3*")}
    assert lines["3"][-1] in ("yes", "NO") and lines["3"][-3] == ">=" and float(lines["3"][-4]) > 0
    assert lines["3*"][-1] == "info"
    assert "of 1 goals met" in run.stdout  # the floor row is no goal
    written = json.loads(out.read_text())
    assert written["meta"]["quick"] is True and written["meta"]["goals"] == ["3"]
    goal = next(g for g in written["goals"] if g["goal"] == "3")
    for side in ("baseline", "measured"):
        numbers = goal[side + "_stats"]
        assert numbers["min"] <= numbers["median"] <= numbers["max"] and len(numbers["runs"]) == 2
