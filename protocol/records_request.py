"""Records requests and their answers (spec/requests.md §3-4).

The new district asks the previous one for a student's records: a :class:`RecordsRequest` carrying the
student's demographics, the enrolment at the requesting district and who is asking, signed by the
requesting node as a document (purpose ``satchel/v1/records-request``) so the releasing district can show
later exactly who asked, and when. The answer is a :class:`RequestResponse` (``released`` with the id of
the transfer that carries the records, or ``rejected`` with comments), signed by the releasing node; the
requester's ``cancelled`` uses the same message, and so does a ``message`` from either coordinator to the
other (its text in ``comments``). ``repr`` shows ids only: the rest is a child's data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from crypto import IdentityKey
from protocol.errors import MalformedMessage, SatchelError, SignatureInvalid
from protocol.json_strict import dumps_canonical, loads_object, member_name, take
from protocol.receipts import (
    ResolveKey,
    check_domain,
    check_text,
    check_time,
    check_ulid,
    format_timestamp,
    parse_timestamp,
    verify_signed_by_domain,
)
from protocol.roster import GRADE_CODES, SEX_CODES
from protocol.signed_document import sign_document
from protocol.workdays import due_date as due_date
from protocol.workdays import is_overdue as is_overdue
from protocol.workdays import working_days_between as working_days_between

# spec/requests.md §3
PURPOSE_REQUEST = "satchel/v1/records-request"
PURPOSE_RESPONSE = "satchel/v1/records-response"
REQUEST_VERSION = 1
MAX_SIGNED_BYTES = 64 * 1024
MAX_COMMENTS = 2000
MAX_NAME = 200
MAX_ID = 128
MAX_EMAIL = 254
MAX_PHONE = 40
ENROLMENT_TYPES = ("primary", "partial", "special_education")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_PHONE_RE = re.compile(r"[0-9+()./ x-]*\Z")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
T = TypeVar("T")


class RequestInvalid(MalformedMessage):
    """A records request or response breaks spec/requests.md.

    ``field`` is the culprit's dotted path from the payload's top level as a peer sent it: ``comments``,
    ``student.birth_date``, ``enrolment.end_date``, ``requester.email``, ``person.title``.
    """

    code = "request.invalid"
    default_hint = "see spec/requests.md §3 for the fields of a records request and their limits"


class RequestUnsupportedVersion(RequestInvalid):
    """A records request or response has a version this node does not implement."""

    code = "request.unsupported_version"
    default_hint = "the peer uses a newer records-request format; upgrade this node"


class RequestWrongSigner(SignatureInvalid):
    """A records request or response is signed with a key its ``from_domain`` does not publish."""

    code = "request.wrong_signer"
    default_hint = "the message was not signed by the district it claims to come from; it was ignored"


class RequestStudentNotEnrolled(SatchelError):
    """Release refused: the request's enrolment at the requester is missing, not started or ended."""

    code = "request.student_not_enrolled"
    default_hint = (
        "records are released only for a student enrolled at the requesting district today; "
        "ask the requester to confirm the enrolment and send a new request"
    )


class RequestStudentNotMatched(SatchelError):
    """Release refused: the student chosen is neither the match here nor a candidate for the one asked for.

    The coordinator may release them all the same, saying so (`--not-matched`)."""

    code = "request.student_not_matched"
    default_hint = (
        "check the SIS id against `satchel requests show ID`; if this is the student asked for all the same, "
        "release again with --not-matched (the audit log keeps that you did)"
    )


def _bad(field: str, what: str) -> RequestInvalid:
    return RequestInvalid(f"{field} {what}", field=field)


# Off while a node reads back a request or response it stored (parse_*(stored=True)): versions before the
# one-line rule took line breaks and tabs in every member, and a request stored then must still be listed,
# shown, answered and followed to its end after an upgrade. What arrives, or is signed, is held to it.
_ONE_LINE_RULE: ContextVar[bool] = ContextVar("records_request_one_line_rule", default=True)


@contextmanager
def _read(*, stored: bool) -> Iterator[None]:
    token = _ONE_LINE_RULE.set(not stored)
    try:
        yield
    finally:
        _ONE_LINE_RULE.reset(token)


