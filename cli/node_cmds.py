"""`satchel init`, `satchel info`, `satchel serve`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocol.descriptor import Contact
import logging
from dataclasses import replace

import click

from cli.common import (
    CONTEXT,
    as_option,
    fail,
    home_option,
    json_option,
    opened,
    print_fields,
    print_json,
    print_table,
)


@click.command(context_settings=CONTEXT)
@home_option
@click.option("--domain", required=True, help="The district's internet domain, e.g. springfield.k12.il.us.")
@click.option("--name", required=True, help="The district's official name.")
@click.option("--state", required=True, help="Two-letter state code, e.g. IL.")
@click.option("--city", required=True, help="City of the district office.")
@click.option("--zip", "zip_code", required=True, help="ZIP code of the district office.")
@click.option("--url", required=True, help="Public https base URL peers reach this node at.")
@click.option("--nces-id", default="", help="Seven-digit NCES district id (optional).")
def init(
    home: str | None, domain: str, name: str, state: str, city: str, zip_code: str, url: str, nces_id: str
) -> None:
    """Create a new node home: configuration, keys and database.

    Prints the identity fingerprint; read it out to other districts' coordinators when they add you.

    \b
    Example:
      satchel init --home /srv/satchel --domain springfield.k12.il.us --name "Springfield SD 186" \\
          --state IL --city Springfield --zip 62701 --url https://satchel.springfield.k12.il.us
    """
    from node.home import init_home, resolve_home

    path = resolve_home(home)
    config = init_home(path, node={
        "domain": domain, "name": name, "state": state, "city": city, "zip": zip_code,
        "base_url": url, "nces_id": nces_id,
    })  # fmt: skip
    with opened(str(path)) as node:
        keys = node.keys
    click.echo(f"Created the Satchel home for {config.node.domain} at {path}")
    click.echo(f"Identity key:     {keys.identity.public_key.key_id}")
    click.echo(f"Fingerprint:      {keys.identity.public_key.fingerprint}")
    click.echo("Next steps:")
    click.echo(f"  export SATCHEL_HOME={path}")
    click.echo("  satchel users add YOURNAME --email you@district.org --name 'Your Name' --role admin")
    click.echo("  satchel contact set --as YOURNAME --name ... --email ... --phone ...")
    click.echo("  satchel serve")


@click.command(context_settings=CONTEXT)
@home_option
@json_option
def info(home: str | None, as_json: bool) -> None:
    """Show this node's descriptor: who it is, its keys and their fingerprints.

    \b
    Example:
      satchel info --json
    """
    from node.descriptor import build_descriptor

    with opened(home) as node:
        descriptor = build_descriptor(node)
    if as_json:
        data = descriptor.to_json()
        for key in data["keys"]:
            key["fingerprint"] = _fingerprint(key)
        print_json(data)
        return
    contact = descriptor.coordinator
    print_fields([
        ("Domain", descriptor.domain), ("Name", descriptor.name), ("Role", descriptor.role),
        ("Location", f"{descriptor.city}, {descriptor.state} {descriptor.zip}"),
        ("NCES id", descriptor.nces_id or "-"), ("Base URL", descriptor.base_url),
        ("Transfers", "on" if descriptor.transfers_enabled else "off"),
        ("Coordinator", _contact_line(contact)),
        ("Protocols", ", ".join(descriptor.protocol_versions)),
    ])  # fmt: skip
    click.echo()
    print_table(
        ["use", "key id", "fingerprint", "valid from", "valid until"],
        [
            (k.use, k.key_id, _fingerprint(k.to_json()), k.not_before, k.not_after or "-")
            for k in descriptor.keys
        ],
    )


def _contact_line(contact: Contact | None) -> str:
    if contact is None:
        return "(not set; see `satchel contact set`)"
    return f"{contact.name}, {contact.title} <{contact.email}> {contact.phone}"


def _fingerprint(key_json: dict) -> str:
    from crypto import fingerprint
    from protocol.signed_document import unb64url

    return fingerprint(key_json["alg"], unb64url(key_json["public_key"], field="public_key"))


@click.command(context_settings=CONTEXT)
@home_option
@click.option("--host", help="Address to listen on (default: server.host from the config).")
# Bounded here so that a mistyped port gets click's "not in the range" before the node starts anything.
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one (default: server.port).",
)
@click.option("--dev", is_flag=True, help="Development only: accept peers on plain http loopback URLs.")
def serve(home: str | None, host: str | None, port: int | None, dev: bool) -> None:
    """Run the node: serve its descriptor and peer endpoints until Ctrl-C or SIGTERM.

    Put it behind the district's TLS terminator; the public URL is node.base_url.

    \b
    Example:
      satchel serve --home /srv/satchel --host 127.0.0.1 --port 8440
    """
    import asyncio
    import sys

    from node.server import run_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with opened(home) as node:
        config = node.config
    if dev:
        config = replace(config, federation=replace(config.federation, dev_loopback=True))

    def ready(url: str) -> None:
        click.echo(f"Satchel node {config.node.domain} listening on {url}", nl=True)
        sys.stdout.flush()

    asyncio.run(
        run_server(
            config,
            host=host or config.server.host,
            port=config.server.port if port is None else port,
            on_ready=ready,
        )
    )
    click.echo("Stopped cleanly.")


@click.command(context_settings=CONTEXT)
@home_option
@as_option
@json_option
@click.argument("destination", metavar="DEST", type=click.Path(file_okay=False))
def backup(home: str | None, actor: str | None, as_json: bool, destination: str) -> None:
    """Back up the home into DEST while the node keeps running: the database as of one instant (checked),
    the keys, the configuration, the documents and the envelopes still waiting.

    DEST is a new or empty directory, or an earlier backup of this node: then only new documents are
    copied, and what the home no longer has (purged documents) goes from the backup too, unless the database
    still uses it: a document the home lost is kept in the backup, named, and the command exits 1. The backup is a
    home: to restore, stop the node, put DEST where the home was (or point --home at it) and start it. It
    holds the private keys and every record in clear: keep it as safe as the home. Admins only.

    \b
    Example:
      satchel backup /mnt/backup/satchel --as ada
    """
    from pathlib import Path

    from cli.progress import progress_line
    from node.backup import backup as take_backup

    with opened(home) as node, progress_line("Copying") as progress:
        result = take_backup(node, actor=actor, destination=Path(destination), progress=progress)
    if as_json:
        print_json({
            "destination": str(result.destination), "taken_at": result.taken_at,
            "database_bytes": result.database_bytes, "blobs": result.blobs, "blobs_copied": result.blobs_copied,
            "bytes_copied": result.bytes_copied, "removed": result.removed, "envelopes": result.envelopes,
            "damaged": result.damaged, "missing": result.missing, "lost_from_home": result.lost_from_home,
            "whole": result.whole,
        })  # fmt: skip
    else:
        from storage.free_space import size_text

        click.echo(f"Backed up to {result.destination} ({result.taken_at}):")
        print_fields([
            ("Database", f"{size_text(result.database_bytes)}, integrity checked"),
            ("Documents", f"{result.blobs:,} file(s); {result.blobs_copied:,} copied now "
                          f"({size_text(result.bytes_copied)}), {result.removed:,} removed as gone from the home"),
            ("Envelopes", f"{result.envelopes:,} waiting for delivery or a code"),
            ("Keys", "copied: the backup can decrypt and sign as this node; keep it as safe as the home"),
        ])  # fmt: skip
    _tell_findings(damaged=result.damaged, missing=result.missing, damaged_text="and was not copied",
                   missing_text=" is used by the database but is not in the home")  # fmt: skip
    for lost in result.lost_from_home[:20]:
        click.echo(f"Lost from the home: {lost} is used by the database; the backup kept its copy", err=True)
    if len(result.lost_from_home) > 20:
        click.echo(f"... and {len(result.lost_from_home) - 20:,} more lost from the home", err=True)
    if result.lost_from_home:
        click.echo(f"Hint: copy them back from {result.destination} into the home (same paths under it), then "
                   "`satchel check`", err=True)  # fmt: skip
    if not result.whole:
        click.echo("Hint: take these from an older backup; if the node was busy, run the backup again first",
                   err=True)  # fmt: skip
    if result.lost_from_home or not result.whole:
        raise click.exceptions.Exit(1)


@click.command(context_settings=CONTEXT)
@home_option
@json_option
@click.option("--blobs", "hash_blobs", is_flag=True,
              help="Also read every document back and check it against its SHA-256 (takes as long as reading "
                   "them all).")  # fmt: skip
def check(home: str | None, as_json: bool, hash_blobs: bool) -> None:
    """Check that the home is whole: the database's integrity, the audit log's hash chain, and that every
    document and waiting envelope the database names is on disk; also how much of the disk uploads that
    broke off hold for their senders to resume. Changes nothing; exits 1 on a problem.

    Run it after each backup (cron), so that damage is found while a backup still holds the good copy.

    \b
    Example:
      satchel check --blobs
    """
    from cli.progress import progress_line
    from node.errors import ConfigError, HomeMissing
    from node.home_check import check_home
    from protocol import SatchelError
    from storage.errors import DatabaseDamaged
    from storage.free_space import size_text

    try:
        with opened(home) as node, progress_line("Reading documents") as progress:
            report = check_home(node, hash_blobs=hash_blobs, progress=progress)
    except SatchelError as exc:
        # A home too damaged to open is what this command is for: a finding (1), not a failure to check (2).
        if exc.code not in (DatabaseDamaged.code, HomeMissing.code, ConfigError.code):
            raise
        fail(exc)
        raise click.exceptions.Exit(1) from None
    if as_json:
        print_json({
            "whole": report.whole, "database": report.database, "audit_entries": report.audit_entries,
            "audit_problem": report.audit_problem, "blobs_used": report.blobs_used,
            "envelopes_waiting": report.envelopes_waiting, "partial_uploads": report.partial_uploads,
            "partial_bytes": report.partial_bytes, "missing": report.missing,
            "blobs_hashed": report.blobs_hashed, "damaged": report.damaged,
            "exposed": None if report.exposed is None else f"{report.exposed:04o}",
        })  # fmt: skip
    else:
        hashed = ("not read (add --blobs to read every document back)" if report.blobs_hashed is None
                  else f"{report.blobs_hashed:,} read back, " + (f"{len(report.damaged):,} damaged"
                                                                if report.damaged else "all match"))  # fmt: skip
        print_fields([
            ("Database", "integrity check failed" if report.database else "integrity check passed"),
            ("Audit log", report.audit_problem or f"{report.audit_entries:,} entries, hash chain verified"),
            ("Documents", f"{report.blobs_used:,} in use"),
            ("Envelopes", f"{report.envelopes_waiting:,} waiting for delivery or a code"),
            ("Broken-off uploads", f"{report.partial_uploads:,} kept for their senders to resume, "
             f"{size_text(report.partial_bytes)} (envelope.partial_keep_hours)"
             if report.partial_uploads else "none"),
            ("Missing files", f"{len(report.missing):,}" if report.missing else "none"),
            ("Contents", hashed),
            ("Access", "owner only" if report.exposed is None
             else f"other users may enter (mode {report.exposed:04o})"),
        ])  # fmt: skip
    from storage.errors import AuditChainBroken

    for finding in report.database:
        click.echo(f"Database: {finding} (error code {DatabaseDamaged.code})", err=True)
    if report.audit_problem:
        click.echo(f"Audit log: {report.audit_problem} (error code {AuditChainBroken.code})", err=True)
    _tell_findings(damaged=report.damaged, missing=report.missing)
    if report.exposed is not None:
        home_dir = node.config.home
        click.echo(f"Exposed: other users of this machine may enter {home_dir} (mode {report.exposed:04o}), and "
                   f"read the students' records in it; fix it with `chmod 700 {home_dir}`", err=True)  # fmt: skip
    if report.database or report.audit_problem or report.missing or report.damaged:
        click.echo("Hint: restore what is named from the latest backup that has it (`satchel backup` makes them);"
                   " stop the node first if the database itself is damaged", err=True)  # fmt: skip
    if not report.whole:
        raise click.exceptions.Exit(1)


def _tell_findings(
    *, damaged: list[str], missing: list[str], damaged_text: str = "", missing_text: str = ""
) -> None:
    """One line on standard error per damaged blob and per missing file, each with its error code."""
    from node.transfer_files import SealedEnvelopeMissing
    from storage.errors import BlobCorrupt, BlobMissing

    for sha in damaged:
        click.echo(f"Damaged: blob {sha} no longer matches its SHA-256{' ' + damaged_text if damaged_text else ''}"
                   f" (error code {BlobCorrupt.code})", err=True)  # fmt: skip
    for what in missing:
        code = SealedEnvelopeMissing.code if what.startswith("envelope") else BlobMissing.code
        click.echo(f"Missing: {what}{missing_text} (error code {code})", err=True)


COMMANDS = (init, info, serve, backup, check)
