"""A command waits while the serving node delivers what the command queued, and no longer: not for jobs
queued before it began."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from node.clock import iso, now_iso, utc_now
from node.home import open_node
from node.outbox_worker import settle
from storage import outbox
from storage.database import write_transaction

from support import DEV_ENV, run_cli


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


def _old_job_in_flight(node) -> None:
    """A job queued an hour ago that the serving node is uploading now (a big transfer, say)."""
    an_hour_ago = iso(utc_now() - timedelta(hours=1))
    with write_transaction(node.db):
        outbox.enqueue(node.db, job_id="old", kind="receipt", peer="b.example.org", url="https://b.example.org/x",
                       payload=b"{}", content_type="application/json", now=an_hour_ago)  # fmt: skip
        assert outbox.claim(node.db, "old", now=now_iso(), lease_until=iso(utc_now() + timedelta(minutes=15)))


def test_settle_does_not_wait_for_jobs_queued_before(make_home) -> None:
    node = open_node(make_home(), DEV_ENV)
    try:
        _old_job_in_flight(node)
        assert not asyncio.run(settle(node, timeout=0.1))
        assert asyncio.run(settle(node, timeout=0.1, created_since=now_iso()))
    finally:
        node.close()


def test_a_command_does_not_wait_for_an_upload_it_did_not_queue(make_home) -> None:
    home = make_home()
    node = open_node(home, DEV_ENV)
    try:
        _old_job_in_flight(node)
    finally:
        node.close()
    started = time.monotonic()
    result = run_cli(home, "contact", "set", "--name", "Jane Doe", "--email", "jdoe@a.example.org", "--as", "admin",
                     env=DEV_ENV)  # fmt: skip
    assert "waiting" not in result.stderr and time.monotonic() - started < 10


def test_settle_waits_for_the_job_it_is_asked_about_however_old(make_home) -> None:
    # `transfers retry` asks for one old job: when the serving node's worker is delivering it at that moment,
    # the command waits for that try, not reports the answer of the one before it.
    node = open_node(make_home(), DEV_ENV)
    try:
        _old_job_in_flight(node)
        assert not asyncio.run(settle(node, timeout=0.1, created_since=now_iso(), job_id="old"))
        assert asyncio.run(settle(node, timeout=0.1, created_since=now_iso(), job_id="another"))
        with write_transaction(node.db):
            outbox.mark_done(node.db, "old", now_iso())
        assert asyncio.run(settle(node, timeout=0.1, created_since=now_iso(), job_id="old"))
    finally:
        node.close()
