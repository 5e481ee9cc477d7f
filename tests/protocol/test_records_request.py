import contextlib
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import IdentityKey, IdentityPublicKey
from protocol import InvalidInput, SatchelError, SignatureInvalid
from protocol.records_request import (
    PURPOSE_REQUEST,
    Enrolment,
    Person,
    RecordsRequest,
    RequestedStudent,
    RequestInvalid,
    RequestResponse,
    RequestStudentNotEnrolled,
    RequestUnsupportedVersion,
    RequestWrongSigner,
    ResponseKind,
    check_release_allowed,
    encode_records_request,
    encode_request_response,
    parse_records_request,
    parse_request_response,
    sign_records_request,
    sign_request_response,
    verify_records_request,
    verify_request_response,
)
from protocol.signed_document import sign_document
from protocol.workdays import add_working_days, due_date, is_overdue, is_working_day, working_days_between

REQUESTER_KEY = IdentityKey(bytes(range(32)))
RELEASER_KEY = IdentityKey(bytes(range(1, 33)))
NEW, OLD = "new.example.org", "old.example.org"
KEYS = {NEW: REQUESTER_KEY.public_key, OLD: RELEASER_KEY.public_key}
NOW = datetime(2026, 1, 5, 15, 30, tzinfo=UTC)
RID = "01KE6QH3C00000000000000000"
TRANSFER = "01KE6QH3C0000000000000000T"


def resolve(domain: str, key_id: str) -> IdentityPublicKey | None:
    key = KEYS.get(domain)
    return key if key is not None and key.key_id == key_id else None


def request(**changes: object) -> RecordsRequest:
    fields: dict[str, object] = {
        "request_id": RID,
        "from_domain": NEW,
        "to_domain": OLD,
        "created": NOW,
        "student": RequestedStudent(
            family_name="Abrams",
            given_name="Jenna",
            middle_name="Marie",
            birth_date=date(2009, 2, 12),
            sex="F",
            grade="10",
            state_id="IL-12345",
            previous_school="County High School",
        ),
        "enrolment": Enrolment(school="County High School", grade="10", start_date=date(2025, 12, 1)),
        "requester": Person(name="Sam Admin", email="sam@new.example.org", phone="+1 (217) 555-0100 x12"),
        "comments": "Transferred over the winter break.",
    }
    fields.update(changes)
    return RecordsRequest(**fields)  # type: ignore[arg-type]


def response(kind: ResponseKind = ResponseKind.RELEASED, **changes: object) -> RequestResponse:
    fields: dict[str, object] = {
        "kind": kind, "request_id": RID, "from_domain": OLD, "to_domain": NEW, "created": NOW,
        "person": Person(name="Rita Registrar", email="rita@old.example.org", title="Registrar"),
        "comments": "Records attached." if kind is not ResponseKind.REJECTED else "No such student.",
        "transfer_id": TRANSFER if kind in (ResponseKind.RELEASED, ResponseKind.RELEASE_FAILED) else None,
    }  # fmt: skip
    fields.update(changes)
    return RequestResponse(**fields)  # type: ignore[arg-type]


def test_request_round_trip_and_signature() -> None:
    original = request()
    assert parse_records_request(encode_records_request(original)) == original
    signed = sign_records_request(original, REQUESTER_KEY)
    assert verify_records_request(signed, resolve) == original
    no_enrolment = request(enrolment=None, comments="")
    assert parse_records_request(encode_records_request(no_enrolment)) == no_enrolment


@pytest.mark.parametrize("kind", list(ResponseKind))
def test_response_round_trip_and_signature(kind: ResponseKind) -> None:
    original = response(kind)
    assert parse_request_response(encode_request_response(original)) == original
    assert verify_request_response(sign_request_response(original, RELEASER_KEY), resolve) == original


def test_signer_must_be_published_by_the_claimed_domain() -> None:
    with pytest.raises(RequestWrongSigner) as caught:
        verify_records_request(sign_records_request(request(), RELEASER_KEY), resolve)
    assert caught.value.code == "request.wrong_signer"
    with pytest.raises(RequestWrongSigner):
        verify_request_response(sign_request_response(response(), REQUESTER_KEY), resolve)


def test_tampered_request_does_not_verify() -> None:
    signed = json.loads(sign_records_request(request(), REQUESTER_KEY))
    signed["signature"] = signed["signature"][:-2] + (
        "AA" if not signed["signature"].endswith("AA") else "BA"
    )
    with pytest.raises(SignatureInvalid):
        verify_records_request(json.dumps(signed).encode(), resolve)


