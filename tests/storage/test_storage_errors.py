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
