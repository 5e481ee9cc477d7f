"""Generate spec/vectors/receipts/vectors.json from the code (never edit the JSON by hand).

    .venv/bin/python spec/vectors/receipts/generate.py          # rewrite vectors.json
    .venv/bin/python spec/vectors/receipts/generate.py --check  # exit 1 if it is stale

Each case is a signed receipt document (spec/transfer.md §5) and what a verifier must make of it: the fields
it reads out (and, for the valid ones, the exact payload bytes that were signed), or the error code and field
it is refused with. The refused documents are signed anyway with a published key, as a hostile or broken
node could, so that only the rule under test refuses them. Keys come from fixed seeds, times and ULIDs are
literals, and Ed25519 signatures are deterministic, so the file is the same every run.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crypto import IdentityKey, IdentityPublicKey
from protocol import SatchelError
from protocol.json_strict import dumps_canonical
from protocol.receipts import (
    MAX_SIGNED_RECEIPT_BYTES,
    PURPOSE,
    ImportCounts,
    Receipt,
    ReceiptKind,
    Role,
    SkippedStudents,
    check_receipt_for,
    encode_receipt,
    sign_receipt,
    verify_receipt,
)
from protocol.signed_document import b64url, sign_document, verify_document

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # spec/vectors, for vector_kit
import vector_kit

OUT = Path(__file__).resolve().parent / "vectors.json"


seed = vector_kit.seeder("receipts")


SENDER = "springfield.k12.example"
RECEIVER = "shelbyville.k12.example"
THIRD = "capital-city.k12.example"
SEEDS = {"springfield": seed("springfield"), "shelbyville": seed("shelbyville"), "stranger": seed("stranger")}
SENDER_KEY = IdentityKey(SEEDS["springfield"])
RECEIVER_KEY = IdentityKey(SEEDS["shelbyville"])
# Published by no domain: a key anyone could make up and sign with.
STRANGER_KEY = IdentityKey(SEEDS["stranger"])
PUBLISHED = {SENDER: SENDER_KEY.public_key, RECEIVER: RECEIVER_KEY.public_key}

TRANSFER_ID = "01JNPB7Y2M8Q4W5X6Y7Z8A9B0C"
OTHER_TRANSFER_ID = "01JNPB7Y2M8Q4W5X6Y7Z8A9B0D"
# Stands in for the sealed envelope: a receipt only names the digest, so any fixed bytes do.
ENVELOPE_DIGEST = hashlib.sha256(b"satchel/v1/vectors/receipts/envelope").digest()


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, second, tzinfo=UTC)


def receipt(
    kind: ReceiptKind,
    sequence: int,
    created: datetime,
    *,
    issuer: Role = Role.RECEIVER,
    transfer_id: str = TRANSFER_ID,
    to_domain: str | None = None,
    **fields: Any,
) -> Receipt:
    """A receipt of this transfer; the issuer's side fixes the direction unless ``to_domain`` says otherwise."""
    from_domain, other = (RECEIVER, SENDER) if issuer is Role.RECEIVER else (SENDER, RECEIVER)
    return Receipt(kind=kind, transfer_id=transfer_id, issuer=issuer, from_domain=from_domain,
                   to_domain=to_domain or other, sequence=sequence, created=created, **fields)  # fmt: skip


COUNTS = ImportCounts(
    students_total=103, students_imported=98, students_with_changes=3, documents=412, scores=2260,
    skipped=(SkippedStudents(reason="conflicting state id", count=3),
             SkippedStudents(reason="already imported from an earlier transfer", count=1)),
)  # fmt: skip
MESSAGE_TEXT = "Código enviado por teléfono a la Sra. Núñez.\nMerci — rappel au ☎ 217-555-0100 📎"

DELIVERED = receipt(ReceiptKind.DELIVERED, 1, at(12, 0, 5), envelope_digest=ENVELOPE_DIGEST)
ACCEPTED = receipt(ReceiptKind.ACCEPTED, 2, at(13, 30))
REJECTED = receipt(
    ReceiptKind.REJECTED,
    2,
    at(13, 30),
    reason="Not our student:\tno match on name and date of birth.\nPlease check the record.",
)
LOCKED = receipt(ReceiptKind.LOCKED, 2, at(13, 45))
CANCELLED_BY_SENDER = receipt(
    ReceiptKind.CANCELLED,
    1,
    at(12, 20),
    issuer=Role.SENDER,
    reason="Sent to the wrong district; the family moved to Capital City.",
)
CANCELLED_CONFIRMED = receipt(ReceiptKind.CANCELLED, 2, at(12, 20, 1), envelope_digest=ENVELOPE_DIGEST)
IMPORTED = receipt(ReceiptKind.IMPORTED, 3, at(14, 2, 59), envelope_digest=ENVELOPE_DIGEST, counts=COUNTS)
FAILED = receipt(
    ReceiptKind.FAILED,
    3,
    at(14, 3),
    reference="IMP-2026.03_7",
    reason="The import stopped: the student database was full.",
)
MESSAGE = receipt(ReceiptKind.MESSAGE, 2, at(12, 10), issuer=Role.SENDER, text=MESSAGE_TEXT)
# Well-formed on its own (a sender may cancel), but written by the receiver's domain.
RECEIVER_AS_SENDER = Receipt(
    kind=ReceiptKind.CANCELLED,
    transfer_id=TRANSFER_ID,
    issuer=Role.SENDER,
    from_domain=RECEIVER,
    to_domain=SENDER,
    sequence=2,
    created=at(12, 20),
)

