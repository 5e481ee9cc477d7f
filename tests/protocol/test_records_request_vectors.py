"""spec/vectors/records-requests: what the generator writes is what is committed, and a verifier whose keys
come from the JSON alone reaches each case's verdict."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crypto import IdentityKey, IdentityPublicKey
from protocol import SatchelError
from protocol.receipts import format_timestamp
from protocol.records_request import (
    MAX_SIGNED_BYTES,
    PURPOSE_REQUEST,
    PURPOSE_RESPONSE,
    RecordsRequest,
    RequestResponse,
    encode_records_request,
    encode_request_response,
    verify_records_request,
    verify_request_response,
)
from protocol.signed_document import unb64url

from support import load_script

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "records-requests"
DATA = json.loads((VECTORS / "vectors.json").read_text())
CASES = DATA["cases"]
KEYS = {k["key_id"]: IdentityPublicKey(bytes.fromhex(k["public_key_hex"])) for k in DATA["keys"]}
PUBLISHED: dict[str, list[str]] = DATA["published"]


def _generator() -> ModuleType:
    return load_script(VECTORS / "generate.py", "records_requests_vectors_generate")


def resolve(domain: str, key_id: str) -> IdentityPublicKey | None:
    return KEYS[key_id] if key_id in PUBLISHED.get(domain, ()) else None


def plain(value: Any) -> Any:
    """A parsed request or response as the JSON the vectors write it in."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def verify(purpose: str, document: bytes) -> RecordsRequest | RequestResponse:
    if purpose == PURPOSE_REQUEST:
        return verify_records_request(document, resolve)
    assert purpose == PURPOSE_RESPONSE
    return verify_request_response(document, resolve)


def test_vectors_are_what_the_generator_produces() -> None:
    assert (VECTORS / "vectors.json").read_text() == _generator().render()


def test_keys_are_what_their_seeds_make() -> None:
    for key in DATA["keys"]:
        public = IdentityKey(bytes.fromhex(key["seed_hex"])).public_key
        assert (public.raw.hex(), public.key_id) == (key["public_key_hex"], key["key_id"])
    published = [key_id for ids in PUBLISHED.values() for key_id in ids]
    assert set(published) < set(KEYS)  # one key is published by no district


def test_vectors_cover_acceptance_and_each_refusal() -> None:
    verdicts = {(c["verify_as"], c["expect"].get("error")) for c in CASES}
    for purpose in (PURPOSE_REQUEST, PURPOSE_RESPONSE):
        for code in (None, "signature.invalid", "request.wrong_signer", "request.unsupported_version",
                     "request.invalid", "message.malformed"):  # fmt: skip
            assert (purpose, code) in verdicts
    kinds = {c["expect"]["parsed"]["kind"] for c in CASES if c["verify_as"] == PURPOSE_RESPONSE
             and "parsed" in c["expect"]}  # fmt: skip
    assert kinds == {"released", "rejected", "release_failed", "cancelled", "message"}
    refused_fields = {c["expect"]["field"] for c in CASES if "error" in c["expect"]}
    spec_rules = {"purpose", "key_id", "version", "request_id", "to_domain", "created", "comments", "student.sex",
                  "student.grade", "student.birth_date", "student.middle_name", "student.given_name",
                  "enrolment.end_date", "enrolment.type", "requester.email", "requester.phone", "requester.name",
                  "person.title", "person.email", "kind", "transfer_id"}  # fmt: skip
    assert spec_rules <= refused_fields
    canonical = {c["expect"].get("reencodes_to_payload") for c in CASES if "parsed" in c["expect"]}
    assert canonical == {True, False}  # a verifier must not depend on the canonical form


def _members(value: Any, path: str = "") -> set[str]:
    """Every member's dotted path in a JSON value: {"a": {"b": 1}} gives {"a", "a.b"}."""
    if not isinstance(value, dict):
        return set()
    out = set()
    for key, child in value.items():
        here = f"{path}.{key}" if path else key
        out |= {here} | _members(child, here)
    return out


def test_refusals_name_the_members_dotted_path() -> None:
    """spec/requests.md §4: `field` is the member's path from the payload's top level as the peer sent it
    (`student.birth_date`, `requester.email`), never a bare name (`birth_date`, `email`) that does not say
    which object it is in."""
    by_name = {c["name"]: c for c in CASES}
    defined = {PURPOSE_REQUEST: _members(json.loads(by_name["request-valid"]["payload"])),
               PURPOSE_RESPONSE: _members(json.loads(by_name["response-released"]["payload"]))}  # fmt: skip
    checked = 0
    for case in CASES:
        expect = case["expect"]
        if not expect.get("error", "").startswith("request.") or expect["error"] == "request.wrong_signer":
            continue
        if "duplicated" in case["name"]:
            continue  # §4: a member given twice is named by its key alone
        sent = _members(json.loads(case["payload"]))
        field = expect["field"]
        parent = field.rpartition(".")[0]
        # the member is in what the peer sent (an unknown one, or a bad value), or the format defines it and
        # the object it belongs in was sent (a missing one)
        assert field in sent or (field in defined[case["verify_as"]] and (parent in sent or not parent)), case
        checked += 1
    assert checked >= 30


def test_the_size_limit_is_inclusive() -> None:
    sizes = {len(c["document"]): c["expect"] for c in CASES if len(c["document"]) >= MAX_SIGNED_BYTES}
    assert sizes[MAX_SIGNED_BYTES]["error"] == "request.invalid"  # refused later, for its comments
    assert sizes[MAX_SIGNED_BYTES + 1] == {"error": "message.malformed", "field": None}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_vector_gets_its_verdict(case: dict[str, Any]) -> None:
    document = case["document"].encode("ascii")
    payload = unb64url(json.loads(document)["payload"], field="payload")
    assert payload == case["payload"].encode("utf-8")
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(SatchelError) as refused:
            verify(case["verify_as"], document)
        assert (refused.value.code, refused.value.field) == (expect["error"], expect["field"])
        return
    value = verify(case["verify_as"], document)
    assert plain(value) == expect["parsed"]
    encoded = (
        encode_records_request(value) if isinstance(value, RecordsRequest) else encode_request_response(value)
    )
    assert (encoded == payload) is expect["reencodes_to_payload"]
