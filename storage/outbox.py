"""The durable outbox: messages to other nodes, kept until delivered (or expired), retried with backoff.

A job is written in the same transaction as the change that needs it, so a crash can never lose a
message nor send one for a change that did not happen. Delivery is at-least-once; receivers deduplicate
by message id, which makes it exactly-once in effect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import sqlite_utils

from storage.temp_files import process_running


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    kind: str
    peer: str
    url: str
    payload: bytes
    content_type: str
    status: str
    attempts: int
    next_attempt_at: str
    expires_at: str | None
    last_error: str | None
    created_at: str


_COLS = (
    "job_id, kind, peer, url, payload, content_type, status, attempts, next_attempt_at, expires_at,"
    " last_error, created_at"
)


def _job(row: tuple) -> Job:
    values = list(row)
    values[4] = bytes(values[4])
    return Job(*values)


def enqueue(
    db: sqlite_utils.Database,
    *,
    job_id: str,
    kind: str,
    peer: str,
    url: str,
    payload: bytes,
    content_type: str,
    now: str,
    expires_at: str | None = None,
) -> None:
    """Idempotent on ``job_id``: enqueuing the same message twice keeps the first."""
    db.execute(
        "INSERT INTO outbox (job_id, kind, peer, url, payload, content_type, next_attempt_at, expires_at,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING",
        [job_id, kind, peer, url, payload, content_type, now, expires_at, now],
    )


def due(
    db: sqlite_utils.Database, now: str, *, limit: int = 20, job_ids: list[str] | None = None,
    mail: bool | None = None,
) -> list[Job]:
    """Jobs due now: only e-mails (``mail`` True), none (False), or both (None)."""
    sql = f"SELECT {_COLS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?"
    args: list[object] = [now]
    if mail is not None:
        sql += " AND kind = 'email'" if mail else " AND kind != 'email'"
    if job_ids is not None:
        sql += f" AND job_id IN ({','.join('?' * len(job_ids))})"
        args += job_ids
    # Peers first: a mail server that hangs for its timeout must not hold envelopes and receipts up behind it.
    sql += " ORDER BY kind = 'email', next_attempt_at LIMIT ?"
    return [_job(r) for r in db.execute(sql, [*args, limit]).fetchall()]


def get(db: sqlite_utils.Database, job_id: str) -> Job | None:
    row = db.execute(f"SELECT {_COLS} FROM outbox WHERE job_id = ?", [job_id]).fetchone()
    return _job(row) if row else None


def get_many(db: sqlite_utils.Database, job_ids: list[str]) -> dict[str, Job]:
    """The jobs of these ids that exist, by id, in one query."""
    if not job_ids:
        return {}
    rows = db.execute(
        f"SELECT {_COLS} FROM outbox WHERE job_id IN ({','.join('?' * len(job_ids))})", job_ids
    ).fetchall()
    return {job.job_id: job for job in map(_job, rows)}


def pending(db: sqlite_utils.Database) -> list[Job]:
    rows = db.execute(f"SELECT {_COLS} FROM outbox WHERE status = 'pending' ORDER BY created_at").fetchall()
    return [_job(r) for r in rows]


def replace_payload(db: sqlite_utils.Database, job_id: str, *, old: bytes, new: bytes) -> bool:
    """Put ``new`` in place of a pending job's payload ``old`` (signed again: node.own_signatures); False when the
    job is no longer pending or carries something else."""
    cursor = db.execute(
        "UPDATE outbox SET payload = ? WHERE job_id = ? AND status = 'pending' AND payload = ?", [new, job_id, old]
    )
    return cursor.rowcount == 1


def make_due(db: sqlite_utils.Database, job_id: str, now: str) -> bool:
    """Bring a pending job's next attempt forward to ``now`` (its backoff waived); False if it is not pending."""
    cursor = db.execute(
        "UPDATE outbox SET next_attempt_at = ? WHERE job_id = ? AND status = 'pending'", [now, job_id]
    )
    return cursor.rowcount == 1


def make_due_prefixed(db: sqlite_utils.Database, prefix: str, now: str) -> int:
    """Bring forward every pending job whose id starts with ``prefix``, its backoff forgotten; how many."""
    cursor = db.execute(
        "UPDATE outbox SET next_attempt_at = ?, attempts = 0 WHERE substr(job_id, 1, ?) = ? AND status = 'pending'",
        [now, len(prefix), prefix],
    )
    return cursor.rowcount


def cancel_prefixed(db: sqlite_utils.Database, prefix: str, now: str) -> int:
    """Withdraw every pending job whose id starts with ``prefix``; how many."""
    cursor = db.execute(
        "UPDATE outbox SET status = 'cancelled', done_at = ? WHERE substr(job_id, 1, ?) = ? AND status = 'pending'",
        [now, len(prefix), prefix],
    )
    return cursor.rowcount


