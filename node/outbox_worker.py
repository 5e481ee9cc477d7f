"""Delivering the outbox: each due job is POSTed signed; failures back off exponentially with full jitter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from node import mailer
from node.appkeys import NODE
from node.background_errors import log_failure
from node.clock import iso, now_iso, utc_now
from node.home import Node
from node.mailer import MailFailed, MailRefused
from node.notify import EMAIL_KIND, WHILE_UNANSWERED, still_worth_sending
from node.own_signatures import JobWithdrawn
from node.peer_client import PEER_CLIENT, PeerClient, PeerRefused
from node.peers import PeerUnreachable
from node.request_answers import REQUEST_KIND, check_answer_turn, next_answer_due, request_job_payload
from node.transfer_delivery import deliver_envelope, deliver_receipt
from node.transfer_engine import ENVELOPE_JOB, RECEIPT_JOB
from node.undelivered import tell_given_up
from protocol import SatchelError
from protocol.request_states import RequestNotReceived
from protocol.transfer_states import is_permanent_refusal
from storage import outbox
from storage.database import write_transaction
from storage.errors import as_storage_error

log = logging.getLogger("satchel.outbox")
BASE_DELAY = 2.0
# How long a delivery attempt holds a job without renewing its lease: a deliverer that dies mid-way frees
# the job after this. One that works longer (a gigabyte on a slow link) renews it every third of it.
LEASE_SECONDS = 120.0
MAX_DELAY = 3600.0
# Beside the refusals that may clear up by themselves for every delivery (spec/transfer.md §7: a key not
# learned yet, a clock corrected, transfers switched back on, a busy database; 408, 425, 429 and 5xx), an
# answer or message that overtook its request waits for it (separate deliveries, spec/requests.md §4 step 6).
RETRIED_FOR_REQUESTS = frozenset({RequestNotReceived.code})


def refused_for_good(status: int, code: str | None) -> bool:
    """Whether another node's answer means the job will never go (given up and told), not "later"."""
    return code not in RETRIED_FOR_REQUESTS and is_permanent_refusal(status, code)


def backoff(attempts: int, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempts)]."""
    return rng.uniform(0, min(MAX_DELAY, BASE_DELAY * 2**attempts))


async def deliver_due(
    node: Node,
    client: PeerClient,
    *,
    rng: random.Random,
    job_ids: list[str] | None = None,
    lease_seconds: float = LEASE_SECONDS,
    mail: bool | None = None,
) -> int:
    """Try every due job once (only e-mails, none, or both: ``mail`` as in storage.outbox.due); returns how many
    were delivered."""
    delivered = 0
    mail_down = False
    for job in outbox.due(node.db, now_iso(), job_ids=job_ids, mail=mail):
        if mail_down and job.kind == EMAIL_KIND:
            continue  # deferred with the one that found the mail server down
        with write_transaction(node.db):
            lease = iso(utc_now() + timedelta(seconds=lease_seconds))
            if not outbox.claim(node.db, job.job_id, now=now_iso(), lease_until=lease):
                continue  # another deliverer took it
        if job.expires_at and job.expires_at <= now_iso():
            _give_up(node, job, "its delivery expired before the other node took it")
            continue
        try:
            await _holding_lease(node, job.job_id, lease, lease_seconds, _deliver(node, client, job))
        except _LeaseLost as exc:
            log.warning("%s", exc)
            continue
        except JobWithdrawn as exc:
            log.info("%s", exc)
            continue
        except MailFailed as exc:
            again = _retry(node, job.job_id, job.attempts, f"{exc.code}: {exc.message}", rng)
            if exc.server_down:
                # Each e-mail after it would wait out the same timeout (30 s) for nothing: they go at its next try.
                mail_down = True
                with write_transaction(node.db):
                    outbox.defer(node.db, kind=EMAIL_KIND, until=again, now=now_iso())
            continue
        except MailRefused as exc:  # no such mailbox: trying again sends nothing more
            _give_up(node, job, f"{exc.code}: {exc.message}")
            continue
        except PeerRefused as exc:
            # The other node's own hint is written for whoever sent the request: keep it for our operator.
            error = f"{exc.peer_code}: {exc.message}"
            if exc.hint and exc.hint != PeerRefused.default_hint:
                error += f"; their hint: {exc.hint}"
            if not refused_for_good(exc.status, exc.peer_code):
                _retry(node, job.job_id, job.attempts, error, rng)
            else:
                _give_up(node, job, error)
            continue
        except (PeerUnreachable, SatchelError) as exc:
            _retry(node, job.job_id, job.attempts, f"{exc.code}: {exc.message}", rng)
            continue
        except Exception as exc:
            # One job's unexpected failure (a local file unreadable, a bug) must not stop the jobs after it,
            # nor fail the command that only queued something else: it is logged and retried like the rest.
            log_failure(log, f"outbox job {job.job_id}", exc)
            known = as_storage_error(exc)
            _retry(node, job.job_id, job.attempts,
                   f"{known.code}: {known.message}" if known else f"satchel.internal: {type(exc).__name__}",
                   rng)  # fmt: skip
            continue
        with write_transaction(node.db):
            outbox.mark_done(node.db, job.job_id, now_iso())
            if job.kind == REQUEST_KIND:
                next_answer_due(node, job)
        delivered += 1
    return delivered


async def _deliver(node: Node, client: PeerClient, job: outbox.Job) -> None:
    if job.kind == EMAIL_KIND:
        mail = json.loads(job.payload)
        if not still_worth_sending(node, mail):
            log.info("outbox job %s: a reminder of a request answered since; not sent", job.job_id)
            return
        mail.pop(WHILE_UNANSWERED, None)
        await mailer.send(node.config.smtp, mailer.build_message(node.config.smtp, **mail))
        return
    if job.kind == ENVELOPE_JOB:
        await deliver_envelope(node, client, job)
        return
    if job.kind == RECEIPT_JOB:
        await deliver_receipt(node, client, job)
        return
    payload = job.payload
    if job.kind == REQUEST_KIND:
        check_answer_turn(node, job)
        payload = request_job_payload(node, job)
    parts = urlsplit(job.url)
    await client.call(f"{parts.scheme}://{parts.netloc}", "POST", parts.path, body=payload,
                      content_type=job.content_type, expect_domain=job.peer)  # fmt: skip


# After a renewal that failed (a busy database), the next try comes this soon: two misses at the usual pace
# would let the lease run out.
RENEW_AGAIN_SECONDS = 5.0


class _LeaseLost(Exception):
    """Another deliverer took the job while this attempt ran (this process could not renew its lease in
    time): the attempt stops, and the job's row is that deliverer's to update."""


async def _holding_lease(
    node: Node, job_id: str, lease: str, seconds: float, attempt: Coroutine[Any, Any, None]
) -> None:
    """Run one delivery attempt, renewing the job's lease while it lasts, so that no other deliverer (the
    server's worker beside a command) starts the same upload once a fixed lease would have run out."""
    work = asyncio.ensure_future(attempt)
    held: str | None = lease
    pause = seconds / 3
    try:
        while True:
            done, _ = await asyncio.wait([work], timeout=pause)
            if done:
                return work.result()  # the attempt's own error, if any, for deliver_due to judge
            until = iso(utc_now() + timedelta(seconds=seconds))
            try:
                with write_transaction(node.db):
                    renewed = outbox.renew_lease(node.db, job_id, held=held or "", until=until)
            except (SatchelError, sqlite3.Error) as exc:
                log.warning("outbox job %s: lease not renewed this time (%s)", job_id, exc)
                pause = RENEW_AGAIN_SECONDS
                continue
            if not renewed:
                held = None
                work.cancel()
                await asyncio.wait([work])
                raise _LeaseLost(f"outbox job {job_id}: lease lost while delivering; stopped")
            held, pause = until, seconds / 3
    except asyncio.CancelledError:
        # Shut down (or the command interrupted): the attempt stops with it, and its job is free at once.
        work.cancel()
        await asyncio.wait([work])
        if held is not None:
            with contextlib.suppress(SatchelError, sqlite3.Error), write_transaction(node.db):
                outbox.renew_lease(node.db, job_id, held=held, until=None)
        raise


