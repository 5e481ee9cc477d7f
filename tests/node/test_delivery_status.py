"""How a sent receipt, message, request or answer stands, in the words `transfers show` and `requests show`
print after it (node.delivery_status)."""

from __future__ import annotations

from node.delivery_status import deliveries, delivery_words
from storage import outbox
from storage.database import write_transaction


def test_each_state_in_words() -> None:
    assert delivery_words(None) == ""
    assert delivery_words({"status": "delivered", "attempts": 0, "last_error": None}) == " [delivered]"
    assert delivery_words({"status": "waiting", "attempts": 0, "last_error": None}) == " [waiting]"
    assert delivery_words({"status": "waiting", "attempts": 3, "last_error": "peer.unreachable: down"}) == (
        " [waiting: tried 3 time(s), last answer: peer.unreachable: down]"
    )
    # Held back until its transfer's envelope is delivered: never sent, whatever the count says.
    held = {"status": "waiting", "attempts": 4, "last_error": "transfer.deferred: transfer T is not delivered yet"}
    assert delivery_words(held) == " [waiting until the envelope is delivered]"
    refused = {"status": "not delivered", "attempts": 1, "last_error": "thread.full: the thread is full"}
    assert delivery_words(refused) == " [not delivered: thread.full: the thread is full]"
    assert delivery_words({"status": "withdrawn", "attempts": 0, "last_error": None}) == " [withdrawn]"


def test_jobs_are_read_by_key_and_missing_ones_left_out(node) -> None:
    with write_transaction(node.db):
        for job_id in ("done", "gone", "waits"):
            outbox.enqueue(node.db, job_id=job_id, kind="request", peer="b.example.org", url="https://b/x",
                           payload=b"{}", content_type="application/json", now="2026-12-01T00:00:00Z")  # fmt: skip
        outbox.mark_done(node.db, "done", "2026-12-01T00:00:01Z")
        outbox.cancel(node.db, "gone", "2026-12-01T00:00:01Z")
    found = deliveries(node.db, {1: "done", 2: "gone", 3: "waits", 4: "never-queued"})
    assert {k: v["status"] for k, v in found.items()} == {1: "delivered", 2: "withdrawn", 3: "waiting"}
    assert deliveries(node.db, {}) == {}
