"""Renames and new directories that are on disk before anything that names them is committed or answered.

A file's own fsync makes its bytes durable, not its name: after a power cut, a rename or a new directory
whose parent was never synced may be gone while the database commit that points at it (synced: storage
.database) survived, and the row then names a file that is not there. Every place that renames a finished
file into place and then records it, or tells a peer it has it, goes through here.
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_directory(path: Path) -> None:
    """fsync a directory: the names created, renamed or removed in it are on disk when this returns."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directories(path: Path, *, sync: bool = True) -> set[Path]:
    """``mkdir -p``, each directory it creates synced into its parent; returns those parents. ``sync=False``
    leaves the syncing to a caller that makes many (the same parent once, beside its other directories)."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    parents = set()
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        parents.add(directory.parent)
        if sync:
            sync_directory(directory.parent)
    return parents


def replace_durably(source: Path | str, target: Path) -> None:
    """``os.replace``, and the new name on disk before this returns (``source``'s bytes must already be)."""
    os.replace(source, target)
    sync_directory(target.parent)


def create_synced(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Create ``path``, which must not exist yet, holding ``data``: its bytes and its name on disk when this
    returns (a node's private key: a commit naming it, or a peer sealing to it, may follow)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directories_under(root: Path) -> int:
    """fsync ``root`` and every directory below it, once each (after many renames into them); how many."""
    count = 0
    for directory, _, _ in os.walk(root):
        sync_directory(Path(directory))
        count += 1
    return count
