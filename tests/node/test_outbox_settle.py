"""A command waits while the serving node delivers what the command queued, and no longer."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from node.clock import iso, now_iso, utc_now
from node.home import open_node
from node.outbox_worker import settle
from storage import outbox
from storage.database import write_transaction

from support import DEV_ENV


def test_settle_waits_for_a_job_another_deliverer_holds(make_home) -> None:
    node = open_node(make_home(), DEV_ENV)
    try:
        with write_transaction(node.db):
            outbox.enqueue(node.db, job_id="j1", kind="receipt", peer="b.example.org", url="https://b.example.org/x",
                           payload=b"{}", content_type="application/json", now=now_iso())  # fmt: skip
        assert asyncio.run(settle(node, timeout=0.1))  # queued but nobody delivering: nothing to wait for
        with write_transaction(node.db):  # the serving node's worker takes it
            assert outbox.claim(node.db, "j1", now=now_iso(), lease_until=iso(utc_now() + timedelta(minutes=15)))
        started = time.monotonic()
        assert not asyncio.run(settle(node, timeout=0.3))  # still in flight when the time is up
        assert time.monotonic() - started >= 0.3

        async def worker_finishes() -> None:
            await asyncio.sleep(0.3)
            with write_transaction(node.db):
                outbox.mark_done(node.db, "j1", now_iso())

        async def both() -> bool:
            finishing = asyncio.create_task(worker_finishes())
            settled = await settle(node, timeout=10)
            await finishing
            return settled

        started = time.monotonic()
        assert asyncio.run(both())
        assert time.monotonic() - started < 5  # returned once the delivery was done, not at the timeout
    finally:
        node.close()
