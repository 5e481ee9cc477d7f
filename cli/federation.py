"""Peers, keys, directories: how this node knows other nodes and is known by them."""

from __future__ import annotations

from typing import Any

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
from cli.progress import progress_line

# node.keys_admin.DEFAULT_OVERLAP_DAYS, written out so that help does not load the node (a test compares them).
OVERLAP_DAYS = 7
# The line a directory's key change draws while its own entries are signed again (node.directory_resign).
RESIGNING = "Signing the directory's entries again:"

# -- peers --------------------------------------------------------------------------------------------


@click.group("peers", context_settings=CONTEXT)
def peers_group() -> None:
    """Other districts' nodes this node knows and trusts.

    \b
    Example:
      satchel peers add https://satchel.shelbyville.k12.il.us --as jane
    """


@peers_group.command("add", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("url")
@click.option("--yes", is_flag=True, help="Pin without asking (for scripts, after checking the fingerprint).")
@click.option("--repin", is_flag=True, help="Replace a key you pinned before, after confirming it by phone.")
def peers_add(home: str | None, actor: str | None, url: str, yes: bool, repin: bool) -> None:
    """Fetch a node's descriptor, show its fingerprint to confirm by phone, and pin it.

    \b
    Example:
      satchel peers add https://satchel.shelbyville.k12.il.us --as jane
    """
    from node.home import Node
    from node.operators import authorize, record
    from node.peers import fetch_descriptor
    from node.runtime import Runtime
    from protocol import InvalidInput
    from storage.database import write_transaction

    async def work(node: Node, rt: Runtime) -> None:
        user = authorize(node, actor, "settings.manage")
        verified = await fetch_descriptor(rt.session, rt.keyring.check_origin(url))
        d = verified.descriptor
        if d.domain == node.config.node.domain:
            raise InvalidInput(f"{url} is this node itself ({d.domain})", field="URL",
                               hint="give the URL of the other district's node")  # fmt: skip
        click.echo(f"{d.name} ({d.domain}), {d.city}, {d.state} {d.zip}")
        click.echo(f"Identity key {verified.signer.key_id}")
        click.echo(f"Fingerprint  {verified.signer.fingerprint}")
        if d.coordinator:
            click.echo(f"Coordinator  {d.coordinator.name}, {d.coordinator.title} {d.coordinator.phone}")
        if not yes and not click.confirm("Does the district's coordinator read you this same fingerprint?"):
            raise click.Abort()
        await rt.keyring.fetch_peer(url, trust="pinned", expected_domain=d.domain, pinned_by=user.username,
                                    repin=repin)  # fmt: skip
        with write_transaction(node.db):
            record(
                node,
                user.username,
                "peers.pin",
                d.domain,
                {"key": verified.signer.key_id, "fingerprint": verified.signer.fingerprint, "repin": repin},
            )
        click.echo(f"Pinned {d.domain}.")

    run(home, work)


@peers_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
def peers_list(home: str | None, as_json: bool) -> None:
    """List known nodes and how each is trusted (pinned, directory, web).

    \b
    Example:
      satchel peers list
    """
    from storage import peers as peer_store

    with opened(home) as node:
        known = peer_store.list_all(node.db)
    if as_json:
        print_json([{"domain": p.domain, "name": p.name, "url": p.base_url, "trust": p.trust,
                     "via": p.trusted_via, "transfers_enabled": p.transfers_enabled,
                     "coordinator": p.coordinator, "updated_at": p.updated_at} for p in known])  # fmt: skip
        return
    print_table(
        ["domain", "name", "trust", "transfers", "updated"],
        [(p.domain, p.name, p.trust, "on" if p.transfers_enabled else "off", p.updated_at) for p in known],
    )


@peers_group.command("show", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("domain")
def peers_show(home: str | None, as_json: bool, domain: str) -> None:
    """Show a known node with its keys and their status.

    \b
    Example:
      satchel peers show shelbyville.k12.il.us
    """
    from crypto import fingerprint
    from protocol import NotFound
    from storage import peers as peer_store

    with opened(home) as node:
        peer = peer_store.get(node.db, domain)
        keys = peer_store.keys(node.db, domain)
    if peer is None:
        raise NotFound(
            f"{domain} is not a known peer", field="DOMAIN", hint="add it with `satchel peers add URL`"
        )
    rows = [(k.use, k.key_id, fingerprint(k.algorithm, k.public_key), k.not_before, k.not_after or "-", k.status)
            for k in keys]  # fmt: skip
    if as_json:
        print_json({"domain": peer.domain, "name": peer.name, "url": peer.base_url, "trust": peer.trust,
                    "coordinator": peer.coordinator,
                    "keys": [dict(zip(["use", "key_id", "fingerprint", "not_before", "not_after", "status"], r,
                                      strict=True)) for r in rows]})  # fmt: skip
        return
    click.echo(
        f"{peer.name} ({peer.domain}) at {peer.base_url}; trusted: {peer.trust} via {peer.trusted_via}"
    )
    c = peer.coordinator
    parts = (c["name"], c.get("title"), c.get("phone"), c["email"]) if c else ("not published",)
    click.echo("Transfer coordinator: " + ", ".join(p for p in parts if p))
    print_table(["use", "key id", "fingerprint", "from", "until", "status"], rows)


@peers_group.command("refresh", context_settings=CONTEXT)
@home_option
@click.argument("domain", required=False)
def peers_refresh(home: str | None, domain: str | None) -> None:
    """Fetch known nodes' descriptors again (keys, revocations, transfers switch, contact).

    \b
    Example:
      satchel peers refresh shelbyville.k12.il.us
    """
    from node.home import Node
    from node.runtime import Runtime
    from storage import peers as peer_store

    async def work(node: Node, rt: Runtime) -> None:
        targets = [domain] if domain else [p.domain for p in peer_store.list_all(node.db)]
        for target in targets:
            d = await rt.keyring.refresh(target)
            click.echo(f"Refreshed {d.domain}: transfers {'on' if d.transfers_enabled else 'off'}, "
                       f"{len(d.keys)} keys, {len(d.revoked_keys)} revoked")  # fmt: skip

    run(home, work)


@peers_group.command("ping", context_settings=CONTEXT)
@home_option
@click.argument("domain")
def peers_ping(home: str | None, domain: str) -> None:
    """Send a signed request to a known node and verify its signed answer.

    \b
    Example:
      satchel peers ping shelbyville.k12.il.us
    """
    from node.home import Node
    from node.runtime import Runtime
    from protocol import NotFound
    from storage import peers as peer_store

    async def work(node: Node, rt: Runtime) -> dict[str, Any]:
        peer = peer_store.get(node.db, domain)
        if peer is None:
            raise NotFound(
                f"{domain} is not a known peer", field="DOMAIN", hint="add it with `satchel peers add`"
            )
        response = await rt.client.call(peer.base_url, "POST", "/satchel/v1/ping", body=b"{}",
                                        content_type="application/json", expect_domain=domain)  # fmt: skip
        return response.json()

    answer = run(home, work)
    click.echo(
        f"{answer['pong']} answered, signed; it saw us as {answer['caller']} (trust: {answer['trust']})."
    )


# -- keys ----------------------------------------------------------------------------------------------


@click.group("keys", context_settings=CONTEXT)
def keys_group() -> None:
    """This node's own keys: list, rotate, revoke.

    \b
    Example:
      satchel keys rotate --identity --as ada
    """


@keys_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
def keys_list(home: str | None, as_json: bool) -> None:
    """List this node's keys with fingerprints and validity.

    \b
    Example:
      satchel keys list
    """
    from crypto import fingerprint

    with opened(home, expired_keys_ok=True) as node:  # the keys of a home whose last key ended, too
        rows = node.db.execute(
            "SELECT use, key_id, algorithm, public_key, not_before, not_after, status FROM node_keys"
            " ORDER BY use, not_before"
        ).fetchall()
    data = [{"use": r[0], "key_id": r[1], "fingerprint": fingerprint(r[2], bytes(r[3])), "not_before": r[4],
             "not_after": r[5], "status": r[6]} for r in rows]  # fmt: skip
    if as_json:
        print_json(data)
    else:
        print_table(["use", "key id", "fingerprint", "from", "until", "status"],
                    [(d["use"], d["key_id"], d["fingerprint"], d["not_before"], d["not_after"] or "-", d["status"])
                     for d in data])  # fmt: skip


@keys_group.command("rotate", context_settings=CONTEXT)
@home_option
@as_option
@click.option(
    "--identity", "use", flag_value="identity", default=True, help="Rotate the signing key (default)."
)
@click.option("--encryption", "use", flag_value="encryption", help="Rotate the envelope encryption key.")
@click.option(
    "--overlap-days",
    type=int,
    default=OVERLAP_DAYS,
    show_default=True,
    help="How long the old key stays valid beside the new one.",
)
def keys_rotate(home: str | None, actor: str | None, use: str, overlap_days: int) -> None:
    """Create a new key, published beside the old one and endorsed by it; directories are updated.

    \b
    Example:
      satchel keys rotate --identity --overlap-days 7 --as ada
    """

    from node import keys_admin

    # Expired keys too: this is what mends a home whose last key ended.
    with opened(home, expired_keys_ok=True) as node, progress_line(RESIGNING, unit="entries") as progress:
        key_id = keys_admin.rotate(node, actor=actor, use=use, overlap_days=overlap_days, progress=progress)
    click.echo(f"New {use} key {key_id}; the old one stays valid for {overlap_days} days.")
    deliver_now(home)


@keys_group.command("revoke", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("key_id", metavar="KEYID")
def keys_revoke(home: str | None, actor: str | None, key_id: str) -> None:
    """Revoke a key: directories publish the revocation and peers refuse what it signs or is sealed to from
    then on. Envelopes other districts already received and checked still open.

    \b
    Example:
      satchel keys revoke ed25519-hd8qgpma8ykbzs61 --as ada
    """

    from node import keys_admin

    with opened(home) as node, progress_line(RESIGNING, unit="entries") as progress:
        revoked = keys_admin.revoke(node, actor=actor, key_id=key_id, progress=progress)
    click.echo(f"Revoked {key_id}.")
    if revoked.kept:
        click.echo(f"{revoked.kept} is the node's {revoked.use} key again, with no end date (it was to end at "
                   f"{revoked.kept_was_to_end}): revoking the key a rotation made undoes the rotation. To replace "
                   f"it as well: `satchel keys rotate --{revoked.use}`, then revoke it.")  # fmt: skip
    for stranded in revoked.stranded:
        if stranded.resealed:
            click.echo(f"Note: transfer {stranded.transfer_id} to {stranded.peer} is not delivered yet and its "
                       f"envelope is signed by {key_id}: it is sealed again with the current key before it goes, "
                       "and the code already given out still opens it.", err=True)  # fmt: skip
            continue
        click.echo(f"Warning: transfer {stranded.transfer_id} to {stranded.peer} is not delivered yet and its "
                   f"envelope is signed by {key_id}: {stranded.peer} will refuse it. Cancel it (`satchel cancel "
                   f"{stranded.transfer_id}`) and send the records again.", err=True)  # fmt: skip
    if revoked.use == "encryption":
        click.echo(f"Note: envelopes other districts sealed to {key_id} before they learn of the revocation are "
                   "refused when they arrive; their senders seal them again to the new key, under the same code, "
                   "when they can (when they cannot, those become undeliverable there, and their coordinators are "
                   "told); those already here still open.", err=True)  # fmt: skip
    deliver_now(home)


# -- directories this node trusts --------------------------------------------------------------------


@click.group("directories", context_settings=CONTEXT)
def directories_group() -> None:
    """Directories this node trusts for search and key discovery.

    \b
    Example:
      satchel directories add https://directory.isbe.example --fingerprint 5PQ0Z-P4CWV-SF6CQ-DCBEV-JDY1R --as ada
    """


@directories_group.command("add", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("url")
@click.option("--fingerprint", "fp", required=True, help="The directory's fingerprint, from its operator.")
def directories_add(home: str | None, actor: str | None, url: str, fp: str) -> None:
    """Trust a directory after checking its fingerprint.

    \b
    Example:
      satchel directories add https://directory.isbe.example --fingerprint 5PQ0Z-P4CWV-SF6CQ-DCBEV-JDY1R --as ada
    """
    from node import directory_client
    from node.home import Node
    from node.runtime import Runtime

    async def work(node: Node, rt: Runtime) -> str:
        return await directory_client.trust_directory(node, rt.keyring, actor=actor, base_url=url, fp=fp)

    click.echo(f"Trusting directory {run(home, work)}.")


@directories_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
def directories_list(home: str | None, as_json: bool) -> None:
    """List trusted directories and the ones this district joined.

    \b
    Example:
      satchel directories list
    """
    from storage import directory as store

    with opened(home) as node:
        trusted = store.trusted(node.db)
        joined = store.memberships(node.db)
    if as_json:
        print_json({"trusted": [{"domain": t.domain, "url": t.base_url, "key_id": t.key_id,
                                 "last_ok_at": t.last_ok_at} for t in trusted],
                    "joined": [{"url": u, "domain": d, "status": s} for u, d, s, _ in joined]})  # fmt: skip
        return
    click.echo("Trusted:")
    print_table(["domain", "url", "key", "last answered"],
                [(t.domain, t.base_url, t.key_id, t.last_ok_at or "-") for t in trusted])  # fmt: skip
    click.echo("Joined:")
    print_table(["domain", "url", "status"], [(d, u, s) for u, d, s, _ in joined])


COMMANDS = (peers_group, keys_group, directories_group)
