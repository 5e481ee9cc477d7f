"""Generate spec/vectors/records-requests/vectors.json from the code (never edit the JSON by hand).

    .venv/bin/python spec/vectors/records-requests/generate.py          # rewrite vectors.json
    .venv/bin/python spec/vectors/records-requests/generate.py --check  # exit 1 if it is stale

Each case is a signed records request or response (spec/requests.md §3-§4), the purpose it is verified as,
and what the verifier makes of it: the parsed fields, or the error code and field it is refused with. The
keys come from fixed seeds and the table of which district publishes which key stands in for descriptors;
ids and times are fixed and Ed25519 signatures deterministic, so the file is the same every run. Refused
payloads are built by hand and signed with sign_document, as a hostile node could: the dataclasses would
refuse to build most of them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from crypto import IdentityKey, IdentityPublicKey
from protocol import SatchelError
from protocol.ids import ulid
from protocol.json_strict import dumps_canonical
from protocol.receipts import format_timestamp
from protocol.records_request import (
    MAX_SIGNED_BYTES,
    PURPOSE_REQUEST,
    PURPOSE_RESPONSE,
    Enrolment,
    Person,
    RecordsRequest,
    RequestedStudent,
    RequestResponse,
    ResponseKind,
    encode_records_request,
    encode_request_response,
    sign_records_request,
    sign_request_response,
    verify_records_request,
    verify_request_response,
)
from protocol.signed_document import sign_document, unb64url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # spec/vectors, for vector_kit
import vector_kit

OUT = Path(__file__).resolve().parent / "vectors.json"


seed = vector_kit.seeder("records-requests")


KEYS = {name: IdentityKey(seed(name)) for name in ("requester", "releaser", "stranger")}
REQUESTER_KEY, RELEASER_KEY = KEYS["requester"], KEYS["releaser"]
STRANGER_KEY = KEYS["stranger"]  # published by no district
# The student enrolled at NEW (the requester); OLD holds the records (the releaser).
NEW = "springfield.k12.example"
OLD = "shelbyville.k12.example"
PUBLISHED = {NEW: (REQUESTER_KEY,), OLD: (RELEASER_KEY,)}

CREATED = datetime(2026, 1, 5, 15, 30, tzinfo=UTC)
ANSWERED = CREATED + timedelta(days=2, hours=1, minutes=12, seconds=7)
REQUEST_ID = ulid(int(CREATED.timestamp() * 1000), seed("request-id")[:10])
TRANSFER_ID = ulid(int(ANSWERED.timestamp() * 1000), seed("transfer-id")[:10])

COORDINATOR = Person(name="Cory Coordinator", email="coord@springfield.k12.example",
                     phone="+1 (217) 555-0100 x12", title="Registrar")  # fmt: skip
REGISTRAR = Person(name="Rita Registrar", email="rita@shelbyville.k12.example", phone="+1 217-555-0199",
                   title="Records office")  # fmt: skip
REQUEST = RecordsRequest(
    request_id=REQUEST_ID, from_domain=NEW, to_domain=OLD, created=CREATED,
    student=RequestedStudent(
        family_name="Nguyễn", given_name="Jenna", middle_name="Marie", birth_date=date(2012, 2, 12), sex="F",
        grade="08", state_id="IL-000123456", previous_school="Shelbyville Middle School",
        previous_sis_id="SMS-40213",
    ),
    enrolment=Enrolment(school="Springfield Middle School", grade="08", start_date=date(2026, 1, 5)),
    requester=COORDINATOR,
    comments="Enrolled on 5 January after a move over the winter break.\nPlease include the IEP.\tThank you.",
)  # fmt: skip
MINIMAL_REQUEST = RecordsRequest(
    request_id=REQUEST_ID, from_domain=NEW, to_domain=OLD, created=CREATED,
    student=RequestedStudent(family_name="Abrams", given_name="Sam", birth_date=date(2014, 9, 30)),
    enrolment=None, requester=Person(name="Ada Admin", email="ada@springfield.k12.example"),
)  # fmt: skip
RELEASED = RequestResponse(
    kind=ResponseKind.RELEASED, request_id=REQUEST_ID, from_domain=OLD, to_domain=NEW, created=ANSWERED,
    person=REGISTRAR, comments="Sent as a transfer; I will phone you the code.", transfer_id=TRANSFER_ID,
)  # fmt: skip
REJECTED = RequestResponse(
    kind=ResponseKind.REJECTED, request_id=REQUEST_ID, from_domain=OLD, to_domain=NEW, created=ANSWERED,
    person=REGISTRAR, comments="No student of that name and birth date was enrolled here; please check both.",
)  # fmt: skip
RELEASE_FAILED = RequestResponse(
    kind=ResponseKind.RELEASE_FAILED, request_id=REQUEST_ID, from_domain=OLD, to_domain=NEW, created=ANSWERED,
    person=REGISTRAR, transfer_id=TRANSFER_ID,
    comments=f"The transfer {TRANSFER_ID} that released the records ended rejected: the requesting district "
    f"refused the records. The request is open again: {OLD} will release the records in a new transfer or reject "
    "the request.",
)  # fmt: skip
CANCELLED = RequestResponse(
    kind=ResponseKind.CANCELLED, request_id=REQUEST_ID, from_domain=NEW, to_domain=OLD, created=ANSWERED,
    person=COORDINATOR,
)  # fmt: skip
ASKED = RequestResponse(
    kind=ResponseKind.MESSAGE, request_id=REQUEST_ID, from_domain=OLD, to_domain=NEW, created=ANSWERED,
    person=REGISTRAR, comments="Which school did she attend here? We have two students of that name.\nThanks",
)  # fmt: skip
ANSWERED_MESSAGE = RequestResponse(
    kind=ResponseKind.MESSAGE, request_id=REQUEST_ID, from_domain=NEW, to_domain=OLD, created=ANSWERED,
    person=COORDINATOR, comments="Lincoln Middle School, grade 7 in 2025-26.",
)  # fmt: skip


def _wire(value: RecordsRequest | RequestResponse) -> dict[str, Any]:
    """The payload as a JSON object, to be changed into what no honest node would send."""
    if isinstance(value, RecordsRequest):
        return json.loads(encode_records_request(value))
    return json.loads(encode_request_response(value))


def _changed(obj: dict[str, Any], path: str, value: Any, *, remove: bool = False) -> dict[str, Any]:
    """A deep copy of ``obj`` with the member at the dotted ``path`` set to ``value`` (or removed)."""
    out: dict[str, Any] = json.loads(json.dumps(obj))
    *parents, last = path.split(".")
    inner = out
    for name in parents:
        inner = inner[name]
    if remove:
        del inner[last]
    else:
        inner[last] = value
    return out


def _request_with(path: str, value: Any) -> bytes:
    return dumps_canonical(_changed(_wire(REQUEST), path, value))


def _response_with(response: RequestResponse, path: str, value: Any) -> bytes:
    return dumps_canonical(_changed(_wire(response), path, value))


def _signed(payload: bytes, purpose: str = PURPOSE_REQUEST, key: IdentityKey = REQUESTER_KEY) -> bytes:
    return sign_document(purpose, payload, key)


def _outer_changed(document: bytes, **changes: str | None) -> bytes:
    """The signed document with outer members replaced (or, given None, removed); the signature is kept."""
    outer = json.loads(document)
    for name, value in changes.items():
        if value is None:
            del outer[name]
        else:
            outer[name] = value
    return dumps_canonical(outer)


def _flip_signature(document: bytes) -> bytes:
    signature = json.loads(document)["signature"]
    return _outer_changed(document, signature=("A" if signature[0] != "A" else "B") + signature[1:])


def _sized(size: int) -> bytes:
    """A request document of exactly ``size`` bytes, its comments padded (base64 grows by 4 per 3 bytes, so a
    two-byte character at the end reaches sizes plain ASCII padding cannot)."""
    fixed = len(_signed(_request_with("comments", "")))
    for length in range((size - fixed) * 3 // 4 - 8, (size - fixed) * 3 // 4 + 8):
        for tail in ("", "é"):
            document = _signed(_request_with("comments", "x" * length + tail))
            if len(document) == size:
                return document
    raise AssertionError(f"no request document of {size} bytes")


# (name, why, purpose verified as, signed document)
Case = tuple[str, str, str, bytes]


def _request_cases() -> list[Case]:
    wire = _wire(REQUEST)
    canonical = encode_records_request(REQUEST)
    as_response = _signed(canonical, PURPOSE_RESPONSE)
    # The same duplicated member twice: a parser keeping the last value would read another request.
    duplicated = b'{"comments":"Please send nothing.",' + canonical[1:]
    student = b'"student":{'
    assert canonical.count(student) == 1
    duplicated_inside = canonical.replace(student, student + b'"given_name":"Sam",')
    r = PURPOSE_REQUEST
    return [
        ("request-valid", "a request with the student's demographics, an enrolment and comments (newline and tab "
         "are allowed in free text; the family name is not ASCII: canonical JSON writes UTF-8 unescaped)",
         r, sign_records_request(REQUEST, REQUESTER_KEY)),
        ("request-valid-minimal", "every optional value null, no enrolment (such a request can never be "
         "released), empty comments, phone and title", r, sign_records_request(MINIMAL_REQUEST, REQUESTER_KEY)),
        ("request-valid-ending-enrolment", "a special-education enrolment with an end date",
         r, _signed(_request_with("enrolment", {"school": "Lincoln Elementary", "grade": "KG",
                                                "start_date": "2026-01-05", "end_date": "2026-06-12",
                                                "type": "special_education"}))),
        ("request-valid-comments-2000-code-points", "2000 characters of comments, each outside the BMP: limits "
         "count Unicode code points (these are 4000 UTF-16 units, 8000 UTF-8 bytes)",
         r, _signed(_request_with("comments", "\U0001f392" * 2000))),
        ("request-valid-not-canonical", "the same request with its members reversed, indented and non-ASCII "
         "written as \\u escapes: the signature covers these exact bytes, and the verifier parses them",
         r, _signed(json.dumps(dict(reversed(wire.items())), indent=2, ensure_ascii=True).encode())),
        ("request-signature-flipped", "one base64url character of the signature changed", r,
         _flip_signature(sign_records_request(REQUEST, REQUESTER_KEY))),
        ("request-signed-by-unknown-key", "signed by a key no district publishes",
         r, sign_records_request(REQUEST, STRANGER_KEY)),
        ("request-signed-by-releaser", "signed by a key that the releasing district publishes, not from_domain",
         r, sign_records_request(REQUEST, RELEASER_KEY)),
        ("request-key-id-missing", "the signed document has no key_id",
         r, _outer_changed(sign_records_request(REQUEST, REQUESTER_KEY), key_id=None)),
        ("request-key-id-of-other-key", "key_id names another key than public_key",
         r, _outer_changed(sign_records_request(REQUEST, REQUESTER_KEY), key_id=STRANGER_KEY.public_key.key_id)),
        ("request-document-extra-member", "the signed document has a sixth member beside its five, which the "
         "signature would not cover", r, _outer_changed(sign_records_request(REQUEST, REQUESTER_KEY),
                                                        received="2026-01-05T15:30:00Z")),
        ("request-signed-as-response", "a request payload signed under the response purpose",
         r, as_response),
        ("request-signed-as-response-read-as-response", "the same document given to the response verifier: "
         "the payload is not a response", PURPOSE_RESPONSE, as_response),
        ("request-unsupported-version", "version 2", r, _signed(_request_with("version", 2))),
        ("request-version-as-text", "version \"1\", a string", r, _signed(_request_with("version", "1"))),
        ("request-member-missing", "student.middle_name left out instead of null",
         r, _signed(dumps_canonical(_changed(wire, "student.middle_name", None, remove=True)))),
        ("request-member-unknown", "a member the format does not have",
         r, _signed(_request_with("priority", "urgent"))),
        ("request-student-member-unknown", "a member the student object does not have: the field is its path",
         r, _signed(_request_with("student.ssn", "123-45-6789"))),
        ("request-member-duplicated", "comments twice in the payload", r, _signed(duplicated)),
        ("request-student-member-duplicated", "student.given_name twice in the payload",
         r, _signed(duplicated_inside)),
        ("request-middle-name-number", "student.middle_name a number, not text or null",
         r, _signed(_request_with("student.middle_name", 7))),
        ("request-enrolment-not-object", "enrolment a string, not an object or null",
         r, _signed(_request_with("enrolment", "Springfield Middle School"))),
        ("request-id-not-ulid", "request_id is not a ULID", r, _signed(_request_with("request_id", "REQ-0001"))),
        ("request-to-own-domain", "to_domain equals from_domain", r, _signed(_request_with("to_domain", NEW))),
        ("request-from-domain-upper-case", "from_domain is not lower case",
         r, _signed(_request_with("from_domain", "Springfield.K12.example"))),
        ("request-created-fraction", "created with a fraction of a second",
         r, _signed(_request_with("created", "2026-01-05T15:30:00.250Z"))),
        ("request-created-offset", "created with an offset instead of Z",
         r, _signed(_request_with("created", "2026-01-05T09:30:00-06:00"))),
        ("request-family-name-empty", "an empty family name",
         r, _signed(_request_with("student.family_name", ""))),
        ("request-family-name-blank", "a family name of spaces only: a required text must hold more than white "
         "space", r, _signed(_request_with("student.family_name", "   "))),
        ("request-given-name-201", "a given name of 201 characters",
         r, _signed(_request_with("student.given_name", "J" * 201))),
        ("request-birth-date-not-padded", "birth_date 2012-2-12", r,
         _signed(_request_with("student.birth_date", "2012-2-12"))),
        ("request-birth-date-not-a-day", "birth_date 2011-02-29, a day that did not exist",
         r, _signed(_request_with("student.birth_date", "2011-02-29"))),
        ("request-sex-lower-case", "sex \"f\"", r, _signed(_request_with("student.sex", "f"))),
        ("request-grade-not-ceds", "grade \"8\" (the CEDS code is \"08\")",
         r, _signed(_request_with("student.grade", "8"))),
        ("request-state-id-129", "a state id of 129 characters",
         r, _signed(_request_with("student.state_id", "9" * 129))),
        ("request-enrolment-ends-before-start", "an enrolment ending the day before it starts",
         r, _signed(_request_with("enrolment.end_date", "2026-01-04"))),
        ("request-enrolment-type-unknown", "enrolment type \"full_time\"",
         r, _signed(_request_with("enrolment.type", "full_time"))),
        ("request-requester-email-not-address", "the requester's e-mail has no @",
         r, _signed(_request_with("requester.email", "coord.springfield.k12.example"))),
        ("request-requester-phone-letters", "letters in the requester's phone",
         r, _signed(_request_with("requester.phone", "call the front desk"))),
        ("request-comments-2001", "comments of 2001 characters", r, _signed(_request_with("comments", "c" * 2001))),
        ("request-comments-with-escape", "ESC [2J in the comments: a terminal would clear the screen",
         r, _signed(_request_with("comments", "Hello\x1b[2J"))),
        ("request-family-name-with-carriage-return", "a CR in the family name",
         r, _signed(_request_with("student.family_name", "Nguy\rn"))),
        ("request-requester-name-line-separator", "U+2028 (a line separator) in the requester's name",
         r, _signed(_request_with("requester.name", "Cory\u2028Coordinator"))),
        ("request-payload-checked-before-signer", "a bad request_id signed by a key no district publishes: the "
         "payload is parsed before the signer is looked up",
         r, _signed(_request_with("request_id", "REQ-0001"), key=STRANGER_KEY)),
        ("request-64-kib", f"a document of exactly {MAX_SIGNED_BYTES} bytes passes the size check (its comments "
         "are then too long)", r, _sized(MAX_SIGNED_BYTES)),
        ("request-over-64-kib", f"a document of {MAX_SIGNED_BYTES + 1} bytes, refused before anything is parsed",
         r, _sized(MAX_SIGNED_BYTES + 1)),
    ]  # fmt: skip


def _response_cases() -> list[Case]:
    def signed(payload: bytes, purpose: str = PURPOSE_RESPONSE) -> bytes:
        return sign_document(purpose, payload, RELEASER_KEY)

    r = PURPOSE_RESPONSE
    return [
        ("response-released", "the releaser released the records; transfer_id names the transfer carrying them",
         r, sign_request_response(RELEASED, RELEASER_KEY)),
        ("response-rejected", "the releaser rejected the request, with comments",
         r, sign_request_response(REJECTED, RELEASER_KEY)),
        ("response-release-failed", "the transfer of the releaser's release ended unopened; transfer_id names it",
         r, sign_request_response(RELEASE_FAILED, RELEASER_KEY)),
        ("response-release-failed-without-transfer", "the news that a release failed, with transfer_id null",
         r, signed(_response_with(RELEASE_FAILED, "transfer_id", None))),
        ("response-cancelled", "the requester cancelled its request (signed by the requester, empty comments)",
         r, sign_request_response(CANCELLED, REQUESTER_KEY)),
        ("response-message-from-releaser", "a message from the releaser's coordinator (its text in comments)",
         r, sign_request_response(ASKED, RELEASER_KEY)),
        ("response-message-from-requester", "a message from the requester's coordinator (signed by the requester)",
         r, sign_request_response(ANSWERED_MESSAGE, REQUESTER_KEY)),
        ("response-message-blank", "a message whose text is only white space",
         r, signed(_response_with(ASKED, "comments", " \n"))),
        ("response-message-with-transfer", "a message naming a transfer",
         r, signed(_response_with(ASKED, "transfer_id", TRANSFER_ID))),
        ("response-signature-flipped", "one base64url character of the signature changed",
         r, _flip_signature(sign_request_response(RELEASED, RELEASER_KEY))),
        ("response-signed-by-requester", "a released response from the releaser signed by the requester's key",
         r, sign_request_response(RELEASED, REQUESTER_KEY)),
        ("response-signed-as-request", "a response payload signed under the request purpose",
         r, signed(encode_request_response(RELEASED), PURPOSE_REQUEST)),
        ("response-unsupported-version", "version 2", r, signed(_response_with(RELEASED, "version", 2))),
        ("response-kind-unknown", "kind \"accepted\"", r, signed(_response_with(RELEASED, "kind", "accepted"))),
        ("response-rejected-without-comments", "a rejection with empty comments",
         r, signed(_response_with(REJECTED, "comments", ""))),
        ("response-rejected-blank-comments", "a rejection whose comments are only white space",
         r, signed(_response_with(REJECTED, "comments", " \n\t"))),
        ("response-released-without-transfer", "a release with transfer_id null",
         r, signed(_response_with(RELEASED, "transfer_id", None))),
        ("response-rejected-with-transfer", "a rejection naming a transfer",
         r, signed(_response_with(REJECTED, "transfer_id", TRANSFER_ID))),
        ("response-cancelled-with-transfer", "a cancellation naming a transfer", r,
         sign_document(PURPOSE_RESPONSE, _response_with(CANCELLED, "transfer_id", TRANSFER_ID), REQUESTER_KEY)),
        ("response-transfer-id-not-ulid", "a release whose transfer_id is not a ULID",
         r, signed(_response_with(RELEASED, "transfer_id", "transfer-1"))),
        ("response-comments-with-bell", "a BEL character in the comments",
         r, signed(_response_with(REJECTED, "comments", "No such student.\x07"))),
        ("response-person-title-missing", "the answering person has no title member",
         r, signed(dumps_canonical(_changed(_wire(RELEASED), "person.title", None, remove=True)))),
        ("response-person-email-not-address", "the answering person's e-mail has no @",
         r, signed(_response_with(REJECTED, "person.email", "rita.shelbyville.k12.example"))),
        ("response-person-name-blank", "the answering person's name is only white space",
         r, signed(_response_with(REJECTED, "person.name", " \t "))),
    ]  # fmt: skip


def _plain(value: Any) -> Any:
    """The parsed value as JSON: dataclasses as objects, times and dates as on the wire."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _resolve(domain: str, key_id: str) -> IdentityPublicKey | None:
    for key in PUBLISHED.get(domain, ()):
        if key.public_key.key_id == key_id:
            return key.public_key
    return None


