"""Records requests as stored: read one back, carry out a transition's effects (sign, store and queue the
request or an answer in its turn, tell the coordinators), and follow the transfer a release started to its end
(spec/requests.md §2).

Apart from :mod:`node.requests_flow` (which submits, receives and answers requests) because the transfer engine
calls :func:`follow_transfer` on every change of a sending transfer, and the flow itself sends transfers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from node.clock import iso, now_iso, utc_now
from node.delivery_status import AnswerDeferred, deliveries
from node.home import Node
from node.message_thread import coordinator_words
from node.notify import notify_coordinators
from node.operators import record
from node.own_signatures import JobWithdrawn, job_payload_now, signed_now
from protocol.descriptor import FEATURE_RELEASE_FAILED, verify_descriptor
from protocol.records_request import (
    PURPOSE_REQUEST,
    PURPOSE_RESPONSE,
    RecordsRequest,
    RequestResponse,
    ResponseKind,
    parse_records_request,
    parse_request_response,
    sign_records_request,
    sign_request_response,
)
from protocol.request_compat import in_words, needs_words
from protocol.request_states import (
    NotifyCoordinators,
    RequestSide,
    RequestState,
    RequestStatus,
    ResendResponse,
    SendRequest,
    SendResponse,
)
from protocol.request_states import follow_transfer as request_follows
from protocol.signed_document import verify_document
from protocol.transfer_status import SenderState
from storage import outbox, peers
from storage import request_messages as messages
from storage import requests as store
from storage import transfers as transfer_store
from storage.database import write_transaction
from storage.outbox import Job
from storage.requests import RequestRow

REQUEST_TYPE = "application/satchel-records-request+json"
RESPONSE_TYPE = "application/satchel-request-response+json"
# Retried for 30 days like a transfer's receipts (spec/requests.md §4 step 6), then given up and told.
RETRY_DAYS = 30
SUBJECTS = {
    "request.received": "Records request {id} from {peer}",
    "request.released": "Records request {id} was released by {peer}",
    "request.rejected": "Records request {id} was rejected by {peer}",
    "request.cancelled": "Records request {id} was cancelled by {peer}",
    "request.overdue": "Reminder: records request {id} from {peer} is unanswered",
    # Not the text: e-mail is not end-to-end encrypted, and a message may name the student.
    "request.message": "New message from {peer} about records request {id}",
}


# What the releasing coordinators can do about a request whose release failed.
_ANSWER_AGAIN = ("\nRelease them again: satchel requests release {id} --student SIS_ID ...\n"
                 "or reject the request: satchel requests reject {id} --comments TEXT")
# ... and about one they have not answered yet.
_ANSWER = ("\nRelease the records: satchel requests release {id} --student SIS_ID --all-records\n"
           "or reject the request: satchel requests reject {id} --comments TEXT")


def _due_words(node: Node, status: RequestStatus) -> str:
    """By when the releaser's answer is owed, as `requests show` says it; "" while none is owed."""
    due = status.due_on(holidays=node.config.requests.holidays)
    if due is None:
        return ""
    late = status.overdue(today=local_now(node).date(), holidays=node.config.requests.holidays)
    since = f" from {status.failed_on}, when the release failed" if status.failed_on else ""
    return f"An answer {'was' if late else 'is'} due by {due} ({status.working_days} working days{since}).\n"


def local_now(node: Node) -> datetime:
    # Working days are counted in the district's own calendar: its time zone (requests.timezone), else the
    # machine's.
    zone = node.config.requests.timezone
    return (datetime.now(zone) if zone is not None else datetime.now().astimezone()).replace(microsecond=0)


# A stored request or answer had its signer checked against the other district's keys when it arrived (or
# it is this node's own): the key named in it still checks the bytes, and a key the district retired or
# revoked, or this node forgot, since must not hide who asked or what was said, nor keep the request from
# being answered (spec/requests.md §4). Whatever reads a stored one back goes through these. And it is read as
# the version that stored it took it: one kept before the one-line rule may hold a tab in a name.


def stored_request(signed: bytes) -> RecordsRequest:
    return parse_records_request(verify_document(signed, purpose=PURPOSE_REQUEST).payload, stored=True)


def stored_response(signed: bytes) -> RequestResponse:
    return parse_request_response(verify_document(signed, purpose=PURPOSE_RESPONSE).payload, stored=True)


