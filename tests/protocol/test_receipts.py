import contextlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import IdentityKey, IdentityPublicKey
from protocol import MalformedMessage, SatchelError, SignatureInvalid
from protocol.receipts import (
    MAX_REASON,
    ImportCounts,
    Receipt,
    ReceiptInvalid,
    ReceiptKind,
    ReceiptMismatch,
    ReceiptUnsupportedVersion,
    ReceiptWrongSigner,
    Role,
    SkippedStudents,
    check_receipt_for,
    encode_receipt,
    parse_receipt,
    receipt_path,
    sign_receipt,
    verify_receipt,
)
from protocol.signed_document import b64url, unb64url

RECEIVER_KEY = IdentityKey(bytes(range(32)))
SENDER_KEY = IdentityKey(bytes(range(1, 33)))
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
TID = "01JNPB7Y2M0000000000000000"
A, B = "a.example.org", "b.example.org"
DIGEST = bytes(range(32))
PUBLISHED = {B: RECEIVER_KEY.public_key, A: SENDER_KEY.public_key}


def resolve(domain: str, key_id: str) -> IdentityPublicKey | None:
    key = PUBLISHED.get(domain)
    return key if key is not None and key.key_id == key_id else None


def make(kind: ReceiptKind = ReceiptKind.DELIVERED, **changes: object) -> Receipt:
    fields: dict[str, object] = {
        "kind": kind, "transfer_id": TID, "issuer": Role.RECEIVER, "from_domain": B, "to_domain": A,
        "sequence": 1, "created": NOW,
    }  # fmt: skip
    fields.update(
        {
            ReceiptKind.DELIVERED: {"envelope_digest": DIGEST},
            ReceiptKind.REJECTED: {"reason": "Not our student.\nPlease check the id."},
            ReceiptKind.IMPORTED: {
                "counts": ImportCounts(
                    students_total=103,
                    students_imported=98,
                    students_with_changes=3,
                    documents=40,
                    scores=900,
                    skipped=(SkippedStudents(reason="conflicting state id", count=5),),
                )
            },
            ReceiptKind.FAILED: {"reference": "IMP-2026.03_7"},
            ReceiptKind.MESSAGE: {"text": "Code sent by phone to Ms Rivera."},
        }.get(kind, {})
    )
    fields.update(changes)
    return Receipt(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", list(ReceiptKind))
def test_round_trip_every_kind(kind: ReceiptKind) -> None:
    receipt = make(kind)
    assert parse_receipt(encode_receipt(receipt)) == receipt
    assert verify_receipt(sign_receipt(receipt, RECEIVER_KEY), resolve) == receipt


def test_wire_form_has_every_key_and_canonical_bytes() -> None:
    data = json.loads(encode_receipt(make()))
    assert data == {
        "version": 1, "kind": "delivered", "transfer_id": TID, "issuer": "receiver", "from_domain": B,
        "to_domain": A, "sequence": 1, "created": "2026-03-02T12:00:00Z", "envelope_sha256": b64url(DIGEST),
        "reason": None, "text": None, "reference": None, "counts": None,
    }  # fmt: skip
    assert encode_receipt(make()) == encode_receipt(make())


def test_created_is_normalised_to_utc_seconds() -> None:
    local = datetime(2026, 3, 2, 7, 0, 0, 999_999, tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    receipt = make(created=local)
    assert receipt.created == datetime(2026, 3, 2, 7, 0, 0, tzinfo=UTC)
    assert parse_receipt(encode_receipt(receipt)) == receipt


def test_tampered_payload_does_not_verify() -> None:
    signed = json.loads(sign_receipt(make(ReceiptKind.ACCEPTED), RECEIVER_KEY))
    payload = json.loads(unb64url(signed["payload"], field="payload"))
    payload["kind"] = "rejected"
    payload["reason"] = "changed"
    signed["payload"] = b64url(json.dumps(payload).encode())
    with pytest.raises(SignatureInvalid) as caught:
        verify_receipt(json.dumps(signed).encode(), resolve)
    assert caught.value.code == "signature.invalid"


def test_flipped_signature_does_not_verify() -> None:
    signed = json.loads(sign_receipt(make(), RECEIVER_KEY))
    raw = bytearray(unb64url(signed["signature"], field="signature"))
    raw[0] ^= 1
    signed["signature"] = b64url(bytes(raw))
    with pytest.raises(SignatureInvalid):
        verify_receipt(json.dumps(signed).encode(), resolve)


def test_a_key_the_domain_does_not_publish_is_refused() -> None:
    # Validly signed, but by the sender's key while claiming to come from the receiver's domain.
    with pytest.raises(ReceiptWrongSigner) as caught:
        verify_receipt(sign_receipt(make(), SENDER_KEY), resolve)
    assert caught.value.code == "receipt.wrong_signer"
    with pytest.raises(ReceiptWrongSigner):
        verify_receipt(sign_receipt(make(), RECEIVER_KEY), lambda domain, key_id: None)
    stranger = IdentityKey(bytes(32))
    with pytest.raises(ReceiptWrongSigner):
        verify_receipt(sign_receipt(make(), stranger), resolve)


def test_other_purposes_are_refused() -> None:
    from protocol.signed_document import sign_document

    with pytest.raises(MalformedMessage):
        verify_receipt(sign_document("satchel/v1/descriptor", encode_receipt(make()), RECEIVER_KEY), resolve)


@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [
        (ReceiptKind.DELIVERED, {"envelope_digest": None}, "envelope_sha256"),  # the member a peer sent
        (ReceiptKind.DELIVERED, {"envelope_digest": b"short"}, "envelope_sha256"),
        (ReceiptKind.REJECTED, {"reason": " \n"}, "reason"),
        (ReceiptKind.REJECTED, {"reason": "x" * (MAX_REASON + 1)}, "reason"),
        (ReceiptKind.REJECTED, {"reason": "bell\x07"}, "reason"),
        (ReceiptKind.ACCEPTED, {"text": "hello"}, "text"),
        (ReceiptKind.MESSAGE, {"envelope_digest": DIGEST}, "envelope_sha256"),
        (ReceiptKind.FAILED, {"reference": "no spaces allowed"}, "reference"),
        (ReceiptKind.IMPORTED, {"counts": None}, "counts"),
        (ReceiptKind.DELIVERED, {"issuer": Role.SENDER}, "issuer"),
        (ReceiptKind.DELIVERED, {"to_domain": B}, "to_domain"),
        (ReceiptKind.DELIVERED, {"from_domain": "B.example.org"}, "from_domain"),
        (ReceiptKind.DELIVERED, {"transfer_id": "not-a-ulid"}, "transfer_id"),
        (ReceiptKind.DELIVERED, {"sequence": 0}, "sequence"),
        (ReceiptKind.DELIVERED, {"sequence": True}, "sequence"),
        (ReceiptKind.DELIVERED, {"created": datetime(2026, 3, 2)}, "created"),
    ],
)
def test_invalid_receipts_are_refused_with_the_field(kind: ReceiptKind, changes: dict, field: str) -> None:
    with pytest.raises(ReceiptInvalid) as caught:
        make(kind, **changes)
    assert caught.value.field == field
    assert caught.value.code == "receipt.invalid"


def test_import_counts_must_add_up() -> None:
    with pytest.raises(ReceiptInvalid):
        ImportCounts(students_total=3, students_imported=4)
    with pytest.raises(ReceiptInvalid):
        ImportCounts(students_total=3, students_imported=3, students_with_changes=4)
    with pytest.raises(ReceiptInvalid):
        ImportCounts(students_total=3, students_imported=2, skipped=(SkippedStudents(reason="x", count=2),))
    assert not ImportCounts(students_total=3, students_imported=2).complete


def _payload(**changes: object) -> bytes:
    data = json.loads(encode_receipt(make()))
    data.update(changes)
    return json.dumps(data).encode()


def test_parser_is_strict() -> None:
    with pytest.raises(ReceiptUnsupportedVersion):
        parse_receipt(_payload(version=2))
    with pytest.raises(ReceiptInvalid, match="unknown field"):
        parse_receipt(_payload(extra=1))
    data = json.loads(encode_receipt(make()))
    del data["reason"]
    with pytest.raises(ReceiptInvalid, match="lacks"):
        parse_receipt(json.dumps(data).encode())
    with pytest.raises(ReceiptInvalid):
        parse_receipt(_payload(kind="opened"))
    with pytest.raises(ReceiptInvalid):
        parse_receipt(_payload(created="2026-03-02T12:00:00+00:00"))
    with pytest.raises(ReceiptInvalid):
        parse_receipt(_payload(created="2026-02-30T12:00:00Z"))
    with pytest.raises(ReceiptInvalid):
        parse_receipt(b'{"version": 1, "version": 1}')


def _counts_payload(**changes: object) -> dict:
    data = json.loads(encode_receipt(make(ReceiptKind.IMPORTED)))
    data["counts"].update(changes)
    return data


@pytest.mark.parametrize(
    ("counts", "field"),
    [
        ({"students_total": "103"}, "counts.students_total"),
        ({"documents": None}, "counts.documents"),
        ({"scores": True}, "counts.scores"),
        ({"extra": 1}, "counts.extra"),
        ({"skipped": {}}, "counts.skipped"),
        ({"skipped": ["x"]}, "counts.skipped"),
        ({"skipped": [{"reason": 5, "count": 1}]}, "counts.skipped.reason"),  # not the receipt's "reason"
        ({"skipped": [{"reason": "", "count": 1}]}, "counts.skipped.reason"),
        ({"skipped": [{"count": 1}]}, "counts.skipped.reason"),
        ({"skipped": [{"reason": "x", "count": "1"}]}, "counts.skipped.count"),
        ({"skipped": [{"reason": "x", "count": 0}]}, "counts.skipped.count"),
        ({"skipped": [{"reason": "x"}]}, "counts.skipped.count"),
        ({"skipped": [{"reason": "x", "count": 1, "why": "y"}]}, "counts.skipped.why"),
        ({"students_imported": 104}, "counts.students_imported"),
    ],
)
def test_counts_errors_name_the_dotted_path(counts: dict, field: str) -> None:
    with pytest.raises(ReceiptInvalid) as caught:
        parse_receipt(json.dumps(_counts_payload(**counts)).encode())
    assert (caught.value.code, caught.value.field) == ("receipt.invalid", field)


def test_a_missing_counts_member_is_named_by_its_path() -> None:
    data = _counts_payload()
    del data["counts"]["students_with_changes"]
    with pytest.raises(ReceiptInvalid) as missing:
        parse_receipt(json.dumps(data).encode())
    assert missing.value.field == "counts.students_with_changes"


def test_repr_hides_free_text() -> None:
    receipt = make(ReceiptKind.REJECTED, reason="Jenna Abrams is not enrolled here")
    assert "Jenna" not in repr(receipt)


def test_belongs_to_and_paths() -> None:
    receipt = make(ReceiptKind.ACCEPTED)
    check_receipt_for(receipt, transfer_id=TID, from_domain=B, to_domain=A, issuer=Role.RECEIVER)
    with pytest.raises(ReceiptMismatch) as caught:
        check_receipt_for(receipt, transfer_id=TID, from_domain=B, to_domain=A, issuer=Role.SENDER)
    assert caught.value.field == "issuer"
    assert receipt_path(receipt) == f"/satchel/v1/transfers/{TID}/receipts"
    cancel = make(ReceiptKind.CANCELLED, issuer=Role.SENDER, from_domain=A, to_domain=B)
    assert receipt_path(cancel) == f"/satchel/v1/transfers/{TID}/cancel"
    assert receipt_path(make(ReceiptKind.MESSAGE)).endswith("/messages")


texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=50
)