def test_repr_shows_ids_only() -> None:
    text = repr(request()) + repr(response()) + repr(request().student) + repr(request().requester)
    assert "Abrams" not in text and "Jenna" not in text and "sam@" not in text and "2009" not in text


@pytest.mark.parametrize(
    ("build", "field"),
    [
        # a Person built on its own does not know whether it is a requester or a response's person: it names
        # its bare members; a parsed one names the path (test_parsed_errors_name_the_dotted_path)
        (lambda: Person(name="X", email="not-an-email"), "email"),
        (lambda: Person(name="X", email="x@y.org", phone="call me"), "phone"),
        (lambda: Person(name="", email="x@y.org"), "name"),
        (lambda: Enrolment(school="S", grade="Grade 10", start_date=date(2025, 1, 1)), "enrolment.grade"),
        (
            lambda: Enrolment(school="S", grade="10", start_date=date(2025, 1, 1), type="visiting"),
            "enrolment.type",
        ),
        (
            lambda: Enrolment(school="S", grade="10", start_date=date(2025, 2, 1), end_date=date(2025, 1, 1)),
            "enrolment.end_date",
        ),
        (lambda: replace(request().student, sex="female"), "student.sex"),
        (lambda: replace(request().student, birth_date=datetime(2009, 2, 12)), "student.birth_date"),
        (lambda: request(to_domain=NEW), "to_domain"),
        (lambda: request(comments="x" * 2001), "comments"),
        (lambda: request(request_id="nope"), "request_id"),
        (lambda: response(transfer_id=None), "transfer_id"),
        (lambda: response(ResponseKind.REJECTED, transfer_id=TRANSFER), "transfer_id"),
        (lambda: response(ResponseKind.REJECTED, comments=""), "comments"),
    ],
)
def test_invalid_messages_name_the_field(build: object, field: str) -> None:
    with pytest.raises(RequestInvalid) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


def _payload(**changes: object) -> bytes:
    data = json.loads(encode_records_request(request()))
    data.update(changes)
    return json.dumps(data).encode()


def test_parser_is_strict() -> None:
    with pytest.raises(RequestUnsupportedVersion):
        parse_records_request(_payload(version=2))
    with pytest.raises(RequestInvalid, match="unknown field") as caught:
        parse_records_request(_payload(ssn="123-45-6789"))
    assert caught.value.field == "ssn"
    data = json.loads(encode_records_request(request()))
    data["student"]["birth_date"] = "2009-02-30"
    with pytest.raises(RequestInvalid) as caught:
        parse_records_request(json.dumps(data).encode())
    assert caught.value.field == "student.birth_date"
    data["student"] = {"family_name": "Abrams"}
    with pytest.raises(RequestInvalid, match="lacks") as caught:
        parse_records_request(json.dumps(data).encode())
    assert caught.value.field == "student.birth_date"  # the first missing member, sorted
    with pytest.raises(RequestInvalid) as caught:
        parse_request_response(encode_records_request(request()))
    assert caught.value.field == "enrolment"  # a member a response does not have


def _edited(payload: bytes, path: str, value: object, *, remove: bool = False) -> bytes:
    data = json.loads(payload)
    *parents, last = path.split(".")
    inner = data
    for name in parents:
        inner = inner[name]
    if remove:
        del inner[last]
    else:
        inner[last] = value
    return json.dumps(data).encode()


REQUEST_PAYLOAD = encode_records_request(request())
RESPONSE_PAYLOAD = encode_request_response(response())


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("comments", "x" * 2001, "comments"),
        ("request_id", "nope", "request_id"),
        ("created", "2026-01-05T15:30:00+00:00", "created"),
        ("student.family_name", " ", "student.family_name"),
        ("student.given_name", 7, "student.given_name"),
        ("student.middle_name", 7, "student.middle_name"),
        ("student.grade", ["10"], "student.grade"),
        ("student.middle_name", "M\x00", "student.middle_name"),
        ("student.birth_date", "2009-2-12", "student.birth_date"),
        ("student.birth_date", "2009-02-30", "student.birth_date"),
        ("student.sex", "female", "student.sex"),
        ("student.previous_sis_id", "9" * 129, "student.previous_sis_id"),
        ("student.ssn", "123-45-6789", "student.ssn"),
        ("enrolment.school", "", "enrolment.school"),
        ("enrolment.start_date", "1 Dec 2025", "enrolment.start_date"),
        ("enrolment.end_date", "2025-11-30", "enrolment.end_date"),
        ("enrolment.end_date", "2025-13-01", "enrolment.end_date"),
        ("enrolment.type", "visiting", "enrolment.type"),
        ("enrolment.room", "12", "enrolment.room"),
        ("enrolment", "County High School", "enrolment"),
        ("requester", None, "requester"),
        ("requester.name", " \t", "requester.name"),
        ("requester.email", "not-an-email", "requester.email"),
        ("requester.email", None, "requester.email"),
        ("requester.phone", "call me", "requester.phone"),
        ("requester.title", "T" * 201, "requester.title"),
        ("requester.role", "admin", "requester.role"),
    ],
)
def test_parsed_request_errors_name_the_dotted_path(path: str, value: object, field: str) -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_records_request(_edited(REQUEST_PAYLOAD, path, value))
    assert caught.value.code == "request.invalid"
    assert caught.value.field == field


