import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from storage import transfers
from storage.database import BULK_CACHE_KIB, bulk_cache, open_database, write_transaction
from storage.migrations import MIGRATIONS


def test_wal_and_named_migrations(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [m.name for m in MIGRATIONS.applied(db)] == [m.name for m in MIGRATIONS._migrations]
    assert MIGRATIONS.pending(db) == []
    db.close()
    # Re-opening applies nothing twice.
    db = open_database(tmp_path / "x.db")
    assert len(MIGRATIONS.applied(db)) == len(MIGRATIONS._migrations)


def _synchronous(db: sqlite_utils.Database) -> str:
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[db.execute("PRAGMA synchronous").fetchone()[0]]


def test_every_commit_is_synced_unless_asked_not_to_be(tmp_path: Path) -> None:
    # A signed receipt goes out after the commit it reports: under NORMAL a power cut could undo that commit.
    db = open_database(tmp_path / "x.db")
    assert _synchronous(db) == "FULL"
    with write_transaction(db):
        assert _synchronous(db) == "FULL"
    with write_transaction(db, durable=False):  # a request's nonce: one per request, harmless to lose
        assert _synchronous(db) == "NORMAL"
        with write_transaction(db):  # nested: the outer transaction decides
            assert _synchronous(db) == "NORMAL"
    assert _synchronous(db) == "FULL"
    with pytest.raises(RuntimeError), write_transaction(db, durable=False):
        raise RuntimeError("boom")
    assert _synchronous(db) == "FULL"
    with write_transaction(db), write_transaction(db, durable=False):  # nested in a durable one: synced
        assert _synchronous(db) == "FULL"
    db.close()


def test_write_transaction_rolls_back(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    with pytest.raises(RuntimeError), write_transaction(db):
        db.execute("INSERT INTO settings (key, value) VALUES ('k', '1')")
        raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM settings WHERE key = 'k'").fetchone()[0] == 0


def test_stored_manifests_move_out_of_the_transfers_row(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    MIGRATIONS.apply(db, stop_before="0010_transfer_manifests")
    for tid, manifest in (("T1", b"\x81signed"), ("T2", None)):
        db.execute(
            "INSERT INTO transfers (transfer_id, side, state, peer, kind, created_at, updated_at, manifest,"
            " manifest_signature) VALUES (?, 'receiver', 'accepted', 'a.example.org', 'push', 'now', 'now', ?, ?)",
            [tid, manifest, b"sig" if manifest else None],
        )
    MIGRATIONS.apply(db)
    assert transfers.manifest_of(db, "T1") == (b"\x81signed", b"sig")
    assert transfers.manifest_of(db, "T2") is None
    assert "manifest" not in {c.name for c in db["transfers"].columns}


def test_codes_held_by_transfers_that_already_ended_follow_them(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    db = sqlite_utils.Database(conn)
    MIGRATIONS.apply(db, stop_before="0016_code_endings")
    codes = {"C1": "cancelled", "C2": "undeliverable", "C3": "accepted", "C4": None}
    for n, (code_id, transfer_state) in enumerate(codes.items()):
        tid = f"T{n}"
        if transfer_state:
            db.execute(
                "INSERT INTO transfers (transfer_id, side, state, peer, kind, created_at, updated_at)"
                " VALUES (?, 'sender', ?, 'b.example.org', 'import', 'now', 'now')",
                [tid, transfer_state],
            )
        db.execute(
            "INSERT INTO transfer_codes_issued (code_id, claim_key, display, scope, state, claimed_by, transfer_id,"
            " created_at, created_by, expires_at, status_json) VALUES (?, x'00ff', '…ABCD', 'student', ?, ?, ?,"
            " 'now', 'coord', 'later', '{}')",
            [code_id, "claimed" if transfer_state else "used", "b.example.org", tid],
        )
    MIGRATIONS.apply(db)
    query = "SELECT code_id, state, claimed_by, transfer_id, length(claim_key) FROM transfer_codes_issued"
    rows = {r[0]: r[1:] for r in db.execute(query).fetchall()}
    assert rows == {
        "C1": ("revoked", None, "T0", 0),
        "C2": ("active", None, None, 2),
        "C3": ("claimed", "b.example.org", "T2", 2),
        "C4": ("used", "b.example.org", "T3", 0),
    }


def test_a_database_changed_by_a_newer_satchel_is_refused_untouched(tmp_path: Path) -> None:
    from storage.errors import SchemaNewer

    path = tmp_path / "satchel.db"
    open_database(path).close()
    with sqlite3.connect(path) as conn:  # what a later version's migration leaves behind
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES"
                     " ('satchel', '0099_from_a_later_version', '2027-06-01T00:00:00')")  # fmt: skip
        conn.execute("CREATE TABLE later_feature (x)")
    before = path.read_bytes()
    with pytest.raises(SchemaNewer) as info:
        open_database(path)
    assert "migration 0099_from_a_later_version" in info.value.message
    assert info.value.code == "storage.schema_newer" and "newer Satchel" in (info.value.hint or "")
    open_database(path, migrate=False).close()  # reading as such is still possible
    assert sqlite3.connect(path).execute("SELECT count(*) FROM later_feature").fetchone() == (0,)
    assert len(path.read_bytes()) == len(before)


def _cache(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA cache_size").fetchone()[0])


def test_bulk_saving_has_a_larger_page_cache_and_gives_it_back(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    before = _cache(db)
    with bulk_cache(db):
        assert _cache(db) == -BULK_CACHE_KIB != before
    assert _cache(db) == before
    with pytest.raises(RuntimeError), bulk_cache(db):
        raise RuntimeError("a batch failed")
    assert _cache(db) == before
