"""Storage-level errors (the root lives in protocol.errors)."""

from __future__ import annotations

import errno
import os
import sqlite3

from protocol import SatchelError


class StorageError(SatchelError):
    code = "storage.error"


class DatabaseBusy(StorageError):
    code = "storage.busy"
    default_hint = "another satchel command is writing; try again in a moment"


class SchemaNewer(StorageError):
    """The database was changed by a newer Satchel than the one running: this version may not use it."""

    code = "storage.schema_newer"
    default_hint = (
        "run the newer Satchel again (pip install the version the home was last used with, or a later one); "
        "nothing was changed"
    )


class DatabaseDamaged(StorageError):
    """The database is damaged: SQLite's integrity check found it so, or a read met a page that is not sound."""

    code = "storage.database_damaged"
    default_hint = "stop the node and restore satchel.db from the latest backup that `satchel check` passes"


class BlobMissing(StorageError):
    code = "storage.blob_missing"
    default_hint = "the document's content is gone from the blob store; restore the home from backup"


class BlobCorrupt(StorageError):
    code = "storage.blob_corrupt"
    default_hint = "the stored bytes no longer match their hash; restore the home from backup"


class AuditChainBroken(StorageError):
    """The audit log's hash chain does not hold: entries were edited, removed, inserted or reordered outside
    Satchel, or the log differs from a backup's taken before."""

    code = "audit.chain_broken"
    default_hint = (
        "read the entries named with `satchel audit --seq N` and compare them with a backup's "
        "(`satchel audit --seq N --home BACKUP`); keep this database as evidence"
    )


class StorageFull(StorageError):
    """The disk that holds the node's home has no room for what a command or a peer asked to store."""

    code = "storage.full"
    default_hint = (
        "free space on the disk that holds the node's home (or move the home to a larger one), then try "
        "again; nothing was changed"
    )


# errno values that mean "no room": the disk is full, or the user's quota on it is spent.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})
# What SQLite reports for the same: SQLITE_FULL when a write finds no room, and SQLITE_IOERR_SHMSIZE ("disk
# I/O error") when opening a WAL database cannot even grow its shared-memory file.
_SQLITE_NO_ROOM = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_SHMSIZE})


def storage_full(exc: BaseException) -> StorageFull | None:
    """The :class:`StorageFull` an operating-system or SQLite error stands for, or None for any other error.

    A full disk surfaces as ``OSError(ENOSPC)`` from a file write and as SQLITE_FULL ("database or disk is
    full") from SQLite; both reach the edges of the node as unexpected errors, and both mean the same thing
    to an operator, who can do something about it.
    """
    if isinstance(exc, StorageFull):
        return exc
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
        where = f" writing {exc.filename}" if exc.filename else ""
        return StorageFull(f"the disk is full{where} ({os.strerror(exc.errno)})")
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) in _SQLITE_NO_ROOM:
        return StorageFull(f"the disk holding the database is full (SQLite: {exc})")
    return None


class StorageDenied(StorageError):
    """This process may not read or write the node's home: it runs as another user than the one who owns it,
    or the disk is mounted read-only."""

    code = "storage.permission_denied"
    default_hint = (
        "run satchel as the user that owns the home, the one `satchel serve` runs as (for example "
        "`sudo -u satchel satchel ...`), or give that user the home back with `chown -R`; if that is so "
        "already, check that the disk is not mounted read-only"
    )


_DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def storage_denied(exc: BaseException) -> StorageDenied | None:
    """The :class:`StorageDenied` an operating-system or SQLite error stands for, or None.

    Commands run by hand as root or as the administrator's own account, against a home that belongs to the
    service's user, are the usual cause: ``PermissionError`` from a file, SQLITE_READONLY ("attempt to write
    a readonly database") or SQLITE_CANTOPEN from the database.
    """
    if isinstance(exc, StorageDenied):
        return exc
    if isinstance(exc, OSError) and exc.errno in _DENIED:
        where = f" {exc.filename}" if exc.filename else " a file of the home"
        return StorageDenied(f"no permission to use{where} ({os.strerror(exc.errno)})")
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
    if code is not None and code & 0xFF in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
        return StorageDenied(f"no permission to write the database (SQLite: {exc})")
    return None


# What SQLite says of a file whose bytes are not a sound database: a damaged page ("database disk image is
# malformed"), or a header that is not SQLite's at all ("file is not a database").
_SQLITE_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def database_damaged(exc: BaseException, path: object = None) -> DatabaseDamaged | None:
    """The :class:`DatabaseDamaged` a SQLite error stands for, or None for any other error (a busy database, a
    full disk, a missing permission: each means something else to fix). ``path``: the database, to name."""
    if isinstance(exc, DatabaseDamaged):
        return exc
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.DatabaseError) else None
    if code is None or code & 0xFF not in _SQLITE_DAMAGED:
        return None
    return DatabaseDamaged(f"the database {path or 'satchel.db'} is damaged (SQLite: {exc})")


def as_storage_error(exc: BaseException) -> StorageFull | StorageDenied | DatabaseDamaged | None:
    """What an unexpected error means for the node's storage, when it means something an operator can fix:
    a full disk, a home this process may not use, or a damaged database (a page met in the middle of a
    command, after the home opened)."""
    return storage_full(exc) or storage_denied(exc) or database_damaged(exc)