def status_of(node: Node, row: RequestRow) -> RequestStatus:
    return RequestStatus(
        side=RequestSide(row.side), state=RequestState(row.state), local_domain=node.config.node.domain,
        request=stored_request(row.signed_request), opened_on=date.fromisoformat(row.opened_on),
        transfer_id=row.transfer_id, overdue_flagged=row.overdue_flagged, working_days=row.working_days,
        reminded_on=date.fromisoformat(row.reminded_on) if row.reminded_on else None,
        failed_on=date.fromisoformat(row.failed_on) if row.failed_on else None,
    )  # fmt: skip


def carry_out(node: Node, status: RequestStatus, effects: tuple, *, request_id: str, peer: str) -> bytes | None:
    """Sign, store and queue what the machine asks; returns a stored response to answer with again."""
    resent = None
    for effect in effects:
        if isinstance(effect, SendRequest):
            signed = sign_records_request(effect.request, node.current_keys().identity)
            store.update(node.db, request_id, signed_request=signed)
            _queue(node, peer, "/satchel/v1/requests", signed, REQUEST_TYPE, request_job(request_id))
        elif isinstance(effect, SendResponse):
            signed = sign_request_response(effect.response, node.current_keys().identity)
            if effect.response.kind is ResponseKind.MESSAGE:  # beside the answer, each in its own delivery
                if not messages.add(node.db, request_id=request_id, direction="out", signed=signed,
                                    at=iso(effect.response.created)):  # fmt: skip
                    continue  # the same words by the same person in the same second: signed alike, sent once
                job = message_job(messages.key_of(signed))
            else:
                number = store.require(node.db, request_id).answers_sent + 1
                store.update(node.db, request_id, signed_response=signed, answers_sent=number)
                job = response_job(request_id, number)
            _queue(node, peer, f"/satchel/v1/requests/{request_id}/responses", signed, RESPONSE_TYPE, job)
        elif isinstance(effect, ResendResponse):
            kept = store.require(node.db, request_id).signed_response
            resent = None if kept is None else signed_now_kept(node, request_id, kept, purpose=PURPOSE_RESPONSE)
        elif isinstance(effect, NotifyCoordinators):
            _notify(node, effect.topic, status, request_id, peer)
    store.update(node.db, request_id, state=status.state.value, transfer_id=status.transfer_id,
                 overdue_flagged=int(status.overdue_flagged), updated_at=now_iso(),
                 reminded_on=status.reminded_on.isoformat() if status.reminded_on else None,
                 failed_on=status.failed_on.isoformat() if status.failed_on else None)  # fmt: skip
    return resent


def signed_now_kept(node: Node, request_id: str, signed: bytes, *, purpose: str) -> bytes:
    """``signed``, this node's request or answer about ``request_id``, as it is to leave now
    (node.own_signatures); what this node keeps of it becomes what this returns. Inside a write transaction."""
    fresh = signed_now(node, signed, purpose=purpose)
    if fresh != signed:
        store.replace_signed(node.db, request_id, old=signed, new=fresh)
    return fresh


# What each signed document a request job carries is signed as, by its content type.
PURPOSE_OF_TYPE = {REQUEST_TYPE: PURPOSE_REQUEST, RESPONSE_TYPE: PURPOSE_RESPONSE}


def request_job_payload(node: Node, job: Job) -> bytes:
    """What the outbox job of a request, an answer or a message sends now (node.own_signatures.job_payload_now):
    this node's copy of it, in records_requests or the thread, is kept as sent."""
    purpose = PURPOSE_OF_TYPE[job.content_type]

    def keep(old: bytes, new: bytes) -> None:
        request_id = stored_request(old).request_id if purpose == PURPOSE_REQUEST else stored_response(old).request_id
        store.replace_signed(node.db, request_id, old=old, new=new)
        messages.replace_signed(node.db, request_id, old=old, new=new)

    signed = job_payload_now(node, job, purpose=purpose, keep=keep)
    return as_the_peer_takes_it(node, job, signed) if purpose == PURPOSE_RESPONSE else signed


def peer_supports(node: Node, domain: str, feature: str) -> bool:
    """Whether the descriptor this node last fetched from ``domain`` lists ``feature`` (spec/descriptor.md,
    Features); a peer it holds no descriptor of is taken to be of an older version."""
    peer = peers.get(node.db, domain)
    if peer is None:
        return False
    return verify_descriptor(peer.descriptor, check_shown=False).descriptor.supports(feature)


