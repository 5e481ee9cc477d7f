"""A command whose message another node refused for good says so and exits 1: what it stored here stands, but
what it was for did not happen. Before, `satchel contact set` printed the refusal and exited 0, so a script
(or a registrar reading only the status) took the directory for updated."""

from __future__ import annotations

from pathlib import Path

from node.clock import now_iso
from node.home import init_home, open_node
from storage.database import write_transaction
from storage.directory import remove_entries

from support import DEV_ENV, ServedNode, free_port, node_fields, run_cli

DIRECTORY = "directory.example.gov"


def _cli(home: Path, *args: str, ok: bool = True):
    return run_cli(home, *args, ok=ok, env=DEV_ENV)


def test_a_directory_refusing_an_update_for_good_makes_the_command_fail(tmp_path: Path) -> None:
    directory = tmp_path / DIRECTORY
    _cli(directory, "directory", "init", "--domain", DIRECTORY, "--name", "State Board", "--state", "IL",
         "--city", "Springfield", "--zip", "62777", "--url", f"http://127.0.0.1:{free_port()}")  # fmt: skip
    _cli(directory, "users", "add", "op", "--email", "op@example.gov", "--name", "Operator", "--role", "admin")
    home = tmp_path / "a.example.org"
    init_home(home, node=node_fields("a.example.org", f"http://127.0.0.1:{free_port()}"))
    _cli(home, "users", "add", "ada", "--email", "ada@a.example.org", "--name", "Ada", "--role", "admin")
    served = [ServedNode(directory, DEV_ENV), ServedNode(home, DEV_ENV)]
    try:
        _cli(home, "directory", "join", served[0].url, "--as", "ada")
        # The directory lost its entry (say, rebuilt from an older backup): updates from A are refused for good.
        state = open_node(directory, DEV_ENV)
        try:
            with write_transaction(state.db):
                remove_entries(state.db, ["a.example.org"], origin=DIRECTORY, own=DIRECTORY, now=now_iso())
        finally:
            state.close()
        result = _cli(home, "contact", "set", "--as", "ada", "--name", "Ada Lovelace", "--email",
                      "ada@a.example.org", ok=False)  # fmt: skip
        assert result.exit_code == 1
        assert "Coordinator contact: Ada Lovelace" in result.output  # stored here all the same
        assert f"Refused by {DIRECTORY}, for good: directory.not_member" in result.stderr
        assert "Ada Lovelace" in _cli(home, "contact", "show").output
    finally:
        for node in served:
            node.stop()
