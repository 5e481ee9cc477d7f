"""An e-mail the mail server refuses for good (a 5xx for its recipient) is given up, not retried, and the
other coordinators' e-mails still go (node.mailer, node.outbox_worker)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from aiosmtpd.controller import Controller

from node.home import open_node
from node.notify import notify_coordinators
from node.outbox_worker import deliver_due
from node.runtime import runtime
from storage.database import write_transaction

from support import free_port, make_district


class _Refusing:
    """Takes mail for the coordinator and refuses the admin's address for good."""

    def __init__(self) -> None:
        self.delivered: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        if address.startswith("admin@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.delivered += envelope.rcpt_tos
        return "250 OK"


def test_a_mailbox_refused_for_good_is_given_up_and_the_rest_delivered(tmp_path: Path) -> None:
    handler, port = _Refusing(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        district = make_district(tmp_path, "a.example.org", port)
        with open_node(district.home, district.env) as node:
            with write_transaction(node.db):
                notify_coordinators(node, subject="Transfer T arrived", body="See it with: satchel transfers show T")

            async def deliver() -> int:
                async with runtime(node) as rt:
                    return await deliver_due(node, rt.client, rng=random.Random(1))

            assert asyncio.run(deliver()) == 1
            jobs = dict(node.db.execute("SELECT job_id, status FROM outbox WHERE kind = 'email'").fetchall())
            errors = [r[0] for r in node.db.execute("SELECT last_error FROM outbox WHERE status = 'failed'")]
    finally:
        controller.stop()
    assert sorted(jobs.values()) == ["done", "failed"]
    assert handler.delivered == ["coord@a.example.org"]
    assert errors == ["mail.refused: 127.0.0.1 refused admin@a.example.org for good"]
