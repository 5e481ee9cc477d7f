"""`satchel assessments import`: a district's assessment results CSV into the database, all or nothing.

The file is read once, streamed from disk, and every row is checked (its fields, a second row of a result,
its student here: one query per ``BATCH`` rows) before any is saved. The checked rows wait in a scratch
SQLite file (storage.spill_map), so memory stays flat whatever the file's size: a large district's state test
export has millions of rows. A file over ``SPILL_OVER_BYTES`` also keeps the line of each result id there (to
find a second row of the same result) rather than in memory.

A file with an invalid row changes nothing (unless the caller skips invalid rows). The rows are then saved
``SAVE_ROWS`` to a transaction, so the database is held for a fraction of a second at a time: the serving
node, which writes from its event loop, and coordinators' commands wait that long, not the whole import (a
600,000-row file held it for 34 s in one transaction). An import stopped mid-way has saved whole batches;
running it again saves the rest, as a re-run changes nothing already saved. The audit log gets
``assessments.import`` with the first change and ``assessments.import.finished`` at the end, or
``assessments.import.stopped`` if an error stops it (node.batched_save).

A result a coordinator moved to another student (`satchel assessments move`) stays there whatever student
the file names (storage.records.upsert_assessment_rows): each row naming another is counted as ``moved_kept``
(in the audit entry too) and told to ``kept``, for the coordinator to fix the export or move it again.

A result purged here (`satchel assessments purge`) is not added back by a file that still lists it: a purge is
the district's decision, and the nightly file would otherwise undo it the next morning, unseen. Each such
row is skipped, counted as ``purged`` too (in the audit entry as well), and told to ``purged``, naming the
result, for the coordinator to fix the export; should the result come back after all, an admin lifts the
purge (`satchel assessments unpurge`, node.record_fixes.unpurge_assessment) and the next import adds it.

A student can leave between the check and the save only when a coordinator cancels, at that moment, the
import of the transfer that created it. Its rows are then not saved, and counted as skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from node.batched_save import save_in_batches
from node.clock import now_iso, utc_now
from node.home import Node
from node.operators import authorize
from node.progress import Progress, ReadMeter
from protocol.assessments_csv import ISO_DATES, US_DATES, AssessmentResult, read_assessments_csv
from protocol.csv_rows import KEEP_ROW_ERRORS, RowError, RowErrors, RowsInvalid
from storage import purges, records, students
from storage.records import AssessmentRow, MovedKept
from storage.rows import batched
from storage.spill_map import SpillFile

SPILL_OVER_BYTES = 16 * 1024 * 1024  # some 300,000 rows
BATCH = 2000
# Rows saved per transaction: about 0.2 s of holding the database, which the serving node's writes wait out.
SAVE_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class PurgedRow:
    """A row of the file naming a result that was purged here: not imported."""

    result_id: str
    assessment: str
    subject: str
    date: str
    listed_under: str
    purged_from: str | None  # the student it was on when purged (None: purged before version 0030 said)
    purged_at: str
    purged_by: str


class AssessmentRowsInvalid(RowsInvalid):
    code = "assessments.rows_invalid"
    default_hint = "fix the rows listed, or re-run with --skip-invalid to import the valid rows only"


def import_assessments(
    node: Node, *, actor: str | None, path: Path, skip_invalid: bool, dates: str = ISO_DATES,
    reading: Progress | None = None, progress: Progress | None = None, spill_over: int = SPILL_OVER_BYTES,
    kept: Callable[[MovedKept], None] | None = None, purged: Callable[[PurgedRow], None] | None = None,
) -> dict[str, int]:  # fmt: skip
    """``reading`` hears how many bytes of the file are read and checked; then ``progress``, how many of the
    valid results are saved; ``kept``, each row that names another student than the one a coordinator moved
    its result to; ``purged``, each row of a result purged here. See the module's docstring for what is
    written when."""
    user = authorize(node, actor, "records.write")
    size = path.stat().st_size
    with path.open("rb") as source, SpillFile(node.blobs.tmp_dir) as scratch:
        rows = read_assessments_csv(
            ReadMeter(size, reading).chunks(source), file=path.name, dates=dates, dates_until=utc_now().date(),
            seen=scratch.mapping("result_lines") if size > spill_over else None,
        )  # fmt: skip
        checked = scratch.list("checked")
        unknown: RowErrors[RowError] = RowErrors()  # rows that are valid but name no student here
        for batch in batched(rows.numbered(), BATCH):
            checked.extend(records.assessment_row(r) for r in _known(node, batch, path.name, unknown))
        invalid = len(rows.errors) + len(unknown)
        if invalid and not skip_invalid:
            raise AssessmentRowsInvalid(
                f"{invalid} row(s) of {path.name} are invalid; nothing was imported",
                (*rows.errors.kept(), *unknown.kept())[:KEEP_ROW_ERRORS], count=invalid,
                hint=f"its dates are written month/day/year, as Excel saves them: re-run with --dates {US_DATES}"
                if rows.us_dates_refused else None,
            )  # fmt: skip
        now = now_iso()  # one time stamp for the whole import
        totals = save_in_batches(
            node, checked, size=SAVE_ROWS, save=lambda batch: _save(node, batch, now, kept, purged), total=len(checked),
            progress=progress, actor=user.username, action="assessments.import", subject=path.name,
            started={"results": len(checked), "skipped": invalid}, skipped=invalid,
            finished=lambda totals: _result(totals, invalid),
        )  # fmt: skip
        return _result(totals, invalid)


def _known(
    node: Node, batch: list[tuple[int, AssessmentResult]], file: str, unknown: RowErrors[RowError]
) -> list[AssessmentResult]:
    here = students.present(node.db, (r.student_sis_id for _, r in batch))
    for line, result in batch:
        if result.student_sis_id not in here:
            unknown.append(RowError(file=file, line=line, field="student_sis_id",
                                    message=f"no student with SIS id {result.student_sis_id!r} here"))  # fmt: skip
    return [r for _, r in batch if r.student_sis_id in here]


def _save(
    node: Node, batch: list[AssessmentRow], now: str, tell: Callable[[MovedKept], None] | None,
    tell_purged: Callable[[PurgedRow], None] | None,
) -> dict[str, int]:  # fmt: skip
    here = students.present(node.db, (row[1] for row in batch))  # again: see the module's docstring
    refused = purges.among(node.db, purges.OWN, (row[0] for row in batch))
    inserted, updated, unchanged, kept = records.upsert_assessment_rows(
        node.db, (row for row in batch if row[1] in here and row[0] not in refused), now=now
    )
    if tell is not None:
        for moved in kept:
            tell(moved)
    if tell_purged is not None:
        for row in batch:
            if (was := refused.get(row[0])) is not None:
                tell_purged(PurgedRow(row[0], row[2], row[3], row[4], listed_under=row[1],
                                      purged_from=was.student_sis_id, purged_at=was.purged_at,
                                      purged_by=was.purged_by))  # fmt: skip
    gone = len(batch) - inserted - updated - unchanged  # the purged ones among them
    return {"inserted": inserted, "updated": updated, "unchanged": unchanged, "skipped": gone,
            "moved_kept": len(kept), "purged": len(refused)}  # fmt: skip


def _result(totals: Counter[str], invalid: int) -> dict[str, int]:
    return {"inserted": totals["inserted"], "updated": totals["updated"], "unchanged": totals["unchanged"],
            "skipped": invalid + totals["skipped"], "moved_kept": totals["moved_kept"],
            "purged": totals["purged"]}  # fmt: skip
