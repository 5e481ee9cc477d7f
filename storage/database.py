"""Opening the node database: SQLite in WAL mode, through sqlite-utils, one writer at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from storage.errors import DatabaseBusy, SchemaNewer, database_damaged
from storage.migrations import FORMER_NAMES, MIGRATIONS

BUSY_TIMEOUT_MS = 10_000
# FULL: in WAL mode, every commit syncs the log before it returns, so nothing this node has acknowledged (a
# signed receipt to a peer, "accepted" to a registrar) can be undone by a power cut or an OS crash. NORMAL,
# SQLite's usual choice for WAL, may roll the last commits back then: a sender would hold a receipt for an
# envelope the receiver no longer knows of. About 0.2 ms per commit on this project's test VM.
DURABLE = "PRAGMA synchronous = FULL"
RELAXED = "PRAGMA synchronous = NORMAL"


def open_database(path: Path, *, migrate: bool = True, create: bool = True) -> sqlite_utils.Database:
    """Open the database at ``path`` (creating it if ``create``) and apply pending migrations."""
    # Read-write without create: a home whose database is gone must not quietly get an empty one.
    target, uri = (str(path), False) if create else (path.absolute().as_uri() + "?mode=rw", True)
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, uri=uri)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # What is deleted or overwritten (a purged case, a finished code's key) is zeroed in the file, not
        # left in free space for whoever later copies the database.
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute(DURABLE)
        db = sqlite_utils.Database(conn)
        if migrate:
            _migrate(db)
    except BaseException as exc:
        conn.close()
        damaged = database_damaged(exc, path)
        if damaged is None:
            raise
        raise damaged from exc
    return db


def _migrate(db: sqlite_utils.Database) -> None:
    """Bring the schema up to date. Checked first without the write lock, so that opening an up-to-date home
    never waits for a writer; the work itself is done holding it, the pending migrations read again under it:
    after an upgrade the server and a command (a nightly backup, a coordinator) may open the home at once,
    and the one that read the list before the other had applied it ran those migrations a second time
    (duplicate column name, no such column: an internal error). All of them in one transaction, so an
    upgrade that fails (a full disk) leaves the home as the older version left it."""
    _refuse_newer(db)
    if not _former_names_applied(db) and not MIGRATIONS.pending(db):
        return
    try:
        with write_transaction(db):
            _rename_former(db)
            _refuse_newer(db)
            MIGRATIONS.apply(db)  # each migration in a savepoint of this transaction
    except DatabaseBusy as exc:
        raise DatabaseBusy(
            "the database is busy: another satchel process is upgrading it or writing to it",
            hint="try again in a moment; an upgrade of a large home can take a minute",
        ) from exc


def _applied_names(db: sqlite_utils.Database) -> list[str]:
    return [m.name for m in MIGRATIONS.applied(db)]


def _former_names_applied(db: sqlite_utils.Database) -> bool:
    return any(name in FORMER_NAMES for name in _applied_names(db))


def _rename_former(db: sqlite_utils.Database) -> None:
    """Record under its name of now a migration a released version applied under a name since changed."""
    applied = set(_applied_names(db))
    for former, name in FORMER_NAMES.items():
        if former not in applied:
            continue
        if name in applied:  # both recorded (cannot happen through Satchel itself): one record is enough
            db.execute("DELETE FROM _sqlite_migrations WHERE migration_set = ? AND name = ?", [MIGRATIONS.name, former])
        else:
            db.execute(
                "UPDATE _sqlite_migrations SET name = ? WHERE migration_set = ? AND name = ?",
                [name, MIGRATIONS.name, former],
            )


def _refuse_newer(db: sqlite_utils.Database) -> None:
    """A database changed by a newer Satchel (after a downgrade, or a newer node's backup restored under an
    older one) has tables and columns this code does not know; running on it could misread or damage them."""
    known = {migration.name for migration in MIGRATIONS._migrations}  # the registered set; no public accessor
    known |= {former for former, name in FORMER_NAMES.items() if name in known}
    unknown = [name for name in _applied_names(db) if name not in known]
    if unknown:
        raise SchemaNewer(
            f"this home's database was changed by a newer version of Satchel (migration {unknown[-1]}), which this "
            "version does not know", field="satchel.db",
        )  # fmt: skip


# Page cache for bulk saving (KiB): a district's students and their match keys are B-trees written in no
# particular order, and with SQLite's default 2 MiB most inserts went to a page it had just let go. A
# 1,000,000-student first import: 181 s and 91 MiB at most with the default, 165 s and 125 MiB with this, 162 s
# and 160 MiB with twice this. A fixed amount, however big the file.
BULK_CACHE_KIB = 32 * 1024


@contextmanager
def bulk_cache(db: sqlite_utils.Database) -> Iterator[None]:
    """Within: a page cache of ``BULK_CACHE_KIB`` for this connection (the one it had, after)."""
    before = db.conn.execute("PRAGMA cache_size").fetchone()[0]
    db.conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        db.conn.execute(f"PRAGMA cache_size = {int(before)}")


def checkpoint_truncate(db: sqlite_utils.Database) -> bool:
    """Write the whole log into the database and empty it, waiting up to the busy timeout for readers: what a
    commit replaced (a purged record's pages) then survives in neither file. False when a reader still held
    the log (the next checkpoint, or closing the last connection, does it)."""
    if db.conn.in_transaction:
        raise RuntimeError("checkpoint_truncate runs after the transaction it is for")
    busy, _, _ = db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0


@contextmanager
def write_transaction(db: sqlite_utils.Database, *, durable: bool = True) -> Iterator[sqlite_utils.Database]:
    """One state change, one transaction: BEGIN IMMEDIATE takes the write lock up front.

    ``durable=False`` skips the sync of this commit, for bookkeeping whose loss in a power cut harms nothing (a
    replayed request's nonce: its message ids make it harmless anyway); it reaches the disk with the next
    durable commit, the log being written in order. Nested in another transaction, the outer one decides."""
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    if not durable:
        conn.execute(RELAXED)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise DatabaseBusy("the database is busy") from exc
            raise
        try:
            yield db
        except BaseException:
            if conn.in_transaction:  # SQLite rolls back by itself on some errors (a full disk): nothing to undo
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
    finally:
        if not durable:
            conn.execute(DURABLE)
