from pathlib import Path

import pytest

from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS


def test_wal_and_named_migrations(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [m.name for m in MIGRATIONS.applied(db)] == [m.name for m in MIGRATIONS._migrations]
    assert MIGRATIONS.pending(db) == []
    db.close()
    # Re-opening applies nothing twice.
    db = open_database(tmp_path / "x.db")
    assert len(MIGRATIONS.applied(db)) == len(MIGRATIONS._migrations)


def test_write_transaction_rolls_back(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    with pytest.raises(RuntimeError), write_transaction(db):
        db.execute("INSERT INTO settings (key, value) VALUES ('k', '1')")
        raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM settings WHERE key = 'k'").fetchone()[0] == 0
