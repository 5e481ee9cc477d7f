"""Transfer codes: `satchel codes create|list|revoke|email-template` (source) and `satchel claim` (destination)."""

from __future__ import annotations

import click

from cli.common import (
    CONTEXT,
    as_option,
    deliver_now,
    home_option,
    json_option,
    opened,
    print_json,
    print_table,
    run,
)


@click.group("codes", context_settings=CONTEXT)
def codes_group() -> None:
    """Transfer codes another district enters to import a student's or a grade's records from here.

    \b
    Example:
      satchel codes create --grade 07 --school "Lincoln Middle School" --as jane
    """


@codes_group.command("create", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.option("--student", help="SIS id of one currently enrolled student.")
@click.option("--grade", help="A whole grade (with --school), e.g. 07.")
@click.option("--school", help="School id or name, for --grade.")
@click.option("--for", "for_domain", help="Only this district may use the code.")
def codes_create(
    home: str | None,
    actor: str | None,
    as_json: bool,
    student: str | None,
    grade: str | None,
    school: str | None,
    for_domain: str | None,
) -> None:
    """Make a code valid for 30 days and usable once; read it to the other district's coordinator.

    \b
    Example:
      satchel codes create --student 100234 --for shelbyville.k12.il.us --as jane
    """
    from node import codes_flow

    with opened(home) as node:
        issued = codes_flow.create(node, actor=actor, student=student, grade=grade, school=school,
                                   for_domain=for_domain)  # fmt: skip
    if as_json:
        print_json({"code": issued.text, "code_id": issued.code_id, "students": issued.students,
                    "expires_at": issued.expires_at})  # fmt: skip
        return
    click.echo(f"Transfer code:  {issued.text}")
    click.echo(f"Covers {issued.students:,} enrolled student(s); usable once until {issued.expires_at}.")
    click.echo("It is shown only now: read it by phone; this node keeps only a verifier, not the code.")


@codes_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
def codes_list(home: str | None, as_json: bool) -> None:
    """List the codes this node made, with their state (active, claimed, used, revoked, expired, locked).

    \b
    Example:
      satchel codes list
    """
    from node import codes_flow

    with opened(home) as node:
        codes_flow.expire_codes(node)
        rows = codes_flow.list_codes(node)
    if as_json:
        print_json(rows)
        return
    print_table(["id", "ends", "scope", "student/grade", "school", "for", "state", "claimed by", "expires"],
                [(str(r["code_id"])[:12], r["ends_with"], r["scope"], r["student"] or r["grade"], r["school"] or "",
                  r["for"] or "any", r["state"], r["claimed_by"] or "", r["expires_at"]) for r in rows],
                empty="(no codes)")  # fmt: skip


@codes_group.command("revoke", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("code_id", metavar="CODE_ID")
def codes_revoke(home: str | None, actor: str | None, code_id: str) -> None:
    """Revoke a code (by the id `satchel codes list` shows); it can no longer be claimed.

    A code already claimed is withdrawn by cancelling its transfer (`satchel cancel TRANSFER_ID`, the
    transfer `satchel codes list --json` names): the code is revoked once the other district confirms.

    \b
    Example:
      satchel codes revoke 3f2a9c01b7d4 --as jane
    """
    from node import codes_flow

    with opened(home) as node:
        codes_flow.revoke(node, actor=actor, code_id=code_id)
    click.echo(f"Revoked {code_id}.")


@codes_group.command("email-template", context_settings=CONTEXT)
@home_option
@json_option
@click.option("--student", "student", is_flag=True, help="Ask for one student's code (the default).")
@click.option("--grade", "grade", is_flag=True, help="Ask for a whole grade's code.")
def codes_email_template(home: str | None, as_json: bool, student: bool, grade: bool) -> None:
    """Print the e-mail a district sends to ask another for a transfer code.

    \b
    Example:
      satchel codes email-template --grade
    """
    if student and grade:
        raise click.UsageError("give --student or --grade, not both")
    with opened(home) as node:
        cfg = node.config.node
    for_grade = grade
    what = (
        "the students of grade [GRADE] at [SCHOOL] who now attend our district" if for_grade
        else "[STUDENT'S FULL NAME], born [BIRTH DATE], who last attended [SCHOOL] and now attends our district"
    )  # fmt: skip
    scope = '--grade [GRADE] --school "[SCHOOL]"' if for_grade else "--student [SIS ID]"
    subject = f"Satchel transfer code request from {cfg.name}"
    body = (
        "Hello,\n\n"
        f"{cfg.name} ({cfg.domain}) asks for the records of {what}.\n\n"
        "Please create a Satchel transfer code on your node, for example:\n\n"
        f"    satchel codes create {scope} --for {cfg.domain}\n\n"
        "and give us the code by phone, not by e-mail: call our transfer coordinator at the number the Satchel\n"
        f"directory lists for us (`satchel directory search {cfg.domain} --state {cfg.state}`), not one taken\n"
        "from this e-mail, which anyone could have sent. It works once, for 30 days, and only for our district.\n"
        "We will enter it with `satchel claim CODE`; nothing is imported before we review it.\n\n"
        "Thank you,\n[YOUR NAME], [TITLE]\n[PHONE]"
    )
    if as_json:
        print_json({"subject": subject, "body": body})
    else:
        click.echo(f"Subject: {subject}\n\n{body}")


@click.command("claim", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("code")
@click.option("--school", help="The school here the students will be enrolled in.")
def claim_command(home: str | None, actor: str | None, as_json: bool, code: str, school: str | None) -> None:
    """Enter a transfer code from another district: its records arrive and are previewed, not imported yet.

    The code itself is never sent, only proof of knowing it. Go back with `satchel import cancel ID`.

    \b
    Example:
      satchel claim 7K2Q-M9XD-RT4B-J@springfield.k12.il.us --school "Riverton Middle School" --as bo
    """
    from node import claiming

    claimed = run(home, lambda node, rt: claiming.claim(node, rt, actor=actor, text=code, school=school))
    counts = claimed.preview.counts
    if as_json:
        print_json({"transfer_id": claimed.transfer_id, "district": claimed.district, "school": claimed.school,
                    **counts})  # fmt: skip
    else:
        click.echo(f"From {claimed.district}" + (f", {claimed.school}" if claimed.school else "")
                   + f": {sum(counts.values())} student(s): {counts['new']} new, {counts['matched']} matched, "
                   f"{counts['uncertain']} uncertain.")  # fmt: skip
        click.echo(f"Review with `satchel import review {claimed.transfer_id}`, import with `satchel import run`,"
                   f" or go back with `satchel import cancel {claimed.transfer_id}`.")  # fmt: skip
    deliver_now(home)


COMMANDS = (codes_group, claim_command)
