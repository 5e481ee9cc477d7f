"""`satchel import ...`, `satchel imports list`, and fixing mistakes (`documents verify|move|delete|replace`,
`purge`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.common import (
    CONTEXT,
    as_option,
    clip,
    deliver_now,
    home_option,
    json_option,
    opened,
    print_fields,
    print_json,
    print_table,
)
from cli.progress import progress_line
from cli.records import documents_group

if TYPE_CHECKING:
    from node.documents_admin import SignerNow


@click.group("import", context_settings=CONTEXT)
def import_group() -> None:
    """Import an accepted transfer: preview the matches, review them, run, read the log.

    \b
    Example:
      satchel import preview 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --school "Lincoln Middle School" --as bo
    """


@import_group.command("preview", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("transfer_id", metavar="ID")
@click.option("--school", help="The school new students are enrolled into (id or name).")
@click.option(
    "--owner", help="Username or e-mail of who owns the documents here (default: the sender's choice)."
)
def import_preview_cmd(
    home: str | None,
    actor: str | None,
    as_json: bool,
    transfer_id: str,
    school: str | None,
    owner: str | None,
) -> None:
    """Match the incoming students to this district's before anything is written.

    A student matched to one marked inactive here (left the district) is uncertain, with a warning, until a
    coordinator confirms the link with `satchel import match ID STUDENT --to SIS_ID` (or chooses --new):
    a child returning is common, but records must not land silently on a child who left.

    \b
    Example:
      satchel import preview 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --school "Lincoln Middle School" --as bo
    """
    from node import import_preview

    with opened(home) as node:
        result = import_preview.preview(
            node, actor=actor, transfer_id=transfer_id, school=school, owner=owner
        )
    imp = result.import_row
    if as_json:
        print_json({"transfer_id": imp.transfer_id, "source": imp.source_name, "source_domain": imp.source_domain,
                    "source_school": imp.source_school, "school": imp.school_name, "owner": imp.owner,
                    "owner_note": result.owner_note, **result.counts,
                    "inactive_matches": [{"student": m.sender_sis_id, "local_sis_id": m.local_sis_id,
                                          "inactive_since": m.inactive_since, "confirmed": m.confirmed}
                                         for m in result.inactive]})  # fmt: skip
        return
    print_fields([
        ("From", f"{imp.source_name} ({imp.source_domain})"), ("Source school", imp.source_school or "-"),
        ("Enrol new students in", imp.school_name or "(not chosen: use --school)"),
        ("Documents owner", imp.owner or (f"- ({result.owner_note}: choose one with --owner)"
                                          if result.owner_note else "-")),
        ("Students", f"{result.counts['new']} new, {result.counts['matched']} matched, "
                     f"{result.counts['uncertain']} uncertain"),
    ])  # fmt: skip
    for m in result.inactive:
        since = m.inactive_since[:10]
        if m.confirmed:
            click.echo(f"Note: incoming student {m.sender_sis_id} is linked, as a coordinator chose, to "
                       f"{m.local_sis_id}, who is marked inactive since {since}.")  # fmt: skip
        else:
            click.echo(f"Warning: incoming student {m.sender_sis_id} matches {m.local_sis_id}, who is marked inactive "
                       f"since {since} (left the district?): check this is the same child, returning, then "
                       f"confirm with `satchel import match {transfer_id} {m.sender_sis_id} --to {m.local_sis_id}`; "
                       f"if it is another child, use --new or --to the right student (or ask the sending district "
                       f"to send again with --receiving-sis-id naming them). Until then the import skips them.",
                       err=True)  # fmt: skip
    click.echo(f"Next: `satchel import review {transfer_id} --walk --as USER` (each student to review, beside the "
               f"candidates here), then `satchel import run`.")  # fmt: skip


@import_group.command("review", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("transfer_id", metavar="ID")
@click.option(
    "--status", type=click.Choice(["new", "matched", "uncertain"]), help="Only students with this match."
)
@click.option("--walk", is_flag=True, help="Go through the students to review one at a time and decide (needs --as).")
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Write the students to review, with an empty DECISION column, to this file (for `satchel import decide`).",
)  # fmt: skip
@click.option(
    "--all", "everyone", is_flag=True,
    help="With --walk or --csv: also the matched and new students no one reviewed yet.",
)  # fmt: skip
def import_review(
    home: str | None, actor: str | None, as_json: bool, transfer_id: str, status: str | None, walk: bool,
    csv_path: Path | None, everyone: bool,
) -> None:  # fmt: skip
    """List the incoming students with their proposed match and why; or review them one by one (--walk), or in a
    spreadsheet (--csv, then `satchel import decide`).

    The students to review are the uncertain ones no one decided for, then those set aside for later; --all adds
    those matched or new that no one reviewed. --walk shows each beside its candidates (name, birth date, state
    id, grade, school, score) and asks: c confirm the proposal, 1..N link to a candidate, i type a SIS id here,
    n new student, l later, s skip, q quit. Each answer is recorded as `satchel import match` records it, when
    it is given: quitting keeps them, and the next walk goes on with those left. Without a terminal, it reads
    the answers one a line from stdin.

    \b
    Example:
      satchel import review 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --status uncertain
      satchel import review 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --walk --as bo
      satchel import review 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --csv ~/grade7-review.csv --all
    """
    from node import import_preview
    from node.import_preview import verified_manifest
    from storage import transfers as store

    if walk and csv_path is not None:
        raise click.UsageError("choose --walk or --csv, not both")
    if (walk or csv_path is not None) and (as_json or status):
        raise click.UsageError("--json and --status list the students; they do not go with --walk or --csv")
    if everyone and not (walk or csv_path is not None):
        raise click.UsageError("--all goes with --walk or --csv (the listing shows everyone already)")
    if walk:
        from cli.import_review import walk as walk_through

        with opened(home) as node:
            walk_through(node, actor=actor, transfer_id=transfer_id, everyone=everyone)
        return
    if csv_path is not None:
        from node import import_review as review

        with opened(home) as node:
            count = review.write_csv(node, transfer_id, csv_path, everyone=everyone)
        click.echo(f"Wrote {count} student(s) to {csv_path}. Fill the DECISION column (confirm, new, later, or a SIS "
                   f"id here; leave it empty to decide later), then `satchel import decide {transfer_id} --csv "
                   f"{csv_path} --as USER`.")  # fmt: skip
        return
    with opened(home) as node:
        result = import_preview.summary(node, transfer_id)
        row = store.require(node.db, result.import_row.transfer_id, local_domain=node.config.node.domain)
        names = {s.sis_id: s for s in verified_manifest(node, row).students}
    rows = [s for s in result.students if status is None or s.match_status == status]
    if as_json:
        print_json([{**asdict(s), "given_name": names[s.sender_sis_id].given_name,
                     "family_name": names[s.sender_sis_id].family_name,
                     "birth_date": names[s.sender_sis_id].birth_date, "target": s.target} for s in rows])  # fmt: skip
        return
    print_table(["student", "name", "born", "match", "local", "score", "decision", "reviewed", "why"],
                [(s.sender_sis_id, f"{names[s.sender_sis_id].family_name}, {names[s.sender_sis_id].given_name}",
                  names[s.sender_sis_id].birth_date, s.match_status, s.target[1] or s.proposed_sis_id or "-",
                  s.score if s.score is not None else "-", s.target[0], "yes" if s.reviewed else "",
                  clip("; ".join(s.reasons), 80)) for s in rows])  # fmt: skip


@import_group.command("match", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("transfer_id", metavar="ID")
@click.argument("student", metavar="STUDENT")
@click.option("--to", "link_to", metavar="LOCAL_SIS_ID", help="Link to this student of this district.")
@click.option("--new", is_flag=True, help="Create a new student from the transferred information.")
@click.option("--later", is_flag=True, help="Decide later; the student is skipped when the import runs.")
def import_match(
    home: str | None,
    actor: str | None,
    transfer_id: str,
    student: str,
    link_to: str | None,
    new: bool,
    later: bool,
) -> None:
    """Decide for one incoming student (by the sender's SIS id); the student is marked reviewed.

    \b
    Example:
      satchel import match 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A 200101 --to B-50017 --as bo
    """
    from cli.import_review import tell_decided
    from node import import_preview

    with opened(home) as node:
        decided = import_preview.decide(node, actor=actor, transfer_id=transfer_id, sender_sis_id=student,
                                        link_to=link_to, new=new, later=later)  # fmt: skip
    tell_decided(transfer_id, student, decided)


@import_group.command("decide", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("transfer_id", metavar="ID")
@click.option(
    "--csv", "csv_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The file `satchel import review ID --csv FILE` wrote, with DECISION filled in.",
)  # fmt: skip
def import_decide(home: str | None, actor: str | None, as_json: bool, transfer_id: str, csv_path: Path) -> None:
    """Record the decisions of a review file: DECISION is confirm (the proposal), new, later, or the SIS id of a
    student here; a row left empty is not decided.

    Every row is checked first (the student, the SIS id, that the student is not imported yet, the file
    itself); if any is wrong, each is listed by line and column and nothing is recorded. Then all are
    recorded in one go, each as `satchel import match` records it.

    \b
    Example:
      satchel import decide 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --csv ~/grade7-review.csv --as bo
    """
    from collections import Counter

    from cli.import_review import tell_decided, tell_former, tell_shared
    from node import import_review

    with opened(home) as node:
        bulk = import_review.decide_file(node, actor=actor, transfer_id=transfer_id, path=csv_path)
    counts = Counter(r.decided.student.target[0] for r in bulk.recorded)
    if as_json:
        print_json({"recorded": len(bulk.recorded), "link": counts["link"], "new": counts["new"],
                    "later": counts["later"],
                    "decisions": [{"line": r.line, "student": r.decided.student.sender_sis_id, "given": r.kind,
                                   "decision": r.decided.student.target[0], "to": r.decided.student.target[1],
                                   "former_sis_id": r.former.former_sis_id if r.former else None,
                                   "to_inactive_since": r.decided.inactive_since} for r in bulk.recorded],
                    "shared": [{"student": s, "to": to, "with": list(others)} for s, to, others, _ in bulk.shared]})
    else:
        click.echo(f"Recorded {len(bulk.recorded)} decision(s): {counts['link']} linked, {counts['new']} new, "
                   f"{counts['later']} later." if bulk.recorded else
                   "No decision recorded: every DECISION cell is empty.")  # fmt: skip
        if bulk.recorded:
            print_table(["line", "student", "decision", "to"],
                        [(r.line, r.decided.student.sender_sis_id, r.decided.student.target[0],
                          r.decided.student.target[1] or "") for r in bulk.recorded])  # fmt: skip
    for r in bulk.recorded:
        tell_former(r)
        # The warning about two students on one is said once, for the file as recorded (below).
        tell_decided(transfer_id, r.decided.student.sender_sis_id, r.decided, quiet=True, shared=False)
    for student, to, others, imported in bulk.shared:
        tell_shared(transfer_id, student, to, others, imported)
    if bulk.recorded and not as_json:
        click.echo(f"Next: `satchel import run {transfer_id} --as USER`.")


@import_group.command("run", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("transfer_id", metavar="ID")
def import_run_cmd(home: str | None, actor: str | None, as_json: bool, transfer_id: str) -> None:
    """Import: each student in its own transaction; conflicts are skipped with their reason.

    Exits 1 when no student could be imported ("failed"); a partial import exits 0 and lists who was skipped.

    \b
    Example:
      satchel import run 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --as bo
    """
    from node import import_run

    with opened(home) as node, progress_line("Importing", unit="students") as progress:
        result = import_run.run(node, actor=actor, transfer_id=transfer_id, progress=progress)
    if as_json:
        print_json(
            {
                "result": result.result,
                "reference": result.reference,
                "imported": result.imported,
                "total": result.total,
                "skipped": [{"student": s, "reason": r} for s, r in result.skipped],
                "changes": [{"student": s, "changes": c} for s, c in result.changes],
            }
        )
    else:
        click.echo(f"{result.result[0].upper()}{result.result[1:]}: {result.imported:,} of {result.total:,} students."
                   + (f" Reference {result.reference}." if result.reference else ""))  # fmt: skip
        for student, changes in result.changes:
            click.echo(f"  with changes {student}: {changes}")
        for student, reason in result.skipped:
            click.echo(f"  skipped {student}: {reason}")
    deliver_now(home)
    if result.result.startswith("failed"):
        raise click.exceptions.Exit(1)  # for a script: nothing was imported (the receipt has gone all the same)


@import_group.command("cancel", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("transfer_id", metavar="ID")
def import_cancel(home: str | None, actor: str | None, transfer_id: str) -> None:
    """Undo an import that is not complete; nothing is left behind and it can be started again.

    \b
    Example:
      satchel import cancel 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --as bo
    """
    from node import claiming, import_run

    with opened(home) as node:
        cancelled = import_run.cancel(node, actor=actor, transfer_id=transfer_id)
        went_back = claiming.is_claimed(node, transfer_id)
        if went_back:
            claiming.go_back(node, actor=actor, transfer_id=transfer_id)
    if went_back:
        click.echo("Import cancelled; the records go back and the transfer code can be entered again.")
        deliver_now(home)
    else:
        click.echo(f"Import cancelled; {cancelled.records_removed:,} record(s) removed. The transfer waits in "
                   f"staging; the review decisions are kept for the next run.")  # fmt: skip
    if cancelled.students_kept:
        click.echo(f"Kept {len(cancelled.students_kept):,} student(s) the import had created, because records "
                   f"added here since, or the SIS roster, now name them: {', '.join(cancelled.students_kept)}. "
                   f"See them with `satchel students show SIS_ID`.")  # fmt: skip


@import_group.command("log", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("transfer_id", metavar="ID")
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the log as CSV here."
)
def import_log_cmd(home: str | None, as_json: bool, transfer_id: str, csv_path: Path | None) -> None:
    """The import log: one row per student with ids, statuses, document count and the reason for any skip.

    The CSV (and --json) gives each student's id, state id, username and e-mail as the other district sent
    them and as this district held them when the import wrote them (a later change to the student here does
    not change the log).

    \b
    Example:
      satchel import log 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --csv import-log.csv
    """
    from node import import_log

    with opened(home) as node:
        if csv_path is not None:
            count = import_log.write_csv(node, transfer_id, csv_path)
            click.echo(f"Wrote {count} row(s) to {csv_path}.")
            return
        rows = import_log.log_rows(node, transfer_id)
    if as_json:
        print_json(rows)
        return
    print_table(["first", "last", "grade", "source id", "destination id", "state id (source -> here)", "import",
                 "scores", "docs", "reason"],
                [(r["FirstName"], r["LastName"], r["Grade"], r["SourceStudentId"], r["DestinationStudentId"],
                  _both(r["SourceStateId"], r["DestinationStateId"]), r["SourceImportStatus"],
                  r["ScoreImportStatus"], r["DocumentCount"], r["Reason"]) for r in rows])  # fmt: skip


def _both(source: str, here: str) -> str:
    """One value when the two sides agree, else both (the CSV and --json keep them apart)."""
    return source if source == here else f"{source or '-'} -> {here or '-'}"


@click.group("imports", context_settings=CONTEXT)
def imports_group() -> None:
    """Imports that ran.

    \b
    Example:
      satchel imports list
    """


@imports_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
def imports_list(home: str | None, as_json: bool) -> None:
    """Completed imports: school, date, students, status (and the reference to quote).

    \b
    Example:
      satchel imports list --json
    """
    from node import import_log

    with opened(home) as node:
        rows = import_log.completed(node)
    if as_json:
        print_json(rows)
        return
    print_table(["transfer", "from", "school", "date", "students", "status", "reference"],
                [(r["transfer_id"], r["from"], r["school"], r["date"], r["students"], r["status"],
                  r["reference"] or "") for r in rows], empty="(no imports yet)")  # fmt: skip


def _key_since(signer: SignerNow | None) -> str:
    """What became of the key that signed a received document, when it is no longer one the sender signs with."""
    if signer is None or signer.status == "active":
        return ""
    when = f" on {signer.accepted_at[:10]}" if signer.accepted_at else ""
    forgotten = "since forgotten here when the sender was re-pinned"
    since = "since revoked" if signer.status == "revoked" else forgotten
    return f" Signed by key {signer.key_id}, valid when the transfer was accepted{when}, {since}."


@documents_group.command("verify", context_settings=CONTEXT)
@home_option
@click.argument("doc_id", metavar="ID")
def documents_verify(home: str | None, doc_id: str) -> None:
    """Re-check a document's bytes and, for a received one, the sender's signed manifest.

    \b
    Example:
      satchel documents verify 01JC7A0B1C2D3E4F5G6H7J8K9M
    """
    from node import documents_admin

    with opened(home) as node:
        p = documents_admin.verify(node, doc_id)
    if p.sender and p.erased:
        click.echo(f"Document {doc_id} is unchanged: signed by {p.sender} in transfer {p.transfer_id} (the signed "
                   f"manifest was verified before purges here erased {p.erased[1]} other record(s) from it, the "
                   f"last on {p.erased[0]}).{_key_since(p.signer)}")  # fmt: skip
    elif p.sender:
        click.echo(f"Document {doc_id} is unchanged: signed by {p.sender} in transfer {p.transfer_id}."
                   f"{_key_since(p.signer)}")  # fmt: skip
    else:
        click.echo(f"Document {doc_id} is intact (local document, sha256 {p.document.sha256[:16]}...).")


@documents_group.command("move", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("doc_id", metavar="ID")
@click.option("--to", "to", required=True, help="SIS id of the student the document belongs to.")
def documents_move(home: str | None, actor: str | None, as_json: bool, doc_id: str, to: str) -> None:
    """Move a document that landed on the wrong student.

    \b
    Example:
      satchel documents move 01JC7A0B1C2D3E4F5G6H7J8K9M --to 100235 --as bo
    """
    from node import documents_admin

    with opened(home) as node:
        doc = documents_admin.move(node, actor=actor, doc_id=doc_id, to=to)
    if as_json:
        print_json(asdict(doc))
        return
    click.echo(f"Moved {doc_id} to {to}.")


@documents_group.command("delete", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("doc_id", metavar="ID")
def documents_delete(home: str | None, actor: str | None, as_json: bool, doc_id: str) -> None:
    """Delete a document; an admin can restore it until it is purged.

    \b
    Example:
      satchel documents delete 01JC7A0B1C2D3E4F5G6H7J8K9M --as bo
    """
    from node import documents_admin

    with opened(home) as node:
        doc = documents_admin.delete(node, actor=actor, doc_id=doc_id)
    if as_json:
        print_json(asdict(doc))
        return
    click.echo(f"Deleted {doc_id}. An admin can restore it (`satchel documents restore {doc_id}`), or purge it"
               f" to erase its content for good (`satchel purge {doc_id}`).")  # fmt: skip


@documents_group.command("replace", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("doc_id", metavar="ID")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="Title of the new version (default: the old title).")
def documents_replace(
    home: str | None, actor: str | None, as_json: bool, doc_id: str, file: Path, title: str | None
) -> None:
    """Store a corrected version; sending it marks it as replacing the version sent before.

    \b
    Example:
      satchel documents replace 01JC7A0B1C2D3E4F5G6H7J8K9M iep-corrected.pdf --as jane
    """
    from node import documents_admin

    with opened(home) as node:
        new = documents_admin.replace(node, actor=actor, doc_id=doc_id, path=file, title=title)
    if as_json:
        print_json(asdict(new))
        return
    click.echo(
        f"Stored {new.doc_id}, a new version of {doc_id}. Send it with `satchel send --documents {new.doc_id}`."
    )


@documents_group.command("restore", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("doc_id", metavar="ID")
def documents_restore(home: str | None, actor: str | None, as_json: bool, doc_id: str) -> None:
    """Undo `satchel documents delete` (admins): the document is active again, on the same student.

    \b
    Example:
      satchel documents restore 01JC7A0B1C2D3E4F5G6H7J8K9M --as admin
    """
    from node import documents_admin

    with opened(home) as node:
        doc = documents_admin.restore(node, actor=actor, doc_id=doc_id)
    if as_json:
        print_json(asdict(doc))
        return
    click.echo(f"Restored {doc_id} on {doc.student_sis_id}.")


@click.command("purge", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("doc_id", metavar="ID")
def purge_command(home: str | None, actor: str | None, as_json: bool, doc_id: str) -> None:
    """Erase a document's content for good (admins; the blob is removed, the audit entry stays). A transfer
    held here that has not imported it yet will not import it either; the command names any.

    \b
    Example:
      satchel purge 01JC7A0B1C2D3E4F5G6H7J8K9M --as admin
    """
    from node import documents_admin

    with opened(home) as node:
        doc, purge = documents_admin.purge(node, actor=actor, doc_id=doc_id)
    if as_json:
        print_json({**asdict(doc), "not_imported_from": list(purge.not_imported_from),
                    "erased_when_opened_from": list(purge.unopened),
                    "still_in_undelivered": list(purge.undelivered)})  # fmt: skip
        return
    click.echo(f"Purged {doc_id}: its content is erased.")
    if purge.told():
        click.echo(purge.told())


COMMANDS = (import_group, imports_group, purge_command)
