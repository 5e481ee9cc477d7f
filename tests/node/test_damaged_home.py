"""A damaged home (a database with garbage in it, a deleted database, a broken layout) is named with a coded
error that says what to do: never an internal error, and opening it creates nothing."""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result

from node.home import init_home

from support import node_fields, run_cli

PAGE = 4096


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pristine") / "home"
    init_home(home, node=node_fields("a.example.org"))
    return home


@pytest.fixture
def home(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(pristine, copy)
    return copy


def _coded(result: Result, code: str, exit_code: int = 2) -> str:
    assert "unexpected internal error" not in result.stderr, result.stderr
    assert f"(error code {code})" in result.stderr, result.stderr
    assert result.exit_code == exit_code, result.stderr
    return result.stderr


def _junk_over_page(db: Path, page: int) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE
        assert conn.execute("PRAGMA page_count").fetchone()[0] > page
    conn.close()
    with db.open("r+b") as handle:
        handle.seek((page - 1) * PAGE)
        handle.write(random.Random(page).randbytes(PAGE))


def _root_page(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        page: int = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
    conn.close()
    return page


def test_check_names_garbage_in_the_database_with_exit_1(home: Path) -> None:
    # A table no command reads on opening: the node opens, and only the integrity check meets the damage.
    _junk_over_page(home / "satchel.db", _root_page(home / "satchel.db", "audit_log"))
    found = run_cli(home, "check", ok=False)
    err = _coded(found, "storage.database_damaged", exit_code=1)
    assert "integrity check failed" in found.stdout and "hash chain verified" not in found.stdout
    assert "Database: SQLite stopped its integrity check: database disk image is malformed" in err
    assert "restore what is named from the latest backup" in err


def test_garbage_where_the_node_reads_on_opening_is_named(home: Path) -> None:
    _junk_over_page(home / "satchel.db", _root_page(home / "satchel.db", "node_keys"))
    err = _coded(run_cli(home, "check", ok=False), "storage.database_damaged", exit_code=1)  # a finding
    assert f"Error: the database {home / 'satchel.db'} is damaged" in err
    assert "restore satchel.db from the latest backup" in err


def test_a_file_that_is_not_a_database_is_named(home: Path) -> None:
    (home / "satchel.db").write_bytes(random.Random(0).randbytes(100_000))
    for command, exit_code in ((("users", "list"), 2), (("check",), 1)):
        err = _coded(run_cli(home, *command, ok=False), "storage.database_damaged", exit_code)
        assert f"the database {home / 'satchel.db'} is damaged (SQLite: file is not a database)" in err
        assert "Hint: stop the node and restore satchel.db from the latest backup" in err


def test_a_deleted_database_is_not_made_anew(home: Path) -> None:
    (home / "satchel.db").unlink()
    err = _coded(run_cli(home, "users", "list", ok=False), "home.missing")
    assert f"{home / 'satchel.db'} is missing" in err and "no valid identity" not in err
    assert "backup" in err and "--home" in err
    assert sorted(p.name for p in home.iterdir()) == ["blobs", "keys", "satchel.toml"]


def test_a_directory_where_the_database_should_be_is_named(home: Path) -> None:
    (home / "satchel.db").unlink()
    (home / "satchel.db").mkdir()
    err = _coded(run_cli(home, "users", "list", ok=False), "home.missing")
    assert f"{home / 'satchel.db'} is not a file" in err


def test_keys_as_a_file_is_named(home: Path) -> None:
    shutil.rmtree(home / "keys")
    (home / "keys").write_text("not a directory\n")
    err = _coded(run_cli(home, "users", "list", ok=False), "home.missing")
    assert f"{home / 'keys'} is not a directory" in err and "restore keys/" in err


def test_binary_junk_in_a_key_file_is_named(home: Path) -> None:
    (home / "keys" / "encryption.key").write_bytes(b"\xff\xfe" + random.Random(1).randbytes(300))
    err = _coded(run_cli(home, "users", "list", ok=False), "home.missing")
    assert f"key file {home / 'keys' / 'encryption.key'} is damaged" in err and "restore keys/" in err


def test_a_directory_for_a_key_file_is_named(home: Path) -> None:
    (home / "keys" / "identity.key").unlink()
    (home / "keys" / "identity.key").mkdir()
    err = _coded(run_cli(home, "users", "list", ok=False), "home.missing")
    assert f"key file {home / 'keys' / 'identity.key'} is not a file" in err


def test_binary_junk_in_the_config_is_named(home: Path) -> None:
    (home / "satchel.toml").write_bytes(b"\xff\xfe" + random.Random(2).randbytes(300))
    err = _coded(run_cli(home, "users", "list", ok=False), "config.invalid")
    assert f"{home / 'satchel.toml'} is not UTF-8 text" in err and "backup" in err


def test_a_directory_for_the_config_is_named(home: Path) -> None:
    (home / "satchel.toml").unlink()
    (home / "satchel.toml").mkdir()
    err = _coded(run_cli(home, "users", "list", ok=False), "config.invalid")
    assert f"{home / 'satchel.toml'} is a directory, not a file" in err and "backup" in err


def test_inits_of_one_home_at_once_make_one_home_and_remove_none(tmp_path: Path) -> None:
    # A loser's cleanup of "its" partial home once removed the winner's files: in about one round in six, no
    # home was left at all, while one init had said it made it.
    import subprocess
    import sys

    satchel = str(Path(sys.executable).with_name("satchel"))
    for round_ in range(5):
        home = tmp_path / f"race-{round_}"
        runs = [subprocess.Popen([satchel, "init", "--home", str(home), "--domain", f"r{i}.example", "--name", "R",
                                  "--state", "IL", "--city", "C", "--zip", "62701", "--url", f"https://r{i}.example"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(8)]  # fmt: skip
        results = [(run.wait(timeout=60), *run.communicate()) for run in runs]
        winners = [out for code, out, _ in results if code == 0]
        assert len(winners) == 1, results
        for code, _, err in results:
            assert code == 0 or "(error code home.exists)" in err, err
        domain = winners[0].split("Created the Satchel home for ")[1].split()[0].strip(".")
        assert f'domain = "{domain}"' in (home / "satchel.toml").read_text()
        assert run_cli(home, "info").exit_code == 0
