"""The `satchel` command."""

from __future__ import annotations

import click

from cli import admin, codes, directory, federation, imports, node_cmds, records, requests, roster, transfers
from cli.common import CONTEXT, SatchelGroup


@click.group(cls=SatchelGroup, context_settings=CONTEXT)
@click.version_option(package_name="satchel")
def cli() -> None:
    """Satchel: move student records between school districts, signed and end-to-end encrypted.

    Every command finds the node's home from --home, else $SATCHEL_HOME, else ./satchel-home.
    Commands that change something name the operator with --as USER (or SATCHEL_USER).

    \b
    Example:
      satchel init --domain springfield.k12.il.us --name "Springfield SD 186" \\
          --state IL --city Springfield --zip 62701 --url https://satchel.springfield.k12.il.us
    """


for module in (node_cmds, admin, roster, records, federation, directory, transfers, imports, requests, codes):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    cli(prog_name="satchel")
