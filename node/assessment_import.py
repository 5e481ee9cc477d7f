"""`satchel assessments import`: a district's assessment results CSV into the database, all or nothing.

The file is streamed from disk and its results written in batches, each checked against the students here
with one query: memory stays flat whatever the file's size (a large district's state test export has
millions of rows). A file over ``SPILL_OVER_BYTES`` also keeps the line of each result id (to find a second
row of the same result) in a scratch SQLite file rather than in memory. The results go in one transaction,
rolled back when any row is invalid (unless ``skip_invalid``), so an invalid file changes nothing.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from node.clock import now_iso
from node.home import Node
from node.operators import authorize, record
from node.progress import Progress, ReadMeter
from protocol.assessments_csv import ISO_DATES, US_DATES, AssessmentResult, read_assessments_csv
from protocol.csv_rows import RowError, RowsInvalid
from storage import records, students
from storage.database import write_transaction
from storage.rows import batched
from storage.spill_map import SpillFile

SPILL_OVER_BYTES = 16 * 1024 * 1024  # some 300,000 rows
BATCH = 2000


class AssessmentRowsInvalid(RowsInvalid):
    code = "assessments.rows_invalid"
    default_hint = "fix the rows listed, or re-run with --skip-invalid to import the valid rows only"


# A row that parsed but names no student here: (file, no line, field, reason). The reader keeps no line
# numbers for valid rows; the result id identifies the row instead.
_Unknown = tuple[str, None, str, str]


def import_assessments(
    node: Node, *, actor: str | None, path: Path, skip_invalid: bool, dates: str = ISO_DATES,
    progress: Progress | None = None, spill_over: int = SPILL_OVER_BYTES,
) -> dict[str, int]:  # fmt: skip
    """``progress`` hears how many bytes of the file have been read (each batch is written as it is read)."""
    user = authorize(node, actor, "records.write")
    size = path.stat().st_size
    with path.open("rb") as source, SpillFile(node.blobs.tmp_dir) if size > spill_over else nullcontext() as spill:
        reading = read_assessments_csv(
            ReadMeter(size, progress).chunks(source), file=path.name, dates=dates,
            seen=spill.mapping("result_lines") if spill else None,
        )  # fmt: skip
        unknown: list[_Unknown] = []
        inserted = updated = unchanged = 0
        now = now_iso()
        with write_transaction(node.db):
            for batch in batched(reading.results(), BATCH):
                known = _known(node, batch, path.name, unknown)
                counts = records.upsert_assessment_results(node.db, known, now=now)
                inserted, updated, unchanged = inserted + counts[0], updated + counts[1], unchanged + counts[2]
            errors: list[RowError | _Unknown] = [*reading.errors, *unknown]
            if errors and not skip_invalid:
                raise AssessmentRowsInvalid(  # undoes every batch written
                    f"{len(errors)} row(s) of {path.name} are invalid; nothing was imported", tuple(errors),
                    hint=f"its dates are written month/day/year, as Excel saves them: re-run with --dates {US_DATES}"
                    if reading.us_dates_refused else None,
                )  # fmt: skip
            result = {"inserted": inserted, "updated": updated, "unchanged": unchanged, "skipped": len(errors)}
            if inserted or updated:
                record(node, user.username, "assessments.import", path.name, result)
    return result


def _known(node: Node, batch: list[AssessmentResult], file: str, unknown: list[_Unknown]) -> list[AssessmentResult]:
    here = students.present(node.db, (r.student_sis_id for r in batch))
    for result in batch:
        if result.student_sis_id not in here:
            reason = f"no student with SIS id {result.student_sis_id!r} (result {result.result_id})"
            unknown.append((file, None, "student_sis_id", reason))
    return [r for r in batch if r.student_sis_id in here]

