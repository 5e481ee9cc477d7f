"""Every command has --help, and every help ends with an example."""

import click
import pytest
from click.testing import CliRunner

from cli.main import cli


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = [(prefix, group)]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append(((*prefix, name), command))
    return found


ALL = _commands(cli)


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "satchel" for p, _ in ALL])
def test_help_has_an_example(path: tuple[str, ...], command: click.Command) -> None:
    for flag in ("--help", "-h"):
        result = CliRunner().invoke(cli, [*path, flag])
        assert result.exit_code == 0, result.output
        assert "Example:" in result.output, f"`satchel {' '.join(path)} --help` lacks an example"
        example = result.output.split("Example:", 1)[1]
        assert "satchel" in example


def test_every_command_is_reached() -> None:
    names = {" ".join(p) for p, _ in ALL}
    for expected in ("init", "info", "serve", "users add", "users list", "users disable", "contact set",
                     "transfers enable", "transfers disable", "audit", "audit verify", "roster import",
                     "students list", "students show", "students search", "documents add", "cases add",
                     "assessments import"):  # fmt: skip
        assert expected in names


def test_defaults_written_out_for_a_fast_start_match_the_node() -> None:
    from cli import federation
    from node import keys_admin

    assert federation.OVERLAP_DAYS == keys_admin.DEFAULT_OVERLAP_DAYS
    assert (
        f"default: {keys_admin.DEFAULT_OVERLAP_DAYS}"
        in CliRunner().invoke(cli, ["keys", "rotate", "-h"]).output
    )


def test_arguments_that_are_not_utf8_get_a_usage_error_naming_the_fix() -> None:
    # A Latin-1 terminal's "é" reaches Python as the lone surrogate U+DCE9 (surrogateescape).
    for argv in (["peers", "ping", "\udce9cole.org"], ["students", "search", "Ren\udce9e"]):
        result = CliRunner().invoke(cli, argv)
        assert (
            result.exit_code == 2 and "is not UTF-8 text" in result.output and "LANG=C.UTF-8" in result.output
        )
        assert result.exception is None or isinstance(result.exception, SystemExit)
