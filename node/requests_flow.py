"""Records requests: the new district asks, the previous one releases (as a transfer) or rejects.

protocol.request_states decides; this module submits, receives and answers requests, has
node.request_answers sign, store and queue the request and the answers and notify coordinators, and binds a
release to the transfer that carries the records (whose end node.request_answers follows).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from node import sending
from node.background_errors import log_failure
from node.clock import iso, new_id, now_iso
from node.delivery_status import deliveries
from node.district_state import contact
from node.home import Node
from node.manifest_builder import Selection
from node.matching import match_students
from node.message_thread import check_own_room, checked_text
from node.operators import TIMER, authorize, record
from node.request_answers import (
    carry_out,
    latest_answer_job,
    message_job,
    request_job,
    status_of,
    stored_response,
)
from node.request_answers import local_now as _now
from node.transfer_engine import resolve_peer_key
from protocol import InvalidInput, NotFound
from protocol.matching import IncomingStudent, MatchOutcome
from protocol.records_request import (
    MAX_COMMENTS,
    PURPOSE_RESPONSE,
    Enrolment,
    Person,
    RecordsRequest,
    RequestedStudent,
    RequestResponse,
    RequestStudentNotMatched,
    ResponseKind,
    check_release_allowed,
    verify_records_request,
    verify_request_response,
)
from protocol.request_states import (
    Cancel,
    Message,
    Reject,
    Release,
    RequestActor,
    RequestEventData,
    RequestMismatch,
    RequestNotReceived,
    RequestReceived,
    RequestSide,
    RequestState,
    RequestStatus,
    ResponseArrived,
    SendResponse,
    Submit,
    apply,
    due_events,
    new_request_status,
)
from protocol.signed_document import verify_document
from protocol.threads import check_room
from storage import outbox, peers, users
from storage import request_messages as messages
from storage import requests as store
from storage import students as student_store
from storage.database import write_transaction
from storage.requests import RequestRow

log = logging.getLogger("satchel.requests")


def submit(node: Node, *, actor: str | None, to: str, student_sis_id: str, comments: str = "") -> str:
    """Ask another district for a student's records; returns the request id."""
    user = authorize(node, actor, "transfers.act")
    if peers.get(node.db, to) is None:
        raise NotFound(f"no known district {to}", field="--from",
                       hint="find it with `satchel directory search --state XX NAME`")  # fmt: skip
    s = student_store.require(node.db, student_sis_id).record
    if not s.birth_date:
        raise InvalidInput(f"student {student_sis_id} has no birth date", field="--student",
                           hint="the releasing district needs it to find the student")  # fmt: skip
    if not s.enrollment_start:
        raise InvalidInput(f"student {student_sis_id} has no enrolment start date here", field="--student",
                           hint="a district releases records only to where the student is enrolled")  # fmt: skip
    own = contact(node)
    request = RecordsRequest(
        request_id=new_id(), from_domain=node.config.node.domain, to_domain=to, created=_now(node),
        student=RequestedStudent(family_name=s.family_name, given_name=s.given_name,
                                 birth_date=date.fromisoformat(s.birth_date), middle_name=s.middle_name or None,
                                 sex=s.sex, grade=s.grade, state_id=s.state_id or None),
        enrolment=Enrolment(school=s.school_name or s.school_id or "(not given)", grade=s.grade or "Other",
                            start_date=date.fromisoformat(s.enrollment_start)),
        requester=Person(name=user.full_name, email=user.email, phone=own.phone if own else "",
                         title=own.title if own and own.email == user.email else ""),
        comments=comments,
    )  # fmt: skip
    status = new_request_status(side=RequestSide.REQUESTER, local_domain=node.config.node.domain,
                                working_days=node.config.requests.overdue_working_days)  # fmt: skip
    transition = apply(status, Submit(request=request), actor=RequestActor.REQUESTER_COORDINATOR, now=_now(node))
    with write_transaction(node.db):
        store.insert(node.db, request_id=request.request_id, side="requester", state="requested", peer=to,
                     student_sis_id=student_sis_id, signed_request=b"", opened_on=_now(node).date().isoformat(),
                     working_days=status.working_days, created_by=user.username, created_at=now_iso(),
                     updated_at=now_iso())  # fmt: skip
        carry_out(node, transition.status, transition.effects, request_id=request.request_id, peer=to)
        record(
            node, user.username, "request.submit", student_sis_id, {"request": request.request_id, "to": to}
        )
    return request.request_id


