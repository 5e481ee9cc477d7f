"""`satchel backup`: a consistent copy of a home, taken while the node runs, that is itself a home.

Copying the home directory with ``cp`` while the server writes can catch the SQLite database half-way
through a transaction (its WAL file a moment later than the main file), and nothing says whether the copy
is whole. A backup here takes the database through SQLite's online backup API (one consistent snapshot,
writers carry on meanwhile) and checks the copy's integrity; then the keys and configuration; then mirrors
the blob store and the sealed envelopes, file by file. Blobs are content-addressed and never change, so a
backup into the same directory again copies only what is new, checks each copied blob against its
SHA-256 name, and removes what is gone from the home (a purged document stays purged in the latest backup).

Restoring is moving the directory into place: it is a home, found by paths relative to itself (see
node.transfer_files).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from node.clock import now_iso
from node.config import CONFIG_FILE
from node.home import Node, expand_user
from node.operators import authorize, record
from node.progress import Progress
from protocol import InvalidInput
from storage.database import write_transaction
from storage.durable_files import replace_durably, sync_directories_under
from storage.errors import StorageError
from storage.free_space import require_room
from storage.home_files import blob_files, used_files, used_paths

MARKER = "BACKUP.json"  # what says a directory holds a backup, and of which node
CHUNK = 1 << 20


class BackupDestinationFailed(StorageError):
    """The backup's own directory cannot be made or written."""

    code = "backup.destination_failed"
    default_hint = (
        "check the backup's disk: mounted, writable by this user, with room; then run the backup again "
        "(it goes on where it stopped)"
    )


class BackupIncomplete(StorageError):
    """The database's copy failed its integrity check: the backup cannot be trusted."""

    code = "backup.incomplete"
    default_hint = "run `satchel backup` again; if it fails again, check the disk the home is on"


@dataclass(slots=True)
class BackupResult:
    destination: Path
    taken_at: str
    database_bytes: int = 0
    blobs: int = 0  # blobs in the backup when it finished
    blobs_copied: int = 0
    bytes_copied: int = 0
    removed: int = 0  # blobs and envelopes gone from the home since the last backup here
    envelopes: int = 0
    # Blobs found damaged (their bytes no longer match their name; not copied), and blobs or envelopes the
    # snapshot uses that the backup lacks (see _missing): each needs an older backup.
    damaged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    # Files the database uses that the home has lost and this backup still holds (from an earlier run): the
    # backup is whole, the home is not; copy them back (README, backups).
    lost_from_home: list[str] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        return not self.damaged and not self.missing


@dataclass(frozen=True, slots=True)
class _File:
    relative: str  # path under the home, with "/" separators
    size: int


def backup(node: Node, *, actor: str | None, destination: Path, progress: Progress | None = None) -> BackupResult:
    """Back the home up into ``destination`` (new, empty, or an earlier backup of this node)."""
    user = authorize(node, actor, "keys.manage")  # the backup holds the node's private keys
    dest = expand_user(destination, option="DEST").resolve()
    try:
        return _backup(node, user.username, dest, destination, progress)
    except OSError as exc:
        # The backup's disk, not the home's: unmounted, read-only, not this user's, or full.
        if exc.filename is None or not Path(str(exc.filename)).resolve().is_relative_to(dest):
            raise
        raise BackupDestinationFailed(f"cannot write the backup at {destination}: {exc.strerror or exc} "
                                      f"({exc.filename})", field="DEST") from exc  # fmt: skip


