"""The messages between two districts' coordinators about a records request, as signed documents."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlite_utils


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message_key: str
    direction: str  # "in" from the other district, "out" from this one
    signed: bytes
    at: str


def key_of(signed: bytes) -> str:
    """A message's key: the SHA-256 of its signed document, so the same message arriving twice is one."""
    return hashlib.sha256(signed).hexdigest()


def add(db: sqlite_utils.Database, *, request_id: str, direction: str, signed: bytes, at: str) -> bool:
    """Keep the message; False when it was kept already."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO request_messages (message_key, request_id, direction, signed, at) "
        "VALUES (?, ?, ?, ?, ?)",
        [key_of(signed), request_id, direction, signed, at],
    )
    return cursor.rowcount == 1


def replace_signed(db: sqlite_utils.Database, request_id: str, *, old: bytes, new: bytes) -> None:
    """Keep ``new``, this node's message signed again (node.own_signatures), in place of ``old``. Its key stays
    the one it was kept under: the key names the message (and its outbox job), not one signature of it."""
    db.execute(
        "UPDATE request_messages SET signed = ? WHERE request_id = ? AND direction = 'out' AND signed = ?",
        [new, request_id, old],
    )


def of_request_at(db: sqlite_utils.Database, request_id: str, direction: str, at: str) -> list[StoredMessage]:
    """The messages of one request's thread, in one direction, made at ``at``: the only ones that can carry the
    same words as a message made then."""
    rows = db.execute(
        "SELECT message_key, direction, signed, at FROM request_messages WHERE request_id = ? AND direction = ?"
        " AND at = ?",
        [request_id, direction, at],
    ).fetchall()
    return [StoredMessage(key, way, bytes(signed), when) for key, way, signed, when in rows]


def count(db: sqlite_utils.Database, request_id: str) -> int:
    """How many messages one request's thread holds, both directions."""
    return int(db.execute("SELECT count(*) FROM request_messages WHERE request_id = ?", [request_id]).fetchone()[0])


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """How many messages each request's thread holds (requests without one are absent)."""
    rows = db.execute("SELECT request_id, count(*) FROM request_messages GROUP BY request_id").fetchall()
    return {request_id: count for request_id, count in rows}


def of_request(db: sqlite_utils.Database, request_id: str) -> list[StoredMessage]:
    rows = db.execute(
        "SELECT message_key, direction, signed, at FROM request_messages WHERE request_id = ? ORDER BY at, rowid",
        [request_id],
    ).fetchall()
    return [StoredMessage(key, direction, bytes(signed), at) for key, direction, signed, at in rows]
