"""Telling coordinators what the outbox gave up on: a receipt, message, answer or request that the other node
refused for good, or that could not be delivered before its delivery expired. Without this the command that
wrote it would have been the only one to hear (and only if the other node answered while it waited), and a
registrar would take a message nobody read for one delivered. Envelopes are not here: a refused envelope moves
its transfer to ``undeliverable``, which notifies on its own."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from node.home import Node
from node.message_thread import coordinator_words
from node.notify import notify_coordinators
from node.request_answers import MESSAGE_JOB_PREFIX, REQUEST_JOB_PREFIX
from storage import requests
from storage.outbox import Job

_ABOUT = re.compile(
    r"/satchel/v1/(?P<what>transfers|requests)/(?P<id>[^/]+)/(?P<to>messages|receipts|cancel|responses)$"
)
_TRANSFER_ITEMS = {"messages": "a message", "receipts": "a receipt", "cancel": "the cancellation"}


def tell_given_up(node: Node, job: Job, error: str) -> None:
    """Notify the coordinators of ``job``, given up; inside a write transaction."""
    path = urlsplit(job.url).path
    found = _ABOUT.search(path)
    transfer_id = None
    if found and found["what"] == "transfers":
        transfer_id = found["id"]
        item = _TRANSFER_ITEMS.get(found["to"], "a delivery")
        about, see = f"transfer {transfer_id}", f"transfers show {transfer_id}"
    elif found:
        row = requests.get(node.db, found["id"])
        # This node's one response: a requester's is its cancellation, a releaser's its release or rejection.
        one = "the cancellation" if row is not None and row.side == "requester" else "the answer"
        item = "a message" if job.job_id.startswith(MESSAGE_JOB_PREFIX) else one
        about, see = f"records request {found['id']}", f"requests show {found['id']}"
    elif path.endswith("/satchel/v1/requests") and job.job_id.startswith(REQUEST_JOB_PREFIX):
        request_id = job.job_id.removeprefix(REQUEST_JOB_PREFIX)
        item, about, see = "the request", f"records request {request_id}", f"requests show {request_id}"
    else:  # not a shape this node queues; said plainly rather than not at all
        item, about, see = "a delivery", f"outbox job {job.job_id}", None
    subject = f"{job.peer} did not take {item} about {about}"
    who = coordinator_words(node, job.peer)
    call = f"Tell their transfer coordinator by phone or e-mail{f' ({who})' if who else ''} if it still matters."
    body = f"{subject}, and it will not be sent again: {error}\n\n{call}\n"
    if see:
        body += f"See it with: satchel {see}\n"
    notify_coordinators(node, subject=subject, body=body, transfer_id=transfer_id)