def as_the_peer_takes_it(node: Node, job: Job, signed: bytes) -> bytes:
    """``signed``, the answer ``job`` carries, or the message that says it in words for a peer whose version
    refuses it (protocol.request_compat, spec/requests.md §4). The job then carries the message, which is what
    was sent; this node keeps the answer it gave. Once one answer about a request went in words, the later ones
    go in words too, whatever the peer's descriptor says by then: its request never left ``released``."""
    numbered = _answer_number(job.job_id)
    if numbered is None:
        return signed  # a message: every version takes it
    response = stored_response(signed)
    if not needs_words(response, answer_number=numbered[1]):
        return signed
    if peer_supports(node, job.peer, FEATURE_RELEASE_FAILED) and not _went_in_words(node, *numbered):
        return signed
    words = sign_request_response(in_words(response), node.current_keys().identity)
    with write_transaction(node.db):
        if not outbox.replace_payload(node.db, job.job_id, old=signed, new=words):
            raise JobWithdrawn(f"outbox job {job.job_id} was withdrawn while being put in words; not sent")
    return words


def _went_in_words(node: Node, request_id: str, number: int) -> bool:
    """Whether this node's answer before the ``number``-th about ``request_id`` was sent as a message."""
    before = outbox.get(node.db, response_job(request_id, number - 1)) if number > 1 else None
    return before is not None and stored_response(before.payload).kind is ResponseKind.MESSAGE


def _notify(node: Node, topic: str, status: RequestStatus, request_id: str, peer: str) -> None:
    next_step = f"See it with: satchel requests show {request_id}"
    requester = status.side is RequestSide.REQUESTER
    failed = status.state is RequestState.RELEASE_FAILED
    if topic == "request.overdue" and requester and (unsent := None if failed else _unsent(node, request_id, peer)):
        # Not an answer that is late: the request never reached them, and asking their coordinator would not help.
        subject = f"Records request {request_id} to {peer} has not reached them yet"
        next_step = f"{unsent}\n{next_step}"
    elif topic == "request.overdue" and requester:
        # The requester's own request has waited: the one who can move it is the other district's coordinator.
        subject = (f"Records request {request_id} to {peer} has no new answer since its release failed" if failed
                   else f"Records request {request_id} to {peer} has no answer yet")  # fmt: skip
        who = coordinator_words(node, peer)
        if who:
            next_step = (f"Their transfer coordinator: {who}.\n"
                         f"{next_step}; write to them with: satchel requests message {request_id} TEXT")
    elif topic == "request.overdue" and failed:
        subject = f"Reminder: records request {request_id} from {peer} is unanswered since its release failed"
        next_step += _ANSWER_AGAIN.format(id=request_id)
    elif topic == "request.release_failed" and requester:
        subject = (f"The records {peer} released for request {request_id} were opened here, then refused"
                   if _opened(node, status) else
                   f"The records {peer} released for request {request_id} did not reach this district")  # fmt: skip
        next_step += f"\n{peer} will release them again in a new transfer, or reject the request."
    elif topic == "request.release_failed":
        subject = (f"Records request {request_id} from {peer} is open again: they opened the records released, then "
                   "refused them" if _opened(node, status) else
                   f"Records request {request_id} from {peer} is open again: the records released did not reach it")
        next_step += _ANSWER_AGAIN.format(id=request_id)
    else:
        subject = SUBJECTS.get(topic, "Records request {id}").format(id=request_id, peer=peer)
        if topic in ("request.received", "request.overdue"):  # at the releaser, which owes the answer
            next_step += _ANSWER.format(id=request_id)
        elif topic == "request.released" and status.transfer_id is not None:
            who = coordinator_words(node, peer)
            next_step += (f"\nThe records come as transfer {status.transfer_id}, sealed until you enter the code "
                          f"{peer}'s transfer coordinator{f' ({who})' if who else ''} reads you by phone:\n"
                          f"satchel accept {status.transfer_id} --code CODE")
    due = _due_words(node, status) if topic in _OWED else ""
    notify_coordinators(node, subject=subject, body=f"{subject}.\n\n{due}{next_step}\n",
                        while_unanswered=request_id if topic == "request.overdue" else None)  # fmt: skip


def _opened(node: Node, status: RequestStatus) -> bool:
    """Whether the requester opened the records of the release that failed before refusing them (either side
    knows it from its own timeline of the transfer)."""
    return status.transfer_id is not None and transfer_store.opened_by_receiver(node.db, status.transfer_id)


# The notices about a request that waits for the releaser's answer: each says by when it is owed.
_OWED = frozenset({"request.received", "request.overdue", "request.release_failed"})


# The outbox jobs of records requests, by what they carry (node.undelivered names them back from these).
REQUEST_KIND = "request"
REQUEST_JOB_PREFIX = "request-"
MESSAGE_JOB_PREFIX = "request-message-"
RESPONSE_JOB_PREFIX = "response-"


