"""`satchel documents`, `satchel cases`, `satchel assessments`: records the district holds per student."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from cli.common import (
    CONTEXT,
    LazyChoice,
    as_option,
    current_student,
    home_option,
    json_option,
    opened,
    print_json,
    print_table,
)
from cli.progress import progress_line


@click.group("documents", context_settings=CONTEXT)
def documents_group() -> None:
    """Documents held per student (IEPs, 504 plans, evaluations, transcripts, ...).

    \b
    Example:
      satchel documents add 100234 iep-2026.pdf --type iep --title "IEP 2026-27" --as jdoe
    """


@documents_group.command("add", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("student")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--type",
    "doc_type",
    type=LazyChoice("storage.records", "DOCUMENT_TYPES"),
    required=True,
    help="Kind of document.",
)
@click.option("--title", help="Title shown to coordinators (default: the file name).")
@json_option
def documents_add(
    home: str | None,
    actor: str | None,
    student: str,
    file: Path,
    doc_type: str,
    title: str | None,
    as_json: bool,
) -> None:
    """Store a document for a student. Its content is kept by hash; the same file twice is stored once.

    \b
    Example:
      satchel documents add 100234 iep-2026.pdf --type iep --title "IEP 2026-27" --as jdoe
    """
    from node import records as record_service

    with opened(home) as node:
        doc = record_service.add_document(
            node, actor=actor, student_sis_id=student, path=file, doc_type=doc_type, title=title
        )
    if as_json:
        print_json(asdict(doc))
    else:
        click.echo(
            f"Stored document {doc.doc_id} ({doc.length} bytes, sha256 {doc.sha256[:16]}...) for {student}."
        )


@documents_group.command("get", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("doc_id", metavar="ID")
@click.option("-o", "--output", "target", default=".", show_default=True,
              help="File to write, or a folder for the document's own file name; - writes to standard output.")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
def documents_get(home: str | None, actor: str | None, as_json: bool, doc_id: str, target: str, force: bool) -> None:
    """Write a document's content out, checked against its SHA-256 (any role; the audit log records who).

    \b
    Example:
      satchel documents get 01JC7A0B1C2D3E4F5G6H7J8K9M -o ~/Documents --as jdoe
      satchel documents get 01JC7A0B1C2D3E4F5G6H7J8K9M -o - --as jdoe | lp
    """
    import sys

    from node import document_export

    if target == "-":
        if as_json:
            raise click.UsageError("--json describes a file written; with -o - the document itself is the output")
        with opened(home) as node:
            document_export.export_to_stream(node, actor=actor, doc_id=doc_id, out=sys.stdout.buffer)
        return
    with opened(home) as node, progress_line("Writing") as progress:
        done = document_export.export_to_file(node, actor=actor, doc_id=doc_id, target=Path(target), overwrite=force,
                                              progress=progress)  # fmt: skip
    doc = done.document
    if as_json:
        print_json({"doc_id": doc.doc_id, "student": doc.student_sis_id, "path": str(done.path),
                    "length": doc.length, "sha256": doc.sha256})  # fmt: skip
    else:
        click.echo(f"Wrote {done.path} ({doc.length:,} bytes, SHA-256 checked), {doc.doc_type} of student "
                   f"{doc.student_sis_id}.")  # fmt: skip


@documents_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("student", required=False)
def documents_list(home: str | None, as_json: bool, student: str | None) -> None:
    """List documents, for one student or all.

    \b
    Example:
      satchel documents list 100234
    """
    from storage import records

    with opened(home) as node:
        if student is not None:
            student = current_student(node, student)  # a mistyped id is not a student without documents
        docs = records.list_documents(node.db, student)
    if as_json:
        print_json([asdict(d) for d in docs])
        return
    print_table(
        ["id", "student", "type", "title", "size", "status", "added"],
        # A version a correction replaced stays active (the sender may correct a correction): said, so that a
        # reader takes the newer one.
        [(d.doc_id, d.student_sis_id, d.doc_type, d.title, d.length,
          f"{d.status} (older version)" if d.superseded_by and d.status == "active" else d.status, d.created_at)
         for d in docs],
    )  # fmt: skip


@click.group("cases", context_settings=CONTEXT)
def cases_group() -> None:
    """Cases held per student (threat assessment, behavioral support).

    \b
    Example:
      satchel cases add --student 100234 --case-number TA-2026-014 --building "Lincoln MS" --as jdoe
    """


@cases_group.command("add", context_settings=CONTEXT)
@home_option
@as_option
@click.option("--student", required=True, help="SIS id of the student the case is about.")
@click.option("--case-number", required=True, help="The case number, unique in the district.")
@click.option("--person-of-concern", default="", help="Default: the student's name.")
@click.option("--building", default="")
@click.option("--team", default="")
@click.option("--team-leader", default="")
@click.option("--case-manager", default="")
@click.option("--notes", default="")
@json_option
def cases_add(
    home: str | None,
    actor: str | None,
    student: str,
    case_number: str,
    person_of_concern: str,
    building: str,
    team: str,
    team_leader: str,
    case_manager: str,
    notes: str,
    as_json: bool,
) -> None:
    """Record a case for a student.

    \b
    Example:
      satchel cases add --student 100234 --case-number TA-2026-014 --building "Lincoln MS" \\
          --team "BTAM North" --team-leader "R. Diaz" --case-manager "K. Lee" --as jdoe
    """
    from node import records as record_service

    with opened(home) as node:
        case = record_service.add_case(
            node, actor=actor, student_sis_id=student, case_number=case_number,
            person_of_concern=person_of_concern, building=building, team=team, team_leader=team_leader,
            case_manager=case_manager, notes=notes,
        )  # fmt: skip
    if as_json:
        print_json(asdict(case))
    else:
        click.echo(f"Recorded case {case.case_number} ({case.case_id}) for {student}.")


@cases_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
@click.option("--student", help="Only this student's cases.")
@click.option("--search", "text", help="Case number, person of concern, building, team, leader or manager.")
def cases_list(home: str | None, as_json: bool, student: str | None, text: str | None) -> None:
    """List or search cases.

    \b
    Example:
      satchel cases list --search "BTAM North"
    """
    from storage import records

    with opened(home) as node:
        if student is not None:
            student = current_student(node, student)  # a mistyped id is not a student without cases
        cases = records.list_cases(node.db, student_sis_id=student, text=text)
    if as_json:
        print_json([asdict(c) for c in cases])
        return
    print_table(
        ["number", "student", "person of concern", "building", "team", "leader", "manager", "status"],
        [
            (
                c.case_number,
                c.student_sis_id,
                c.person_of_concern,
                c.building,
                c.team,
                c.team_leader,
                c.case_manager,
                c.status,
            )
            for c in cases
        ],
    )


@click.group("assessments", context_settings=CONTEXT)
def assessments_group() -> None:
    """Assessment results held per student.

    \b
    Example:
      satchel assessments import star-fall-2026.csv --as jdoe
    """


@assessments_group.command("import", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("csv_file", metavar="CSV", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even when some rows are invalid.")
@click.option(
    "--dates", type=LazyChoice("protocol.assessments_csv", "DATE_ORDERS"), default="YYYY-MM-DD", show_default=True,
    help="How the date column is written; M/D/YYYY is how Excel saves a US date.",
)  # fmt: skip
@json_option
def assessments_import(
    home: str | None, actor: str | None, csv_file: Path, skip_invalid: bool, dates: str, as_json: bool
) -> None:
    """Import assessment results from CSV (student_sis_id, assessment, subject, date, score, scale_score,
    percentile, benchmark_category). Re-importing the same file changes nothing. A date before 1900 or after
    today is a row error (a typo of the year, or a placeholder such as 0001-01-01). A result moved with
    `satchel assessments move` stays on the student it was moved to; each row that still names another
    student is listed. A result purged here is not added back: each row of one is skipped and listed, and an
    admin can lift the purge (`satchel assessments unpurge`) for the next import to add it.

    \b
    Example:
      satchel assessments import star-fall-2026.csv --as jdoe
      satchel assessments import map-winter.csv --dates M/D/YYYY --as jdoe
    """
    from dataclasses import asdict

    from node.assessment_import import PurgedRow, import_assessments
    from storage.records import MovedKept

    kept: list[MovedKept] = []  # at most one per result a coordinator moved: not many, however long the file
    purged: list[PurgedRow] = []  # at most one per result purged here
    with (
        opened(home) as node,
        progress_line("Checking", ends=True) as reading,
        progress_line("Saving", unit="results") as progress,
    ):
        counts = import_assessments(node, actor=actor, path=csv_file, skip_invalid=skip_invalid, dates=dates,
                                    reading=reading, progress=progress, kept=kept.append,
                                    purged=purged.append)  # fmt: skip
    if as_json:
        print_json({**counts, "moved_kept_results": [asdict(moved) for moved in kept],
                    "purged_results": [asdict(row) for row in purged]})  # fmt: skip
        return
    click.echo(
        f"Assessment results: {counts['inserted']:,} added, {counts['updated']:,} updated, "
        f"{counts['unchanged']:,} unchanged, {counts['skipped']:,} skipped."
    )
    for moved in kept:
        click.echo(
            f"Kept result {moved.result_id} ({moved.assessment}, {moved.subject}, {moved.date}) on "
            f"{moved.student_sis_id}, where {moved.moved_by} moved it; {csv_file.name} lists it under "
            f"{moved.listed_under}. Fix the student in the SIS export, or, if the file is right, move it "
            f"back: satchel assessments move {moved.result_id} --to {moved.listed_under}"
        )
    for row in purged:
        click.echo(
            f"Not imported: result {row.result_id} ({row.assessment}, {row.subject}, {row.date}), which "
            f"{csv_file.name} lists under {row.listed_under}, was purged here"
            f"{f' from {row.purged_from}' if row.purged_from else ''} by {row.purged_by} on {row.purged_at[:10]}. "
            f"Fix the SIS export, or, if it is right, an admin lifts the purge and the next import adds it: "
            f"satchel assessments unpurge {row.result_id} --as ADMIN"
        )


@assessments_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("student")
def assessments_list(home: str | None, as_json: bool, student: str) -> None:
    """List a student's assessment results.

    \b
    Example:
      satchel assessments list 100234
    """
    from storage import records

    with opened(home) as node:
        student = current_student(node, student)  # a mistyped id is not a student without results
        results = records.list_assessment_results(node.db, student)
    if as_json:
        print_json(results)
        return
    print_table(
        ["id", "date", "assessment", "subject", "score", "scale", "percentile", "benchmark"],
        [
            (
                r["result_id"],
                r["date"],
                r["assessment"],
                r["subject"],
                r["score"],
                r["scale_score"],
                r["percentile"],
                r["benchmark_category"],
            )
            for r in results
        ],
    )


def _move(noun: str, metavar: str, example: str, *, by: str) -> click.Command:
    """`satchel cases|assessments move`: node.record_fixes.move_<noun>."""

    @click.command("move", context_settings=CONTEXT)
    @home_option
    @as_option
    @json_option
    @click.argument("record_id", metavar=metavar)
    @click.option("--to", required=True, help=f"SIS id of the student the {noun} belongs to.")
    def move(home: str | None, actor: str | None, as_json: bool, record_id: str, to: str) -> None:
        from node import record_fixes

        with opened(home) as node:
            moved = getattr(record_fixes, f"move_{noun}")(node, actor=actor, record_id=record_id, to=to)
        if as_json:
            print_json(moved if isinstance(moved, dict) else asdict(moved))  # a result is a dict, a case a Case
        else:
            click.echo(f"Moved {noun} {record_id} to {to}.")

    move.help = (f"Move a {noun} that landed on the wrong student ({by}).\n\n\b\nExample:\n"
                 f"  satchel {noun}s move {example} --to 100235 --as jdoe")  # fmt: skip
    return move


def _purge(noun: str, metavar: str, example: str, *, kept: str) -> click.Command:
    """`satchel cases|assessments purge` (admins): node.record_fixes.purge_<noun>."""

    @click.command("purge", context_settings=CONTEXT)
    @home_option
    @as_option
    @json_option
    @click.argument("record_id", metavar=metavar)
    def purge(home: str | None, actor: str | None, as_json: bool, record_id: str) -> None:
        from node import record_fixes

        with opened(home) as node:
            done = getattr(record_fixes, f"purge_{noun}")(node, actor=actor, record_id=record_id)
        if as_json:
            print_json({noun: record_id, "student_sis_id": done.student_sis_id, "status": "purged",
                        "not_imported_from": list(done.not_imported_from),
                        "erased_when_opened_from": list(done.unopened),
                        "still_in_undelivered": list(done.undelivered)})  # fmt: skip
        else:
            click.echo(f"Purged {noun} {record_id} of {done.student_sis_id}: its content is erased.")
            if done.told():
                click.echo(done.told())

    purge.help = (f"Erase a {noun} for good (admins; the audit log keeps {kept}, not its content). A transfer held "
                  f"here that has not imported it yet will not import it either; the command names any.\n\n\b\n"
                  f"Example:\n  satchel {noun}s purge {example} --as admin")  # fmt: skip
    return purge


cases_group.add_command(_move("case", "CASE", "TA-2026-014", by="its id or case number"))
cases_group.add_command(_purge("case", "CASE", "TA-2026-014", kept="its id and number"))
assessments_group.add_command(_move("assessment", "ID", "01JC7A0B1C2D3E4F5G6H7J8K9M",
                                    by="`satchel assessments list STUDENT` shows the ids"))  # fmt: skip
assessments_group.add_command(_purge("assessment", "ID", "01JC7A0B1C2D3E4F5G6H7J8K9M", kept="its id"))


@assessments_group.command("unpurge", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("result_id", metavar="ID")
def assessments_unpurge(home: str | None, actor: str | None, as_json: bool, result_id: str) -> None:
    """Lift the purge of a result of this district's own (admins), so that the next `satchel assessments
    import` of a file listing it adds it again. Its content stays erased until then: only the file brings it
    back. An import lists the id of each purged result it skipped.

    \b
    Example:
      satchel assessments unpurge 01JC7A0B1C2D3E4F5G6H7J8K9M --as admin
    """
    from node import record_fixes

    with opened(home) as node:
        was = record_fixes.unpurge_assessment(node, actor=actor, record_id=result_id)
    if as_json:
        print_json({"result_id": result_id, "purged_from": was.student_sis_id, "purged_at": was.purged_at,
                    "purged_by": was.purged_by, "status": "unpurged"})  # fmt: skip
    else:
        click.echo(f"Lifted the purge of result {result_id} (purged by {was.purged_by} on {was.purged_at[:10]}): "
                   f"the next assessments import that lists it adds it again.")  # fmt: skip


COMMANDS = (documents_group, cases_group, assessments_group)
