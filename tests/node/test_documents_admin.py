"""A new version replaces an active document once: never a deleted or purged one, never one replaced already."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from node import documents_admin
from node.errors import PermissionDenied
from node.records import add_document
from protocol import InvalidInput
from protocol.roster import StudentRecord
from storage import records, students


@pytest.fixture
def doc(node: Any, tmp_path: Path) -> Any:
    ana = StudentRecord(sis_id="S1", source_id="S1", given_name="Ana", family_name="Lopez", birth_date=None,
                        sex=None, grade=None)  # fmt: skip
    students.upsert(node.db, [ana], now="2026-12-05T00:00:00Z")
    (tmp_path / "iep.pdf").write_bytes(os.urandom(1000))
    return add_document(node, actor="coord", student_sis_id="S1", path=tmp_path / "iep.pdf", doc_type="iep",
                        title="IEP 2026")  # fmt: skip


def _version(node: Any, tmp_path: Path, doc_id: str) -> Any:
    fixed = tmp_path / f"fixed-{os.urandom(4).hex()}.pdf"
    fixed.write_bytes(os.urandom(1000))
    return documents_admin.replace(node, actor="coord", doc_id=doc_id, path=fixed, title=None)


def _count(node: Any) -> int:
    return int(node.db.execute("SELECT count(*) FROM documents").fetchone()[0])


def test_a_document_is_replaced_once_and_linked_both_ways(node: Any, tmp_path: Path, doc: Any) -> None:
    new = _version(node, tmp_path, doc.doc_id)
    assert (new.replaces, new.title, new.status) == (doc.doc_id, "IEP 2026", "active")
    assert records.get_document(node.db, doc.doc_id).superseded_by == new.doc_id
    with pytest.raises(InvalidInput) as again:
        _version(node, tmp_path, doc.doc_id)
    assert f"already replaced by {new.doc_id}" in again.value.message
    assert f"documents replace {new.doc_id}" in (again.value.hint or "")
    assert _count(node) == 2
    assert _version(node, tmp_path, new.doc_id).replaces == new.doc_id  # the newest version can be


@pytest.mark.parametrize("gone", ["delete", "purge"])
def test_a_deleted_or_purged_document_is_not_replaced(node: Any, tmp_path: Path, doc: Any, gone: str) -> None:
    # A purged document's title reads "(purged)": its "new version" was an active document of that name.
    getattr(documents_admin, gone)(node, actor="coord" if gone == "delete" else "admin", doc_id=doc.doc_id)
    with pytest.raises(InvalidInput) as refused:
        _version(node, tmp_path, doc.doc_id)
    assert "there is nothing to replace" in refused.value.message and "documents add" in (refused.value.hint or "")
    assert _count(node) == 1


def test_a_deleted_document_is_restored_by_an_admin_and_purging_is_theirs(node: Any, doc: Any) -> None:
    documents_admin.delete(node, actor="coord", doc_id=doc.doc_id)
    for undo in (documents_admin.restore, documents_admin.purge):  # a coordinator's delete is not final
        with pytest.raises(PermissionDenied) as refused:
            undo(node, actor="coord", doc_id=doc.doc_id)
        assert "needs the role admin" in refused.value.message
    assert records.get_document(node.db, doc.doc_id).status == "deleted"
    restored = documents_admin.restore(node, actor="admin", doc_id=doc.doc_id)
    assert (restored.status, restored.student_sis_id, restored.title) == ("active", "S1", "IEP 2026")
    with pytest.raises(InvalidInput, match="not deleted: there is nothing to restore"):
        documents_admin.restore(node, actor="admin", doc_id=doc.doc_id)
    documents_admin.purge(node, actor="admin", doc_id=doc.doc_id)
    with pytest.raises(InvalidInput, match="purged: its content is gone for good"):
        documents_admin.restore(node, actor="admin", doc_id=doc.doc_id)
    actions = [r[0] for r in node.db.execute(
        "SELECT action FROM audit_log WHERE subject = 'S1' ORDER BY seq").fetchall()]  # fmt: skip
    assert actions[-3:] == ["document.delete", "document.restore", "document.purge"]


def test_a_move_to_the_student_it_is_on_is_refused_and_not_audited(node: Any, doc: Any) -> None:
    before = node.db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    with pytest.raises(InvalidInput, match="already on S1") as refused:
        documents_admin.move(node, actor="coord", doc_id=doc.doc_id, to="S1")
    assert refused.value.field == "--to"
    assert node.db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before


def test_what_a_deleted_or_purged_document_refuses_says_what_to_do(node: Any, doc: Any) -> None:
    # Deleting twice, moving or verifying a deleted or purged document, or purging it twice, were refused with
    # no next step.
    documents_admin.delete(node, actor="coord", doc_id=doc.doc_id)
    with pytest.raises(InvalidInput) as twice:
        documents_admin.delete(node, actor="coord", doc_id=doc.doc_id)
    assert "documents restore" in (twice.value.hint or "") and "satchel purge" in (twice.value.hint or "")
    with pytest.raises(InvalidInput, match="is deleted: restore it before you move it") as moved:
        documents_admin.move(node, actor="coord", doc_id=doc.doc_id, to="S1")
    assert f"satchel documents restore {doc.doc_id}" in (moved.value.hint or "")
    documents_admin.purge(node, actor="admin", doc_id=doc.doc_id)
    for refused in (lambda: documents_admin.move(node, actor="coord", doc_id=doc.doc_id, to="S1"),
                    lambda: documents_admin.delete(node, actor="coord", doc_id=doc.doc_id),
                    lambda: documents_admin.verify(node, doc.doc_id),
                    lambda: documents_admin.purge(node, actor="admin", doc_id=doc.doc_id)):  # fmt: skip
        with pytest.raises(InvalidInput, match="purged") as gone:
            refused()
        assert "satchel audit" in (gone.value.hint or "")
