"""Unexpected OS and SQLite errors that mean "this process may not use the home", named as such."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from storage.errors import StorageDenied, StorageFull, as_storage_error, storage_denied


def test_a_read_only_database_is_permission_denied(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "home.db").execute("CREATE TABLE t (x)").connection.close()
    read_only = sqlite3.connect(f"file:{tmp_path / 'home.db'}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        read_only.execute("INSERT INTO t VALUES (1)")
    found = storage_denied(caught.value)
    assert isinstance(found, StorageDenied) and found.code == "storage.permission_denied"
    assert "sudo -u satchel" in (found.hint or "") and "read-only" in (found.hint or "")
    read_only.close()


@pytest.mark.parametrize("number", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_file_permission_errors_name_the_file(number: int) -> None:
    found = storage_denied(PermissionError(number, "denied", "/srv/satchel/keys/identity.key"))
    assert isinstance(found, StorageDenied)
    assert found.message.startswith("no permission to use /srv/satchel/keys/identity.key")


def test_only_what_an_operator_can_fix_is_translated() -> None:
    assert storage_denied(FileNotFoundError(errno.ENOENT, "gone", "/x")) is None
    assert storage_denied(sqlite3.OperationalError("no such table: t")) is None
    assert isinstance(as_storage_error(OSError(errno.ENOSPC, "full")), StorageFull)
    assert isinstance(as_storage_error(OSError(errno.EACCES, "denied")), StorageDenied)
    assert as_storage_error(RuntimeError("a bug")) is None


def test_a_damaged_page_met_mid_command_is_named_damage(tmp_path: Path) -> None:
    # A command that opened the home and then reads a page that is not sound: not an internal error.
    path = tmp_path / "home.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    conn.commit()
    conn.close()
    with path.open("r+b") as handle:  # the table's pages, past the schema on page 1
        handle.seek(4096)
        handle.write(b"\xff" * 8192)
    damaged = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        damaged.execute("SELECT count(*), max(x) FROM t").fetchall()
    found = as_storage_error(caught.value)
    assert found is not None and found.code == "storage.database_damaged", caught.value
    assert "restore satchel.db from the latest backup" in (found.hint or "")
    damaged.close()
    busy = sqlite3.OperationalError("database is locked")
    assert as_storage_error(busy) is None  # not damage: something else to do
