"""Operators, the coordinator contact, the transfers switch and the audit trail."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import click

from cli.common import (
    CONTEXT,
    LIMIT,
    LazyChoice,
    as_option,
    deliver_now,
    home_option,
    json_option,
    opened,
    print_json,
    print_table,
)


@click.group("users", context_settings=CONTEXT)
def users_group() -> None:
    """Manage the operators of this node (admin, coordinator, viewer).

    \b
    Example:
      satchel users add jdoe --email jdoe@springfield.k12.il.us --name "Jane Doe" --role coordinator --as admin
    """


@users_group.command("add", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("username")
@click.option("--email", required=True, help="The operator's e-mail; notifications go there.")
@click.option("--name", "full_name", required=True, help="Full name, as shown to other districts.")
@click.option(
    "--role",
    type=LazyChoice("storage.users", "ROLES"),
    required=True,
    help="admin: everything; coordinator: send, accept, import; viewer: read only.",
)
def users_add(
    home: str | None, actor: str | None, username: str, email: str, full_name: str, role: str
) -> None:
    """Add an operator. The first operator of a new node must be an admin and needs no --as.

    \b
    Example:
      satchel users add jdoe --email jdoe@springfield.k12.il.us --name "Jane Doe" --role coordinator --as admin
    """
    from node.operators import add_user

    with opened(home) as node:
        user = add_user(node, actor=actor, username=username, email=email, full_name=full_name, role=role)
    click.echo(f"Added {user.role} {user.username} <{user.email}>.")


@users_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
def users_list(home: str | None, as_json: bool) -> None:
    """List operators.

    \b
    Example:
      satchel users list --json
    """
    from storage import users

    with opened(home) as node:
        rows = users.list_all(node.db)
    if as_json:
        print_json([asdict(u) for u in rows])
        return
    print_table(
        ["username", "name", "e-mail", "role", "status"],
        [(u.username, u.full_name, u.email, u.role, u.status) for u in rows],
    )


@users_group.command("role", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("username")
@click.argument("role", type=LazyChoice("storage.users", "ROLES"))
def users_role(home: str | None, actor: str | None, username: str, role: str) -> None:
    """Give an operator another role (admins). From a viewer on, they only read: transfer codes they made that
    no district has entered yet are revoked.

    \b
    Example:
      satchel users role jdoe viewer --as admin
    """
    from node.operators import set_role

    with opened(home) as node:
        user, before, revoked = set_role(node, actor=actor, username=username, role=role)
    if before == role:
        click.echo(f"{username} is {_a(role)} already.")
        return
    click.echo(f"{username} is now {_a(user.role)} (was {_a(before)}).")
    if revoked:
        click.echo(_revoked_words(username, revoked))


def _revoked_words(username: str, revoked: list[str]) -> str:
    return (f"Revoked the {len(revoked)} transfer code(s) {username} made that no district had entered yet "
            f"({', '.join(c[:12] for c in revoked)}): make new ones with `satchel codes create` for the records that "
            "should still go.")  # fmt: skip


def _a(role: str) -> str:
    return f"{'an' if role[0] in 'aeiou' else 'a'} {role}"


@users_group.command("disable", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("username")
def users_disable(home: str | None, actor: str | None, username: str) -> None:
    """Disable an operator (kept for the audit trail; cannot act any more). Transfer codes they made that no
    district has entered yet are revoked: entering one would disclose records in their name.

    \b
    Example:
      satchel users disable jdoe --as admin
    """
    from node import district_state
    from node.operators import disable_user

    with opened(home) as node:
        user, changed, revoked = disable_user(node, actor=actor, username=username)
        contact = district_state.contact(node)
    click.echo(f"Disabled {username}." if changed else f"{username} was already disabled (since {user.disabled_at}).")
    if contact is not None and contact.email.casefold() == user.email.casefold():
        # Other districts call and write to the published contact about transfers and requests.
        click.echo(f"Note: {contact.name} <{contact.email}> is still the transfer coordinator contact other districts "
                   "see: publish another with `satchel contact set`.")  # fmt: skip
    if revoked:
        click.echo(_revoked_words(username, revoked))


@click.group("contact", context_settings=CONTEXT)
def contact_group() -> None:
    """The transfer coordinator contact published to other districts.

    \b
    Example:
      satchel contact set --name "Jane Doe" --title Registrar --email jdoe@sd.org --phone "+1 217-555-0100" --as admin
    """


@contact_group.command("set", context_settings=CONTEXT)
@home_option
@as_option
@click.option("--name", required=True, help="Coordinator's name.")
@click.option("--title", default="", help="Coordinator's title, e.g. Registrar.")
@click.option("--email", required=True, help="Coordinator's e-mail.")
@click.option("--phone", default="", help="Coordinator's phone, for reading out codes.")
def contact_set(home: str | None, actor: str | None, name: str, title: str, email: str, phone: str) -> None:
    """Set the transfer coordinator contact shown in the descriptor and directories.

    \b
    Example:
      satchel contact set --name "Jane Doe" --title Registrar --email jdoe@sd.org --phone "+1 217-555-0100" --as admin
    """
    from node import district

    with opened(home) as node:
        contact = district.set_contact(node, actor=actor, name=name, title=title, email=email, phone=phone)
    click.echo(f"Coordinator contact: {contact.name}, {contact.title} <{contact.email}> {contact.phone}")
    deliver_now(home)


@contact_group.command("show", context_settings=CONTEXT)
@home_option
@json_option
def contact_show(home: str | None, as_json: bool) -> None:
    """Show the coordinator contact.

    \b
    Example:
      satchel contact show
    """
    from node import district_state

    with opened(home) as node:
        contact = district_state.contact(node)
    if as_json:
        print_json(contact.to_json() if contact else None)
    elif contact:
        click.echo(f"{contact.name}, {contact.title} <{contact.email}> {contact.phone}")
    else:
        click.echo("(not set) - set it with `satchel contact set`")


@click.group("audit", context_settings=CONTEXT, invoke_without_command=True)
@home_option
@json_option
@click.option("--limit", type=LIMIT, default=50, show_default=True, help="Newest entries to show.")
@click.option("--subject", help="Only entries about this subject (a student SIS id, a username, ...).")
@click.option("--seq", type=click.IntRange(min=1), help="Only the entry with this number (`audit verify` names them).")
@click.pass_context
def audit_group(
    ctx: click.Context, home: str | None, as_json: bool, limit: int, subject: str | None, seq: int | None
) -> None:
    """List the audit trail, newest first. `satchel audit verify` checks its hash chain.

    \b
    Example:
      satchel audit --limit 20
    """
    from storage import audit

    if ctx.invoked_subcommand is not None:
        return
    with opened(home) as node:
        entries = list(audit.entries(node.db, subject=subject, seq=seq, limit=limit))
    if as_json:
        print_json(
            [
                {
                    "seq": e.seq,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "subject": e.subject,
                    "details": e.details,
                    "hash": e.entry_hash,
                }
                for e in entries
            ]
        )
        return
    print_table(
        ["#", "at", "actor", "action", "subject", "details"],
        [
            (e.seq, e.at, e.actor, e.action, e.subject, ", ".join(f"{k}={v}" for k, v in e.details.items()))
            for e in entries
        ],
    )


@audit_group.command("verify", context_settings=CONTEXT)
@home_option
@click.option("--against", "backup", type=click.Path(exists=True, path_type=Path),
              help="A backup taken before (its home, or its satchel.db): this log must hold its entries unchanged.")
def audit_verify(home: str | None, backup: Path | None) -> None:
    """Recompute the audit log's hash chain; fails naming every entry edited, removed, inserted or reordered.

    The chain holds no secret: whoever can write the database can also compute the hashes again after an
    edit. --against a backup kept where they cannot write finds that too.

    \b
    Example:
      satchel audit verify --against /mnt/backups/satchel-2026-12-01
    """
    from storage import audit

    with opened(home) as node:
        if backup is None:
            count = audit.verify_chain(node.db)
        else:
            with _read_only_database(backup) as copy:
                held = audit.verify_against(node.db, copy)
            count = audit.verify_chain(node.db)
    click.echo(f"Audit log intact: {count} entries, hash chain verified.")
    if backup is not None:
        click.echo(f"It extends the backup's ({held} entries) unchanged.")


@contextlib.contextmanager
def _read_only_database(path: Path) -> Iterator[sqlite3.Connection]:
    """The database of a backup (a home, or its satchel.db), opened read-only: checking it changes nothing."""
    from protocol import InvalidInput, NotFound
    from storage.errors import database_damaged

    db = path / "satchel.db" if path.is_dir() else path
    if not db.is_file():
        raise NotFound(f"{path} holds no satchel.db", field="--against",
                       hint="give the directory `satchel backup` wrote, or the satchel.db in it")  # fmt: skip
    conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)
    try:
        try:
            conn.execute("SELECT 1 FROM audit_log LIMIT 1")
        except sqlite3.DatabaseError as exc:
            damaged = database_damaged(exc, db)
            if damaged is None:
                raise InvalidInput(f"{db} is not a Satchel database ({exc})", field="--against") from None
            raise damaged from exc
        yield conn
    finally:
        conn.close()


COMMANDS = (users_group, contact_group, audit_group)
