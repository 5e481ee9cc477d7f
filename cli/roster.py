"""`satchel roster import` and `satchel students ...`: the district's own students."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.common import (
    CONTEXT,
    LIMIT,
    OFFSET,
    as_option,
    current_student,
    home_option,
    json_option,
    opened,
    print_fields,
    print_json,
    print_table,
)
from cli.progress import progress_line

# sourcedIds named in the table output; --json names up to a thousand.
_NOT_HELD_SHOWN = 10


@click.group("roster", context_settings=CONTEXT)
def roster_group() -> None:
    """Load the district's students from its SIS (OneRoster 1.1 / 1.2 CSV).

    \b
    Example:
      satchel roster import exports/oneroster.zip --as jdoe
    """


@roster_group.command("import", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even when some rows are invalid.")
@click.option(
    "--new-sourced-ids", is_flag=True,
    help="The SIS gave its students new sourcedIds (a new SIS): a row whose SIS id a student holds here under "
         "another sourcedId is that student.",
)  # fmt: skip
@json_option
def roster_import(
    home: str | None, actor: str | None, path: Path, skip_invalid: bool, new_sourced_ids: bool, as_json: bool
) -> None:
    """Import or update students from a OneRoster CSV folder or zip (users with role student).

    Students are matched by SIS id: new ones are added, changed ones updated, identical ones left alone,
    so running the same import twice changes nothing. A file with any invalid row changes nothing unless
    --skip-invalid is given; the invalid rows are listed with file, line and field (the first 1,000 of them;
    the rest are counted).

    A SIS id stays one child's: a row whose SIS id a student with another sourcedId holds (a reused number)
    is an invalid row. A row whose sourcedId a student holds under another SIS id is that student renumbered by
    the SIS: the student and everything naming them move to the new number (audited), unless the row plainly
    describes another child (born another day and named otherwise), which is an invalid row. Only
    the fields the bundle tells are updated: not birth date and sex without demographics.csv, nor what a
    delta export has no row for. A delta's demographics and enrollment rows of students its users.csv does
    not list update the students held under those sourcedIds (an enrollment of one not held is invalid;
    demographics alone of one not held, a teacher's as likely as a student's, are not read but counted and
    named in the output, `demographics_not_held_ids` with --json). When
    users.csv is a bulk export (manifest.csv: file.users,bulk), the roster's students it no longer lists are
    marked inactive (those of the schools in its orgs.csv, or of none), so no transfer code picks them.

    \b
    Example:
      satchel roster import exports/oneroster/ --as jdoe
    """
    from node.roster_import import IDS_HELD_ADVICE, import_roster

    with (
        opened(home) as node,
        progress_line("Reading the roster", ends=True) as reading,
        progress_line("Saving", unit="students") as progress,
    ):
        reading.phase("Reading the roster...")
        result = import_roster(node, actor=actor, path=path, skip_invalid=skip_invalid, reading=reading,
                               progress=progress, new_sourced_ids=new_sourced_ids)  # fmt: skip
    counts = result.counts
    if as_json:
        print_json(
            {
                "inserted": counts.inserted,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                "skipped": [
                    {"file": r.file, "line": r.line, "field": r.field, "message": r.message}
                    for r in result.skipped_rows
                ],
                "skipped_count": result.skipped,
                "marked_inactive": result.marked_inactive,
                "renumbered": result.renumbered,
                "demographics_not_held": result.demographics_not_held,
                "demographics_not_held_ids": list(result.demographics_not_held_ids),
            }
        )
        return
    click.echo(f"Students: {counts.inserted:,} added, {counts.updated:,} updated, {counts.unchanged:,} unchanged.")
    if result.marked_inactive:
        click.echo(f"{result.marked_inactive:,} no longer in the roster: marked inactive.")
    if result.renumbered:
        click.echo(f"{result.renumbered:,} renumbered by the SIS (same sourcedId, a new SIS id): their records and "
                   "history carried over to the new number (`satchel audit` names both numbers of each).")  # fmt: skip
    if result.demographics_not_held:
        shown = result.demographics_not_held_ids[:_NOT_HELD_SHOWN]
        more = result.demographics_not_held - len(shown)
        click.echo(f"{result.demographics_not_held:,} demographics.csv row(s) of sourcedIds no student here holds were "
                   f"not read (teachers' and staff's are expected): {', '.join(shown)}"
                   + (f" and {more:,} more (--json lists {len(result.demographics_not_held_ids):,})" if more else "")
                   + ". If one is a student's, import the SIS's bulk export to add the student.")  # fmt: skip
    for row in result.skipped_rows:
        click.echo(
            f"Skipped {row.file} line {row.line}"
            + (f", {row.field}" if row.field else "")
            + f": {row.message}"
        )
    if result.skipped > len(result.skipped_rows):
        click.echo(f"... and {result.skipped - len(result.skipped_rows):,} more rows skipped, not listed: fix the "
                   "rows above in the SIS and import again to see the next ones.")  # fmt: skip
    if result.ids_held:
        click.echo(f"Hint: {IDS_HELD_ADVICE}.")


@click.group("students", context_settings=CONTEXT)
def students_group() -> None:
    """Look up the district's students.

    \b
    Example:
      satchel students search garcia
    """


_HEADERS = ["sis id", "name", "birth date", "grade", "school", "state id", "status"]


if TYPE_CHECKING:  # the CLI imports the rest of Satchel only when a command runs
    from protocol.roster import StudentRecord


def _row(s: StudentRecord) -> tuple:
    return (
        s.sis_id,
        f"{s.family_name}, {s.given_name}",
        s.birth_date,
        s.grade,
        s.school_name or s.school_id,
        s.state_id,
        s.enrollment_status,
    )


@students_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
@click.option("--school", help="Only this school (id or part of its name).")
@click.option("--grade", help="Only this grade, e.g. 07 or KG.")
@click.option("--limit", type=LIMIT, default=100, show_default=True)
@click.option("--offset", type=OFFSET, default=0)
def students_list(
    home: str | None, as_json: bool, school: str | None, grade: str | None, limit: int, offset: int
) -> None:
    """List students, by name.

    \b
    Example:
      satchel students list --school "Lincoln Middle" --grade 07
    """
    from storage import students

    with opened(home) as node:
        found = students.search(node.db, school=school, grade=grade, limit=limit, offset=offset)
        total = students.count(node.db)
    if as_json:
        print_json([asdict(s) for s in found])
        return
    print_table(
        _HEADERS, [_row(s) for s in found], empty="(no students; import them with `satchel roster import`)"
    )
    click.echo(f"({len(found)} shown of {total} students)")


@students_group.command("search", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("text")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
def students_search(home: str | None, as_json: bool, text: str, limit: int) -> None:
    """Find students by SIS id, state id or part of a name.

    \b
    Example:
      satchel students search "maria garcia"
    """
    from storage import students

    with opened(home) as node:
        found = students.search(node.db, text=text, limit=limit)
    if as_json:
        print_json([asdict(s) for s in found])
    else:
        print_table(_HEADERS, [_row(s) for s in found], empty=f"(no student matches {text!r})")


@students_group.command("show", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("sis_id")
def students_show(home: str | None, as_json: bool, sis_id: str) -> None:
    """Show one student with the records the district holds for them.

    \b
    Example:
      satchel students show 100234
    """
    from storage import records, students

    with opened(home) as node:
        sis_id = current_student(node, sis_id)
        stored = students.require(node.db, sis_id)
        docs = records.list_documents(node.db, sis_id)
        cases = records.list_cases(node.db, student_sis_id=sis_id)
        results = records.list_assessment_results(node.db, sis_id)
    s = stored.record
    if as_json:
        print_json(
            {
                "student": asdict(s),
                "origin": stored.origin,
                "documents": [asdict(d) for d in docs],
                "cases": [asdict(c) for c in cases],
                "assessment_results": results,
            }
        )
        return
    print_fields([
        ("SIS id", s.sis_id), ("Name", " ".join(p for p in (s.given_name, s.middle_name, s.family_name) if p)),
        ("Preferred name", s.preferred_name or "-"), ("Birth date", s.birth_date), ("Sex", s.sex),
        ("Grade", s.grade), ("State id", s.state_id or "-"), ("School", s.school_name or s.school_id),
        ("Enrolled since", s.enrollment_start), ("Status", s.enrollment_status),
        ("Username", s.username or "-"), ("E-mail", s.email or "-"),
    ])  # fmt: skip
    click.echo(f"\nDocuments ({len(docs)}):")
    print_table(
        ["id", "type", "title", "size", "status"],
        [(d.doc_id, d.doc_type, d.title, d.length, d.status) for d in docs],
    )
    click.echo(f"\nCases ({len(cases)}):")
    print_table(
        ["number", "building", "team", "case manager", "status"],
        [(c.case_number, c.building, c.team, c.case_manager, c.status) for c in cases],
    )
    click.echo(f"\nAssessment results ({len(results)}):")
    print_table(
        ["date", "assessment", "subject", "score", "percentile", "benchmark"],
        [
            (r["date"], r["assessment"], r["subject"], r["score"], r["percentile"], r["benchmark_category"])
            for r in results
        ],
    )


COMMANDS = (roster_group, students_group)
