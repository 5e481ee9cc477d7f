"""Every command, given whatever a person might type for its arguments, ends with a result (exit 0), a
coded error (1 or 2, with what to do next) or click's usage error (2), never an internal error (3).

Runs in a throw-away working folder against a real home with a roster, so a mistyped output path lands
there. Found so far: `contact show` always failed (it called a function that had moved); counts too large
for SQLite (`--limit 99999999999999999999`) and key overlaps too long for a date overflowed; an argument
that is not UTF-8 (a Latin-1 terminal) failed wherever it was first encoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import cli
from node.home import init_home

from fixtures_oneroster import sample_bundle, write_bundle
from support import DEV_ENV, FAST_ENVELOPES, node_fields, run_cli

# `serve` runs until stopped; everything else must end on its own.
SKIPPED = {("serve",)}
# Values that reach Satchel's own checks: ids of the sample roster, dates, domains, ULIDs, codes,
# numbers out of range, control and direction characters. Network addresses only on loopback, where a
# refusal is immediate (argv cannot hold NUL, so neither do these).
TYPED = (
    "", " ", "x", "100001", "100002", "01M84ZD0P0FRTQMAJN9A762KKB", "a.example.org", "b.example.org", "-1", "0",
    "99999999999999999999", "2024-02-30", "2024-01-01", "é", "x" * 300, "a\nb", "\t", "\u202e", "1e9", "ada",
    "admin", "coordinator", "@", "x@y", "KG", "05", "*", "%", "'", '"', "null", "[]", "{}", "T000001-1",
    "IMP-7K2Q-9XDR", "ed25519-abc", "ABCD-EFGH-JKMN-PQRS", "http://127.0.0.1:9", "roster.csv", "missing.csv",
)  # fmt: skip
_values = st.sampled_from(TYPED) | st.text(st.characters(blacklist_characters="\x00"), max_size=12)


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        elif (*prefix, name) not in SKIPPED:
            yield (*prefix, name), command


COMMANDS = list(_commands(cli))


@pytest.fixture(scope="module")
def workplace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    home = root / "a.example.org"
    init_home(home, node=node_fields("a.example.org", "http://127.0.0.1:9"))
    run_cli(
        home, "users", "add", "admin", "--email", "admin@a.example.org", "--name", "Ada", "--role", "admin"
    )
    run_cli(home, "transfers", "enable", "--as", "admin", env=DEV_ENV)
    run_cli(home, "roster", "import", str(write_bundle(root / "roster", sample_bundle())), "--as", "admin")
    (root / "cwd").mkdir()
    (root / "cwd" / "roster.csv").write_text("sourcedId,givenName\n1,A\n")
    return root / "cwd", {**DEV_ENV, **FAST_ENVELOPES, "SATCHEL_HOME": str(home), "SATCHEL_USER": "admin"}


@st.composite
def _invocations(draw: st.DrawFn) -> list[str]:
    path, command = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    for param in command.params:
        if isinstance(param, click.Argument):
            argv += draw(st.lists(_values, min_size=1, max_size=1 if param.nargs == 1 else 3))
        elif isinstance(param, click.Option) and param.name not in ("help", "home") and draw(st.booleans()):
            flag = max(param.opts, key=len)
            argv += [flag] if param.is_flag else [flag, draw(_values)]
    return argv


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=_invocations())
def test_no_command_ends_in_an_internal_error(
    workplace, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, env = workplace
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exit_code in (0, 1, 2), (argv, result.output)
    assert "Traceback" not in result.output and "unexpected internal error" not in result.output
