"""`satchel documents get`: a document's bytes out, checked, audited, never over a file by accident."""

from __future__ import annotations

import io
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node import document_export, documents_admin
from node.document_export import MAX_NAME_BYTES, safe_filename
from node.errors import OperatorRequired
from node.operators import add_user
from node.records import add_document
from protocol import InvalidInput
from protocol.roster import StudentRecord
from storage import students
from storage.errors import BlobCorrupt


@pytest.fixture
def doc(node: Any, tmp_path: Path) -> Any:
    ana = StudentRecord(sis_id="S1", source_id="S1", given_name="Ana", family_name="Lopez", birth_date=None,
                        sex=None, grade=None)  # fmt: skip
    students.upsert(node.db, [ana], now="2026-12-05T00:00:00Z")
    source = tmp_path / "iep 2026.pdf"
    source.write_bytes(os.urandom(3 << 20))  # several chunks
    return add_document(node, actor="coord", student_sis_id="S1", path=source, doc_type="iep", title="IEP 2026")


def _audit(node: Any) -> list[tuple]:
    return node.db.execute(
        "SELECT actor, action, subject, details FROM audit_log WHERE action = 'document.export' ORDER BY seq"
    ).fetchall()


def test_a_viewer_gets_the_bytes_into_a_folder_under_the_documents_name(node: Any, doc: Any, tmp_path: Path) -> None:
    add_user(node, actor="admin", username="vic", email="vic@a.example.org", full_name="Vic Viewer", role="viewer")
    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[int, int]] = []
    done = document_export.export_to_file(node, actor="vic", doc_id=doc.doc_id, target=out,
                                          progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert done.path == (out / "iep 2026.pdf").resolve()
    assert done.path.read_bytes() == (tmp_path / "iep 2026.pdf").read_bytes()
    assert stat.S_IMODE(done.path.stat().st_mode) == 0o600  # a student's record: its owner's to read
    assert seen[-1] == (doc.length, doc.length) and len(seen) > 1
    assert [p.name for p in out.iterdir()] == ["iep 2026.pdf"]  # no temporary file left beside it
    [(actor, _action, subject, details)] = _audit(node)
    assert (actor, subject) == ("vic", "S1") and doc.doc_id in details and "iep 2026.pdf" in details


def test_an_existing_file_is_kept_unless_forced(node: Any, doc: Any, tmp_path: Path) -> None:
    target = tmp_path / "mine.pdf"
    target.write_bytes(b"someone's own file")
    with pytest.raises(InvalidInput, match="already exists") as refused:
        document_export.export_to_file(node, actor="coord", doc_id=doc.doc_id, target=target)
    assert "--force" in (refused.value.hint or "")
    assert target.read_bytes() == b"someone's own file" and _audit(node) == []
    document_export.export_to_file(node, actor="coord", doc_id=doc.doc_id, target=target, overwrite=True)
    assert target.read_bytes() == (tmp_path / "iep 2026.pdf").read_bytes()


def test_nothing_is_written_into_the_home_or_a_missing_folder(node: Any, doc: Any, tmp_path: Path) -> None:
    for target, words in ((node.config.home, "inside the node's home"), (node.config.db_path, "inside the node's home"),
                          (tmp_path / "nowhere" / "x.pdf", "does not exist"),
                          (Path("~satchel-no-such-user-0/x.pdf"), "no home folder for it")):  # fmt: skip
        with pytest.raises(InvalidInput, match=words):
            document_export.export_to_file(node, actor="coord", doc_id=doc.doc_id, target=target, overwrite=True)
    assert node.db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_a_damaged_blob_leaves_no_file(node: Any, doc: Any, tmp_path: Path) -> None:
    blob = node.blobs.path_for(doc.sha256)
    blob.chmod(0o600)
    with blob.open("r+b") as handle:
        handle.seek(2 << 20)
        handle.write(b"\x00" * 16)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BlobCorrupt, match="no longer matches its SHA-256"):
        document_export.export_to_file(node, actor="coord", doc_id=doc.doc_id, target=out)
    assert list(out.iterdir()) == [] and _audit(node) == []


