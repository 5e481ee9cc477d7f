"""`satchel directory ...`: running a directory (state agency), and a district joining and searching one."""

from __future__ import annotations

from typing import Any

import click

from cli.common import CONTEXT, as_option, home_option, json_option, opened, print_json, print_table, run


@click.group("directory", context_settings=CONTEXT)
def directory_group() -> None:
    """Directories: a state agency's vetted list of districts, and districts joining and searching it.

    \b
    Example:
      satchel directory search springfield --state IL
    """


@directory_group.command("init", context_settings=CONTEXT)
@home_option
@click.option("--domain", required=True, help="The directory's domain, e.g. directory.isbe.example.")
@click.option("--name", required=True, help="Who runs it, e.g. Illinois State Board of Education.")
@click.option("--state", required=True, help="The state it covers (two letters).")
@click.option("--city", required=True)
@click.option("--zip", "zip_code", required=True)
@click.option("--url", required=True, help="Its public https base URL.")
def directory_init(
    home: str | None, domain: str, name: str, state: str, city: str, zip_code: str, url: str
) -> None:
    """Create the home of a directory node; serve it with `satchel serve`.

    \b
    Example:
      satchel directory init --home /srv/directory --domain directory.isbe.example \\
          --name "Illinois State Board of Education" --state IL --city Springfield --zip 62777 \\
          --url https://directory.isbe.example
    """
    from node.home import init_home, resolve_home

    path = resolve_home(home)
    init_home(path, node={"role": "directory", "domain": domain, "name": name, "state": state, "city": city,
                          "zip": zip_code, "base_url": url, "nces_id": ""})  # fmt: skip
    with opened(str(path)) as node:
        fp = node.keys.identity.public_key.fingerprint
    click.echo(f"Created directory {domain} at {path}")
    click.echo(
        f"Fingerprint: {fp}  (districts pin it with `satchel directories add {url} --fingerprint {fp}`)"
    )


