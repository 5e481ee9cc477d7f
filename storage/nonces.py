"""The replay store: (key id, nonce) pairs of accepted signed requests, kept until they expire."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from protocol.http_signatures import SignatureReplayed


def remember(db: sqlite_utils.Database, key_id: str, nonce: str, *, keep_until: int, now: int) -> None:
    """Record a nonce once; a second use inside its window raises SignatureReplayed."""
    db.execute("DELETE FROM seen_nonces WHERE keep_until < ?", [now])
    try:
        db.execute(
            "INSERT INTO seen_nonces (key_id, nonce, keep_until) VALUES (?, ?, ?)",
            [key_id, nonce, keep_until],
        )
    except sqlite3.IntegrityError as exc:
        raise SignatureReplayed(
            "this request was already received (its nonce was seen before)", field="Signature-Input"
        ) from exc
