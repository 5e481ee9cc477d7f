"""The files a home's database uses, and which of them are not there.

A document's bytes live in the blob store under their SHA-256 (``blobs/sha256/ab/abcd...``); a transfer
waiting for delivery or for its code keeps its sealed envelope under ``envelopes/in`` or ``envelopes/out``.
The database names them; this module says which are missing from a home (the live one, or a backup of it).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class UsedFiles:
    blobs: int  # distinct blobs in use
    envelopes: int  # sealed envelopes still needed
    missing: tuple[str, ...]  # "blob <sha256>" or "envelope of transfer <id>", sorted


def blob_path(home: Path, sha256: str) -> Path:
    return home / "blobs" / "sha256" / sha256[:2] / sha256


def envelope_under(home: Path, recorded: str) -> Path:
    """Where an envelope recorded at ``recorded`` (the path it was written to, under whatever directory the
    home was in then) is under ``home`` now: homes move (a larger disk, a restored backup) but keep their
    layout, so only the last two parts (``in`` or ``out``, and the name) are taken from the record."""
    path = Path(recorded)
    return home / "envelopes" / path.parent.name / path.name


def blob_files(home: Path) -> Iterator[tuple[Path, int]]:
    """(path, size) of every blob under ``home``, in name order; temp files and strays are not blobs."""
    root = home / "blobs" / "sha256"
    for fan in sorted(root.iterdir()) if root.is_dir() else ():
        for entry in sorted(os.scandir(fan), key=lambda e: e.name) if fan.is_dir() else ():
            if len(entry.name) == 64 and _HEX.issuperset(entry.name) and entry.is_file():
                yield Path(entry.path), entry.stat().st_size


def used_paths(conn: sqlite3.Connection, home: Path) -> set[str]:
    """The files under ``home`` that the database reads through ``conn`` uses, relative, "/"-separated: what
    no clean-up of that home (or of a backup of it) may remove, whether or not it is there now."""
    blobs = {row[0] for row in conn.execute(
        "SELECT sha256 FROM documents WHERE status != 'purged' UNION SELECT sha256 FROM received_blobs"
    ) if row[0]}  # fmt: skip
    envelopes = conn.execute(
        "SELECT envelope_path FROM transfers WHERE envelope_path IS NOT NULL AND state IN ('sealed', 'received')"
    ).fetchall()
    return {blob_path(home, sha).relative_to(home).as_posix() for sha in blobs} | {
        envelope_under(home, path).relative_to(home).as_posix() for (path,) in envelopes
    }


def used_files(conn: sqlite3.Connection, home: Path) -> UsedFiles:
    """Check that every blob a document (not purged) or an opened transfer uses, and every envelope of a
    transfer still sealed or received, is a file under ``home``. Reads the database through ``conn``."""
    used = {row[0] for row in conn.execute(
        "SELECT sha256 FROM documents WHERE status != 'purged' UNION SELECT sha256 FROM received_blobs"
    ) if row[0]}  # fmt: skip
    waiting = conn.execute(
        "SELECT transfer_id, envelope_path FROM transfers WHERE envelope_path IS NOT NULL"
        " AND state IN ('sealed', 'received')"
    ).fetchall()
    missing = [f"blob {sha}" for sha in used if not blob_path(home, sha).is_file()]
    missing += [f"envelope of transfer {tid}" for tid, path in waiting if not envelope_under(home, path).is_file()]
    return UsedFiles(len(used), len(waiting), tuple(sorted(missing)))