@directory_group.command("join", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("url")
def directory_join(home: str | None, actor: str | None, url: str) -> None:
    """Ask a directory to list this district; it stays pending until the directory operator approves.

    \b
    Example:
      satchel directory join https://directory.isbe.example --as ada
    """
    from node import directory_client
    from node.home import Node
    from node.runtime import Runtime

    async def work(node: Node, rt: Runtime) -> str:
        return await directory_client.join(node, rt.client, rt.keyring, actor=actor, base_url=url)

    status = run(home, work)
    click.echo(f"Join request sent; status: {status}.")


def _decide(approve: bool) -> click.Command:
    word = "approve" if approve else "reject"

    @click.command(word, context_settings=CONTEXT)
    @home_option
    @as_option
    @click.argument("domain")
    @click.option("--reason", default="", help="Why (recorded in the audit log).")
    def decide(home: str | None, actor: str | None, domain: str, reason: str) -> None:
        from node import directory_service

        with opened(home) as node:
            entry = directory_service.decide(node, actor=actor, domain=domain, approve=approve, reason=reason)
        click.echo(f"{entry.domain} is now {entry.status}.")

    decide.help = (
        f"{'Approve' if approve else 'Reject'} a district's request to be listed (directory operators)."
        f"\n\n\b\nExample:\n  satchel directory {word} springfield.k12.il.us --as operator"
    )
    return decide


directory_group.add_command(_decide(True))
directory_group.add_command(_decide(False))


@directory_group.command("list", context_settings=CONTEXT)
@home_option
@json_option
@click.option("--status", type=click.Choice(["pending", "approved", "rejected"]), help="Only these entries.")
def directory_list(home: str | None, as_json: bool, status: str | None) -> None:
    """List the districts this directory holds (directory operators).

    A district can be held twice: as this directory's own member (origin: this directory) and as taken from a
    mirrored directory. Of the two, the one published is this directory's own once approved.

    \b
    Example:
      satchel directory list --status pending
    """
    from node import directory_service
    from storage import directory as store

    with opened(home) as node:
        directory_service.require_directory(node, operator=True)
        entries = store.list_entries(node.db, status=status)
    if as_json:
        print_json([{"domain": e.domain, "name": e.name, "location": f"{e.city}, {e.state} {e.zip}",
                     "status": e.status, "origin": e.origin, "published": e.published, "updated_at": e.updated_at}
                    for e in entries])  # fmt: skip
    else:
        print_table(["domain", "name", "location", "status", "origin", "published", "updated"],
                    [(e.domain, e.name, f"{e.city}, {e.state} {e.zip}", e.status, e.origin,
                      "yes" if e.published else "no", e.updated_at) for e in entries])  # fmt: skip


@directory_group.command("search", context_settings=CONTEXT)
@home_option
@json_option
@click.argument("text", required=False)
@click.option("--state", help="Two-letter state (default: this district's state).")
@click.option("--city")
@click.option("--zip", "zip_code")
def directory_search(
    home: str | None,
    as_json: bool,
    text: str | None,
    state: str | None,
    city: str | None,
    zip_code: str | None,
) -> None:
    """Find districts in the trusted directories; every result is verified before it is shown.

    \b
    Example:
      satchel directory search shelbyville --state IL
    """
    from node import directory_client
    from node.home import Node
    from node.runtime import Runtime

    async def work(node: Node, rt: Runtime) -> directory_client.SearchResult:
        return await directory_client.search(node, rt.keyring, text=text, state=state or node.config.node.state,
                                             city=city, zip_code=zip_code)  # fmt: skip

    result = run(home, work)
    rows: list[dict[str, Any]] = []
    for e in result.entries:
        d = e.district.descriptor
        c = d.coordinator
        rows.append({
            "name": d.name, "domain": d.domain, "city": d.city, "state": d.state, "zip": d.zip,
            "nces_id": d.nces_id, "url": d.base_url, "transfers_enabled": d.transfers_enabled,
            "coordinator": c.to_json() if c else None, "directory": e.entry.directory,
            "fingerprints": directory_client.entry_fingerprints(e),
        })  # fmt: skip
    if as_json:
        print_json({"results": rows, "from_cache": list(result.from_cache), "truncated": list(result.truncated)})
        return
    print_table(
        ["district", "domain", "location", "transfers", "coordinator", "phone", "via"],
        [(r["name"], r["domain"], f"{r['city']}, {r['state']} {r['zip']}", "on" if r["transfers_enabled"] else "off",
          f"{r['coordinator']['name']} <{r['coordinator']['email']}>" if r["coordinator"] else "-",
          r["coordinator"]["phone"] if r["coordinator"] else "-", r["directory"]) for r in rows],
        empty="(no district matches)",
    )  # fmt: skip
    for name in result.from_cache:
        click.echo(f"Note: {name} did not answer; its results come from the local cache.")
    for name in result.truncated:
        click.echo(f"Note: {name} has more matches than it shows; narrow the search with TEXT, --city or --zip.")


@directory_group.command("mirror", context_settings=CONTEXT)
@home_option
@as_option
@click.argument("url")
@click.option("--fingerprint", "fp", required=True, help="The mirrored directory's fingerprint.")
def directory_mirror(home: str | None, actor: str | None, url: str, fp: str) -> None:
    """Mirror another directory (e.g. a state's into a national one); its entries keep their signatures.

    \b
    Example:
      satchel directory mirror https://directory.isbe.example --fingerprint 5PQ0Z-P4CWV-SF6CQ-DCBEV-JDY1R --as op
    """
    from node import directory_service
    from node.home import Node
    from node.runtime import Runtime

    async def work(node: Node, rt: Runtime) -> tuple[str, dict[str, directory_service.MirrorSync]]:
        domain = await directory_service.add_mirror(
            node, rt.keyring, actor=actor, base_url=url, fingerprint=fp
        )
        return domain, await directory_service.sync_mirrors(node, rt.keyring)

    domain, pulled = run(home, work)
    click.echo(f"Mirroring {domain}: {pulled[domain].entries} entries.")


@directory_group.command("sync", context_settings=CONTEXT)
@home_option
def directory_sync(home: str | None) -> None:
    """Pull every mirrored directory now (`satchel serve` also does this periodically).

    \b
    Example:
      satchel directory sync
    """
    from node import directory_service
    from node.home import Node
    from node.runtime import Runtime

    async def work(node: Node, rt: Runtime) -> dict[str, directory_service.MirrorSync]:
        return await directory_service.sync_mirrors(node, rt.keyring)

    pulled_by_domain = run(home, work)
    if not pulled_by_domain:
        click.echo("No directory is mirrored here; add one with `satchel directory mirror URL`.")
    for domain, pulled in pulled_by_domain.items():
        click.echo(f"{domain}: {pulled.entries} entries, {pulled.removed} removed")


COMMANDS = (directory_group,)