def receive_request(node: Node, *, caller: str, signed: bytes) -> tuple[str, bytes | None]:
    """A request from another district (already HTTP-authenticated); idempotent on the request id."""
    request = verify_records_request(signed, resolve_peer_key(node))
    if request.from_domain != caller:
        raise RequestMismatch("the request is not from the calling district", field="from_domain")
    with write_transaction(node.db):
        row = store.get(node.db, request.request_id)
        if row is None:
            store.insert(node.db, request_id=request.request_id, side="releaser", state="absent", peer=caller,
                         signed_request=signed, opened_on=_now(node).date().isoformat(),
                         working_days=node.config.requests.overdue_working_days, created_at=now_iso(),
                         updated_at=now_iso())  # fmt: skip
            status = new_request_status(side=RequestSide.RELEASER, local_domain=node.config.node.domain,
                                        working_days=node.config.requests.overdue_working_days)  # fmt: skip
        else:
            status = status_of(node, row)
        transition = apply(
            status, RequestReceived(request=request), actor=RequestActor.REQUESTER_NODE, now=_now(node)
        )
        resent = carry_out(
            node, transition.status, transition.effects, request_id=request.request_id, peer=caller
        )
        if row is None:
            record(node, caller, "request.received", request.request_id, {"from": caller})
    return transition.status.state.value, resent


def receive_response(node: Node, *, caller: str, request_id: str, signed: bytes) -> str:
    response = verify_request_response(signed, resolve_peer_key(node))
    if response.from_domain != caller:
        raise RequestMismatch("the answer is not from the calling district", field="from_domain")
    if response.request_id != request_id:
        raise RequestMismatch("the answer is about another request than the one it was sent to", field="request_id")
    with write_transaction(node.db):
        row = store.get(node.db, request_id)
        if row is None:
            raise RequestNotReceived(f"no records request {request_id} has arrived here", field="request_id")
        if response.kind is ResponseKind.MESSAGE:
            return _message_arrived(node, row, response, signed)
        # A cancellation comes from the requester's node, every other answer from the releaser's (§2).
        cancelled = response.kind is ResponseKind.CANCELLED
        sent_by = RequestActor.REQUESTER_NODE if cancelled else RequestActor.RELEASER_NODE
        transition = apply(status_of(node, row), ResponseArrived(response=response), actor=sent_by, now=_now(node))
        crossed = latest_answer_job(row)
        if row.state == RequestState.CANCELLED.value and not cancelled and crossed is not None and (
            transition.status.state is not RequestState.CANCELLED
        ):
            # The releaser's answer crossed our cancellation and wins (§2): the cancellation, if it has not
            # gone yet, would only be refused as already answered.
            outbox.cancel(node.db, crossed, now_iso())
        if transition.status.state.value != row.state:
            # An answer delivered again, or news that changes nothing (a release failed, after the request was
            # cancelled), leaves the answer that stands in place.
            store.update(node.db, request_id, signed_response=signed)
        carry_out(node, transition.status, transition.effects, request_id=request_id, peer=caller)
        record(node, caller, f"request.{response.kind.value}", request_id, {"comments": response.comments})
    return transition.status.state.value


def _message_arrived(node: Node, row: RequestRow, response: RequestResponse, signed: bytes) -> str:
    """A message from the other district's coordinator: kept (once, however often it is delivered), and the
    coordinators here told. Inside the caller's transaction."""
    sent_by = RequestActor.RELEASER_NODE if row.side == "requester" else RequestActor.REQUESTER_NODE
    transition = apply(status_of(node, row), ResponseArrived(response=response), actor=sent_by, now=_now(node))
    held = messages.count(node.db, row.request_id)
    at = iso(response.created)
    if _kept_already(node, row.request_id, signed, at):
        return transition.status.state.value
    if messages.add(node.db, request_id=row.request_id, direction="in", signed=signed, at=at):
        check_room(held, about=f"records request {row.request_id}")  # the caller's rollback drops it
        carry_out(node, transition.status, transition.effects, request_id=row.request_id, peer=row.peer)
        record(node, row.peer, "request.message_received", row.request_id, {"text": response.comments})
    return transition.status.state.value


