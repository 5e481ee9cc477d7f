"""A server starting releases the leases of deliverers that are gone, not those of a command still at work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from storage import outbox
from storage.database import open_database, write_transaction


def _job(db, job_id: str) -> None:
    outbox.enqueue(db, job_id=job_id, kind="receipt", peer="b.example.org", url="https://b.example.org/x",
                   payload=b"{}", content_type="application/json", now="2026-01-01T00:00:00Z")  # fmt: skip


def test_only_leases_of_processes_that_are_gone_are_released(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db")
    working = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)  # fmt: skip
    try:
        with write_transaction(db):
            for job_id, pid in (("live", working.pid), ("dead", int(finished.stdout)), ("old", None), ("free", 0)):
                _job(db, job_id)
                if job_id != "free":
                    db.execute("UPDATE outbox SET leased_until = '2999-01-01T00:00:00Z', leased_by = ?"
                               " WHERE job_id = ?", [pid, job_id])  # fmt: skip
            assert outbox.release_leases(db) == 2
        leases = dict(db.execute("SELECT job_id, leased_until FROM outbox").fetchall())
        assert leases == {"live": "2999-01-01T00:00:00Z", "dead": None, "old": None, "free": None}
        # The process renewing its own lease keeps it; another's lease is not its to renew.
        with write_transaction(db):
            assert outbox.claim(db, "free", now="2026-01-01T00:00:00Z", lease_until="2026-01-01T00:02:00Z")
            assert outbox.renew_lease(db, "free", held="2026-01-01T00:02:00Z", until="2026-01-01T00:04:00Z")
            assert not outbox.renew_lease(db, "free", held="2026-01-01T00:02:00Z", until="2026-01-01T00:06:00Z")
            assert not outbox.renew_lease(db, "live", held="2999-01-01T00:00:00Z", until="2999-01-01T00:02:00Z")
    finally:
        working.kill()
        working.wait()
        db.close()
