"""Telling people: an inbox entry per notification, and an e-mail to each coordinator through the outbox.

Notifications are written in the transaction of the change they report; the e-mails ride the durable
outbox, so a mail server that is down delays them (14 days at most; the inbox entry stays after that).
Texts name transfers, districts and counts, never a student's record contents.
"""

from __future__ import annotations

import json
from datetime import timedelta

from node.clock import iso, new_id, now_iso, utc_now
from node.home import Node
from storage import outbox, requests, users
from storage.database import write_transaction

EMAIL_KIND = "email"
WHILE_UNANSWERED = "while_unanswered"  # in an e-mail job's payload: the records request it reminds of
# A mail server down for longer than this: the e-mail is given up; the inbox entry stays, so nothing is lost.
MAIL_RETRY_DAYS = 14


def notify_coordinators(
    node: Node, *, subject: str, body: str, transfer_id: str | None = None, while_unanswered: str | None = None
) -> str:
    """Record a notification for the node's coordinators and admins, and queue an e-mail to each.

    ``while_unanswered`` names a records request the notice reminds of: its e-mails, should the mail server
    keep them waiting until the request is answered or cancelled, are dropped rather than sent late
    (:func:`still_worth_sending`); the inbox entry stays."""
    notification_id = new_id()
    now = now_iso()
    node.db.execute(
        "INSERT INTO notifications (notification_id, at, audience, subject, body, transfer_id)"
        " VALUES (?, ?, 'coordinators', ?, ?, ?)",
        [notification_id, now, subject, body, transfer_id],
    )
    if not node.config.smtp.host:
        return notification_id
    for user in users.list_all(node.db):
        if user.active and user.role in ("admin", "coordinator"):
            mail = {"to": user.email, "subject": subject, "body": body}
            if while_unanswered is not None:
                mail[WHILE_UNANSWERED] = while_unanswered
            payload = json.dumps(mail).encode()
            outbox.enqueue(
                node.db, job_id=f"{notification_id}-{user.username}", kind=EMAIL_KIND, peer="smtp",
                url=f"smtp://{node.config.smtp.host}", payload=payload, content_type="application/json", now=now,
                expires_at=iso(utc_now() + timedelta(days=MAIL_RETRY_DAYS)),
            )  # fmt: skip
    return notification_id


def inbox(node: Node, *, unread_only: bool = False, limit: int = 100) -> list[dict[str, str | None]]:
    sql = "SELECT notification_id, at, subject, body, transfer_id, read_at FROM notifications"
    if unread_only:
        sql += " WHERE read_at IS NULL"
    rows = node.db.execute(sql + " ORDER BY at DESC, notification_id DESC LIMIT ?", [limit]).fetchall()
    keys = ("id", "at", "subject", "body", "transfer_id", "read_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def mark_read(node: Node, *, actor: str | None, notification_ids: list[str]) -> int:
    """Mark notifications read for every coordinator (they share one inbox), so only one of them, or an admin,
    may: a transfer marked read is one nobody looks at. How many were unread."""
    from node.operators import authorize, record  # node.operators' imports reach this module

    now = now_iso()
    with write_transaction(node.db):
        user = authorize(node, actor, "transfers.act")
        cursor = node.db.conn.executemany(
            "UPDATE notifications SET read_at = ? WHERE notification_id = ? AND read_at IS NULL",
            [(now, n) for n in notification_ids],
        )
        if cursor.rowcount:
            record(node, user.username, "inbox.mark_read", "", {"notifications": cursor.rowcount})
    return cursor.rowcount


def still_worth_sending(node: Node, mail: dict[str, str]) -> bool:
    """Whether a queued e-mail still says something true: a reminder that a records request waits for an answer
    is not, once the request was answered or cancelled (it waited for a mail server that was down)."""
    request_id = mail.get(WHILE_UNANSWERED)
    if request_id is None:
        return True
    row = requests.get(node.db, request_id)
    return row is not None and row.state in ("requested", "release_failed")
