"""Where something this node sent another district stands, in a coordinator's words: waiting (with attempts
and the last answer), delivered, not delivered (refused for good, or its delivery expired), withdrawn."""

from __future__ import annotations

from typing import TypeVar

import sqlite_utils

from protocol import SatchelError
from storage import outbox

K = TypeVar("K")


class DeliveryDeferred(SatchelError):
    """A receipt or message waits until the envelope it is about has been delivered (order per transfer)."""

    code = "transfer.deferred"
    default_hint = "nothing to do: it is sent after the envelope"


class AnswerDeferred(SatchelError):
    """An answer about a records request waits until the answer before it has been delivered (order per
    request: a release, the news that it failed, the next release)."""

    code = "request.answer_deferred"
    default_hint = "nothing to do: it is sent after the answer before it"


_WORDS = {"pending": "waiting", "done": "delivered", "failed": "not delivered", "cancelled": "withdrawn"}


def deliveries(db: sqlite_utils.Database, job_ids: dict[K, str]) -> dict[K, dict[str, object]]:
    """``{key: outbox job id}`` -> ``{key: delivery}`` for the jobs that exist, in one query."""
    jobs = outbox.get_many(db, list(job_ids.values()))
    return {
        key: {"status": _WORDS.get(job.status, job.status), "attempts": job.attempts, "last_error": job.last_error}
        for key, job_id in job_ids.items()
        if (job := jobs.get(job_id)) is not None
    }


def delivery_words(delivery: dict[str, object] | None) -> str:
    """A delivery as a bracketed note after what was sent ("" when there is no job to speak of)."""
    if not delivery:
        return ""
    if delivery["status"] == "waiting" and str(delivery["last_error"]).startswith(DeliveryDeferred.code):
        return " [waiting until the envelope is delivered]"  # held back, never sent yet
    if delivery["status"] == "waiting" and str(delivery["last_error"]).startswith(AnswerDeferred.code):
        return " [waiting until the answer before it is delivered]"
    if delivery["status"] == "waiting" and delivery["attempts"]:
        return f" [waiting: tried {delivery['attempts']:,} time(s), last answer: {delivery['last_error']}]"
    if delivery["status"] == "not delivered":
        return f" [not delivered: {delivery['last_error']}]"
    return f" [{delivery['status']}]"
