"""What was purged here: ids, who and when, never content (node.purged_content says what each is for).

A received record is keyed by its sender's domain and record id (spec/transfer.md §6 identifies a record so
across transfers); a result of the district's own by ``OWN`` and its result id, which the district's
assessments CSV gives it again each night.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

OWN = ""  # the source_domain of the district's own records
_IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Purged:
    record_id: str
    kind: str | None  # document, case or assessment (None: purged before version 0030 said)
    student_sis_id: str | None  # the student it was purged from (None: purged before version 0030 said)
    purged_at: str
    purged_by: str


def remember(
    db: sqlite_utils.Database,
    source: str,
    record_id: str,
    *,
    kind: str,
    student_sis_id: str,
    at: str,
    by: str,
) -> None:
    """Inside the purge's transaction. A record purged again (a redo brought it back) keeps the latest."""
    db.execute(
        "INSERT OR REPLACE INTO purged_records (source_domain, record_id, kind, student_sis_id, purged_at, purged_by)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [source, record_id, kind, student_sis_id, at, by],
    )


def among(db: sqlite_utils.Database, source: str, record_ids: Iterable[str]) -> dict[str, Purged]:
    """Those of ``record_ids`` from ``source`` that were purged here."""
    ids = list(dict.fromkeys(record_ids))
    found: dict[str, Purged] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        rows = db.execute(
            "SELECT record_id, kind, student_sis_id, purged_at, purged_by FROM purged_records"
            f" WHERE source_domain = ? AND record_id IN ({','.join('?' * len(chunk))})",
            [source, *chunk],
        )
        found.update({row[0]: Purged(*row) for row in rows.fetchall()})
    return found


def forget(db: sqlite_utils.Database, source: str, record_id: str) -> bool:
    """Lift a purge (the record may come again); False when it was not purged."""
    cursor = db.execute(
        "DELETE FROM purged_records WHERE source_domain = ? AND record_id = ?", [source, record_id]
    )
    return cursor.rowcount > 0


def remember_unopened(db: sqlite_utils.Database, transfer_ids: Iterable[str], record_id: str) -> None:
    """These envelopes were held unopened when ``record_id`` was purged: accepting one erases it from it."""
    db.conn.executemany(
        "INSERT OR IGNORE INTO purged_unopened (transfer_id, record_id) VALUES (?, ?)",
        [(transfer_id, record_id) for transfer_id in transfer_ids],
    )


def unopened(db: sqlite_utils.Database, transfer_id: str) -> list[str]:
    """The record ids purged while the transfer's envelope was held unopened; forgets them (the caller erases)."""
    rows = db.execute("SELECT record_id FROM purged_unopened WHERE transfer_id = ?", [transfer_id]).fetchall()
    db.execute("DELETE FROM purged_unopened WHERE transfer_id = ?", [transfer_id])
    return sorted(record_id for (record_id,) in rows)
