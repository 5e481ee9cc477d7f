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
        if address.endswith("@elsewhere.example"):
            return "554 5.7.1 relaying denied"  # the node's mail setup, not the mailbox: fixed, it goes
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
        district.cli("users", "add", "cleo", "--email", "cleo@elsewhere.example", "--name", "Cleo Clerk", "--role",
                     "coordinator", "--as", "admin")  # fmt: skip
        with open_node(district.home, district.env) as node:
            with write_transaction(node.db):
                notify_coordinators(node, subject="Transfer T arrived", body="See it with: satchel transfers show T")

            async def deliver() -> int:
                async with runtime(node) as rt:
                    return await deliver_due(node, rt.client, rng=random.Random(1))

            assert asyncio.run(deliver()) == 1
            jobs = dict(node.db.execute("SELECT job_id, status FROM outbox WHERE kind = 'email'").fetchall())
            errors = dict(node.db.execute("SELECT status, last_error FROM outbox WHERE status != 'done'").fetchall())
    finally:
        controller.stop()
    assert sorted(jobs.values()) == ["done", "failed", "pending"]
    assert handler.delivered == ["coord@a.example.org"]
    assert errors["failed"] == "mail.refused: 127.0.0.1 refused admin@a.example.org for good"
    assert errors["pending"].startswith("mail.failed: 127.0.0.1 refused cleo@elsewhere.example")
    # A command that only queued these tells nothing of them: the e-mails are the node's own notices.
    from cli.common import tell_unsent

    assert tell_unsent(str(district.home), "2000-01-01T00:00:00Z") is False
