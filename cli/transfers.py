"""Push transfers: `satchel send`, `inbox`, `accept`, `reject`, `cancel`, `transfers ...`, `disclosures`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.common import (
    CONTEXT,
    TRUST_WORDS,
    as_option,
    current_student,
    deliver_now,
    home_option,
    id_list,
    json_option,
    opened,
    print_fields,
    print_json,
    print_table,
    run,
    shown,
    trust_of,
)
from cli.progress import progress_line

if TYPE_CHECKING:
    from node.runtime import Runtime
    from storage.transfers import TransferRow


def _students(students: tuple[str, ...], students_file: Path | None) -> tuple[str, ...]:
    listed = list(students)
    if students_file is not None:
        for line in _utf8_lines(students_file):
            value = line.split(",")[0].strip()
            if value and value.lower() not in ("sis_id", "student", "student_sis_id"):
                listed.append(value)
    return tuple(listed)


def _utf8_lines(path: Path) -> list[str]:
    from protocol import InvalidInput

    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")  # Excel's "CSV UTF-8" starts with a BOM
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        # Spreadsheets offer "Unicode text" (UTF-16) and older encodings beside CSV UTF-8; guessing among
        # them could turn one id into another, so say where the file is not UTF-8 instead.
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            message = f"{path} is UTF-16 text, not UTF-8"
        else:
            line = data.count(b"\n", 0, exc.start) + 1
            message = f"line {line} of {path} is not UTF-8 text"
        raise InvalidInput(
            message, field="--students-file",
            hint="give one SIS id per line (or a CSV whose first column is the SIS id), saved as UTF-8 "
                 '(in a spreadsheet: "CSV UTF-8")',
        ) from None  # fmt: skip


def _receiving(pairs: tuple[str, ...]) -> dict[str, str]:
    from protocol import InvalidInput

    out = {}
    for pair in pairs:
        student, sep, other = pair.partition("=")
        if not sep or not student.strip() or not other.strip():
            raise InvalidInput(f"{pair!r} is not STUDENT=ID", field="--receiving-sis-id",
                               hint="e.g. --receiving-sis-id 100234=S-88812")  # fmt: skip
        out[student.strip()] = other.strip()
    return out


async def _refresh(rt: Runtime, domain: str) -> None:
    """Look at the destination's current descriptor (transfers switch, keys); the cache serves if it is down."""
    from protocol import SatchelError

    with contextlib.suppress(SatchelError):
        await rt.keyring.refresh(domain)


