"""`satchel check`: is the home whole? Its database, its audit chain, and the files its database uses.

Damage shows up otherwise only when someone needs the damaged part: a registrar opening a document whose
blob is gone, an import that stops half-way. Checking now, and after every backup, leaves time to restore
the part from a backup that still has it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from dataclasses import dataclass, field

from node import partial_envelopes
from node.home import Node
from node.progress import Progress
from protocol import SatchelError
from storage import audit
from storage.errors import BlobCorrupt, BlobMissing, database_damaged
from storage.home_files import blob_files, used_files


@dataclass(slots=True)
class CheckReport:
    database: list[str] = field(default_factory=list)  # SQLite's integrity_check findings; empty when sound
    audit_entries: int = 0
    audit_problem: str | None = None
    blobs_used: int = 0
    envelopes_waiting: int = 0
    partial_uploads: int = 0  # envelopes whose upload broke off, kept for their senders to send the rest
    partial_bytes: int = 0
    missing: list[str] = field(default_factory=list)
    blobs_hashed: int | None = None  # None: not asked for (--blobs)
    damaged: list[str] = field(default_factory=list)
    exposed: int | None = None  # the home's mode when other users may enter or read it (homes made before were)

    @property
    def whole(self) -> bool:
        return not (self.database or self.audit_problem or self.missing or self.damaged or self.exposed)


def check_home(node: Node, *, hash_blobs: bool, progress: Progress | None = None) -> CheckReport:
    """Read-only: nothing is changed, whatever is found."""
    report = CheckReport()
    mode = stat.S_IMODE(node.config.home.stat().st_mode)
    if mode & 0o077:
        report.exposed = mode
    # Damage bad enough stops SQLite itself mid-read, rather than being listed: that is a finding too, the
    # one this command exists for, and the parts that could still be read are still checked.
    try:
        rows = [row[0] for row in node.db.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        rows = [f"SQLite stopped its integrity check: {_damage_or_raise(node, exc)}"]
    report.database = [] if rows == ["ok"] else rows[:20]
    try:
        report.audit_entries = audit.verify_chain(node.db)
    except SatchelError as exc:
        report.audit_problem = exc.message
    except sqlite3.DatabaseError as exc:
        report.database.append(f"the audit log cannot be read: {_damage_or_raise(node, exc)}")
        report.audit_problem = (
            "hash chain not verified: the audit log cannot be read from the damaged database"
        )
    try:
        used = used_files(node.db.conn, node.config.home)
    except sqlite3.DatabaseError as exc:
        report.database.append(
            f"the documents and envelopes in use cannot be listed: {_damage_or_raise(node, exc)}"
        )
    else:
        report.blobs_used, report.envelopes_waiting = used.blobs, used.envelopes
        report.missing = list(used.missing)
    for entry in partial_envelopes.kept(node):
        with contextlib.suppress(FileNotFoundError):  # resumed or swept meanwhile
            report.partial_bytes += entry.stat().st_size
            report.partial_uploads += 1
    if hash_blobs:
        report.blobs_hashed = 0
        blobs = list(blob_files(node.config.home))
        total, done = sum(size for _, size in blobs), 0
        for path, size in blobs:
            try:
                node.blobs.verify(path.name)
            except BlobCorrupt:
                report.damaged.append(path.name)
            except BlobMissing:
                pass  # removed since it was listed (purged): nothing to read back
            report.blobs_hashed += 1
            done += size
            if progress is not None:
                progress(done, total)
    return report


def _damage_or_raise(node: Node, exc: sqlite3.DatabaseError) -> str:
    """What SQLite said, when it means damage; any other error (a busy or unreadable database) is not a
    finding about the home, and goes on to the caller as it is."""
    if database_damaged(exc, node.config.db_path) is None:
        raise exc
    return str(exc)
