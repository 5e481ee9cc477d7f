"""Writing one row from keyword values: the column list, placeholders and values built in one place.

Table and column names come from this package's own code, never from input, so building the SQL text from
them is safe; every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlite_utils


def insert_row(db: sqlite_utils.Database, table: str, values: Mapping[str, Any]) -> None:
    db.execute(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        list(values.values()),
    )


def update_rows(
    db: sqlite_utils.Database, table: str, changes: Mapping[str, Any], where: Mapping[str, Any]
) -> None:
    """UPDATE ``table`` SET ``changes`` WHERE every ``where`` column equals its value."""
    sets = ", ".join(f"{column} = ?" for column in changes)
    condition = " AND ".join(f"{column} = ?" for column in where)
    db.execute(f"UPDATE {table} SET {sets} WHERE {condition}", [*changes.values(), *where.values()])
