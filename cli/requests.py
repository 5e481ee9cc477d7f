"""Records requests: `satchel request`, `satchel requests list|show|release|reject|cancel|message`."""

from __future__ import annotations

from typing import Any

import click

from cli.common import (
    CONTEXT,
    TRUST_WORDS,
    as_option,
    deliver_now,
    home_option,
    id_list,
    json_option,
    opened,
    print_fields,
    print_json,
    print_table,
    trust_of,
)

# What a request can be in at either district (protocol.request_states, but "absent").
_STATES = ("requested", "released", "release_failed", "rejected", "cancelled")


@click.command("request", context_settings=CONTEXT)
@home_option
@as_option
@click.option(
    "--from", "from_", required=True, help="The previous district's domain (see `satchel directory search`)."
)
@click.option("--student", required=True, help="SIS id of the student, as enrolled here.")
@click.option("--comments", default="", help="Anything the releasing coordinator should know.")
def request_command(home: str | None, actor: str | None, from_: str, student: str, comments: str) -> None:
    """Ask a student's previous district for their records (signed, with the student's enrolment here).

    \b
    Example:
      satchel request --from springfield.k12.il.us --student B-50017 --comments "IEP services start 9/1" --as bo
    """
    from node import requests_flow

    with opened(home) as node:
        request_id = requests_flow.submit(
            node, actor=actor, to=from_, student_sis_id=student, comments=comments
        )
    click.echo(f"Records request {request_id} sent to {from_}.")
    deliver_now(home)


@click.group("requests", context_settings=CONTEXT)
def requests_group() -> None:
    """Records requests in and out.

    \b
    Example:
      satchel requests list --incoming
    """


@requests_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
@click.option("--incoming", "side", flag_value="releaser", help="Requests other districts sent here.")
@click.option("--outgoing", "side", flag_value="requester", help="Requests this district sent.")
@click.option("--status", "state", type=click.Choice(_STATES, case_sensitive=False), metavar="STATE",
              help=f"Only requests in this state: {', '.join(_STATES)}.")
@click.option("--overdue", is_flag=True, help="Only requests whose answer is overdue (flagged OVERDUE).")
def requests_list(home: str | None, as_json: bool, side: str | None, state: str | None, overdue: bool) -> None:
    """List records requests; unanswered ones past the deadline are flagged OVERDUE.

    \b
    Example:
      satchel requests list --incoming --overdue
    """
    from node import requests_flow

    with opened(home) as node:
        views = [v for v in requests_flow.listing(node, side=side, state=state) if v.overdue or not overdue]
    rows: list[dict[str, Any]] = [
            {"request_id": v.row.request_id, "direction": "in" if v.row.side == "releaser" else "out",
             "district": v.row.peer, "state": v.row.state, "overdue": v.overdue,
             "student": f"{v.request.student.family_name}, {v.request.student.given_name}",
             "asked_by": v.request.requester.name, "opened_on": v.row.opened_on,
             "due_on": v.due_on.isoformat() if v.due_on else None, "transfer_id": v.row.transfer_id,
             "messages": v.messages}
            for v in views]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    print_table(["id", "dir", "district", "student", "asked by", "opened", "answer due", "state", "msgs"],
                [(r["request_id"], r["direction"], r["district"], r["student"], r["asked_by"], r["opened_on"],
                  r["due_on"] or "-", r["state"] + (" OVERDUE" if r["overdue"] else ""), r["messages"] or "-")
                 for r in rows],
                empty="(no records requests)")  # fmt: skip


def _contact(person: Any) -> dict[str, str]:
    return {"name": person.name, "email": person.email, "phone": person.phone}