def _text(value: Any, field: str, max_len: int, *, required: bool = True, one_line: bool = True) -> None:
    """Free text (spec/README.md); every member but the comments is one line: a name with a line break
    would break the tables and CSV files it is shown in."""
    check_text(value, field, max_len, required=required, error=RequestInvalid)
    if one_line and _ONE_LINE_RULE.get() and isinstance(value, str) and ("\n" in value or "\t" in value):
        raise _bad(field, "must be one line, without a line break or tab")


def _code(value: Any, field: str, allowed: tuple[str, ...], *, required: bool = True) -> None:
    if value is None and not required:
        return
    if value not in allowed:
        raise _bad(field, "must be one of " + ", ".join(allowed))


def _date(value: Any, field: str) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise _bad(field, "must be a date")


def _check_person(name: Any, email: Any, phone: Any, title: Any, *, at: str) -> None:
    """The rules of a person (spec/requests.md §3); ``at`` is where it sits (``requester.``, ``person.``)."""
    _text(name, f"{at}name", MAX_NAME)
    _text(email, f"{at}email", MAX_EMAIL)
    if not _EMAIL_RE.match(email):
        raise _bad(f"{at}email", "is not an e-mail address")
    _text(phone, f"{at}phone", MAX_PHONE, required=False)
    if not _PHONE_RE.match(phone):
        raise _bad(f"{at}phone", "may hold digits, spaces and + ( ) . / x - only")
    _text(title, f"{at}title", MAX_NAME, required=False)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Person:
    """Who asks or answers: a verified district's user, reachable by e-mail and phone.

    Built on its own it does not know whether it is a request's ``requester`` or a response's ``person``, so
    its errors name its bare members (``email``); the parsers check a peer's person first and name the whole
    path (``requester.email``).
    """

    name: str
    email: str
    phone: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        _check_person(self.name, self.email, self.phone, self.title, at="")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Enrolment:
    """The student's enrolment at the requesting district: why it may have the records."""

    school: str
    grade: str
    start_date: date
    end_date: date | None = None
    type: str = "primary"

    def __post_init__(self) -> None:
        _text(self.school, "enrolment.school", MAX_NAME)
        _code(self.grade, "enrolment.grade", GRADE_CODES)
        _date(self.start_date, "enrolment.start_date")
        if self.end_date is not None:
            _date(self.end_date, "enrolment.end_date")
            if self.end_date < self.start_date:
                raise _bad("enrolment.end_date", "is before the start date")
        _code(self.type, "enrolment.type", ENROLMENT_TYPES)

    def active_on(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class RequestedStudent:
    """The student as the requesting district knows them; the releaser matches on these."""

    family_name: str
    given_name: str
    birth_date: date
    middle_name: str | None = None
    sex: str | None = None
    grade: str | None = None
    state_id: str | None = None
    previous_school: str | None = None
    previous_sis_id: str | None = None

    def __post_init__(self) -> None:
        _text(self.family_name, "student.family_name", MAX_NAME)
        _text(self.given_name, "student.given_name", MAX_NAME)
        _date(self.birth_date, "student.birth_date")
        _text(self.middle_name, "student.middle_name", MAX_NAME, required=False)
        _code(self.sex, "student.sex", SEX_CODES, required=False)
        _code(self.grade, "student.grade", GRADE_CODES, required=False)
        for name in ("state_id", "previous_sis_id"):
            _text(getattr(self, name), f"student.{name}", MAX_ID, required=False)
        _text(self.previous_school, "student.previous_school", MAX_NAME, required=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordsRequest:
    request_id: str
    from_domain: str
    to_domain: str
    created: datetime
    student: RequestedStudent
    enrolment: Enrolment | None
    requester: Person
    comments: str = ""

    def __post_init__(self) -> None:
        check_ulid(self.request_id, "request_id", RequestInvalid)
        check_domain(self.from_domain, "from_domain", RequestInvalid)
        check_domain(self.to_domain, "to_domain", RequestInvalid)
        if self.from_domain == self.to_domain:
            raise _bad("to_domain", "must be another district")
        check_time(self.created, "created", RequestInvalid)
        object.__setattr__(self, "created", self.created.astimezone(UTC).replace(microsecond=0))
        if not isinstance(self.student, RequestedStudent):
            raise _bad("student", "must be a RequestedStudent")
        if self.enrolment is not None and not isinstance(self.enrolment, Enrolment):
            raise _bad("enrolment", "must be an Enrolment or None")
        if not isinstance(self.requester, Person):
            raise _bad("requester", "must be a Person")
        _text(self.comments, "comments", MAX_COMMENTS, required=False, one_line=False)

    def __repr__(self) -> str:
        return f"RecordsRequest(request_id={self.request_id!r}, from={self.from_domain!r}, to={self.to_domain!r})"


class ResponseKind(StrEnum):
    RELEASED = "released"
    REJECTED = "rejected"
    # From the releaser: the transfer of its release ended without the records being opened; it answers again.
    RELEASE_FAILED = "release_failed"
    CANCELLED = "cancelled"
    MESSAGE = "message"  # from either district; changes nothing but the thread


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestResponse:
    """An answer about a request: released/rejected by the releasing district (or release_failed: the transfer
    of its release ended unopened), cancelled by the requester; or a message from either district's
    coordinator to the other's."""

    kind: ResponseKind
    request_id: str
    from_domain: str
    to_domain: str
    created: datetime
    person: Person
    comments: str = ""
    transfer_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ResponseKind):
            raise _bad("kind", "must be a ResponseKind")
        check_ulid(self.request_id, "request_id", RequestInvalid)
        check_domain(self.from_domain, "from_domain", RequestInvalid)
        check_domain(self.to_domain, "to_domain", RequestInvalid)
        if self.from_domain == self.to_domain:
            raise _bad("to_domain", "must be another district")
        check_time(self.created, "created", RequestInvalid)
        object.__setattr__(self, "created", self.created.astimezone(UTC).replace(microsecond=0))
        if not isinstance(self.person, Person):
            raise _bad("person", "must be a Person")
        required = self.kind in (ResponseKind.REJECTED, ResponseKind.MESSAGE)
        _text(self.comments, "comments", MAX_COMMENTS, required=required, one_line=False)
        if self.kind in (ResponseKind.RELEASED, ResponseKind.RELEASE_FAILED):
            check_ulid(self.transfer_id, "transfer_id", RequestInvalid)
        elif self.transfer_id is not None:
            raise _bad("transfer_id", f"is not allowed when the request is {self.kind}")

    def __repr__(self) -> str:
        return (
            f"RequestResponse(kind={self.kind.value!r}, request_id={self.request_id!r}, "
            f"from={self.from_domain!r}, transfer_id={self.transfer_id!r})"
        )


def check_release_allowed(request: RecordsRequest, *, today: date) -> None:
    """Raise ``request.student_not_enrolled`` unless the request shows an enrolment that is current today."""
    _date(today, "today")
    enrolment = request.enrolment
    if enrolment is None:
        raise RequestStudentNotEnrolled("the request states no enrolment at the requesting district")
    if today < enrolment.start_date:
        raise RequestStudentNotEnrolled("the student's enrolment at the requesting district has not started")
    if enrolment.end_date is not None and today > enrolment.end_date:
        raise RequestStudentNotEnrolled("the student's enrolment at the requesting district has ended")


# ---------------------------------------------------------------------------------------------- wire


def _person_json(p: Person) -> dict[str, str]:
    return {"name": p.name, "email": p.email, "phone": p.phone, "title": p.title}


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def encode_records_request(request: RecordsRequest) -> bytes:
    s, e = request.student, request.enrolment
    return dumps_canonical(
        {
            "version": REQUEST_VERSION,
            "request_id": request.request_id,
            "from_domain": request.from_domain,
            "to_domain": request.to_domain,
            "created": format_timestamp(request.created),
            "student": {
                "family_name": s.family_name, "given_name": s.given_name, "middle_name": s.middle_name,
                "birth_date": s.birth_date.isoformat(), "sex": s.sex, "grade": s.grade, "state_id": s.state_id,
                "previous_school": s.previous_school, "previous_sis_id": s.previous_sis_id,
            },
            "enrolment": None if e is None else {
                "school": e.school, "grade": e.grade, "start_date": e.start_date.isoformat(),
                "end_date": _iso(e.end_date), "type": e.type,
            },
            "requester": _person_json(request.requester),
            "comments": request.comments,
        }
    )  # fmt: skip


def encode_request_response(response: RequestResponse) -> bytes:
    return dumps_canonical(
        {
            "version": REQUEST_VERSION,
            "kind": response.kind.value,
            "request_id": response.request_id,
            "from_domain": response.from_domain,
            "to_domain": response.to_domain,
            "created": format_timestamp(response.created),
            "person": _person_json(response.person),
            "comments": response.comments,
            "transfer_id": response.transfer_id,
        }
    )


class _Reader:
    """Strict field access for one JSON object: exact key set, types checked, errors coded request.invalid.

    ``path`` is where the object sits in the payload (``""`` for the top level, ``"student"``), so that every
    error's field, and its message, names the member by its dotted path (``student.middle_name``); ``what``
    is the document ("records request").
    """

    def __init__(self, obj: Any, keys: tuple[str, ...], *, path: str, what: str) -> None:
        self.obj, self.path, self.what = obj, path, what
        if not isinstance(obj, dict):
            raise _bad(path, "must be an object")
        extra, missing = sorted(set(obj) - set(keys)), sorted(set(keys) - set(obj))
        if extra:
            name = member_name(extra[0])  # a peer's text: named back only when it is a plain name
            field = self.at(name) if name else (path or None)
            raise RequestInvalid(f"{what} has unknown field {self.at(extra[0][:40])!r}", field=field)
        if missing:
            field = self.at(missing[0])
            raise RequestInvalid(f"{what} lacks the field {field!r}", field=field)

    def at(self, key: str) -> str:
        """The member's dotted path from the payload's top level."""
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        return take(self.obj, key, kind, what=self.what, optional=optional, path=self.path)  # see _strictly

    def day(self, key: str) -> date:
        value = self.optional_day(key, required=True)
        assert value is not None  # required: a missing one raised
        return value

    def optional_day(self, key: str, *, required: bool = False) -> date | None:
        text = self.get(key, str, optional=not required)
        if text is None:
            return None
        if not _DATE_RE.match(text):
            raise _bad(self.at(key), "must be a date written YYYY-MM-DD")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise _bad(self.at(key), "is not a calendar date") from None


def _person(value: Any, path: str, what: str) -> Person:
    r = _Reader(value, ("name", "email", "phone", "title"), path=path, what=what)
    name, email, phone, title = (r.get(key, str) for key in ("name", "email", "phone", "title"))
    _check_person(name, email, phone, title, at=f"{path}.")  # so that errors name requester.email, not email
    return Person(name=name, email=email, phone=phone, title=title)


def _top(payload: bytes, keys: tuple[str, ...], what: str) -> _Reader:
    obj = loads_object(payload, what=what, max_bytes=MAX_SIGNED_BYTES)  # a duplicated key: named by itself
    version = take(obj, "version", int, what=what)
    if version != REQUEST_VERSION:
        raise RequestUnsupportedVersion(f"{what} version {version} is not supported", field="version")
    return _Reader(obj, ("version", *keys), path="", what=what)


def _strictly(parse: Callable[[bytes], T], payload: bytes) -> T:
    try:
        return parse(payload)
    except RequestInvalid:
        raise
    except MalformedMessage as exc:
        raise RequestInvalid(exc.message, field=exc.field) from exc


def parse_records_request(payload: bytes, *, stored: bool = False) -> RecordsRequest:
    """Parse request payload bytes (already signature-checked by :func:`verify_records_request`); ``stored``:
    bytes this node kept when they arrived or when it signed them, read back (see _ONE_LINE_RULE)."""
    with _read(stored=stored):
        return _strictly(_parse_records_request, payload)


def _parse_records_request(payload: bytes) -> RecordsRequest:
    top = _top(payload, ("request_id", "from_domain", "to_domain", "created", "student", "enrolment",
                         "requester", "comments"), "records request")  # fmt: skip
    s = _Reader(top.get("student", dict), ("family_name", "given_name", "middle_name", "birth_date", "sex",
                "grade", "state_id", "previous_school", "previous_sis_id"),
                path="student", what=top.what)  # fmt: skip
    enrolment = None
    if top.get("enrolment", dict, optional=True) is not None:
        e = _Reader(top.obj["enrolment"], ("school", "grade", "start_date", "end_date", "type"),
                    path="enrolment", what=top.what)  # fmt: skip
        enrolment = Enrolment(school=e.get("school", str), grade=e.get("grade", str), start_date=e.day("start_date"),
                              end_date=e.optional_day("end_date"), type=e.get("type", str))  # fmt: skip
    return RecordsRequest(
        request_id=top.get("request_id", str),
        from_domain=top.get("from_domain", str),
        to_domain=top.get("to_domain", str),
        created=parse_timestamp(top.get("created", str), field="created", error=RequestInvalid),
        student=RequestedStudent(
            family_name=s.get("family_name", str),
            given_name=s.get("given_name", str),
            middle_name=s.get("middle_name", str, optional=True),
            birth_date=s.day("birth_date"),
            sex=s.get("sex", str, optional=True),
            grade=s.get("grade", str, optional=True),
            state_id=s.get("state_id", str, optional=True),
            previous_school=s.get("previous_school", str, optional=True),
            previous_sis_id=s.get("previous_sis_id", str, optional=True),
        ),
        enrolment=enrolment,
        requester=_person(top.get("requester", dict), "requester", top.what),
        comments=top.get("comments", str),
    )


def parse_request_response(payload: bytes, *, stored: bool = False) -> RequestResponse:
    """Parse response payload bytes (already signature-checked by :func:`verify_request_response`); ``stored``
    as for :func:`parse_records_request`."""
    with _read(stored=stored):
        return _strictly(_parse_request_response, payload)


def _parse_request_response(payload: bytes) -> RequestResponse:
    top = _top(payload, ("kind", "request_id", "from_domain", "to_domain", "created", "person", "comments",
                         "transfer_id"), "request response")  # fmt: skip
    kind = top.get("kind", str)
    if kind not in tuple(ResponseKind):
        raise _bad("kind", "must be released, rejected, release_failed, cancelled or message")
    return RequestResponse(
        kind=ResponseKind(kind),
        request_id=top.get("request_id", str),
        from_domain=top.get("from_domain", str),
        to_domain=top.get("to_domain", str),
        created=parse_timestamp(top.get("created", str), field="created", error=RequestInvalid),
        person=_person(top.get("person", dict), "person", top.what),
        comments=top.get("comments", str),
        transfer_id=top.get("transfer_id", str, optional=True),
    )


def sign_records_request(request: RecordsRequest, key: IdentityKey) -> bytes:
    return sign_document(PURPOSE_REQUEST, encode_records_request(request), key)


def verify_records_request(data: bytes, resolve_key: ResolveKey) -> RecordsRequest:
    """The request, if signed by a key its ``from_domain`` (the requesting district) publishes."""
    return verify_signed_by_domain(
        data, purpose=PURPOSE_REQUEST, parse=parse_records_request, domain_of=lambda r: r.from_domain,
        resolve_key=resolve_key, wrong_signer=RequestWrongSigner, max_bytes=MAX_SIGNED_BYTES,
    )  # fmt: skip


def sign_request_response(response: RequestResponse, key: IdentityKey) -> bytes:
    return sign_document(PURPOSE_RESPONSE, encode_request_response(response), key)


def verify_request_response(data: bytes, resolve_key: ResolveKey) -> RequestResponse:
    """The response, if signed by a key its ``from_domain`` publishes."""
    return verify_signed_by_domain(
        data, purpose=PURPOSE_RESPONSE, parse=parse_request_response, domain_of=lambda r: r.from_domain,
        resolve_key=resolve_key, wrong_signer=RequestWrongSigner, max_bytes=MAX_SIGNED_BYTES,
    )  # fmt: skip
