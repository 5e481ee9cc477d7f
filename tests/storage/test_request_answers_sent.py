"""Requests answered before migration 0021 count the one answer they have, so the next answer about one (after
a release that failed) goes in a job of its own, after the first (spec/requests.md §2)."""

from __future__ import annotations

from pathlib import Path

from storage import outbox
from storage.database import open_database, write_transaction
from storage.migrations import MIGRATIONS

NOW = "2026-12-05T00:00:00Z"


def test_migration_counts_the_answer_each_request_has(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0021_request_answers_sent")
    with write_transaction(db):
        for request_id, side, state in (("R1", "releaser", "released"), ("R2", "releaser", "requested"),
                                        ("R3", "requester", "cancelled"), ("R4", "requester", "rejected")):
            db.execute("INSERT INTO records_requests (request_id, side, state, peer, signed_request, opened_on,"
                       " working_days, created_at, updated_at) VALUES (?, ?, ?, 'b.example.org', x'', '2026-12-01',"
                       " 10, ?, ?)", [request_id, side, state, NOW, NOW])  # fmt: skip
        # R1's release and R3's cancellation were signed here; R4's rejection came from the other district.
        for request_id in ("R1", "R3"):
            outbox.enqueue(db, job_id=f"response-{request_id}", kind="request", peer="b.example.org",
                           url="https://b.example.org/x", payload=b"{}", content_type="application/json",
                           now=NOW)  # fmt: skip
    MIGRATIONS.apply(db)
    counted = db.execute("SELECT request_id, answers_sent FROM records_requests ORDER BY request_id").fetchall()
    assert counted == [("R1", 1), ("R2", 0), ("R3", 1), ("R4", 0)]