def _kept_already(node: Node, request_id: str, signed: bytes, at: str) -> bool:
    """Whether the message is kept here already under another signature: its writer's node signed it again
    after revoking the key that signed it first, and delivers it again (node.own_signatures). The same words
    by the same person in the same second are the same message (spec/requests.md §4 step 7)."""
    payload = verify_document(signed, purpose=PURPOSE_RESPONSE).payload
    return any(verify_document(m.signed, purpose=PURPOSE_RESPONSE).payload == payload
               for m in messages.of_request_at(node.db, request_id, "in", at))  # fmt: skip


def message(node: Node, *, actor: str | None, request_id: str, text: str) -> RequestResponse:
    """Write to the other district's coordinators about a request, in any state once it exists; the message is
    signed and delivered through the outbox, and changes nothing else (spec/requests.md §2)."""
    user = authorize(node, actor, "transfers.act")
    text = checked_text(text, limit=MAX_COMMENTS)
    with write_transaction(node.db):
        row = store.require(node.db, request_id)
        check_own_room(node, held=messages.count(node.db, request_id), about=f"records request {request_id}",
                       peer=row.peer)  # fmt: skip
        status = status_of(node, row)
        writer = RequestActor.REQUESTER_COORDINATOR if row.side == "requester" else RequestActor.RELEASER_COORDINATOR
        said = Message(person=_person(node, user.username), text=text)
        transition = apply(status, said, actor=writer, now=_now(node))
        carry_out(node, transition.status, transition.effects, request_id=request_id, peer=row.peer)
        record(node, user.username, "request.message", request_id, {"text": text})
    (sent,) = [e.response for e in transition.effects if isinstance(e, SendResponse)]
    return sent


def _person(node: Node, username: str) -> Person:
    user = users.require(node.db, username)
    own = contact(node)
    return Person(name=user.full_name, email=user.email, phone=own.phone if own else "")


def release(
    node: Node,
    *,
    actor: str | None,
    request_id: str,
    student_sis_id: str,
    selection: Selection,
    comments: str = "",
    not_matched: bool = False,
) -> sending.Sent:
    """Send the student's records to the requester as a transfer bound to the request (one commit).

    The student is the match here for the one asked for, or one of its candidates, unless the coordinator
    says they are not (``not_matched``): a mistyped SIS id would disclose another child's records."""
    user = authorize(node, actor, "transfers.act")
    row = _answerable(store.require(node.db, request_id))
    status = status_of(node, row)
    if status.request is None:
        raise NotFound(f"no records request {request_id}")
    check_release_allowed(status.request, today=_now(node).date())
    matched = _matched_ids(_match(node, status.request))
    if student_sis_id not in matched and not not_matched:
        raise _not_matched(node, status.request, student_sis_id, matched)
    person = _person(node, user.username)

    def answer(transfer_id: str) -> None:
        fresh = status_of(node, store.require(node.db, request_id))
        event: RequestEventData = Release(person=person, transfer_id=transfer_id, comments=comments)
        transition = apply(fresh, event, actor=RequestActor.RELEASER_COORDINATOR, now=_now(node))
        carry_out(node, transition.status, transition.effects, request_id=request_id, peer=row.peer)
        store.update(node.db, request_id, student_sis_id=student_sis_id)
        details: dict[str, object] = {"request": request_id, "transfer": transfer_id}
        if student_sis_id not in matched:
            details |= {"not_matched": True, "matched": list(matched)}
        record(node, user.username, "request.release", student_sis_id, details)

    chosen = Selection(students=(student_sis_id,), documents=selection.documents, cases=selection.cases,
                       assessments=selection.assessments, all_records=selection.all_records)  # fmt: skip
    enrolment = status.request.enrolment
    assert enrolment is not None  # check_release_allowed
    purpose = (f"released in answer to {row.peer}'s records request for the student enrolled at {enrolment.school} "
               f"since {enrolment.start_date}") + (f": {comments}" if comments else "")  # fmt: skip
    return sending.send(node, actor=actor, to=row.peer, selection=chosen,
                        note=comments or "records released in answer to your request", purpose=purpose,
                        kind="release", request_id=request_id, in_transaction=answer)  # fmt: skip