def _backup(node: Node, actor: str, dest: Path, destination: Path, progress: Progress | None) -> BackupResult:
    home = node.config.home.resolve()
    _check_destination(node, home, dest, destination)
    result = BackupResult(dest, now_iso())
    _write_marker(node, dest, result, complete=False)  # claims the directory, so a rerun after a crash may go on
    for partial in dest.rglob(".*.partial"):  # left by a backup that died mid-copy
        partial.unlink()
    database_size = sum(p.stat().st_size for p in home.glob("satchel.db*") if p.is_file())
    new_files = sum(f.size for f in [*_blobs(home), *_envelopes(home)] if not _same(dest / f.relative, f.size))
    require_room(dest, database_size + new_files, reserve=0, what=f"backing up {home}",
                 instead="or back up to a larger disk")  # fmt: skip

    result.database_bytes = _snapshot_database(node, dest)
    for folder in ("blobs", "envelopes/in", "envelopes/out"):  # the layout of a home, even where empty
        (dest / folder).mkdir(parents=True, exist_ok=True)
    # Listed after the snapshot: every blob and envelope the snapshot uses is there by then (they are
    # written before the transaction that records them commits).
    files = [*_blobs(home), *_envelopes(home)]
    copying = [f for f in files if not _same(dest / f.relative, f.size)]
    _copy_small(home / CONFIG_FILE, dest / CONFIG_FILE)
    (dest / "keys").mkdir(mode=0o700, exist_ok=True)
    for key_file in sorted((home / "keys").iterdir()):
        if key_file.is_file():
            _copy_small(key_file, dest / "keys" / key_file.name)

    total, done = sum(f.size for f in copying), 0
    for item in copying:
        target = dest / item.relative
        is_blob = item.relative.startswith("blobs/")
        outcome = _copy_checked(home / item.relative, target, expect_sha256=target.name if is_blob else None)
        if outcome == "copied":
            result.blobs_copied += is_blob
            result.bytes_copied += item.size
        elif outcome == "damaged":
            result.damaged.append(target.name)
        done += item.size
        if progress is not None:
            progress(done, total)
    listed = {f.relative for f in files}
    # What the snapshot still uses stays, even where the home no longer has it: a blob lost from the home
    # (a disk error, an rm) is then restored from here, not removed by the very backup that held it.
    used = _used_by_snapshot(dest)
    result.removed, result.blobs, result.envelopes = _prune(dest, listed | used)
    result.lost_from_home = sorted(used - listed)
    result.missing = _missing(dest)
    # Every rename into the backup on disk before it says it is complete: a power cut must not leave a
    # backup marked whole that lacks files.
    sync_directories_under(dest)
    _write_marker(node, dest, result, complete=True)
    with write_transaction(node.db):
        record(node, actor, "home.backup", str(dest), {
            "database_bytes": result.database_bytes, "blobs": result.blobs, "blobs_copied": result.blobs_copied,
            "bytes_copied": result.bytes_copied, "envelopes": result.envelopes, "damaged": result.damaged[:20],
            "missing": result.missing[:20],
        })  # fmt: skip
    return result


def _check_destination(node: Node, home: Path, dest: Path, destination: Path) -> None:
    if dest == home or home in dest.parents or dest in home.parents:
        raise InvalidInput(
            f"{destination} overlaps the home {home}", field="DEST",
            hint="back up to a directory outside the home, ideally on another disk",
        )  # fmt: skip
    if dest.exists() and not dest.is_dir():
        raise InvalidInput(f"{destination} is a file, not a directory", field="DEST")
    if dest.is_dir() and any(dest.iterdir()):
        domain = _marker_domain(dest)
        if domain != node.config.node.domain:
            whose = f"a backup of {domain}" if domain else "something that is not a Satchel backup"
            raise InvalidInput(
                f"{destination} already holds {whose}", field="DEST",
                hint="choose a new or empty directory, or an earlier backup of this node to bring it up to date",
            )  # fmt: skip
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)


def _marker_domain(dest: Path) -> str | None:
    try:
        domain = json.loads((dest / MARKER).read_text(encoding="utf-8")).get("domain")
    except (OSError, ValueError, AttributeError):
        return None
    return domain if isinstance(domain, str) else None


def _snapshot_database(node: Node, dest: Path) -> int:
    """The database as of one instant, checked, under its real name only once whole; returns its size."""
    partial = dest / ".satchel.db.partial"
    for stale in (partial, dest / ".satchel.db.partial-journal"):
        stale.unlink(missing_ok=True)
    target = sqlite3.connect(partial)
    try:
        node.db.conn.backup(target)  # one step: a single read transaction, so one consistent snapshot
        verdict = target.execute("PRAGMA integrity_check").fetchall()
        if verdict != [("ok",)]:
            raise BackupIncomplete(f"the copy of the database failed its integrity check: {verdict[:3]}")
        # A backup is one self-contained file, not a database in use: no WAL beside it.
        target.execute("PRAGMA journal_mode = DELETE")
    except BaseException:
        target.close()
        partial.unlink(missing_ok=True)
        raise
    target.close()
    _fsync(partial)
    # A WAL or shared-memory file left from an earlier backup must never be read against the new file.
    for leftover in ("satchel.db-wal", "satchel.db-shm"):
        (dest / leftover).unlink(missing_ok=True)
    os.replace(partial, dest / "satchel.db")
    return (dest / "satchel.db").stat().st_size


