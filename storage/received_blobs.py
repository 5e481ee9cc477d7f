"""The blobs an accepted transfer holds for its documents until they are imported.

Accepting opens a transfer's documents straight into the content-addressed blob store. Until a document is
imported (a ``documents`` row then refers to the blob), the transfer's entry here is what keeps the blob:
a blob may be deleted only when neither a document nor a transfer still waiting to import it uses it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

from protocol.transfer_states import ReceiverState

# The receiver states from which the transfer's records can still be imported.
WAITING_STATES = (
    ReceiverState.ACCEPTED, ReceiverState.IMPORTING, ReceiverState.PARTIALLY_IMPORTED, ReceiverState.IMPORT_FAILED,
)  # fmt: skip


def remember(db: sqlite_utils.Database, transfer_id: str, documents: Iterable[tuple[str, str]]) -> None:
    """The transfer holds these (record id, sha256 hex) blobs."""
    db.conn.executemany(
        "INSERT OR REPLACE INTO received_blobs (transfer_id, record_id, sha256) VALUES (?, ?, ?)",
        [(transfer_id, record_id, sha) for record_id, sha in documents],
    )


def of_transfer(db: sqlite_utils.Database, transfer_id: str) -> list[str]:
    rows = db.execute("SELECT DISTINCT sha256 FROM received_blobs WHERE transfer_id = ?", [transfer_id])
    return [sha for (sha,) in rows.fetchall()]


def forget(db: sqlite_utils.Database, transfer_id: str) -> None:
    db.execute("DELETE FROM received_blobs WHERE transfer_id = ?", [transfer_id])


def forget_records(db: sqlite_utils.Database, transfer_id: str, record_ids: Iterable[str]) -> None:
    """The transfer will not import these records (a purge erased them from it): their bytes may go."""
    db.conn.executemany(
        "DELETE FROM received_blobs WHERE transfer_id = ? AND record_id = ?",
        [(transfer_id, record_id) for record_id in record_ids],
    )


def waiting_for(db: sqlite_utils.Database, sha256: str) -> int:
    """How many records of transfers that can still import them use these bytes and are not imported yet."""
    states = ", ".join("?" * len(WAITING_STATES))
    return db.execute(
        f"""SELECT count(*) FROM received_blobs r JOIN transfers t ON t.transfer_id = r.transfer_id
            WHERE r.sha256 = ? AND t.side = 'receiver' AND t.state IN ({states})
              AND NOT EXISTS (SELECT 1 FROM imported_records i
                              WHERE i.source_domain = t.peer AND i.source_record_id = r.record_id
                                AND i.transfer_id = r.transfer_id)""",
        [sha256, *(s.value for s in WAITING_STATES)],
    ).fetchone()[0]
