"""A home this process may not write: run as the wrong user, or on a disk mounted read-only.

Self-hosted nodes run `satchel serve` as a service user; a coordinator or IT person who then runs a command
as themselves (or as root, leaving root-owned files behind) meets permission errors. Each must read as what
it is and what to do, not as an internal error, and change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from node.home import init_home

from support import node_fields, run_cli

SATCHEL = str(Path(sys.executable).with_name("satchel"))


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    init_home(home, node=node_fields("a.example.org"))
    run_cli(home, "users", "add", "admin", "--email", "admin@a.example.org", "--name", "Ada", "--role", "admin")
    return home


def _add_bob(home: Path) -> list[str]:
    return [SATCHEL, "users", "add", "bob", "--email", "bob@a.example.org", "--name", "Bob", "--role", "viewer",
            "--as", "admin", "--home", str(home)]  # fmt: skip


def _assert_told(done: subprocess.CompletedProcess, home: Path) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Error: no permission to " in done.stderr and "internal error" not in done.stderr
    assert "Hint: run satchel as the user that owns the home" in done.stderr
    assert "(error code storage.permission_denied)" in done.stderr
    listed = run_cli(home, "users", "list", "--json").stdout  # as the owner again: nothing was changed
    assert [u["username"] for u in json.loads(listed)] == ["admin"]


def test_a_home_on_a_read_only_disk(tmp_path: Path) -> None:
    home = _home(tmp_path)
    # A private mount namespace makes the home read-only for this one command, without root.
    script = 'mount --bind "$HOME_DIR" "$HOME_DIR" && mount -o remount,ro,bind "$HOME_DIR" || exit 97; exec "$@"'
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", *_add_bob(home)],
        env={**os.environ, "HOME_DIR": str(home)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode == 97 or done.stderr.startswith("unshare:"):
        pytest.skip(f"this machine allows no private mount namespace: {done.stderr[:300]}")
    _assert_told(done, home)


@pytest.mark.skipif(os.geteuid() != 0, reason="running a command as another user needs root")
def test_a_command_run_as_another_user_than_the_homes_owner(tmp_path: Path) -> None:
    home = _home(tmp_path)
    os.chmod(tmp_path, 0o755)
    for path in (home, home / "blobs"):
        os.chmod(path, 0o755)
    os.chmod(home / "satchel.db", 0o644)  # readable by all, writable by its owner only: a typical umask
    done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *_add_bob(home)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    _assert_told(done, home)