def supersede(db: sqlite_utils.Database, *, kind: str, url: str, now: str) -> int:
    """Withdraw the pending jobs of ``kind`` to ``url``, which a new one carrying the whole of what they carried
    replaces; how many."""
    cursor = db.execute(
        "UPDATE outbox SET status = 'cancelled', done_at = ? WHERE kind = ? AND url = ? AND status = 'pending'",
        [now, kind, url],
    )
    return cursor.rowcount


def claim(db: sqlite_utils.Database, job_id: str, *, now: str, lease_until: str) -> bool:
    """Take a due job for one delivery attempt. Only one deliverer (a `satchel` command or the server's
    worker) wins; the lease makes a crashed deliverer's job due again when it runs out. The lease names this
    process, so a server that starts beside a command still delivering leaves the command's leases alone."""
    cursor = db.execute(
        "UPDATE outbox SET leased_until = ?, leased_by = ? WHERE job_id = ? AND status = 'pending'"
        " AND next_attempt_at <= ? AND (leased_until IS NULL OR leased_until <= ?)",
        [lease_until, os.getpid(), job_id, now, now],
    )
    return cursor.rowcount == 1


def renew_lease(db: sqlite_utils.Database, job_id: str, *, held: str, until: str | None) -> bool:
    """Extend this process's lease ``held`` on a job still being delivered (or end it: ``until`` None); False
    when it is no longer held (it ran out and another deliverer took the job, or the job was withdrawn)."""
    cursor = db.execute(
        "UPDATE outbox SET leased_until = ? WHERE job_id = ? AND status = 'pending' AND leased_until = ?"
        " AND leased_by = ?",
        [until, job_id, held, os.getpid()],
    )
    return cursor.rowcount == 1


def in_flight(db: sqlite_utils.Database, now: str, *, created_since: str = "", job_id: str | None = None) -> int:
    """Pending jobs queued at or after ``created_since`` (and the job ``job_id``, whenever it was queued) that
    some deliverer holds a lease on right now."""
    # Not e-mails: a command waits for what it sent the other district, never for the district's own mail server.
    row = db.execute(
        "SELECT count(*) FROM outbox WHERE status = 'pending' AND leased_until > ? AND (created_at >= ? OR job_id = ?)"
        " AND kind != 'email'",
        [now, created_since, job_id],
    ).fetchone()
    return int(row[0])


def unsent_since(db: sqlite_utils.Database, now: str, *, created_since: str) -> list[Job]:
    """Jobs queued at or after ``created_since`` that an attempt failed and no deliverer holds right now: still
    pending (to be retried) or failed for good; what a command that queued them should tell its operator."""
    rows = db.execute(
        f"SELECT {_COLS} FROM outbox WHERE created_at >= ? AND last_error IS NOT NULL"
        " AND (status = 'failed' OR (status = 'pending' AND (leased_until IS NULL OR leased_until <= ?)))"
        " ORDER BY created_at",
        [created_since, now],
    ).fetchall()
    return [_job(r) for r in rows]


def release_leases(db: sqlite_utils.Database) -> int:
    """At server start: leases held by a process that died are released, so nothing waits for them. Those of a
    `satchel` command still delivering stay: it renews them while it works."""
    held = db.execute("SELECT job_id, leased_by FROM outbox WHERE leased_until IS NOT NULL").fetchall()
    gone = [job_id for job_id, pid in held if pid is None or pid == os.getpid() or not process_running(pid)]
    for job_id in gone:
        db.execute("UPDATE outbox SET leased_until = NULL WHERE job_id = ?", [job_id])
    return len(gone)


def mark_done(db: sqlite_utils.Database, job_id: str, now: str) -> None:
    db.execute(
        "UPDATE outbox SET status = 'done', done_at = ?, last_error = NULL WHERE job_id = ?", [now, job_id]
    )


def mark_retry(db: sqlite_utils.Database, job_id: str, *, next_attempt_at: str, error: str) -> None:
    db.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, leased_until = NULL"
        " WHERE job_id = ?",
        [next_attempt_at, error[:500], job_id],
    )


def defer(db: sqlite_utils.Database, *, kind: str, until: str, now: str) -> None:
    """Push the pending jobs of ``kind`` due before ``until``, and held by no deliverer, back to ``until``,
    without counting an attempt: they were not tried."""
    db.execute(
        "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending' AND kind = ? AND next_attempt_at < ?"
        " AND (leased_until IS NULL OR leased_until <= ?)",
        [until, kind, until, now],
    )


def mark_failed(db: sqlite_utils.Database, job_id: str, *, error: str, now: str) -> bool:
    """Give a pending job up for good; False when it was no longer pending (withdrawn while on its way)."""
    cursor = db.execute(
        "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, done_at = ?, leased_until = NULL"
        " WHERE job_id = ? AND status = 'pending'",
        [error[:500], now, job_id],
    )
    return cursor.rowcount == 1


def cancel(db: sqlite_utils.Database, job_id: str, now: str) -> None:
    db.execute(
        "UPDATE outbox SET status = 'cancelled', done_at = ? WHERE job_id = ? AND status = 'pending'",
        [now, job_id],
    )