@click.command("send", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.option("--to", "to", required=True, help="The receiving district's domain.")
@click.option("--student", "students", multiple=True, help="SIS id of a student to send (repeat for more).")
@click.option(
    "--students-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of SIS ids, one per line (or a CSV whose first column is the SIS id).",
)
@click.option("--documents", help="Comma-separated document ids to include.")
@click.option("--cases", help="Comma-separated case ids or numbers to include.")
@click.option("--assessments", is_flag=True, help="Include the students' assessment results.")
@click.option("--all-records", is_flag=True, help="Include every document, case and assessment result.")
@click.option(
    "--receiving-sis-id",
    "receiving",
    multiple=True,
    metavar="STUDENT=ID",
    help="The student's id in the receiving district's SIS, if it told you.",
)
@click.option("--owner", help="E-mail or username of who should receive the documents there.")
@click.option("--note", default="", help="A note for the receiving coordinator.")
@click.option("--purpose", default="",
              help="Why the records go, as each student's record of disclosures gives it to parents (default: the "
                   "note when one student is sent, else \"records transfer to the student's new district\").")
@click.option("--expires", "expires_days", type=int, help="Days the transfer stays open (default 30).")
def send_command(
    home: str | None,
    actor: str | None,
    as_json: bool,
    to: str,
    students: tuple[str, ...],
    students_file: Path | None,
    documents: str | None,
    cases: str | None,
    assessments: bool,
    all_records: bool,
    receiving: tuple[str, ...],
    owner: str | None,
    note: str,
    purpose: str,
    expires_days: int | None,
) -> None:
    """Send students' records to another district. Shows the code to read to its coordinator by phone.

    The records stay here too (a copy is sent). Demographics always go; choose the records with
    --documents, --cases, --assessments or --all-records.

    \b
    Example:
      satchel send --to shelbyville.k12.il.us --student 100234 --all-records \\
          --receiving-sis-id 100234=S-88812 --owner bo@shelbyville.k12.il.us --note "IEP meeting 9/14" --as jane
    """
    from node import sending
    from node.manifest_builder import Selection
    from protocol import InvalidInput
    from protocol.roster import check_text

    purpose = purpose.strip()
    try:  # printed in a letter to parents: one line
        check_text("--purpose", purpose, required=False, max_length=500)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="--purpose",
                           hint="say in one line, at most 500 characters, why the records go") from None  # fmt: skip
    selection = Selection(
        students=_students(students, students_file), documents=id_list(documents), cases=id_list(cases),
        assessments=assessments, all_records=all_records, receiving_ids=_receiving(receiving),
    )  # fmt: skip
    run(home, lambda node, rt: _refresh(rt, to))
    with opened(home) as node, progress_line("Sealing") as progress:
        sent = sending.send(node, actor=actor, to=to, selection=selection, note=note, purpose=purpose, owner=owner,
                            expires_days=expires_days, progress=progress)  # fmt: skip
    contact = sent.contact
    if as_json:
        print_json({"transfer_id": sent.transfer_id, "code": sent.code, "to": sent.peer.domain,
                    "students": sent.students, "records": sent.records, "documents": sent.documents,
                    "bytes": sent.envelope_length, "expires_at": sent.expires_at,
                    "coordinator": contact.to_json() if contact else None})  # fmt: skip
    else:
        click.echo(f"Transfer {sent.transfer_id} to {sent.peer.name} ({sent.peer.domain}) is sealed:")
        click.echo(f"  {sent.students:,} student(s), {sent.records:,} record(s), {sent.documents:,} document(s), "
                   f"{sent.envelope_length:,} bytes; open until {sent.expires_at}")  # fmt: skip
        click.echo()
        click.echo(f"  Authentication code:  {sent.code}")
        click.echo()
        if contact:
            click.echo(
                f"Read the code to {contact.name}, {contact.title}, at {contact.phone or contact.email}."
            )
        click.echo(
            "Do not e-mail it. `satchel transfers show ID --code` shows it again until it is accepted."
        )
    deliver_now(home)