def _give_up(node: Node, job: outbox.Job, error: str) -> None:
    with write_transaction(node.db):
        failed = outbox.mark_failed(node.db, job.job_id, error=error, now=now_iso())
        if job.kind == REQUEST_KIND:
            next_answer_due(node, job)  # no longer held back behind it
    # Not when it was withdrawn while on its way (an answer crossed a cancellation): nothing is missing then.
    # A refused envelope notifies through its transfer's state; an e-mail has no one else to tell.
    if not failed or job.kind in (EMAIL_KIND, ENVELOPE_JOB):
        return
    try:
        with write_transaction(node.db):
            tell_given_up(node, job, error)
    except Exception as exc:  # the job stays failed either way: it must not be sent again for a notice
        log_failure(log, f"telling coordinators of outbox job {job.job_id}", exc)


def _retry(node: Node, job_id: str, attempts: int, error: str, rng: random.Random) -> str:
    """Schedule the job's next try; returns when it is."""
    delay = backoff(attempts, rng)
    log.info("outbox job %s: retry in %.1fs (%s)", job_id, delay, error.split(":")[0])
    again = iso(utc_now() + timedelta(seconds=delay))
    with write_transaction(node.db):
        outbox.mark_retry(node.db, job_id, next_attempt_at=again, error=error)
    return again


async def settle(
    node: Node, *, timeout: float, created_since: str = "", job_id: str | None = None, poll: float = 0.2
) -> bool:
    """Wait, at most ``timeout`` seconds, while another deliverer (the serving node's worker, which may have
    taken a job a command had just queued) delivers a job queued at or after ``created_since``, or the job
    ``job_id`` (one the command asked to have delivered now, however old); True when none is in flight any
    more."""
    deadline = time.monotonic() + timeout
    while outbox.in_flight(node.db, now_iso(), created_since=created_since, job_id=job_id):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll)
    return True


async def outbox_worker(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: two owned tasks that deliver due jobs until shutdown, one to other nodes and one to the
    mail server, so that a mail server that hangs (30 s a message) holds up no envelope, receipt or answer."""
    rng = random.SystemRandom()
    with write_transaction(app[NODE].db):
        outbox.release_leases(app[NODE].db)

    async def loop(mail: bool) -> None:
        while True:
            try:
                await deliver_due(app[NODE], app[PEER_CLIENT], rng=rng, mail=mail)
            except Exception as exc:
                log_failure(log, "outbox pass", exc)
            await asyncio.sleep(1.0)

    tasks = [asyncio.create_task(loop(False), name="outbox"), asyncio.create_task(loop(True), name="outbox-mail")]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