def _match(node: Node, request: RecordsRequest) -> MatchOutcome:
    """The students here who may be the one the request asks for (the import's matching)."""
    s = request.student
    incoming = IncomingStudent(
        sender_sis_id=request.request_id, given_name=s.given_name, family_name=s.family_name,
        middle_name=s.middle_name or "", birth_date=s.birth_date.isoformat(), sex=s.sex,
        grade=s.grade, state_id=s.state_id or "",
    )  # fmt: skip
    return match_students(node.db, [incoming])[0]


def _matched_ids(outcome: MatchOutcome) -> tuple[str, ...]:
    """The proposed student first, then the other candidates."""
    ids = [outcome.local_sis_id] if outcome.local_sis_id else []
    return tuple(dict.fromkeys([*ids, *(sis_id for sis_id, _ in outcome.candidates)]))


def _not_matched(
    node: Node, request: RecordsRequest, student_sis_id: str, matched: tuple[str, ...]
) -> RequestStudentNotMatched:
    chosen = student_store.require(node.db, student_sis_id).record
    asked = request.student
    here = f"the match here gives {' or '.join(matched)}" if matched else "no student here resembles them"
    return RequestStudentNotMatched(
        f"{student_sis_id} ({chosen.given_name} {chosen.family_name}, born {chosen.birth_date or 'unknown'}) is "
        f"not the student records request {request.request_id} asks for ({asked.given_name} {asked.family_name}, "
        f"born {asked.birth_date.isoformat()}): {here}",
        field="--student",
    )


def _answerable(row: store.RequestRow) -> store.RequestRow:
    """A request this district may answer: one another district sent it, not one it sent."""
    if row.side != "releaser":
        raise InvalidInput(
            f"request {row.request_id} is one this district sent to {row.peer}; only {row.peer} can answer it",
            field="ID", hint="`satchel requests list` shows the requests other districts sent you",
        )  # fmt: skip
    return row


def reject(node: Node, *, actor: str | None, request_id: str, comments: str) -> str:
    user = authorize(node, actor, "transfers.act")
    with write_transaction(node.db):
        row = _answerable(store.require(node.db, request_id))
        event = Reject(person=_person(node, user.username), comments=comments)
        transition = apply(status_of(node, row), event, actor=RequestActor.RELEASER_COORDINATOR, now=_now(node))
        carry_out(node, transition.status, transition.effects, request_id=request_id, peer=row.peer)
        record(node, user.username, "request.reject", request_id, {"comments": comments})
    return transition.status.state.value


def cancel(node: Node, *, actor: str | None, request_id: str, comments: str = "") -> str:
    """Withdraw a request this district sent and the other has not answered; the releasing district is told
    (signed, through the outbox). Should its answer cross the cancellation, the answer wins (spec §2)."""
    user = authorize(node, actor, "transfers.act")
    with write_transaction(node.db):
        row = store.require(node.db, request_id)
        if row.side != "requester":
            raise InvalidInput(
                f"request {request_id} is one {row.peer} sent to this district; only {row.peer} can cancel it",
                field="ID", hint=f"to refuse it, `satchel requests reject {request_id} --comments ...`",
            )  # fmt: skip
        event = Cancel(person=_person(node, user.username), comments=comments)
        transition = apply(status_of(node, row), event, actor=RequestActor.REQUESTER_COORDINATOR, now=_now(node))
        carry_out(node, transition.status, transition.effects, request_id=request_id, peer=row.peer)
        record(node, user.username, "request.cancel", request_id, {"comments": comments})
    return transition.status.state.value


def flag_overdue(node: Node) -> list[str]:
    """The timer: unanswered requests past their working days are flagged and coordinators told, and told again
    every 5 working days: at the releaser, reminded to answer; at the requester, whom to ask. A request whose
    release failed is owed an answer again, counted from the day it failed (spec/requests.md §5)."""
    flagged = []
    waiting = (RequestState.REQUESTED.value, RequestState.RELEASE_FAILED.value)
    for listed in store.list_rows(node.db, state=waiting):
        try:
            if _flag_if_due(node, listed):
                flagged.append(listed.request_id)
        except Exception as exc:
            # One request that cannot be read or flagged (a row damaged by hand, a bug) must not leave every
            # other request unflagged and its coordinators unreminded: the next pass tries it again.
            log_failure(log, f"overdue check of records request {listed.request_id}", exc)
    return flagged


