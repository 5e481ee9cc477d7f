"""Node settings that change at run time (transfers on/off, coordinator contact), stored as JSON."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils


def get(db: sqlite_utils.Database, key: str, default: Any = None) -> Any:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return default if row is None else json.loads(row[0])


def put(db: sqlite_utils.Database, key: str, value: Any) -> None:
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, json.dumps(value, sort_keys=True)],
    )


def delete(db: sqlite_utils.Database, key: str) -> None:
    db.execute("DELETE FROM settings WHERE key = ?", [key])