def _expect(purpose: str, document: bytes) -> dict[str, Any]:
    verify = verify_records_request if purpose == PURPOSE_REQUEST else verify_request_response
    try:
        value = verify(document, _resolve)
    except SatchelError as exc:
        return {"error": exc.code, "field": exc.field}
    encoded = (
        encode_records_request(value) if isinstance(value, RecordsRequest) else encode_request_response(value)
    )
    return {"parsed": _plain(value), "reencodes_to_payload": _payload(document) == encoded}


def _payload(document: bytes) -> bytes:
    return unb64url(json.loads(document)["payload"], field="payload")


def build() -> dict[str, Any]:
    cases = []
    for name, why, purpose, document in _request_cases() + _response_cases():
        cases.append({"name": name, "why": why, "verify_as": purpose, "payload": _payload(document).decode(),
                      "document": document.decode("ascii"), "expect": _expect(purpose, document)})  # fmt: skip
    return {
        "about": "spec/requests.md §3-§4: signed records requests and responses, the purpose each is verified "
        "as, and what a verifier makes of it: the parsed fields, or the error code and field it is refused "
        "with. `payload` is the signed payload as text (its UTF-8 bytes are what was signed); `document` is "
        "the whole signed document, exactly as sent. A verifier resolves the signing key through `published` "
        "(domain -> the key ids it publishes) and `keys`.",
        "keys": [
            {
                "name": name,
                "seed_hex": seed(name).hex(),
                "public_key_hex": key.public_key.raw.hex(),
                "key_id": key.public_key.key_id,
            }
            for name, key in KEYS.items()
        ],
        "published": {domain: [k.public_key.key_id for k in keys] for domain, keys in PUBLISHED.items()},
        "cases": cases,
    }


def render() -> str:
    return vector_kit.render(build())


def main(argv: list[str]) -> int:
    return vector_kit.write_or_check(OUT, render(), argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
