"""Room on the disk before a large write: refuse up front rather than fill the disk part-way.

A grade's envelope or documents can be gigabytes, and the disk that holds a node's home usually holds the
operating system and the database too. Writing until the disk is full would fail late, leave every other
program on the machine without room, and might leave SQLite unable to commit; so each large write first
checks that it fits with ``storage.reserve_mib`` still free afterwards.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from storage.errors import StorageFull


def size_text(count: int) -> str:
    """1536 -> '1.5 KiB': sizes as an operator reads them (in messages and progress lines alike)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} B"


@dataclass(frozen=True, slots=True)
class NoRoom:
    """Why some bytes do not fit: the bytes asked for, the bytes free and the reserve to keep."""

    needed: int
    free: int
    reserve: int

    @property
    def missing(self) -> int:
        """How much more must be freed for the bytes to fit."""
        return self.needed + self.reserve - self.free


def check_room(where: Path, needed: int, *, reserve: int) -> NoRoom | None:
    """None when ``needed`` bytes fit on the disk of ``where`` (a directory, or where it would be made) with
    ``reserve`` bytes still free afterwards; otherwise what is short."""
    existing = next(p for p in (where, *where.parents) if p.exists())  # the disk it will be made on
    free = shutil.disk_usage(existing).free
    return None if free - needed >= reserve else NoRoom(needed, free, reserve)


def require_room(
    where: Path, needed: int, *, reserve: int, what: str, instead: str = "or move the node's home to a larger one"
) -> None:
    """Raise :class:`StorageFull`, worded for the node's own operator, unless ``needed`` bytes fit (see
    :func:`check_room`); ``what`` names the bytes ("accepting the transfer")."""
    short = check_room(where, needed, reserve=reserve)
    if short is None:
        return
    message = f"{what} needs {size_text(needed)} on the disk that holds {where}, which has {size_text(short.free)} free"
    if reserve:
        message += f" and keeps {size_text(reserve)} in reserve (storage.reserve_mib)"
    raise StorageFull(
        message,
        hint=f"free at least {size_text(short.missing)} on that disk ({instead}), then run the command again; "
        "nothing was changed",
    )
