"""spec/vectors/receipts: what the generator writes is what is committed, and a verifier built from the JSON
alone (its key table, its cases) reaches each case's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crypto import IdentityPublicKey
from protocol import SatchelError
from protocol.receipts import (
    MAX_SIGNED_RECEIPT_BYTES,
    PURPOSE,
    Receipt,
    ReceiptKind,
    Role,
    check_receipt_for,
    encode_receipt,
    verify_receipt,
)
from protocol.signed_document import verify_document

from support import load_script

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "receipts"
DATA = json.loads((VECTORS / "vectors.json").read_text())
CASES = DATA["cases"]
VALID = [c for c in CASES if "error" not in c["expect"]]
# The refusals spec/transfer.md §5 names, each with the field a verifier must point at.
REFUSALS = {
    ("signature.invalid", None),
    ("receipt.unsupported_version", "version"),
    ("receipt.invalid", "note"),  # an unknown key
    ("receipt.invalid", "counts"),  # a missing key, or counts where they are not allowed
    ("receipt.invalid", "text"),  # text in accepted, or a control character in a message
    ("receipt.invalid", "reason"),  # rejected without a reason, or a control character in it
    ("receipt.invalid", "sequence"),
    ("receipt.invalid", "to_domain"),
    ("receipt.invalid", "created"),
    # Inside counts, the dotted path as a peer sent it (no index): never a bare name like "reason".
    ("receipt.invalid", "counts.students_total"),  # not an integer
    ("receipt.invalid", "counts.scores"),  # missing
    ("receipt.invalid", "counts.students_transferred"),  # unknown
    ("receipt.invalid", "counts.skipped.reason"),
    ("receipt.invalid", "counts.skipped.count"),
    ("receipt.wrong_signer", "key_id"),
    ("message.malformed", None),  # over 64 KiB
    ("message.malformed", "purpose"),
    ("receipt.mismatch", "transfer_id"),
    ("receipt.mismatch", "from_domain"),
    ("receipt.mismatch", "to_domain"),
    ("receipt.mismatch", "issuer"),
}


def _generator() -> ModuleType:
    return load_script(VECTORS / "generate.py", "receipt_vectors_generate")


def _resolve_key(domain: str, key_id: str) -> IdentityPublicKey | None:
    """resolve_key from the vector's key table only: the key a domain publishes under that id, if any."""
    if key_id not in DATA["published"].get(domain, []):
        return None
    (key,) = (k for k in DATA["keys"] if k["key_id"] == key_id)
    return IdentityPublicKey(bytes.fromhex(key["public_key_hex"]))


def _check(receipt: Receipt, check: dict[str, str]) -> None:
    check_receipt_for(
        receipt, transfer_id=check["transfer_id"], from_domain=check["from_domain"], to_domain=check["to_domain"],
        issuer=Role(check["issuer"]),
    )  # fmt: skip


def _read_out(receipt: Receipt) -> dict[str, Any]:
    """The fields as the vector writes them; built here, not by the generator, so the two check each other."""
    counts = None
    if receipt.counts is not None:
        c = receipt.counts
        counts = {
            "students_total": c.students_total, "students_imported": c.students_imported,
            "students_with_changes": c.students_with_changes, "documents": c.documents, "scores": c.scores,
            "skipped": [{"reason": s.reason, "count": s.count} for s in c.skipped], "complete": c.complete,
        }  # fmt: skip
    return {
        "kind": receipt.kind.value, "transfer_id": receipt.transfer_id, "issuer": receipt.issuer.value,
        "from_domain": receipt.from_domain, "to_domain": receipt.to_domain, "sequence": receipt.sequence,
        "created": receipt.created.isoformat().replace("+00:00", "Z"),
        "created_unix": int(receipt.created.timestamp()),
        "envelope_sha256_hex": None if receipt.envelope_digest is None else receipt.envelope_digest.hex(),
        "reason": receipt.reason, "text": receipt.text, "reference": receipt.reference, "counts": counts,
    }  # fmt: skip


def test_vectors_are_what_the_generator_produces() -> None:
    assert (VECTORS / "vectors.json").read_text() == _generator().render()


def test_vectors_cover_every_kind_and_each_refusal() -> None:
    assert {c["expect"]["receipt"]["kind"] for c in VALID} == {k.value for k in ReceiptKind}
    assert {c["expect"]["receipt"]["issuer"] for c in VALID} == {r.value for r in Role}
    verdicts = {(c["expect"]["error"], c["expect"]["field"]) for c in CASES if "error" in c["expect"]}
    assert verdicts >= REFUSALS, REFUSALS - verdicts
    bare = {"students_total", "students_imported", "students_with_changes", "documents", "scores", "skipped",
            "count", "students_transferred"}  # fmt: skip
    assert not {field for _, field in verdicts} & bare, "a member of counts is named by its dotted path"
    # Edges an implementation gets wrong most easily: a message with a newline and non-ASCII text (raw UTF-8
    # in the payload), an import with skipped students, a document exactly one byte over the limit.
    message = next(c for c in VALID if c["expect"]["receipt"]["kind"] == "message")["payload"]
    assert "\\n" in message and not message.isascii()
    imported = next(c for c in VALID if c["expect"]["receipt"]["kind"] == "imported")["expect"]["receipt"]
    assert imported["counts"]["skipped"] and not imported["counts"]["complete"]
    assert {len(c["document"]) for c in CASES if c["name"] == "too-large"} == {MAX_SIGNED_RECEIPT_BYTES + 1}
    assert len({c["name"] for c in CASES}) == len(CASES)


def test_key_table_is_consistent() -> None:
    keys = {k["key_id"]: k for k in DATA["keys"]}
    for key in DATA["keys"]:
        assert IdentityPublicKey(bytes.fromhex(key["public_key_hex"])).key_id == key["key_id"]
    assert all(key_id in keys for key_ids in DATA["published"].values() for key_id in key_ids)
    # One key is published by nobody, for the wrong-signer case.
    assert set(keys) - {k for key_ids in DATA["published"].values() for k in key_ids}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_vector_gets_its_verdict(case: dict[str, Any]) -> None:
    document = case["document"].encode("ascii")
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(SatchelError) as refused:
            receipt = verify_receipt(document, _resolve_key)
            if "check" in case:
                _check(receipt, case["check"])
        assert (refused.value.code, refused.value.field) == (expect["error"], expect["field"])
        return
    receipt = verify_receipt(document, _resolve_key)
    _check(receipt, case["check"])
    assert _read_out(receipt) == expect["receipt"]
    assert verify_document(document, purpose=PURPOSE).signer.key_id == expect["signed_by"]


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_valid_payload_is_the_exact_signed_bytes(case: dict[str, Any]) -> None:
    payload = case["payload"].encode("utf-8")
    document = case["document"].encode("ascii")
    assert verify_document(document, purpose=PURPOSE).payload == payload
    # Canonical payloads are what encode_receipt writes; another layout is accepted as it is.
    assert (encode_receipt(verify_receipt(document, _resolve_key)) == payload) is case["canonical"]


def test_a_verifier_does_not_require_the_canonical_layout() -> None:
    """spec/README.md: a receiver verifies and parses the exact bytes and MUST NOT require canonical JSON."""
    (case,) = (c for c in VALID if not c["canonical"])
    payload = case["payload"].encode("utf-8")
    receipt = verify_receipt(case["document"].encode("ascii"), _resolve_key)
    assert json.loads(payload) == json.loads(encode_receipt(receipt))
    assert b"\n" in payload and list(json.loads(payload)) != sorted(json.loads(payload))