# The view a node takes when it checks a receipt from its peer (spec/transfer.md §5.3 step 5).
FROM_RECEIVER = {
    "transfer_id": TRANSFER_ID,
    "from_domain": RECEIVER,
    "to_domain": SENDER,
    "issuer": "receiver",
}
FROM_SENDER = {"transfer_id": TRANSFER_ID, "from_domain": SENDER, "to_domain": RECEIVER, "issuer": "sender"}


def _wire(base: Receipt, **changes: Any) -> dict[str, Any]:
    """The payload object of ``base`` with fields changed (``None`` writes null; see _without)."""
    return {**json.loads(encode_receipt(base)), **changes}


def _without(base: Receipt, key: str) -> dict[str, Any]:
    wire = _wire(base)
    del wire[key]
    return wire


def _counts(**changes: Any) -> dict[str, Any]:
    """The imported receipt's payload with members of its counts changed."""
    wire = _wire(IMPORTED)
    return {**wire, "counts": {**wire["counts"], **changes}}


def _counts_without(key: str) -> dict[str, Any]:
    wire = _counts()
    del wire["counts"][key]
    return wire


def _signed_anyway(
    payload: dict[str, Any] | bytes, key: IdentityKey = RECEIVER_KEY, purpose: str = PURPOSE
) -> bytes:
    """Signed without Receipt's own checks, as a hostile or broken node could."""
    data = payload if isinstance(payload, bytes) else dumps_canonical(payload)
    return sign_document(purpose, data, key)


def _outer(document: bytes, **changes: str) -> bytes:
    return dumps_canonical({**json.loads(document), **changes})


def _flip_signature(document: bytes) -> bytes:
    signature = json.loads(document)["signature"]
    return _outer(document, signature=("A" if signature[0] != "A" else "B") + signature[1:])


def _relabelled() -> bytes:
    # A signature a node made for another kind of document must not pass for a receipt's: the purpose is
    # part of what is signed, so changing only the label breaks the signature.
    return _outer(_signed_anyway(_wire(ACCEPTED), purpose="satchel/v1/descriptor"), purpose=PURPOSE)


