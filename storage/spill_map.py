"""Mappings kept in a scratch SQLite file instead of in memory, for joins too big to hold.

Reading a district's roster joins its users, demographics and enrollments by student; in dicts that took
about 1.7 KB per student, so a district of a million students needed 1.7 GB. A :class:`SpillMap` holds the
same entries in a temporary SQLite file whose page cache is bounded, so memory stays flat whatever the size.
Like a dict it keeps insertion order (replacing a value keeps the key's place); ``get_many``, ``update`` and
``setdefault_many`` take a batch of keys in a few statements (one statement per key cost a large roster's
reading a quarter of its time). A :class:`SpillList` holds
values in the order they were added, for work checked in one pass and done in the next. Values are what
``marshal`` writes: tuples, lists, strings, numbers, booleans and None.

The file is scratch: no journal and no fsync, removed when the :class:`SpillFile` closes. A process killed
mid-way leaves it behind under a temp name that names the process, and the temp sweep removes it.
"""

from __future__ import annotations

import marshal
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence, ValuesView
from pathlib import Path
from types import TracebackType
from typing import Any

from storage.temp_files import make_temp

SPILL = "spill"
CACHE_KIB = 16 * 1024
# Keys per look-up in get_many: well under SQLite's limit on bound parameters (32,766 since 3.32).
MANY = 500
_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


class SpillFile:
    """A scratch SQLite file in ``directory``; use it as a context manager, and take mappings from it."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = make_temp(directory, SPILL)
        os.close(fd)
        self.path = Path(name)
        try:
            self._conn = sqlite3.connect(name, isolation_level=None)
            for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{CACHE_KIB}",
                           "temp_store = FILE"):  # fmt: skip
                self._conn.execute(f"PRAGMA {pragma}")
            self._conn.execute("BEGIN")  # one transaction for the file's life: nothing here needs a commit
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        self._names: set[str] = set()

    def mapping(self, name: str) -> SpillMap:
        """A new, empty mapping named ``name`` (lower-case letters, digits and ``_``), unique in this file."""
        self._conn.execute(f"CREATE TABLE {self._new(name)} (k TEXT NOT NULL UNIQUE, v BLOB NOT NULL)")
        return SpillMap(self._conn, name)

    def list(self, name: str) -> SpillList:
        """A new, empty list named as :meth:`mapping`'s mappings are, unique among them."""
        self._conn.execute(f"CREATE TABLE {self._new(name)} (v BLOB NOT NULL)")
        return SpillList(self._conn, name)

    def _new(self, name: str) -> str:
        if not _NAME.fullmatch(name) or name in self._names:
            raise ValueError(f"bad or repeated table name {name!r}")
        self._names.add(name)
        return name

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> SpillFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SpillMap(MutableMapping[str, Any]):
    """A str-keyed mapping in one table of a :class:`SpillFile` (see the module's docstring)."""

    def __init__(self, conn: sqlite3.Connection, table: str) -> None:
        self._conn = conn
        self._get = f"SELECT v FROM {table} WHERE k = ?"
        self._put = f"INSERT INTO {table} (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"
        self._add = f"INSERT INTO {table} (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING"
        self._delete = f"DELETE FROM {table} WHERE k = ?"
        self._keys = f"SELECT k FROM {table} ORDER BY rowid"
        self._values = f"SELECT v FROM {table} ORDER BY rowid"
        self._count = f"SELECT count(*) FROM {table}"
        self._select_many = f"SELECT k, v FROM {table} WHERE k IN ({{}})"

    def __getitem__(self, key: str) -> Any:
        row = self._conn.execute(self._get, (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return marshal.loads(row[0])

    def get(self, key: str, default: Any = None) -> Any:  # one query, not a KeyError raised and caught
        row = self._conn.execute(self._get, (key,)).fetchone()
        return default if row is None else marshal.loads(row[0])

    def __setitem__(self, key: str, value: Any) -> None:
        self._conn.execute(self._put, (key, marshal.dumps(value)))

    def setdefault(self, key: str, default: Any = None) -> Any:  # one statement when the key is new
        if self._conn.execute(self._add, (key, marshal.dumps(default))).rowcount == 1:
            return default
        return self[key]

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The entries of those ``keys`` that are present, in a few queries rather than one per key."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        for start in range(0, len(wanted), MANY):
            part = wanted[start : start + MANY]
            query = self._select_many.format(", ".join("?" * len(part)))
            found.update((k, marshal.loads(v)) for k, v in self._conn.execute(query, part))
        return found

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # one executemany, not a statement per entry
        pairs = other.items() if isinstance(other, Mapping) else other
        self._conn.executemany(self._put, ((k, marshal.dumps(v)) for k, v in pairs))
        if kwargs:
            self.update(kwargs)

    def setdefault_many(self, pairs: Sequence[tuple[str, Any]]) -> list[Any]:
        """``[self.setdefault(k, v) for k, v in pairs]``, in one executemany and a few queries: a key given
        twice keeps its first value, as it would one call at a time."""
        self._conn.executemany(self._add, ((k, marshal.dumps(v)) for k, v in pairs))
        stored = self.get_many(k for k, _ in pairs)
        return [stored[k] for k, _ in pairs]

    def __delitem__(self, key: str) -> None:
        if self._conn.execute(self._delete, (key,)).rowcount == 0:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self._conn.execute(self._get, (key,)).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        return (row[0] for row in self._conn.execute(self._keys))

    def __len__(self) -> int:
        return int(self._conn.execute(self._count).fetchone()[0])

    def values(self) -> ValuesView[Any]:
        return _Values(self)


class _Values(ValuesView[Any]):
    """The values in insertion order, read in one query rather than one look-up per key."""

    _mapping: SpillMap

    def __iter__(self) -> Iterator[Any]:
        return (marshal.loads(row[0]) for row in self._mapping._conn.execute(self._mapping._values))


class SpillList:
    """Values appended to one table of a :class:`SpillFile`, read back in the order they were added."""

    def __init__(self, conn: sqlite3.Connection, table: str) -> None:
        self._conn = conn
        self._add = f"INSERT INTO {table} (v) VALUES (?)"
        self._values = f"SELECT v FROM {table} ORDER BY rowid"
        self._count = f"SELECT count(*) FROM {table}"

    def extend(self, values: Iterable[Any]) -> None:
        self._conn.executemany(self._add, ((marshal.dumps(value),) for value in values))

    def __iter__(self) -> Iterator[Any]:
        return (marshal.loads(row[0]) for row in self._conn.execute(self._values))

    def __len__(self) -> int:
        return int(self._conn.execute(self._count).fetchone()[0])