@click.command("inbox", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.option("--unread", is_flag=True, help="Only notifications not marked read.")
@click.option("--mark-read", is_flag=True,
              help="Mark the listed notifications read (coordinators and admins, with --as).")
@click.option("--full", is_flag=True, help="Each notification's whole text: by when, and what to run next.")
def inbox_command(
    home: str | None, actor: str | None, as_json: bool, unread: bool, mark_read: bool, full: bool
) -> None:
    """Notifications for coordinators: transfers arriving, accepted, locked, messages, ...

    The table gives their subjects; --full gives their text as the e-mails do (the command to run next), for
    a district whose node sends no e-mail.

    \b
    Example:
      satchel inbox --unread --full
      satchel inbox --unread --mark-read --as jane
    """
    from node import notify

    with opened(home) as node:
        items = notify.inbox(node, unread_only=unread)
        if mark_read:
            notify.mark_read(node, actor=actor, notification_ids=[str(i["id"]) for i in items])
    if as_json:
        print_json(items)
        return
    if full:
        for i in items:
            click.echo(f"{i['at']}{'' if i['read_at'] else '  (unread)'}")
            for line in str(i["body"] or i["subject"]).strip().splitlines():
                click.echo(f"  {shown(line)}".rstrip())
            click.echo()
        if not items:
            click.echo("(no notifications)")
        return
    print_table(["at", "subject", "transfer", "read"],
                [(i["at"], i["subject"], i["transfer_id"] or "-", "yes" if i["read_at"] else "") for i in items],
                empty="(no notifications)")  # fmt: skip


@click.command("accept", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("transfer_id", metavar="ID")
@click.option("--code", required=True, help="The code the sending coordinator read to you.")
def accept_command(home: str | None, actor: str | None, transfer_id: str, code: str) -> None:
    """Open an incoming transfer with its code. A mistyped code costs nothing; 5 wrong codes lock it.

    \b
    Example:
      satchel accept 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --code 7K2Q-M9XD-RT4B-J --as bo
    """
    from node import transfer_actions

    with opened(home) as node, progress_line("Opening") as progress:
        accepted = transfer_actions.accept(node, actor=actor, transfer_id=transfer_id, code_text=code,
                                           progress=progress)  # fmt: skip
    m = accepted.manifest
    click.echo(f"Accepted transfer {transfer_id} from {m.sender_domain}: {len(m.students):,} student(s), "
               f"{len(m.records):,} record(s). They wait for import.")  # fmt: skip
    if accepted.purged:
        click.echo(f"Left out: {len(accepted.purged)} of them (sender's id {', '.join(accepted.purged)}), purged here "
                   f"before this transfer was sent or opened; it will not import them. If one belongs to another "
                   f"student, ask {m.sender_domain} to send it again.")  # fmt: skip
    if m.notes:
        click.echo(f"Note from the sender: {m.notes}")
    deliver_now(home)


@click.command("reject", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("transfer_id", metavar="ID")
@click.option("--reason", required=True, help="Why; the sending district sees it.")
def reject_command(home: str | None, actor: str | None, transfer_id: str, reason: str) -> None:
    """Refuse an incoming transfer; the sealed envelope is deleted and the sender told why.

    \b
    Example:
      satchel reject 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --reason "student never enrolled here" --as bo
    """
    from node import transfer_actions

    with opened(home) as node:
        transfer_actions.reject(node, actor=actor, transfer_id=transfer_id, reason=reason)
    click.echo(f"Rejected {transfer_id}.")
    deliver_now(home)


@click.command("cancel", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("transfer_id", metavar="ID")
@click.option("--reason", help="Why (optional); the receiving district sees it.")
def cancel_command(home: str | None, actor: str | None, transfer_id: str, reason: str | None) -> None:
    """Cancel an outgoing transfer that was not accepted yet; the receiver deletes it.

    \b
    Example:
      satchel cancel 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --reason "sent to the wrong district" --as jane
    """
    from node import transfer_actions

    with opened(home) as node:
        outcome = transfer_actions.cancel(node, actor=actor, transfer_id=transfer_id, reason=reason)
    click.echo(f"Transfer {transfer_id}: {outcome.transition.status.state.value.replace('_', ' ')}.")
    deliver_now(home)


@click.command("disclosures", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("student")
@click.option("--text", "as_text", is_flag=True, help="A plain letter-style record to give to a parent.")
def disclosures_command(home: str | None, as_json: bool, student: str, as_text: bool) -> None:
    """The FERPA record of disclosures of a student's education records.

    \b
    Example:
      satchel disclosures 100234 --text > disclosures-100234.txt
    """

    from cli.disclosure_letter import render
    from node import disclosure_record
    from node.request_answers import local_now

    with opened(home) as node:
        student = current_student(node, student)
        record, formers, rows = disclosure_record.of_student(node, student)
        district, domain = node.config.node.name, node.config.node.domain
        today = local_now(node).date()  # the letter's date, in the district's time zone
    if as_json:
        print_json({"student": student, "disclosures": [r.to_json() for r in rows],
                    "former_sis_ids": [{"sis_id": f.former_sis_id, "until": f.renumbered_at} for f in formers]})
    elif as_text:
        click.echo(render(district, domain, record, rows, today, formers))
    else:
        print_table(["at", "to", "records", "by", "purpose", "outcome", "transfer"],
                    [(r.at, r.to_domain, len(r.records), r.disclosed_by, r.purpose,
                      disclosure_record.outcome(r.transfer_state, r.opened), r.transfer_id) for r in rows],
                    empty="(no disclosures)")  # fmt: skip


@click.group("transfers", context_settings=CONTEXT)
def transfers_group() -> None:
    """Transfers in and out: the on/off switch (off by default), lists, details, messages.

    \b
    Example:
      satchel transfers list --incoming --status received
    """


def _toggle(enabled: bool) -> click.Command:
    word = "enable" if enabled else "disable"

    @click.command(word, context_settings=CONTEXT)
    @home_option
    @as_option
    def toggle(home: str | None, actor: str | None) -> None:
        from node import district

        with opened(home) as node:
            changed = district.set_transfers(node, actor=actor, enabled=enabled)
        state = "on" if enabled else "off"
        click.echo(f"Transfers are now {state}." if changed else f"Transfers were already {state}.")
        deliver_now(home)

    toggle.help = (
        f"Switch transfers {'on' if enabled else 'off'}. "
        + ("Other districts can then send to and receive from this node."
           if enabled else "This node then refuses transfers and shows as off in directories.")
        + f"\n\n\b\nExample:\n  satchel transfers {word} --as jdoe"
    )  # fmt: skip
    return toggle


transfers_group.add_command(_toggle(True))
transfers_group.add_command(_toggle(False))


@transfers_group.command("status", context_settings=CONTEXT)
@home_option
@json_option
def transfers_status(home: str | None, as_json: bool) -> None:
    """Say whether transfers are on.

    \b
    Example:
      satchel transfers status --json
    """
    from node import district_state

    with opened(home) as node:
        enabled = district_state.transfers_enabled(node)
    if as_json:
        print_json({"transfers_enabled": enabled})
    else:
        click.echo("Transfers are on." if enabled else "Transfers are off.")


def _states() -> tuple[str, ...]:
    from protocol.transfer_status import ReceiverState, SenderState

    # Both sides' states, as the list shows them; a state that is not one (a typo) would list nothing, which
    # reads as "no such transfer".
    return tuple(dict.fromkeys(s.value for s in (*SenderState, *ReceiverState) if s is not ReceiverState.ABSENT))


_STATES = _states()


def _contents(row: TransferRow) -> dict[str, int | None]:
    """What the transfer holds, or None for each count while a received envelope is still sealed: `transfers
    list` and `transfers show` say the same, in tables and in --json."""
    known = row.contents_known
    return {"students": row.students if known else None, "records": row.records if known else None,
            "documents": row.documents if known else None}  # fmt: skip


def _detail_words(detail: dict[str, object]) -> str:
    """A timeline entry's details for a person: an import receipt's counts in words ("98 of 103 students
    imported"), as `import run` says them, rather than as a Python dict."""
    return ", ".join(_counts_words(v) if k == "counts" and isinstance(v, dict) else f"{k}={v}"
                     for k, v in detail.items())  # fmt: skip


def _counts_words(c: dict[str, object]) -> str:
    words = (f"{c.get('students_imported')} of {c.get('students_total')} students imported "
             f"({c.get('students_with_changes')} with changes), {c.get('documents')} documents, "
             f"{c.get('scores')} scores")
    skipped = c.get("skipped")
    if isinstance(skipped, dict) and skipped:
        words += "; skipped: " + ", ".join(f"{count} {reason}" for reason, count in skipped.items())
    return words


def _count(value: object) -> str:
    return "-" if value is None else f"{value:,}"


def _expires_cell(expires_at: object, final: bool) -> str:
    """A transfer over (imported, rejected, cancelled, expired...) has no deadline left: its old expiry read as
    one. `--json` keeps the value, so scripts see what they saw before."""
    return "-" if final or not expires_at else str(expires_at)


@transfers_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
@click.option("--incoming", "side", flag_value="receiver", help="Only transfers this node received.")
@click.option("--outgoing", "side", flag_value="sender", help="Only transfers this node sent.")
@click.option("--status", "state", type=click.Choice(_STATES, case_sensitive=False), metavar="STATE",
              help=f"Only transfers in this state: {', '.join(_STATES)}.")
def transfers_list(home: str | None, as_json: bool, side: str | None, state: str | None) -> None:
    """List transfers, newest first.

    \b
    Example:
      satchel transfers list --incoming --status received
    """
    from node.clock import iso
    from node.transfer_delivery import pending_delivery
    from storage import transfers as store

    with opened(home) as node:
        rows = store.list_rows(node.db, local_domain=node.config.node.domain, side=side, state=state)
        waiting = {r.transfer_id: pending_delivery(node, r) for r in rows}
    data = [{"transfer_id": r.transfer_id, "direction": "in" if r.status.side.value == "receiver" else "out",
             "peer": r.peer, "state": r.state, **_contents(r),
             "created_at": r.created_at, "expires_at": iso(r.status.expires) if r.status.expires else None,
             # why an outgoing transfer is still sealed: the last failed delivery's answer
             "delivery_error": getattr(waiting[r.transfer_id], "last_error", None)}
            for r in rows]  # fmt: skip
    final = {r.transfer_id for r in rows if r.status.is_final}
    if as_json:
        print_json(data)
        return
    print_table(["id", "dir", "district", "state", "students", "records", "created", "expires"],
                [(d["transfer_id"], d["direction"], d["peer"],
                  f"{d['state']}{' (not delivered yet)' if d['delivery_error'] else ''}", _count(d["students"]),
                  _count(d["records"]), d["created_at"], _expires_cell(d["expires_at"], d["transfer_id"] in final))
                 for d in data],
                empty="(no transfers)")  # fmt: skip
    if any(d["delivery_error"] for d in data):
        click.echo("\n`satchel transfers show ID` says why a transfer is not delivered yet.")


@transfers_group.command("show", context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("transfer_id", metavar="ID")
@click.option("--code", "show_code", is_flag=True, help="Show the code again (coordinators, sender side).")
def transfers_show(
    home: str | None, actor: str | None, as_json: bool, transfer_id: str, show_code: bool
) -> None:
    """A transfer's details and its timeline of signed receipts and messages.

    \b
    Example:
      satchel transfers show 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --code --as jane
    """
    from node.clock import iso
    from node.delivery_status import delivery_words
    from node.transfer_actions import read_code
    from node.transfer_delivery import pending_delivery, sent_deliveries
    from protocol.transfer_states import allowed_events
    from storage import transfers as store

    with opened(home) as node:
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        timeline = store.events(node.db, transfer_id)
        code = None
        if show_code:
            code = read_code(node, actor=actor, transfer_id=transfer_id)
        nexts = sorted(e.value for e in allowed_events(row.status))
        delivery = pending_delivery(node, row)
        deliveries = sent_deliveries(node, transfer_id, timeline)
        for event in timeline:
            event["delivery"] = deliveries.get(event["seq"])
        trust = trust_of(node, row.peer)
    # Codes are tried at the receiving node and counted there only: a sender's count is always 0, which
    # beside "locked" would say the receiver never tried one.
    receiver = row.status.side.value == "receiver"
    if as_json:
        print_json(
            {
                "transfer_id": transfer_id,
                "side": row.status.side.value,
                "peer": row.peer,
                "peer_trust": trust,
                "state": row.state,
                **_contents(row),
                "note": row.note,
                "owner": row.owner,
                "created_at": row.created_at,
                "expires_at": iso(row.status.expires) if row.status.expires else None,
                "wrong_codes": row.status.wrong_codes if receiver else None,
                "code": code,
                "timeline": timeline,
                "next": nexts,
                "delivery": None if delivery is None else {
                    "attempts": delivery.attempts, "last_error": delivery.last_error,
                    "next_attempt_at": delivery.next_attempt_at,
                },
            }
        )  # fmt: skip
        return
    print_fields([
        ("Transfer", transfer_id), ("Direction", "outgoing" if row.status.side.value == "sender" else "incoming"),
        ("District", f"{row.peer} ({TRUST_WORDS[trust]})"), ("State", row.state),
        *([("Students", _count(row.students)), ("Records", _count(row.records))] if row.contents_known
          else [("Students", "- (sealed: counted once its code opens it)"), ("Records", "-")]),
        ("Created", row.created_at),
        ("Expires", _expires_cell(iso(row.status.expires) if row.status.expires else None, row.status.is_final)),
        *([("Wrong codes", f"{row.status.wrong_codes} of {row.status.max_wrong_codes}")] if receiver else []),
        ("Note", row.note or "-"),
        *([("Delivery", f"tried {delivery.attempts:,} time(s), next try at {delivery.next_attempt_at};"
                        f" last answer: {delivery.last_error}")] if delivery and delivery.last_error else []),
    ])  # fmt: skip
    if code:
        click.echo(f"\nAuthentication code: {code}")
    click.echo("\nTimeline:")
    print_table(["#", "at", "", "what", "by", "details"],
                [(e["seq"], e["at"], {"sent": "->", "received": "<-", "local": "  "}[e["direction"]], e["kind"],
                  e["actor"], _detail_words(e["detail"]) + (" [signed]" if e["signed"] else "")
                  + delivery_words(e["delivery"]))
                 for e in timeline])  # fmt: skip


@transfers_group.command("retry", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("transfer_id", metavar="ID")
def transfers_retry(home: str | None, actor: str | None, transfer_id: str) -> None:
    """Try to deliver an outgoing transfer now, instead of at its next scheduled try.

    Deliveries that fail are retried by the serving node, less often as time goes on (at most an hour
    apart). When the other district says its node is back, or has made room, this sends it at once.

    \b
    Example:
      satchel transfers retry 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --as jane
    """
    from node.transfer_delivery import pending_delivery, retry_now
    from storage import transfers as store

    with opened(home) as node:
        job = retry_now(node, actor=actor, transfer_id=transfer_id)
    # The serving node may be delivering it right now (its own try came due as this one was asked): the
    # answer to give is that try's, not the one before it.
    deliver_now(home, also=job.job_id)
    with opened(home) as node:
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        waiting = pending_delivery(node, row)
    if waiting is None:
        click.echo(f"Transfer {transfer_id}: {row.state.replace('_', ' ')}.")
        return
    click.echo(f"Transfer {transfer_id}: still not delivered; last answer: {waiting.last_error}", err=True)
    click.echo(f"Hint: the serving node tries again at {waiting.next_attempt_at}; run this again once the other "
               "district has fixed what the answer says", err=True)  # fmt: skip
    raise click.exceptions.Exit(1)


@transfers_group.command("message", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("transfer_id", metavar="ID")
@click.argument("text")
def transfers_message(home: str | None, actor: str | None, transfer_id: str, text: str) -> None:
    """Write to the other district's coordinators about a transfer (signed, delivered like receipts).

    \b
    Example:
      satchel transfers message 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A "Code sent by phone at 10:05" --as jane
    """
    from node import transfer_actions

    with opened(home) as node:
        transfer_actions.message(node, actor=actor, transfer_id=transfer_id, text=text)
    click.echo("Message queued.")
    deliver_now(home)


COMMANDS = (send_command, inbox_command, accept_command, reject_command, cancel_command, disclosures_command,
            transfers_group)  # fmt: skip
