"""The outbox hands out peers' jobs before e-mails, and brings a transfer's held-back receipts forward or
withdraws them by their id's prefix (storage.outbox)."""

from __future__ import annotations

from storage import outbox
from storage.database import write_transaction

T0, T1, T2, NOW = "2026-12-01T00:00:00Z", "2026-12-01T00:00:01Z", "2026-12-01T00:00:02Z", "2026-12-01T01:00:00Z"


def _queue(db, job_id: str, kind: str, at: str) -> None:
    outbox.enqueue(db, job_id=job_id, kind=kind, peer="b.example.org", url="https://b/x", payload=b"{}",
                   content_type="application/json", now=at)  # fmt: skip


def test_peers_go_before_older_e_mail(node) -> None:
    with write_transaction(node.db):
        _queue(node.db, "mail-oldest", "email", T0)
        _queue(node.db, "receipt-T-receiver-2", "receipt", T2)
        _queue(node.db, "envelope-U", "envelope", T1)
    assert [j.job_id for j in outbox.due(node.db, NOW)] == ["envelope-U", "receipt-T-receiver-2", "mail-oldest"]


def test_a_transfers_receipts_are_brought_forward_or_withdrawn_by_prefix(node) -> None:
    with write_transaction(node.db):
        for job_id in ("receipt-T-sender-2", "receipt-T-sender-3", "receipt-TX-sender-2"):
            _queue(node.db, job_id, "receipt", T0)
            outbox.mark_retry(node.db, job_id, next_attempt_at="2999-01-01T00:00:00Z", error="transfer.deferred: x")
        assert outbox.make_due_prefixed(node.db, "receipt-T-", NOW) == 2
    due = {j.job_id: j.attempts for j in outbox.due(node.db, NOW)}
    assert due == {"receipt-T-sender-2": 0, "receipt-T-sender-3": 0}  # the other transfer's stays back
    with write_transaction(node.db):
        assert outbox.cancel_prefixed(node.db, "receipt-T-", NOW) == 2
    assert outbox.due(node.db, NOW) == []
