"""A delivery that takes longer than its lease keeps the job: the deliverer renews the lease while it works,
so the server's worker does not start the same upload beside a command (node.outbox_worker)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from aiosmtpd.controller import Controller

from node.clock import iso, now_iso, utc_now
from node.home import Node, open_node
from node.notify import notify_coordinators
from node.outbox_worker import deliver_due
from node.runtime import runtime
from storage import outbox
from storage.database import write_transaction

from support import free_port, make_district

SLOW_SECONDS = 4.0


class _SlowServer:
    """A mail server that takes its time over every message (a slow link, a big upload: alike here)."""

    def __init__(self) -> None:
        self.delivered = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(SLOW_SECONDS)
        self.delivered += 1
        return "250 OK"


@contextmanager
def _slow_mail(tmp_path: Path) -> Iterator[tuple[_SlowServer, Node, str]]:
    """A node with one e-mail to send, and a mail server that takes SLOW_SECONDS over it."""
    handler, port = _SlowServer(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        district = make_district(tmp_path, "a.example.org", port)
        with open_node(district.home, district.env) as node:
            with write_transaction(node.db):
                notify_coordinators(node, subject="Transfer T arrived", body="See it with: satchel transfers show T")
            job_id = node.db.execute("SELECT job_id FROM outbox WHERE kind = 'email' LIMIT 1").fetchone()[0]
            yield handler, node, job_id
    finally:
        controller.stop()


def _lease(node: Node, job_id: str) -> tuple[str | None, int | None]:
    return node.db.execute("SELECT leased_until, leased_by FROM outbox WHERE job_id = ?", [job_id]).fetchone()


def test_a_delivery_that_lost_its_lease_stops_and_leaves_the_job_to_the_other(tmp_path: Path) -> None:
    with _slow_mail(tmp_path) as (_, node, job_id):

        async def another_takes_it() -> None:  # as if this process had stalled past its lease
            await asyncio.sleep(0.3)
            with write_transaction(node.db):
                node.db.execute("UPDATE outbox SET leased_until = '2999-01-01T00:00:00Z', leased_by = 1"
                                " WHERE job_id = ?", [job_id])  # fmt: skip

        async def both() -> tuple[int, float]:
            async with runtime(node) as rt:
                other = asyncio.create_task(another_takes_it())
                started = time.monotonic()
                delivered = await deliver_due(node, rt.client, rng=random.Random(1), job_ids=[job_id],
                                              lease_seconds=2.0)  # fmt: skip
                took = time.monotonic() - started
                await other
                return delivered, took

        delivered, took = asyncio.run(both())
        assert delivered == 0
        assert took < SLOW_SECONDS / 2  # stopped at the next renewal, not when the mail server was done
        found = outbox.get(node.db, job_id)
        assert found is not None and (found.status, found.attempts, found.last_error) == ("pending", 0, None)
        assert _lease(node, job_id) == ("2999-01-01T00:00:00Z", 1)  # the other deliverer's, untouched


def test_a_delivery_stopped_by_shutdown_frees_its_job_at_once(tmp_path: Path) -> None:
    with _slow_mail(tmp_path) as (_, node, job_id):

        async def shut_down_mid_way() -> bool:
            async with runtime(node) as rt:
                task = asyncio.create_task(deliver_due(node, rt.client, rng=random.Random(1), job_ids=[job_id]))
                await asyncio.sleep(1.0)
                assert _lease(node, job_id)[0] is not None
                task.cancel()
                done, _ = await asyncio.wait([task], timeout=SLOW_SECONDS / 2)
                return bool(done) and task.cancelled()

        assert asyncio.run(shut_down_mid_way())  # cancelled promptly, not swallowed
        assert _lease(node, job_id)[0] is None
        found = outbox.get(node.db, job_id)
        assert found is not None and found.status == "pending"


def test_a_long_delivery_renews_its_lease_and_no_one_else_takes_the_job(tmp_path: Path) -> None:
    with _slow_mail(tmp_path) as (handler, node, job_id):
        taken_meanwhile: list[bool] = []

        async def another_deliverer() -> None:
            started = time.monotonic()
            for at in (2.5, 3.5):  # the first lease (2 s) has run out by then
                await asyncio.sleep(at - (time.monotonic() - started))
                with write_transaction(node.db):
                    lease = iso(utc_now() + timedelta(seconds=60))
                    taken_meanwhile.append(outbox.claim(node.db, job_id, now=now_iso(), lease_until=lease))

        async def both() -> int:
            async with runtime(node) as rt:
                other = asyncio.create_task(another_deliverer())
                delivered = await deliver_due(node, rt.client, rng=random.Random(1), job_ids=[job_id],
                                              lease_seconds=2.0)  # fmt: skip
                await other
                return delivered

        assert asyncio.run(both()) == 1
        assert taken_meanwhile == [False, False]
        found = outbox.get(node.db, job_id)
        assert found is not None and found.status == "done"
        assert handler.delivered == 1