@pytest.mark.parametrize(
    "path", ["student.middle_name", "student.birth_date", "enrolment.end_date", "requester.title", "comments"]
)
def test_missing_request_members_name_the_dotted_path(path: str) -> None:
    with pytest.raises(RequestInvalid, match="lacks") as caught:
        parse_records_request(_edited(REQUEST_PAYLOAD, path, None, remove=True))
    assert caught.value.field == path


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("person.name", "", "person.name"),
        ("person.email", "rita.old.example.org", "person.email"),
        ("person.phone", "ext. twelve", "person.phone"),
        ("person.title", 3, "person.title"),
        ("person.nickname", "Rita", "person.nickname"),
        ("transfer_id", None, "transfer_id"),
        ("kind", "accepted", "kind"),
    ],
)
def test_parsed_response_errors_name_the_dotted_path(path: str, value: object, field: str) -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_request_response(_edited(RESPONSE_PAYLOAD, path, value))
    assert caught.value.field == field


@pytest.mark.parametrize("path", ["person.title", "person.email", "transfer_id"])
def test_missing_response_members_name_the_dotted_path(path: str) -> None:
    with pytest.raises(RequestInvalid, match="lacks") as caught:
        parse_request_response(_edited(RESPONSE_PAYLOAD, path, None, remove=True))
    assert caught.value.field == path


def test_a_duplicated_member_is_refused_wherever_it_is_and_named_by_its_key() -> None:
    student = b'"student":{'
    inside = REQUEST_PAYLOAD.replace(student, student + b'"birth_date":"2001-01-01",')
    with pytest.raises(RequestInvalid, match="duplicate") as caught:
        parse_records_request(inside)
    assert caught.value.field == "birth_date"
    top = b'{"comments":"",' + REQUEST_PAYLOAD[1:]
    with pytest.raises(RequestInvalid, match="duplicate") as caught:
        parse_records_request(top)
    assert caught.value.field == "comments"
    person = b'"person":{'
    in_response = RESPONSE_PAYLOAD.replace(person, person + b'"email":"x@y.org",')
    with pytest.raises(RequestInvalid, match="duplicate") as caught:
        parse_request_response(in_response)
    assert caught.value.field == "email"


def test_a_signed_request_refused_for_a_person_names_the_path() -> None:
    payload = _edited(REQUEST_PAYLOAD, "requester.email", "sam.new.example.org")
    signed = sign_document(PURPOSE_REQUEST, payload, REQUESTER_KEY)
    with pytest.raises(RequestInvalid) as caught:
        verify_records_request(signed, resolve)
    assert (caught.value.code, caught.value.field) == ("request.invalid", "requester.email")


def test_release_requires_a_current_enrolment() -> None:
    check_release_allowed(request(), today=date(2026, 1, 6))
    check_release_allowed(request(), today=date(2025, 12, 1))
    with pytest.raises(RequestStudentNotEnrolled, match="no enrolment") as caught:
        check_release_allowed(request(enrolment=None), today=date(2026, 1, 6))
    assert caught.value.code == "request.student_not_enrolled"
    with pytest.raises(RequestStudentNotEnrolled, match="not started"):
        check_release_allowed(request(), today=date(2025, 11, 30))
    ended = Enrolment(school="S", grade="10", start_date=date(2025, 9, 1), end_date=date(2025, 12, 19))
    check_release_allowed(request(enrolment=ended), today=date(2025, 12, 19))
    with pytest.raises(RequestStudentNotEnrolled, match="ended"):
        check_release_allowed(request(enrolment=ended), today=date(2025, 12, 20))


texts = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30)