@st.composite
def receipts(draw: st.DrawFn) -> Receipt:
    kind = draw(st.sampled_from(list(ReceiptKind)))
    changes: dict[str, object] = {
        "sequence": draw(st.integers(1, 1_000_000)),
        "created": NOW + timedelta(seconds=draw(st.integers(-(10**8), 10**8))),
    }
    if kind is ReceiptKind.REJECTED:
        changes["reason"] = draw(texts.filter(str.strip))
    if kind is ReceiptKind.MESSAGE:
        changes["text"] = draw(texts.filter(str.strip))
        changes["issuer"] = draw(st.sampled_from(list(Role)))
    if kind is ReceiptKind.CANCELLED:
        changes["reason"] = draw(st.none() | texts)
    if kind is ReceiptKind.IMPORTED:
        total = draw(st.integers(0, 1000))
        imported = draw(st.integers(0, total))
        changes["counts"] = ImportCounts(students_total=total, students_imported=imported,
                                         students_with_changes=draw(st.integers(0, imported)))  # fmt: skip
    return make(kind, **changes)


@given(receipts())
def test_hypothesis_round_trip(receipt: Receipt) -> None:
    assert parse_receipt(encode_receipt(receipt)) == receipt


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_satchel_errors(data: bytes) -> None:
    for parse in (parse_receipt, lambda d: verify_receipt(d, resolve)):
        with contextlib.suppress(SatchelError):
            parse(data)


SIGNED = json.loads(sign_receipt(make(ReceiptKind.IMPORTED), RECEIVER_KEY))
PAYLOAD = json.loads(encode_receipt(make(ReceiptKind.IMPORTED)))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@given(st.sampled_from(sorted(PAYLOAD)), json_values)
def test_mutated_payloads_raise_only_receipt_errors(key: str, value: object) -> None:
    data = dict(PAYLOAD, **{key: value})
    with contextlib.suppress(ReceiptInvalid):
        parse_receipt(json.dumps(data).encode())


@given(st.sampled_from(sorted(SIGNED)), json_values)
def test_mutated_signed_documents_raise_only_satchel_errors(key: str, value: object) -> None:
    with contextlib.suppress(SatchelError):
        verify_receipt(json.dumps(dict(SIGNED, **{key: value})).encode(), resolve)


def test_an_unchanged_document_still_verifies() -> None:
    assert verify_receipt(json.dumps(SIGNED).encode(), resolve) == make(ReceiptKind.IMPORTED)
    assert replace(make(), sequence=2) != make()
