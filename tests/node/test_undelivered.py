"""What the outbox gives up on is told to the coordinators, in words that say what did not go and where to
look; a delivery withdrawn while on its way is not (node.undelivered, node.outbox_worker)."""

from __future__ import annotations

import asyncio
import random

import pytest

from node.clock import now_iso
from node.notify import inbox
from node.outbox_worker import deliver_due, refused_for_good
from node.runtime import runtime
from node.undelivered import tell_given_up
from storage import outbox
from storage.database import write_transaction

T = "01KE6QH3C0000000000000000T"
R = "01KE6QH3C0000000000000000R"
PAST = "2020-01-01T00:00:00Z"


def _job(node, job_id: str, path: str, *, kind: str = "receipt", expires_at: str | None = None) -> outbox.Job:
    with write_transaction(node.db):
        outbox.enqueue(node.db, job_id=job_id, kind=kind, peer="b.example.org", url=f"https://b.example.org{path}",
                       payload=b"{}", content_type="application/json", now=PAST, expires_at=expires_at)  # fmt: skip
    job = outbox.get(node.db, job_id)
    assert job is not None
    return job


@pytest.mark.parametrize(
    ("job_id", "path", "subject", "see"),
    [
        (f"receipt-{T}-receiver-3", f"/satchel/v1/transfers/{T}/messages", f"a message about transfer {T}",
         f"satchel transfers show {T}"),
        (f"receipt-{T}-receiver-2", f"/satchel/v1/transfers/{T}/receipts", f"a receipt about transfer {T}",
         f"satchel transfers show {T}"),
        (f"receipt-{T}-sender-1", f"/satchel/v1/transfers/{T}/cancel", f"the cancellation about transfer {T}",
         f"satchel transfers show {T}"),
        (f"request-{R}", "/satchel/v1/requests", f"the request about records request {R}",
         f"satchel requests show {R}"),
        (f"request-message-{'a' * 32}", f"/satchel/v1/requests/{R}/responses",
         f"a message about records request {R}", f"satchel requests show {R}"),
        (f"response-{R}", f"/satchel/v1/requests/{R}/responses", f"the answer about records request {R}",
         f"satchel requests show {R}"),
        ("odd-job", "/satchel/v1/elsewhere", "a delivery about outbox job odd-job", None),
    ],
)  # fmt: skip
def test_each_kind_of_delivery_is_named(node, job_id: str, path: str, subject: str, see: str | None) -> None:
    job = _job(node, job_id, path)
    with write_transaction(node.db):
        tell_given_up(node, job, "thread.full: the thread about it already holds 500 messages")
    (told,) = inbox(node)
    assert told["subject"] == f"b.example.org did not take {subject}"
    assert "and it will not be sent again: thread.full: " in (told["body"] or "")
    assert "Tell their transfer coordinator by phone or e-mail if it still matters." in (told["body"] or "")
    assert (see is not None and f"See it with: {see}" in (told["body"] or "")) or "See it with" not in told["body"]
    assert told["transfer_id"] == (T if "/transfers/" in path else None)


def test_an_expired_delivery_is_given_up_and_told(node) -> None:
    job = _job(node, f"receipt-{T}-receiver-3", f"/satchel/v1/transfers/{T}/messages", expires_at=PAST)

    async def deliver() -> int:
        async with runtime(node) as rt:  # the expired job is settled before any connection is made
            return await deliver_due(node, rt.client, rng=random.Random(1))

    assert asyncio.run(deliver()) == 0
    found = outbox.get(node.db, job.job_id)
    assert found is not None and found.status == "failed"
    assert found.last_error == "its delivery expired before the other node took it"
    (told,) = inbox(node)
    assert told["subject"] == f"b.example.org did not take a message about transfer {T}"


def test_a_job_withdrawn_on_its_way_stays_withdrawn(node) -> None:
    job = _job(node, f"response-{R}", f"/satchel/v1/requests/{R}/responses", kind="request")
    with write_transaction(node.db):
        outbox.cancel(node.db, job.job_id, now_iso())  # an answer crossed this cancellation
        assert not outbox.mark_failed(node.db, job.job_id, error="request.already_answered: x", now=now_iso())
    found = outbox.get(node.db, job.job_id)
    assert found is not None and found.status == "cancelled"


@pytest.mark.parametrize(
    ("status", "code", "for_good"),
    [
        (403, "transfer.disabled", False),  # switched back on later (spec/transfer.md §7)
        (401, "signature.expired", False),  # a clock corrected
        (401, "signature.not_yet_valid", False),
        (401, "signature.key_unknown", False),
        (401, "signature.replayed", False),
        (409, "request.not_received", False),  # overtook its request (spec/requests.md §4 step 6)
        (429, None, False),
        (408, None, False),
        (503, "storage.busy", False),
        (500, "satchel.internal", False),
        (409, "thread.full", True),
        (409, "request.already_answered", True),
        (409, "transfer.already_accepted", True),
        (400, "input.invalid", True),
    ],
)
def test_only_answers_that_cannot_heal_give_a_delivery_up(status: int, code: str | None, for_good: bool) -> None:
    assert refused_for_good(status, code) is for_good
