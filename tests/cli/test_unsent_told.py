"""After a command delivers what it queued, it tells its operator what did not go, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.common import tell_unsent
from node.home import init_home, open_node
from storage import outbox
from storage.database import write_transaction

from support import node_fields

EARLIER, SINCE, NOW = "2026-12-04T10:00:00Z", "2026-12-04T11:00:00Z", "2026-12-04T11:00:05Z"
LATER = "2099-01-01T00:00:00Z"


def _queue(db, job_id: str, created: str) -> None:
    outbox.enqueue(db, job_id=job_id, kind="envelope", peer="b.example.org", url="http://b/x", payload=b"x",
                   content_type="application/octet-stream", now=created)  # fmt: skip


def test_only_this_commands_failed_deliveries_are_told(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    init_home(home, node=node_fields("a.example.org"))
    node = open_node(home)
    try:
        with write_transaction(node.db):
            _queue(node.db, "older", EARLIER)  # an earlier command's: not this one's to report
            outbox.mark_retry(node.db, "older", next_attempt_at=LATER, error="peer.unreachable: earlier")
            _queue(node.db, "waiting", NOW)
            outbox.mark_retry(node.db, "waiting", next_attempt_at=LATER, error="storage.full: no room now")
            _queue(node.db, "refused", NOW)
            outbox.mark_failed(node.db, "refused", error="receipt.mismatch: another transfer", now=NOW)
            _queue(node.db, "untried", NOW)  # due later, never tried: nothing to say about it yet
            _queue(node.db, "delivered", NOW)
            outbox.mark_done(node.db, "delivered", NOW)
    finally:
        node.close()
    assert tell_unsent(str(home), SINCE) is True  # one refused for good: the command exits 1
    told = capsys.readouterr().err.splitlines()
    assert sorted(told[:2]) == [
        "Not delivered to b.example.org yet: storage.full: no room now",
        "Refused by b.example.org, for good: receipt.mismatch: another transfer",
    ]
    assert told[2:] == [
        "Hint: the serving node (`satchel serve`) tries again on its own, less often as time goes on;"
        " `satchel transfers show ID` shows its attempts, `satchel transfers retry ID` tries now."
    ]


def test_nothing_is_told_when_everything_went(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    init_home(home, node=node_fields("a.example.org"))
    assert tell_unsent(str(home), SINCE) is False
    assert capsys.readouterr().err == ""
