"""`satchel documents get`: a document's bytes out of the blob store, checked, to a file or a pipe.

Whoever reads a student's document is recorded (``document.export`` in the audit log, with the operator),
as FERPA expects a district to know who had access; every role may read. The bytes are checked against the
document's SHA-256 as they are copied: a file is written beside its destination under a temporary name,
fsynced, and only given its name when every byte matched, so a damaged blob never leaves a plausible-looking
file behind. A file name that came from another district is reduced to a plain name in the folder asked for.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from node.home import Node, expand_user
from node.operator_files import outside_home, private_file
from node.operators import authorize, record
from node.progress import Progress
from node.records import not_active
from protocol import InvalidInput
from storage import records
from storage.database import write_transaction
from storage.errors import BlobCorrupt
from storage.free_space import require_room
from storage.records import Document

MAX_NAME_BYTES = 200  # file systems allow 255; room is left for the temporary name's prefix and suffix
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


@dataclass(frozen=True, slots=True)
class Exported:
    document: Document
    path: Path | None  # None when written to a stream


def safe_filename(name: str, fallback: str) -> str:
    """A plain file name from ``name`` (another district's, possibly hostile): no folders, no characters
    Windows or a shell would stumble on, not hidden, at most MAX_NAME_BYTES; ``fallback`` when nothing is left."""
    base = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip().lstrip(".").strip()
    if len(base.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = base.rpartition(".")
        if not (dot and stem and 0 < len(ext.encode("utf-8")) <= 16):  # keep an extension: it says what opens it
            stem, dot, ext = base, "", ""
        room = MAX_NAME_BYTES - len((dot + ext).encode("utf-8"))
        base = stem.encode("utf-8")[:room].decode("utf-8", "ignore").strip() + dot + ext
    return base if base.strip(".") else fallback


def readable(node: Node, *, actor: str | None, doc_id: str) -> tuple[str, Document]:
    """The acting operator and the document, if it may be read now."""
    user = authorize(node, actor, "records.read")
    doc = records.get_document(node.db, doc_id)
    if doc.status != "active":
        raise not_active(doc, field="ID", doing="read")
    return user.username, doc


def destination(node: Node, doc: Document, target: Path, *, overwrite: bool) -> Path:
    """Where ``target`` (a file, or a folder for the document's own name) puts the document."""
    path = expand_user(target, option="-o")
    if path.is_dir():
        path = path / safe_filename(doc.filename or doc.title, doc.doc_id)
    path = outside_home(node, path, option="-o", example="~/Documents")
    if not path.parent.is_dir():
        raise InvalidInput(f"the folder {path.parent} does not exist", field="-o")
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder", field="-o", hint="give a file name with -o")
    if path.exists() and not overwrite:
        raise _exists(path)
    return path


def _exists(path: Path) -> InvalidInput:
    return InvalidInput(
        f"{path} already exists", field="-o", hint="give another name with -o, or add --force to replace it"
    )


def export_to_file(
    node: Node, *, actor: str | None, doc_id: str, target: Path, overwrite: bool = False,
    progress: Progress | None = None,
) -> Exported:  # fmt: skip
    username, doc = readable(node, actor=actor, doc_id=doc_id)
    path = destination(node, doc, target, overwrite=overwrite)
    require_room(path.parent, doc.length, reserve=0, what=f"writing {path.name}",
                 instead="or choose another folder with -o")  # fmt: skip
    temp = path.with_name(f".satchel-{doc.doc_id}-{secrets.token_hex(4)}.partial")
    try:
        with private_file(temp, option="-o", exclusive=True) as out:
            _copy(node, doc, out.write, progress)
            out.flush()
            os.fsync(out.fileno())
        _put_in_place(temp, path, overwrite=overwrite)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _audit(node, username, doc, path.name)
    return Exported(doc, path)


def _put_in_place(temp: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # refuses a file that appeared meanwhile, where a rename would replace it
    except FileExistsError:
        raise _exists(path) from None
    except OSError:  # a file system without hard links (a FAT-formatted USB stick): look, then rename
        if path.exists():
            raise _exists(path) from None
        os.replace(temp, path)
        return
    temp.unlink()


def export_to_stream(
    node: Node, *, actor: str | None, doc_id: str, out: BinaryIO, progress: Progress | None = None
) -> Exported:
    """The bytes go out as they are read; a mismatch found at the end raises BlobCorrupt after them, so the
    reader must discard what it got (the CLI exits non-zero)."""
    username, doc = readable(node, actor=actor, doc_id=doc_id)
    try:
        _copy(node, doc, out.write, progress)
    except BlobCorrupt as exc:
        raise BlobCorrupt(exc.message, hint=f"discard what was written; {exc.hint}") from None
    out.flush()
    _audit(node, username, doc, "(standard output)")
    return Exported(doc, None)


def _copy(node: Node, doc: Document, write: Callable[[bytes], object], progress: Progress | None) -> None:
    digest, done = hashlib.sha256(), 0
    for chunk in node.blobs.read_chunks(doc.sha256):
        digest.update(chunk)
        write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, doc.length)
    if digest.hexdigest() != doc.sha256 or done != doc.length:
        raise BlobCorrupt(
            f"the stored content of document {doc.doc_id} no longer matches its SHA-256",
            hint="run `satchel check --blobs`, and restore the document from the latest backup that has it",
        )


def _audit(node: Node, username: str, doc: Document, written_to: str) -> None:
    with write_transaction(node.db):
        record(node, username, "document.export", doc.student_sis_id, {"doc_id": doc.doc_id, "to": written_to})
