"""Opening the node database: SQLite in WAL mode, through sqlite-utils, one writer at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from storage.errors import DatabaseBusy, SchemaNewer
from storage.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000


def open_database(path: Path, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # NORMAL is durable in WAL mode across application crashes; only an OS crash may lose the last commit.
    conn.execute("PRAGMA synchronous = NORMAL")
    db = sqlite_utils.Database(conn)
    if migrate:
        _refuse_newer(db)
        MIGRATIONS.apply(db)
    return db


def _refuse_newer(db: sqlite_utils.Database) -> None:
    """A database changed by a newer Satchel (after a downgrade, or a newer node's backup restored under an
    older one) has tables and columns this code does not know; running on it could misread or damage them."""
    known = {migration.name for migration in MIGRATIONS._migrations}  # the registered set; no public accessor
    unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in known]
    if unknown:
        raise SchemaNewer(
            f"this home's database was changed by a newer version of Satchel (migration {unknown[-1]}), which this "
            "version does not know", field="satchel.db",
        )  # fmt: skip


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One state change, one transaction: BEGIN IMMEDIATE takes the write lock up front."""
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseBusy("the database is busy") from exc
        raise
    try:
        yield db
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
