"""Requests already in release_failed before migration 0024 get the local day their release failed, from their
audit trail, so the timer counts their working days from it (spec/requests.md §5)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import audit
from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS


@pytest.fixture
def chicago(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_migration_takes_the_day_the_release_failed_from_the_audit_trail(tmp_path: Path, chicago: None) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0023_request_release_failed_on")
    with write_transaction(db):
        for request_id, state, updated in (("R1", "release_failed", "2026-02-20T15:00:00Z"),
                                           ("R2", "release_failed", "2026-02-10T03:00:00Z"),
                                           ("R3", "released", "2026-02-20T15:00:00Z"),
                                           ("R4", "requested", "2026-02-20T15:00:00Z")):
            db.execute("INSERT INTO records_requests (request_id, side, state, peer, signed_request, opened_on,"
                       " working_days, created_at, updated_at) VALUES (?, ?, ?, 'b.example.org', x'', '2026-01-05',"
                       " 10, ?, ?)", [request_id, "releaser", state, updated, updated])  # fmt: skip
        # R1 failed twice (released again in between): the later one counts. 03:00 UTC is the day before in
        # Chicago, the node's time zone. R2's entry is gone from view (none kept): its last change counts.
        for at in ("2026-01-20T18:00:00Z", "2026-02-05T03:00:00Z"):
            audit.append(db, at=at, actor="(timer)", action="request.release_failed", subject="R1")
        audit.append(db, at="2026-02-06T18:00:00Z", actor="coord", action="request.message", subject="R1")
        audit.append(db, at="2026-02-07T18:00:00Z", actor="(timer)", action="request.release_failed", subject="R3")
    MIGRATIONS.apply(db)
    days = db.execute("SELECT request_id, failed_on FROM records_requests ORDER BY request_id").fetchall()
    assert days == [("R1", "2026-02-04"), ("R2", "2026-02-09"), ("R3", None), ("R4", None)]
