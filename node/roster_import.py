"""`satchel roster import`: read a OneRoster CSV bundle (folder or zip) and upsert the students."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from node.clock import now_iso
from node.home import Node
from node.operators import authorize, record
from node.progress import Progress, counted
from protocol import InvalidInput, SatchelError
from protocol.oneroster import parse_oneroster, read_bundle_names
from storage import students
from storage.database import write_transaction
from storage.students import UpsertCounts

# A whole-district users.csv is tens of MB; refuse absurd inputs instead of exhausting memory.
MAX_FILE_BYTES = 512 * 1024 * 1024


class RosterRowsInvalid(SatchelError):
    code = "roster.rows_invalid"
    default_hint = "fix the rows listed, or re-run with --skip-invalid to import the valid rows only"

    def __init__(self, message: str, rows: tuple, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.rows = rows


@dataclass(frozen=True, slots=True)
class RosterImportResult:
    counts: UpsertCounts
    skipped_rows: tuple


def read_bundle(path: Path) -> dict[str, bytes]:
    """Map canonical OneRoster file names to their bytes, from a folder or a zip file."""
    if path.is_dir():
        names = read_bundle_names(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        return {
            key: _read_limited(path / name, (path / name).stat().st_size, key) for key, name in names.items()
        }
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as bundle:
            infos = {info.filename: info for info in bundle.infolist() if not info.is_dir()}
            names = read_bundle_names(infos)
            return {
                key: _read_limited(bundle, infos[name].file_size, key, infos[name])
                for key, name in names.items()
            }
    raise InvalidInput(
        f"{path} is neither a folder nor a zip file", field="PATH",
        hint="give the folder holding users.csv, orgs.csv, ... or a zip of them",
    )  # fmt: skip


def _read_limited(
    source: Path | zipfile.ZipFile, size: int, key: str, info: zipfile.ZipInfo | None = None
) -> bytes:
    if size > MAX_FILE_BYTES:
        raise InvalidInput(f"{key} is larger than {MAX_FILE_BYTES // 2**20} MiB", field="PATH")
    if isinstance(source, zipfile.ZipFile):
        assert info is not None
        return source.read(info)
    return source.read_bytes()


def import_roster(
    node: Node, *, actor: str | None, path: Path, skip_invalid: bool, progress: Progress | None = None
) -> RosterImportResult:
    """``progress`` hears how many of the students read are saved (after the bundle is read and checked)."""
    user = authorize(node, actor, "records.write")
    parsed = parse_oneroster(read_bundle(path))
    if parsed.errors and not skip_invalid:
        raise RosterRowsInvalid(
            f"{len(parsed.errors)} row(s) are invalid; nothing was imported", tuple(parsed.errors)
        )
    now = now_iso()
    with write_transaction(node.db):
        chosen = parsed.students if progress is None else counted(parsed.students, len(parsed.students), progress)
        counts = students.upsert(node.db, chosen, now=now)
        if counts.changed or parsed.errors:
            record(
                node, user.username, "roster.import", str(path.name),
                {"inserted": counts.inserted, "updated": counts.updated, "unchanged": counts.unchanged,
                 "skipped": len(parsed.errors)},
            )  # fmt: skip
    return RosterImportResult(counts, tuple(parsed.errors))