def _blobs(home: Path) -> Iterator[_File]:
    for path, size in blob_files(home):
        yield _File(path.relative_to(home).as_posix(), size)


def _envelopes(home: Path) -> Iterator[_File]:
    """Sealed envelopes waiting to be delivered or accepted, and an older version's staging files; never a
    temp file (theirs start with a dot)."""
    for folder in ("envelopes/in", "envelopes/out", "staging"):
        root = home / folder
        for entry in sorted(os.scandir(root), key=lambda e: e.name) if root.is_dir() else ():
            if not entry.name.startswith(".") and entry.is_file():
                yield _File(f"{folder}/{entry.name}", entry.stat().st_size)


def _same(target: Path, size: int) -> bool:
    """Already in the backup: blobs never change under their name, envelopes never after they are sealed."""
    try:
        return target.stat().st_size == size
    except FileNotFoundError:
        return False


def _copy_checked(source: Path, target: Path, *, expect_sha256: str | None) -> str:
    """Copy through a temp file, renamed once whole and synced: "copied"; "damaged" (nothing copied) when a
    blob's bytes no longer match its name; "gone" when the home lost the file since it was listed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    try:
        with source.open("rb") as reading, temp.open("wb") as writing:
            while chunk := reading.read(CHUNK):
                digest.update(chunk)
                writing.write(chunk)
            writing.flush()
            os.fsync(writing.fileno())
        if expect_sha256 is not None and digest.hexdigest() != expect_sha256:
            temp.unlink()
            return "damaged"
        os.replace(temp, target)
    except FileNotFoundError:
        temp.unlink(missing_ok=True)  # purged, or opened and removed, since it was listed
        return "gone"
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return "copied"


def _copy_small(source: Path, target: Path) -> None:
    temp = target.with_name(f".{target.name}.partial")
    shutil.copy2(source, temp)  # keeps the mode: key files stay 0600
    _fsync(temp)
    os.replace(temp, target)


def _prune(dest: Path, present: set[str]) -> tuple[int, int, int]:
    """Remove the backup's blobs and envelopes that the home no longer has, in one walk of the backup;
    returns (how many went, blobs kept, envelopes kept)."""
    removed, kept = 0, []
    for listing in (_blobs(dest), _envelopes(dest)):
        count = 0
        for item in list(listing):
            if item.relative in present:
                count += 1
            else:
                (dest / item.relative).unlink(missing_ok=True)
                removed += 1
        kept.append(count)
    return removed, kept[0], kept[1]


def _used_by_snapshot(dest: Path) -> set[str]:
    with contextlib.closing(_read_only(dest)) as db:
        return used_paths(db, dest)


def _read_only(dest: Path) -> sqlite3.Connection:
    # Through a URI: so the path is quoted (a "#" or "?" in a directory name is not a URI part).
    return sqlite3.connect(f"file:{quote(str(dest / 'satchel.db'))}?mode=ro", uri=True)


def _missing(dest: Path) -> list[str]:
    """What the snapshot uses that the backup does not hold. Only a home that lost files, or one that removed
    them while the backup ran (then the next backup is whole), has any."""
    with contextlib.closing(_read_only(dest)) as db:
        return list(used_files(db, dest).missing)


def _write_marker(node: Node, dest: Path, result: BackupResult, *, complete: bool) -> None:
    """BACKUP.json: whose backup this is, when it was taken, and whether that backup ran to its end."""
    text = json.dumps({
        "domain": node.config.node.domain, "taken_at": result.taken_at, "complete": complete,
        "database_bytes": result.database_bytes, "blobs": result.blobs, "envelopes": result.envelopes,
        "damaged": result.damaged, "missing": result.missing,
    }, indent=2)  # fmt: skip
    temp = dest / f".{MARKER}.partial"
    temp.write_text(text + "\n", encoding="utf-8")
    _fsync(temp)
    replace_durably(temp, dest / MARKER)


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