def _unsent(node: Node, request_id: str, peer: str) -> str | None:
    """What became of this node's own request ``request_id`` while it has not been delivered; None once it was."""
    delivery = deliveries(node.db, {"request": request_job(request_id)}).get("request")
    if delivery is None or delivery["status"] not in ("waiting", "not delivered"):
        return None
    said = f"{delivery['attempts']} attempt(s)" + (
        f"; the last try: {delivery['last_error']}" if delivery["last_error"] else ""
    )
    if delivery["status"] == "not delivered":
        return (f"Its delivery failed for good ({said}). Cancel it with: satchel requests cancel {request_id}\n"
                f"and ask again with: satchel request --from {peer} ...")  # fmt: skip
    return f"It is still being sent ({said}). Check that {peer} can be reached with: satchel peers ping {peer}"


def request_job(request_id: str) -> str:
    return f"{REQUEST_JOB_PREFIX}{request_id}"


def message_job(message_key: str) -> str:
    """The outbox job of an outgoing message, by the key it is kept under (storage.request_messages)."""
    return f"{MESSAGE_JOB_PREFIX}{message_key[:32]}"


def response_job(request_id: str, number: int = 1) -> str:
    """The outbox job that carries this node's ``number``-th answer about a request (a release, a rejection,
    the news that a release failed, or the requester's cancellation); the first keeps the name it always had."""
    return f"{RESPONSE_JOB_PREFIX}{request_id}" + (f"-{number}" if number > 1 else "")


def latest_answer_job(row: RequestRow) -> str | None:
    """The job of the last answer this node signed about the request, if it signed any."""
    return response_job(row.request_id, row.answers_sent) if row.answers_sent else None


def _answer_number(job_id: str) -> tuple[str, int] | None:
    if not job_id.startswith(RESPONSE_JOB_PREFIX):
        return None
    request_id, _, number = job_id.removeprefix(RESPONSE_JOB_PREFIX).partition("-")
    return request_id, int(number or 1)


def check_answer_turn(node: Node, job: Job) -> None:
    """Raise AnswerDeferred while the answer signed before ``job``'s about the same request waits to be
    delivered: the other node takes a request's answers in the order they were given (a release, the news
    that it failed, the next release)."""
    numbered = _answer_number(job.job_id)
    if numbered is None or numbered[1] == 1:
        return
    before = outbox.get(node.db, response_job(numbered[0], numbered[1] - 1))
    if before is not None and before.status == "pending":
        raise AnswerDeferred(f"the answer before it about records request {numbered[0]} is not delivered yet")


def next_answer_due(node: Node, job: Job) -> None:
    """``job`` is delivered or given up: the answer after it, held back behind it, goes now rather than after
    its backoff. Inside a write transaction."""
    numbered = _answer_number(job.job_id)
    if numbered is not None:
        outbox.make_due(node.db, response_job(numbered[0], numbered[1] + 1), now_iso())


def _queue(node: Node, domain: str, path: str, payload: bytes, content_type: str, job_id: str) -> None:
    peer = peers.get(node.db, domain)
    base = peer.base_url if peer else f"https://{domain}"
    outbox.enqueue(node.db, job_id=job_id, kind=REQUEST_KIND, peer=domain, url=base + path, payload=payload,
                   content_type=content_type, now=now_iso(),
                   expires_at=iso(utc_now() + timedelta(days=RETRY_DAYS)))  # fmt: skip


def follow_transfer(node: Node, transfer_id: str, state: str, *, actor: str, reason: str = "") -> None:
    """The sending side of ``transfer_id`` reached ``state`` (``actor`` moved it; ``reason``, the one its receipt
    gave): a release whose transfer ended without the records being imported opens its request again, and the
    requester is told, as opened and then refused when it opened them first. Call inside the write transaction
    that changed the transfer."""
    try:
        ending = SenderState(state)
    except ValueError:
        return
    row = store.released_in(node.db, transfer_id)
    if row is None or row.transfer_id != transfer_id or row.state != RequestState.RELEASED.value:
        return  # not a release, or its request was answered again since
    assert row.signed_response is not None  # a released request holds its release, as signed here
    person = stored_response(row.signed_response).person  # who released, named in the news
    opened = transfer_store.opened_by_receiver(node.db, transfer_id)
    transition = request_follows(status_of(node, row), transfer_id=transfer_id, transfer_state=ending,
                                 person=person, now=local_now(node), opened=opened, reason=reason)  # fmt: skip
    if transition is None:
        return
    carry_out(node, transition.status, transition.effects, request_id=row.request_id, peer=row.peer)
    record(node, actor, "request.release_failed", row.request_id,
           {"transfer": transfer_id, "ending": state} | ({"opened": True} if opened else {}))  # fmt: skip