def _flag_if_due(node: Node, listed: RequestRow) -> bool:
    holidays = node.config.requests.holidays
    if not due_events(status_of(node, listed), today=_now(node).date(), holidays=holidays):
        return False
    with write_transaction(node.db):
        # Read again under the write lock: a release or cancellation committed since the listing must not
        # be written over with the listing's state.
        row = store.require(node.db, listed.request_id)
        status = status_of(node, row)
        due = due_events(status, today=_now(node).date(), holidays=holidays)
        for event in due:
            transition = apply(status, event, actor=RequestActor.TIMER, now=_now(node), holidays=holidays)
            carry_out(node, transition.status, transition.effects, request_id=row.request_id, peer=row.peer)
            # Flagged overdue, or reminded again: the node's own doing, as an expiry is.
            record(node, TIMER, "request.overdue", row.request_id, {"reminder": status.overdue_flagged})
    return bool(due)


@dataclass(frozen=True, slots=True)
class RequestView:
    row: RequestRow
    request: RecordsRequest
    overdue: bool
    candidates: MatchOutcome | None
    messages: int = 0  # in the coordinators' thread
    answer: RequestResponse | None = None  # the release, rejection or cancellation, as signed (show only)
    thread: tuple[tuple[str, RequestResponse], ...] = ()  # the messages, oldest first (show only)
    due_on: date | None = None  # the last working day an answer is on time, while one is owed
    # Where this node's own request, answer and messages stand with the other district (node.delivery_status),
    # by "request", "answer" and the message's place in ``thread`` (show only).
    sent: dict[str | int, dict[str, object]] = field(default_factory=dict)
    # This district's cancellation that the other district's answer crossed (the answer wins, spec §2), as
    # signed; its fate is ``sent["crossed"]`` (requester, show only).
    crossed: RequestResponse | None = None


def listing(node: Node, *, side: str | None = None, state: str | None = None) -> list[RequestView]:
    """Every request (of ``side``, in ``state``) with its overdue flag and the day its answer is due; no
    candidates: that is one match query per request, which only ``show`` needs."""
    views = []
    threads = messages.counts(node.db)
    for row in store.list_rows(node.db, side=side, state=state):
        status = status_of(node, row)
        assert status.request is not None
        views.append(RequestView(row, status.request, _overdue(node, status), None, threads.get(row.request_id, 0),
                                 due_on=status.due_on(holidays=node.config.requests.holidays)))  # fmt: skip
    return views


def _overdue(node: Node, status: RequestStatus) -> bool:
    return status.overdue(today=_now(node).date(), holidays=node.config.requests.holidays)


def show(node: Node, request_id: str) -> RequestView:
    row = store.require(node.db, request_id)
    status = status_of(node, row)
    assert status.request is not None
    candidates = _match(node, status.request) if row.side == "releaser" else None
    answer = None if row.signed_response is None else stored_response(row.signed_response)
    due_on = status.due_on(holidays=node.config.requests.holidays)
    kept = messages.of_request(node.db, request_id)
    written = tuple((m.direction, stored_response(m.signed)) for m in kept)
    jobs: dict[str | int, str] = {i: message_job(m.message_key) for i, m in enumerate(kept) if m.direction == "out"}
    if row.side == "requester":
        jobs["request"] = request_job(request_id)
    crossed = None
    own = latest_answer_job(row)
    if answer is not None and (answer.kind is ResponseKind.CANCELLED) == (row.side == "requester"):
        if own is not None:
            jobs["answer"] = own  # this node's own answer, not the other district's
    elif answer is not None and row.side == "requester" and own is not None:
        # The coordinator here cancelled, and the other district's answer crossed it: its job, withdrawn or
        # refused, still holds the cancellation as it was signed.
        withdrawn = outbox.get(node.db, own)
        if withdrawn is not None:
            crossed = stored_response(withdrawn.payload)
            jobs["crossed"] = withdrawn.job_id
    return RequestView(row, status.request, _overdue(node, status), candidates, messages=len(written), answer=answer,
                       due_on=due_on, thread=written, sent=deliveries(node.db, jobs), crossed=crossed)  # fmt: skip