def test_deleted_purged_and_anonymous_reads_are_refused(node: Any, doc: Any, tmp_path: Path) -> None:
    with pytest.raises(OperatorRequired):
        document_export.export_to_stream(node, actor=None, doc_id=doc.doc_id, out=io.BytesIO())
    documents_admin.delete(node, actor="coord", doc_id=doc.doc_id)
    with pytest.raises(InvalidInput, match="is deleted") as deleted:
        document_export.export_to_stream(node, actor="coord", doc_id=doc.doc_id, out=io.BytesIO())
    assert "documents restore" in (deleted.value.hint or "")
    documents_admin.purge(node, actor="admin", doc_id=doc.doc_id)
    with pytest.raises(InvalidInput, match="purged: its content is gone for good"):
        document_export.export_to_stream(node, actor="coord", doc_id=doc.doc_id, out=io.BytesIO())


def test_a_stream_gets_the_bytes(node: Any, doc: Any, tmp_path: Path) -> None:
    out = io.BytesIO()
    assert document_export.export_to_stream(node, actor="coord", doc_id=doc.doc_id, out=out).path is None
    assert out.getvalue() == (tmp_path / "iep 2026.pdf").read_bytes()
    assert "(standard output)" in _audit(node)[0][3]


@pytest.mark.parametrize(("name", "safe"), [
    ("iep-2026.pdf", "iep-2026.pdf"), ("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"),
    (".bashrc", "bashrc"), ("", "DOC"), ("...", "DOC"), ("a:b*c?.pdf", "a_b_c_.pdf"), ("C:\\x\\r.pdf", "r.pdf"),
])  # fmt: skip
def test_names_from_another_district_become_plain_names(name: str, safe: str) -> None:
    assert safe_filename(name, "DOC") == safe


def test_a_long_name_keeps_its_extension() -> None:
    name = safe_filename("é" * 300 + ".pdf", "DOC")
    assert name.endswith("é.pdf") and len(name.encode()) <= MAX_NAME_BYTES


@given(st.text(max_size=400))
def test_any_name_becomes_a_plain_visible_file_name(name: str) -> None:
    safe = safe_filename(name, "DOC")
    assert safe and not safe.startswith(".") and len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    assert not any(c in safe for c in '/\\\x00:*?"<>|') and not any(ord(c) < 32 for c in safe)
    assert safe.strip() == safe or safe == "DOC"


def test_a_folder_it_may_not_write_in_or_a_name_that_is_a_folder_is_named(node: Any, doc: Any, tmp_path: Path) -> None:
    (tmp_path / "taken" / "iep 2026.pdf").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="is a folder"):
        document_export.export_to_file(node, actor="coord", doc_id=doc.doc_id, target=tmp_path / "taken",
                                       overwrite=True)  # fmt: skip
    locked = tmp_path / "locked"
    locked.mkdir()
    # Root writes in any folder whatever its mode: an immutable folder refuses even root.
    lock, unlock = (["chattr", "+i", str(locked)], ["chattr", "-i", str(locked)]) if os.geteuid() == 0 else (
        ["chmod", "500", str(locked)], ["chmod", "700", str(locked)])  # fmt: skip
    subprocess.run(lock, check=True)
    try:
        with pytest.raises(InvalidInput, match="cannot write in"):
            document_export.export_to_file(node, actor="coord", doc_id=doc.doc_id, target=locked / "x.pdf")
    finally:
        subprocess.run(unlock, check=True)
    assert list(locked.iterdir()) == [] and _audit(node) == []


def test_a_file_system_without_hard_links_still_gets_the_document(
    node: Any, doc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A FAT-formatted USB stick refuses os.link: the file is looked for, then renamed into place.
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    out = tmp_path / "stick"
    out.mkdir()
    done = document_export.export_to_file(node, actor="coord", doc_id=doc.doc_id, target=out)
    assert done.path is not None and done.path.read_bytes() == (tmp_path / "iep 2026.pdf").read_bytes()
    assert [p.name for p in out.iterdir()] == ["iep 2026.pdf"]
    with pytest.raises(InvalidInput, match="already exists"):
        document_export.export_to_file(node, actor="coord", doc_id=doc.doc_id, target=out)
    assert [p.name for p in out.iterdir()] == ["iep 2026.pdf"]


def test_a_damaged_blob_sent_down_a_pipe_says_to_discard_what_came(node: Any, doc: Any) -> None:
    blob = node.blobs.path_for(doc.sha256)
    blob.chmod(0o600)
    with blob.open("r+b") as handle:
        handle.write(b"\x00" * 16)
    with pytest.raises(BlobCorrupt) as refused:
        document_export.export_to_stream(node, actor="coord", doc_id=doc.doc_id, out=io.BytesIO())
    assert (refused.value.hint or "").startswith("discard what was written; run `satchel check --blobs`")
    assert _audit(node) == []
