"""Writing rows: one from keyword values (the column list, placeholders and values built in one place), or
many in batches.

Table and column names come from this package's own code, never from input, so building the SQL text from
them is safe; every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, TypeVar

import sqlite_utils

T = TypeVar("T")


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


def like_escaped(text: str) -> str:
    """``text`` for a ``LIKE ? ESCAPE '\\'`` pattern, matched as written: a ``%`` or ``_`` a person types
    into a search is a character to find, not a wildcard that matches every student."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter): itertools.batched, which Python 3.11 lacks."""
    iterator = iter(items)
    while True:
        batch = list(islice(iterator, size))
        if not batch:
            return
        yield batch
        del batch  # before the next is read: a caller that lets go of a batch holds one at a time, not two