def _too_large() -> bytes:
    """One byte over the limit, and valid in every other way: only the size rule refuses it.

    No receipt within the field limits comes near 64 KiB in canonical form, so the payload is padded with
    JSON whitespace before its closing brace, which a verifier must accept (it verifies the bytes it got).
    """
    canonical = encode_receipt(MESSAGE)
    # Only the payload's base64url grows with the padding; the rest of the document keeps its length.
    rest = len(_signed_anyway(canonical, SENDER_KEY)) - len(b64url(canonical))
    wanted = MAX_SIGNED_RECEIPT_BYTES + 1 - rest
    # Unpadded base64url of n bytes is ceil(4n / 3) characters; search the few n around 3/4 of the length.
    size = next(
        (n for n in range(wanted * 3 // 4 - 2, wanted * 3 // 4 + 3) if -(-4 * n // 3) == wanted), None
    )
    # No n gives a length of 4k + 1; should the message ever change so, lengthen its text by a character.
    assert size is not None, "no payload size gives a document of exactly the limit plus one byte"
    document = _signed_anyway(canonical[:-1] + b" " * (size - len(canonical)) + b"}", SENDER_KEY)
    assert len(document) == MAX_SIGNED_RECEIPT_BYTES + 1
    return document


def _non_canonical(base: Receipt) -> bytes:
    """The payload of ``base`` in another layout: keys in reverse order, white space between tokens."""
    wire = _wire(base)
    return json.dumps(dict(reversed(list(wire.items()))), indent=1, ensure_ascii=False).encode("utf-8")


def _duplicate_kind() -> bytes:
    # The second "kind" would win in a lax parser and turn an acceptance into a rejection.
    payload = encode_receipt(ACCEPTED).replace(b'"kind":"accepted"', b'"kind":"accepted","kind":"rejected"')
    return _signed_anyway(payload)


def _cases() -> list[tuple[str, str, bytes, dict[str, str] | None]]:
    return [
        ("valid-delivered", "the receiver got the envelope; envelope_sha256 names the bytes it stored",
         sign_receipt(DELIVERED, RECEIVER_KEY), FROM_RECEIVER),
        ("valid-accepted", "the receiver's coordinator accepted the transfer", sign_receipt(ACCEPTED, RECEIVER_KEY),
         FROM_RECEIVER),
        ("valid-rejected", "a rejection with its reason, which may hold a tab and a newline",
         sign_receipt(REJECTED, RECEIVER_KEY), FROM_RECEIVER),
        ("valid-locked", "the receiver locked the transfer after wrong codes", sign_receipt(LOCKED, RECEIVER_KEY),
         FROM_RECEIVER),
        ("valid-cancelled-by-sender", "the sender cancels, with its reason",
         sign_receipt(CANCELLED_BY_SENDER, SENDER_KEY), FROM_SENDER),
        ("valid-cancelled-confirmed-by-receiver", "the receiver confirms the cancellation, naming the envelope",
         sign_receipt(CANCELLED_CONFIRMED, RECEIVER_KEY), FROM_RECEIVER),
        ("valid-imported-partially", "98 of 103 students imported; 4 of the 5 others are explained in skipped",
         sign_receipt(IMPORTED, RECEIVER_KEY), FROM_RECEIVER),
        ("valid-failed", "the import failed; reference is what the receiving operator looks up",
         sign_receipt(FAILED, RECEIVER_KEY), FROM_RECEIVER),
        ("valid-message", "a message from the sender: a newline and 2-, 3- and 4-byte UTF-8 characters, written "
         "as UTF-8 in the payload (not as \\u escapes)", sign_receipt(MESSAGE, SENDER_KEY), FROM_SENDER),
        ("valid-non-canonical-layout", "the accepted receipt with its keys in reverse order and spaces and "
         "newlines between tokens: the signature covers these bytes, so a verifier accepts them as they are",
         _signed_anyway(_non_canonical(ACCEPTED)), FROM_RECEIVER),
        ("signature-flipped", "one base64url character of the signature changed",
         _flip_signature(sign_receipt(ACCEPTED, RECEIVER_KEY)), None),
        ("purpose-other", "a receipt payload signed under the descriptor purpose",
         _signed_anyway(_wire(ACCEPTED), purpose="satchel/v1/descriptor"), None),
        ("purpose-relabelled", "signed under the descriptor purpose, then the purpose member rewritten to "
         "satchel/v1/receipt: the signature covers the purpose, so it no longer verifies", _relabelled(), None),
        ("key-id-not-public-key", "key_id names another key than public_key",
         _outer(sign_receipt(ACCEPTED, RECEIVER_KEY), key_id=SENDER_KEY.public_key.key_id), None),
        ("too-large", f"{MAX_SIGNED_RECEIPT_BYTES + 1} bytes: a valid message whose payload is padded with JSON "
         "whitespace", _too_large(), None),
        ("unsupported-version", "version 2", _signed_anyway(_wire(ACCEPTED, version=2)), None),
        ("unknown-key", "an extra key, not in §5.1", _signed_anyway(_wire(ACCEPTED, note="hello")), None),
        ("missing-key", "counts left out instead of written as null", _signed_anyway(_without(ACCEPTED, "counts")),
         None),
        ("duplicate-key", "kind twice, accepted then rejected", _duplicate_kind(), None),
        ("unknown-kind", "a kind that is not in §5.1", _signed_anyway(_wire(ACCEPTED, kind="received")), None),
        ("text-in-accepted", "text is allowed only in message",
         _signed_anyway(_wire(ACCEPTED, text="Welcome to Shelbyville!")), None),
        ("counts-in-delivered", "counts are allowed only in imported",
         _signed_anyway(_wire(DELIVERED, counts=_wire(IMPORTED)["counts"])), None),
        ("delivered-without-envelope-sha256", "envelope_sha256 is required in delivered",
         _signed_anyway(_wire(DELIVERED, envelope_sha256=None)), None),
        ("envelope-sha256-short", "envelope_sha256 of 16 bytes",
         _signed_anyway(_wire(DELIVERED, envelope_sha256=b64url(ENVELOPE_DIGEST[:16]))), None),
        ("delivered-by-sender", "only the receiver issues delivered",
         _signed_anyway(_wire(DELIVERED, issuer="sender", from_domain=SENDER, to_domain=RECEIVER), SENDER_KEY),
         None),
        ("rejected-without-reason", "reason is required in rejected", _signed_anyway(_wire(REJECTED, reason=None)),
         None),
        ("rejected-blank-reason", "a reason of spaces only is empty", _signed_anyway(_wire(REJECTED, reason="   ")),
         None),
        ("reason-with-escape", "ESC [2J in the reason: a terminal would clear the screen",
         _signed_anyway(_wire(REJECTED, reason="Not our student\x1b[2J")), None),
        ("message-with-carriage-return", "newline and tab are the only control characters allowed; CR is not",
         _signed_anyway(_wire(MESSAGE, text="Code sent.\r\nCall us."), SENDER_KEY), None),
        ("message-with-line-separator", "U+2028 is refused like a control character",
         _signed_anyway(_wire(MESSAGE, text="Code sent.\u2028Call us."), SENDER_KEY), None),
        ("failed-reference-with-space", "reference is [A-Za-z0-9._-] only",
         _signed_anyway(_wire(FAILED, reference="IMP 7")), None),
        ("imported-more-than-total", "students_imported above students_total",
         _signed_anyway(_wire(IMPORTED, counts={**_wire(IMPORTED)["counts"], "students_imported": 104})), None),
        ("imported-skipped-too-many", "skipped counts 6 students but only 5 were not imported",
         _signed_anyway(_wire(IMPORTED, counts={**_wire(IMPORTED)["counts"],
                                                "skipped": [{"reason": "conflicting state id", "count": 6}]})),
         None),
        # Inside counts a refusal names the member by its dotted path as sent, without an index.
        ("counts-unknown-member", "an extra member in counts",
         _signed_anyway(_counts(students_transferred=103)), None),
        ("counts-missing-member", "scores left out of counts instead of written as 0",
         _signed_anyway(_counts_without("scores")), None),
        ("counts-total-as-text", "students_total written as a string",
         _signed_anyway(_counts(students_total="103")), None),
        ("skipped-entry-reason-not-text", "a skipped entry whose reason is a number: the field is "
         "counts.skipped.reason, not the receipt's own reason",
         _signed_anyway(_counts(skipped=[{"reason": 7, "count": 1}])), None),
        ("skipped-entry-count-boolean", "true is not the integer 1, in a skipped entry either",
         _signed_anyway(_counts(skipped=[{"reason": "conflicting state id", "count": True}])), None),
        ("skipped-entry-without-count", "a skipped entry lacking its count",
         _signed_anyway(_counts(skipped=[{"reason": "conflicting state id"}])), None),
        ("skipped-entry-blank-reason", "a skip reason is required text, so not white space only",
         _signed_anyway(_counts(skipped=[{"reason": " \t", "count": 1}])), None),
        ("sequence-zero", "sequence starts at 1", _signed_anyway(_wire(ACCEPTED, sequence=0)), None),
        ("sequence-boolean", "true is not the integer 1", _signed_anyway(_wire(ACCEPTED, sequence=True)), None),
        ("transfer-id-not-ulid", "25 characters", _signed_anyway(_wire(ACCEPTED, transfer_id=TRANSFER_ID[:25])),
         None),
        ("from-domain-upper-case", "domains are lower case",
         _signed_anyway(_wire(ACCEPTED, from_domain=RECEIVER.upper())), None),
        ("to-domain-is-from-domain", "a receipt is between two districts",
         _signed_anyway(_wire(ACCEPTED, to_domain=RECEIVER)), None),
        ("created-fractional-seconds", "whole seconds only",
         _signed_anyway(_wire(ACCEPTED, created="2026-03-02T13:30:00.500Z")), None),
        ("created-offset", "UTC written with Z, not +00:00",
         _signed_anyway(_wire(ACCEPTED, created="2026-03-02T13:30:00+00:00")), None),
        ("created-not-a-date", "February 30th", _signed_anyway(_wire(ACCEPTED, created="2026-02-30T13:30:00Z")),
         None),
        ("signed-by-other-district", "the receiver's receipt signed with the sender's key, which the receiver's "
         "domain does not publish", _signed_anyway(_wire(ACCEPTED), SENDER_KEY), None),
        ("signed-by-unpublished-key", "signed with a key no domain publishes",
         _signed_anyway(_wire(ACCEPTED), STRANGER_KEY), None),
        ("mismatch-other-transfer", "valid, but about another transfer",
         sign_receipt(receipt(ReceiptKind.ACCEPTED, 2, at(13, 30), transfer_id=OTHER_TRANSFER_ID), RECEIVER_KEY),
         FROM_RECEIVER),
        ("mismatch-reflected", "the sender's own message sent back to it, as if from the receiver",
         sign_receipt(MESSAGE, SENDER_KEY), FROM_RECEIVER),
        ("mismatch-addressed-elsewhere", "valid, from the receiver, but addressed to a third district",
         sign_receipt(receipt(ReceiptKind.ACCEPTED, 2, at(13, 30), to_domain=THIRD), RECEIVER_KEY), FROM_RECEIVER),
        ("mismatch-wrong-side", "the receiver's domain issuing a cancellation in the sender's name",
         sign_receipt(RECEIVER_AS_SENDER, RECEIVER_KEY), FROM_RECEIVER),
    ]  # fmt: skip


def resolve(domain: str, key_id: str) -> IdentityPublicKey | None:
    key = PUBLISHED.get(domain)
    return key if key is not None and key.key_id == key_id else None


def fields(parsed: Receipt) -> dict[str, Any]:
    """What a verifier reads out of a receipt, in plain JSON (the digest as hex, so decoding is checked)."""
    counts = parsed.counts
    return {
        "kind": parsed.kind.value,
        "transfer_id": parsed.transfer_id,
        "issuer": parsed.issuer.value,
        "from_domain": parsed.from_domain,
        "to_domain": parsed.to_domain,
        "sequence": parsed.sequence,
        "created": parsed.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_unix": int(parsed.created.timestamp()),
        "envelope_sha256_hex": parsed.envelope_digest.hex() if parsed.envelope_digest is not None else None,
        "reason": parsed.reason,
        "text": parsed.text,
        "reference": parsed.reference,
        "counts": None if counts is None else {
            "students_total": counts.students_total,
            "students_imported": counts.students_imported,
            "students_with_changes": counts.students_with_changes,
            "documents": counts.documents,
            "scores": counts.scores,
            "skipped": [{"reason": s.reason, "count": s.count} for s in counts.skipped],
            "complete": counts.complete,
        },
    }  # fmt: skip


def _expect(document: bytes, check: dict[str, str] | None) -> dict[str, Any]:
    try:
        parsed = verify_receipt(document, resolve)
        if check is not None:
            check_receipt_for(
                parsed, transfer_id=check["transfer_id"], from_domain=check["from_domain"],
                to_domain=check["to_domain"], issuer=Role(check["issuer"]),
            )  # fmt: skip
    except SatchelError as exc:
        return {"error": exc.code, "field": exc.field}
    signer = verify_document(document, purpose=PURPOSE).signer
    return {"signed_by": signer.key_id, "receipt": fields(parsed)}


def _case(name: str, why: str, document: bytes, check: dict[str, str] | None) -> dict[str, Any]:
    case: dict[str, Any] = {"name": name, "why": why, "document": document.decode("ascii")}
    expect = _expect(document, check)
    if "error" not in expect:
        # The exact signed bytes: canonical, so also what encode_receipt writes, but for the one case laid
        # out otherwise, which a verifier accepts as it is (spec/README.md).
        case["payload"] = verify_document(document, purpose=PURPOSE).payload.decode("utf-8")
        rewritten = encode_receipt(verify_receipt(document, resolve))
        case["canonical"] = case["payload"].encode("utf-8") == rewritten
    if check is not None:
        case["check"] = check
    case["expect"] = expect
    return case


def _key(name: str, secret: bytes) -> dict[str, str]:
    public = IdentityKey(secret).public_key
    return {
        "name": name,
        "seed_hex": secret.hex(),
        "public_key_hex": public.raw.hex(),
        "public_key": b64url(public.raw),
        "key_id": public.key_id,
    }


def build() -> dict[str, Any]:
    return {
        "about": "spec/transfer.md §5: signed receipts and what a verifier makes of each",
        "generator": "spec/vectors/receipts/generate.py",
        "purpose": PURPOSE,
        "max_document_bytes": MAX_SIGNED_RECEIPT_BYTES,
        "keys": [_key(name, secret) for name, secret in SEEDS.items()],
        # What each domain publishes: a verifier's resolve_key(domain, key_id) answers from this alone.
        "published": {domain: [key.key_id] for domain, key in PUBLISHED.items()},
        "transfer": {
            "transfer_id": TRANSFER_ID,
            "sender": SENDER,
            "receiver": RECEIVER,
            "envelope_sha256": b64url(ENVELOPE_DIGEST),
        },
        "cases": [_case(*case) for case in _cases()],
    }


def render() -> str:
    return vector_kit.render(build())


def main(argv: list[str]) -> int:
    return vector_kit.write_or_check(OUT, render(), argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
