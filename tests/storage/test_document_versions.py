"""Versions of a document (storage.records): a correction's lineage as its sender names it, and the chain kept
whole when an import's documents are removed from its middle."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from storage import records
from storage.database import open_database, write_transaction
from storage.records import Document

NOW = "2026-12-05T00:00:00Z"


@given(st.one_of(st.none(), st.text(max_size=8)), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=12,
))  # fmt: skip
def test_a_lineage_is_the_corrected_record_then_the_named_string_ids_once_each(corrects, earlier) -> None:
    # earlier_versions is a sender's metadata: whatever it holds, the lineage is read without an error.
    found = records.lineage(corrects, earlier)
    if not corrects:
        assert found == []
        return
    assert found[0] == corrects and len(found) == len(set(found)) and all(isinstance(i, str) for i in found)
    named = [i for i in earlier if isinstance(i, str)] if isinstance(earlier, list) else []
    assert set(found) == {corrects, *named}


def _db(tmp_path: Path, chain: list[str]):
    """A database holding the versions ``chain`` (oldest first) of one document, each replacing the one before."""
    db = open_database(tmp_path / "satchel.db")
    with write_transaction(db):
        db.execute("INSERT INTO students (sis_id, source_id, given_name, family_name, created_at, updated_at) "
                   "VALUES ('S1', 'S1', 'Ana', 'Lopez', ?, ?)", [NOW, NOW])  # fmt: skip
        for i, doc_id in enumerate(chain):
            records.add_document(db, Document(
                doc_id=doc_id, student_sis_id="S1", doc_type="iep", title=doc_id, filename=doc_id,
                media_type="application/pdf", length=1, sha256="00" * 32, status="active", origin={},
                created_at=NOW, created_by="ann", replaces=chain[i - 1] if i else None,
                superseded_by=chain[i + 1] if i + 1 < len(chain) else None,
            ))  # fmt: skip
    return db


def _links(db) -> dict[str, tuple[str | None, str | None]]:
    return {r[0]: (r[1], r[2]) for r in db.execute("SELECT doc_id, replaces, superseded_by FROM documents")}


def test_removing_versions_from_the_middle_of_a_chain_links_those_either_side(tmp_path: Path) -> None:
    db = _db(tmp_path, ["v1", "v2", "v3", "v4", "v5"])
    assert records.earlier_versions(db, "v5") == ["v4", "v3", "v2", "v1"]
    removed = {d: links for d, links in _links(db).items() if d in ("v2", "v3")}
    with write_transaction(db):
        db.execute("DELETE FROM documents WHERE doc_id IN ('v2', 'v3')")
        records.unlink_versions(db, removed)
    assert _links(db) == {"v1": (None, "v4"), "v4": ("v1", "v5"), "v5": ("v4", None)}


def test_removing_the_newest_version_makes_the_one_before_current(tmp_path: Path) -> None:
    db = _db(tmp_path, ["v1", "v2"])
    with write_transaction(db):
        db.execute("DELETE FROM documents WHERE doc_id = 'v2'")
        records.unlink_versions(db, {"v2": ("v1", None)})
    assert _links(db) == {"v1": (None, None)}


def test_a_version_before_and_after_is_found_at_its_distance(tmp_path: Path) -> None:
    found: dict[str, tuple[int, str]] = {}
    records.note_versions(found, ["v3", "v2", "v1"], "v4")
    records.note_versions(found, ["v2", "v1"], "v3")  # nearer to v2 and v1 than v4 is
    assert found == {"v3": (0, "v4"), "v2": (0, "v3"), "v1": (1, "v3")}