@given(
    family=texts.filter(str.strip),
    comments=texts,
    birth=st.dates(date(1990, 1, 1), date(2025, 1, 1)),
    grade=st.sampled_from(["KG", "01", "10", "Other"]),
    seconds=st.integers(0, 10**9),
)
def test_hypothesis_round_trip(family: str, comments: str, birth: date, grade: str, seconds: int) -> None:
    student = replace(request().student, family_name=family, birth_date=birth, grade=grade)
    created = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    original = request(student=student, comments=comments, created=created)
    assert parse_records_request(encode_records_request(original)) == original


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_satchel_errors(data: bytes) -> None:
    for parse in (
        parse_records_request,
        parse_request_response,
        lambda d: verify_records_request(d, resolve),
        lambda d: verify_request_response(d, resolve),
    ):
        with contextlib.suppress(SatchelError):
            parse(data)


REQUEST_JSON = json.loads(encode_records_request(request()))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@given(st.sampled_from(sorted(REQUEST_JSON)), json_values)
def test_mutated_requests_raise_only_request_errors(key: str, value: object) -> None:
    with contextlib.suppress(RequestInvalid):
        parse_records_request(json.dumps(dict(REQUEST_JSON, **{key: value})).encode())


# ---------------------------------------------------------------------------------------------- workdays

MONDAY = date(2026, 1, 5)


def test_working_days_skip_weekends_and_holidays() -> None:
    assert working_days_between(MONDAY, MONDAY) == 0
    assert working_days_between(MONDAY, MONDAY - timedelta(days=3)) == 0
    assert working_days_between(MONDAY, MONDAY + timedelta(days=4)) == 4  # Friday
    assert working_days_between(MONDAY, MONDAY + timedelta(days=6)) == 4  # Sunday
    assert working_days_between(MONDAY, MONDAY + timedelta(days=14)) == 10
    holidays = frozenset({date(2026, 1, 19), date(2026, 1, 17)})  # MLK day (Monday), and a Saturday
    assert working_days_between(MONDAY, date(2026, 1, 19), holidays=holidays) == 9
    assert not is_working_day(date(2026, 1, 19), holidays=holidays)


def test_the_spec_example_for_overdue() -> None:
    assert due_date(MONDAY) == date(2026, 1, 19)
    assert not is_overdue(MONDAY, date(2026, 1, 19))
    assert is_overdue(MONDAY, date(2026, 1, 20))
    assert not is_overdue(MONDAY, date(2026, 1, 20), working_days=11)
    holidays = frozenset({date(2026, 1, 19)})
    assert due_date(MONDAY, holidays=holidays) == date(2026, 1, 20)
    assert not is_overdue(MONDAY, date(2026, 1, 20), holidays=holidays)


def test_workday_inputs_are_checked() -> None:
    with pytest.raises(InvalidInput):
        working_days_between(datetime(2026, 1, 5), MONDAY)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        is_overdue(MONDAY, MONDAY, working_days=0)
    with pytest.raises(InvalidInput):
        working_days_between(MONDAY, MONDAY, holidays={MONDAY})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        add_working_days(MONDAY, -1)


@given(
    start=st.dates(date(2020, 1, 1), date(2030, 1, 1)),
    span=st.integers(-10, 400),
    holidays=st.frozensets(st.dates(date(2020, 1, 1), date(2031, 2, 1)), max_size=20),
)
def test_working_days_match_counting_one_by_one(start: date, span: int, holidays: frozenset[date]) -> None:
    end = start + timedelta(days=span)
    naive = sum(1 for i in range(1, span + 1) if is_working_day(start + timedelta(days=i), holidays=holidays))
    assert working_days_between(start, end, holidays=holidays) == naive
    if 1 <= span <= 300:
        n = max(1, naive)
        due = add_working_days(start, n, holidays=holidays)
        assert working_days_between(start, due, holidays=holidays) == n
        assert is_overdue(start, end, working_days=n, holidays=holidays) == (naive > n)


@pytest.mark.parametrize(
    "path", ["student.family_name", "student.given_name", "enrolment.school", "requester.name", "requester.title"]
)
@pytest.mark.parametrize("break_", ["\n", "\t"])
def test_names_are_one_line_and_only_comments_may_break(path: str, break_: str) -> None:
    with pytest.raises(RequestInvalid, match="one line") as caught:
        parse_records_request(_edited(REQUEST_PAYLOAD, path, f"Ana{break_}Maria"))
    assert caught.value.field == path
    comments = parse_records_request(_edited(REQUEST_PAYLOAD, "comments", f"IEP{break_}504 plan")).comments
    assert comments == f"IEP{break_}504 plan"