@requests_group.command("show", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("request_id", metavar="ID")
def requests_show(home: str | None, as_json: bool, request_id: str) -> None:
    """Who is asking (verified district and person), for whom, and the candidate students here.

    \b
    Example:
      satchel requests show 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A
    """
    from node import requests_flow
    from node.delivery_status import delivery_words

    with opened(home) as node:
        view = requests_flow.show(node, request_id)
        trust = trust_of(node, view.request.from_domain)
    from node.clock import iso

    r, s, e, a, thread = view.request, view.request.student, view.request.enrolment, view.answer, view.thread
    answer = None if a is None else {
        "kind": a.kind.value, "at": iso(a.created), "from": a.from_domain, "comments": a.comments,
        "person": _contact(a.person),
        "transfer_id": a.transfer_id, "delivery": view.sent.get("answer"),
    }  # fmt: skip
    x = view.crossed
    crossed = None if x is None else {
        "at": iso(x.created), "person": _contact(x.person), "comments": x.comments,
        "delivery": view.sent.get("crossed"),
    }  # fmt: skip
    data = {
        "request_id": r.request_id, "from": r.from_domain, "from_trust": trust, "to": r.to_domain,
        "state": view.row.state,
        "overdue": view.overdue, "requester": _contact(r.requester),
        "student": {"given_name": s.given_name, "family_name": s.family_name, "birth_date": s.birth_date.isoformat(),
                    "sex": s.sex, "grade": s.grade, "state_id": s.state_id},
        "enrolment": {"school": e.school, "grade": e.grade, "start_date": e.start_date.isoformat(), "type": e.type}
        if e else None,
        "comments": r.comments, "transfer_id": view.row.transfer_id, "asked_at": iso(r.created),
        "delivery": view.sent.get("request"),
        "due_on": view.due_on.isoformat() if view.due_on else None, "release_failed_on": view.row.failed_on,
        "answer": answer,
        "crossed_cancellation": crossed,
        "messages": [{"direction": direction, "at": iso(m.created), "from": m.from_domain, "text": m.comments,
                      "person": _contact(m.person), "delivery": view.sent.get(i)}
                     for i, (direction, m) in enumerate(thread)],
        "candidates": {"status": view.candidates.status, "proposed": view.candidates.local_sis_id,
                       "others": [list(c) for c in view.candidates.candidates],
                       "reasons": list(view.candidates.reasons)} if view.candidates else None,
    }  # fmt: skip
    if as_json:
        print_json(data)
        return
    print_fields([
        ("Request", r.request_id), ("State", view.row.state + (" (OVERDUE)" if view.overdue else "")),
        ("Asked by", f"{r.requester.name} <{r.requester.email}> {r.requester.phone} of {r.from_domain} "
                     + ("(this district)" if view.row.side == "requester"
                        else f"(verified signature; {TRUST_WORDS[trust]})")),
        ("Student", f"{s.given_name} {s.family_name}, born {s.birth_date}, grade {s.grade or '-'}"),
        ("Enrolled there", f"{e.school}, grade {e.grade}, since {e.start_date} ({e.type})" if e else "(not stated)"),
        ("Comments", r.comments or "-"), ("Asked at", iso(r.created) + delivery_words(view.sent.get("request"))),
        *([("Answer due", f"{view.due_on} ({view.row.working_days} working days"
                          + (f" from {view.row.failed_on}, when the release failed)" if view.row.failed_on else ")"))]
          if view.due_on else []),
        *([] if a is None else [
            ("Answer", f"{a.kind.value} at {iso(a.created)} by {a.person.name} <{a.person.email}> {a.person.phone} "
                       f"of {a.from_domain} (signed)" + delivery_words(view.sent.get("answer"))),
            ("Its comments", a.comments or "-"),
        ]),
        *([] if x is None else [
            ("Cancelled here", f"at {iso(x.created)} by {x.person.name} <{x.person.email}>; the answer crossed it and"
                               " stands" + delivery_words(view.sent.get("crossed"))),
        ]),
        *([("Transfer", view.row.transfer_id)] if view.row.transfer_id else []),
    ])  # fmt: skip
    if thread:
        click.echo(f"\nMessages ({len(thread)}):")
        for i, (direction, m) in enumerate(thread):
            arrow = "->" if direction == "out" else "<-"
            click.echo(f"  {iso(m.created)}  {arrow} {m.person.name} ({m.from_domain}):"
                       + delivery_words(view.sent.get(i)))  # fmt: skip
            for line in m.comments.splitlines():
                click.echo(f"      {line}")
    if view.candidates:
        c = view.candidates
        click.echo(f"\nMatch here: {c.status}" + (f" -> {c.local_sis_id}" if c.local_sis_id else ""))
        for sis_id, score in c.candidates:
            click.echo(f"  candidate {sis_id} (score {score})")
        for reason in c.reasons:
            click.echo(f"  - {reason}")


@requests_group.command("release", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("request_id", metavar="ID")
@click.option("--student", required=True, help="SIS id of the student here whose records are released.")
@click.option("--documents", help="Comma-separated document ids.")
@click.option("--cases", help="Comma-separated case ids or numbers.")
@click.option("--assessments", is_flag=True, help="Include assessment results.")
@click.option("--all-records", is_flag=True, help="Include every record of the student.")
@click.option("--comments", default="", help="A note for the requester.")
@click.option("--not-matched", is_flag=True,
              help="Release a student who is not the match or a candidate here for the one asked for, after "
                   "checking that they are the student the requester means (kept in the audit log).")  # fmt: skip
def requests_release(
    home: str | None,
    actor: str | None,
    request_id: str,
    student: str,
    documents: str | None,
    cases: str | None,
    assessments: bool,
    all_records: bool,
    comments: str,
    not_matched: bool,
) -> None:
    """Release the student's records to the requesting district (a transfer with a code, bound to the request).

    The student must be the match here for the one asked for, or one of its candidates (`requests show`);
    anyone else is refused unless --not-matched says the coordinator checked.

    \b
    Example:
      satchel requests release 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --student 200101 --all-records --as jane
    """
    from node import requests_flow
    from node.manifest_builder import Selection

    selection = Selection(students=(student,), documents=id_list(documents), cases=id_list(cases),
                          assessments=assessments, all_records=all_records)  # fmt: skip
    with opened(home) as node:
        sent = requests_flow.release(node, actor=actor, request_id=request_id, student_sis_id=student,
                                     selection=selection, comments=comments, not_matched=not_matched)  # fmt: skip
    click.echo(f"Released as transfer {sent.transfer_id}. Authentication code: {sent.code}")
    if sent.contact:
        click.echo(f"Read the code to {sent.contact.name} at {sent.contact.phone or sent.contact.email}.")
    deliver_now(home)


@requests_group.command("reject", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("request_id", metavar="ID")
@click.option("--comments", required=True, help="Why; the requesting district sees it.")
def requests_reject(home: str | None, actor: str | None, request_id: str, comments: str) -> None:
    """Refuse a records request, with comments for the requester.

    \b
    Example:
      satchel requests reject 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --comments "no such student in our records" --as jane
    """
    from node import requests_flow

    with opened(home) as node:
        requests_flow.reject(node, actor=actor, request_id=request_id, comments=comments)
    click.echo(f"Rejected {request_id}.")
    deliver_now(home)


@requests_group.command("cancel", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("request_id", metavar="ID")
@click.option("--comments", default="", help="Why, for the releasing district (the student did not enrol, ...).")
def requests_cancel(home: str | None, actor: str | None, request_id: str, comments: str) -> None:
    """Withdraw a records request this district sent, while the other district has not answered it.

    The releasing district is told. Should its answer already be on the way, the answer wins: records
    released before the cancellation arrived still come, as a transfer you may reject.

    \b
    Example:
      satchel requests cancel 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A --comments "the family moved out of state" --as bo
    """
    from node import requests_flow

    with opened(home) as node:
        requests_flow.cancel(node, actor=actor, request_id=request_id, comments=comments)
    click.echo(f"Cancelled {request_id}; the releasing district is told.")
    deliver_now(home)


@requests_group.command("message", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("request_id", metavar="ID")
@click.argument("text")
def requests_message(home: str | None, actor: str | None, request_id: str, text: str) -> None:
    """Write to the other district's coordinators about a records request, before or after it is answered
    (signed, delivered like answers; `requests show` lists the thread on both sides).

    \b
    Example:
      satchel requests message 01JC6Z2W4Q3RT5Y7ZK8M9N0P1A "Which school did she attend? We have two." --as jane
    """
    from node import requests_flow

    with opened(home) as node:
        sent = requests_flow.message(node, actor=actor, request_id=request_id, text=text)
    click.echo(f"Message to {sent.to_domain} queued.")
    deliver_now(home)


COMMANDS = (request_command, requests_group)
