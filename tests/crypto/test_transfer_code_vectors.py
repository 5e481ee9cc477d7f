"""spec/vectors/transfer-codes: what the generator writes is what is committed; every typed text gets its
verdict; every claim is derived again from the JSON alone (hashlib, PyNaCl's Argon2id, hmac), as an outside
implementation would, and again through crypto's public API, and both agree with the file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import nacl.pwhash.argon2id
import pytest

from crypto import check_transfer_code_proof, parse_code, transfer_code_credentials, transfer_code_proof
from protocol import SatchelError
from protocol.transfer_code import MAX_INPUT, parse_transfer_code

from support import load_script

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "transfer-codes"
DATA = json.loads((VECTORS / "vectors.json").read_text())
LABELS = DATA["labels"]
CLAIMS = {c["name"]: c for c in DATA["claims"]}


def _unb64url(text: str) -> bytes:
    assert "=" not in text, "base64url travels without padding"
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_vectors_are_what_the_generator_produces() -> None:
    generator = load_script(VECTORS / "generate.py", "transfer_code_vectors_generate")
    assert (VECTORS / "vectors.json").read_text() == generator.render()


def test_vectors_cover_acceptance_each_refusal_and_the_length_limit() -> None:
    verdicts = {c["expect"].get("error") for c in DATA["parsing"]}
    assert verdicts == {None, "code.source_invalid", "code.malformed", "code.typo"}
    # Every refusal names a field: the whole typed text ("code") or the part after '@' ("source_domain").
    fields = {c["name"]: c["expect"]["field"] for c in DATA["parsing"] if "error" in c["expect"]}
    assert set(fields.values()) == {"code", "source_domain"}
    whole_text = [fields[name] for name in ("too-long", "no-at", "nothing-before-at")]
    assert whole_text == ["code"] * 3 and fields["nothing-after-at"] == "source_domain"
    lengths = {c["name"]: len(c["text"]) for c in DATA["parsing"]}
    assert (lengths["at-limit"], lengths["too-long"]) == (MAX_INPUT, MAX_INPUT + 1)
    assert 2 <= len(DATA["claims"]) <= 3, "each claim costs an Argon2id at 64 MiB"
    assert DATA["proof_checks"]


@pytest.mark.parametrize("case", DATA["parsing"], ids=[c["name"] for c in DATA["parsing"]])
def test_each_typed_text_gets_its_verdict(case: dict[str, Any]) -> None:
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(SatchelError) as refused:
            parse_transfer_code(case["text"], parse_code=parse_code)
        assert (refused.value.code, refused.value.field) == (expect["error"], expect["field"])
    else:
        parsed = parse_transfer_code(case["text"], parse_code=parse_code)
        assert parsed.code == parse_code(expect["display"])
        assert parsed.code.reveal() == expect["display"]
        assert expect["display"].replace("-", "")[:12] == expect["code"]
        assert parsed.source_domain == expect["source_domain"]


@pytest.mark.parametrize("case", DATA["claims"], ids=list(CLAIMS))
def test_each_claim_derives_again_from_the_json_alone(case: dict[str, Any]) -> None:
    """Only the standard library and PyNaCl's Argon2id, from the file's own fields: what an outsider runs."""
    password = case["password_ascii"].encode("ascii")
    assert password.hex() == case["password_hex"] and len(password) == 12
    source, destination = case["source_domain"].encode("ascii"), case["destination"].encode("ascii")
    nonce = bytes.fromhex(case["nonce_hex"])
    assert 16 <= len(nonce) <= 64

    salt_input = LABELS["salt"].encode() + b"\x00" + source
    assert salt_input.hex() == case["salt_input_hex"]
    salt = hashlib.blake2b(salt_input, digest_size=16).digest()
    assert salt.hex() == case["salt_hex"]

    params = case["argon2id"]
    # libsodium's crypto_pwhash implements Argon2id v1.3 with one lane only: these cannot vary here.
    assert (params["version"], params["p"]) == (0x13, 1)
    key = nacl.pwhash.argon2id.kdf(
        params["length"], password, salt, opslimit=params["t"], memlimit=params["m_kib"] * 1024
    )
    assert key.hex() == case["key_hex"]

    code_id = hmac.digest(key, LABELS["code_id"].encode(), "sha256")[:16]
    assert code_id.hex() == case["code_id_hex"]
    proof_input = LABELS["proof"].encode() + b"\x00" + destination + b"\x00" + nonce
    assert proof_input.hex() == case["proof_input_hex"]
    proof = hmac.digest(key, proof_input, "sha256")
    assert proof.hex() == case["proof_hex"]

    for name, raw in (("code_id", code_id), ("nonce", nonce), ("proof", proof)):
        assert _unb64url(case[f"{name}_b64url"]) == raw
    # §7.5's body in canonical JSON (sorted keys, no spaces), as node/claiming.py sends it.
    body = {"code_id": case["code_id_b64url"], "nonce": case["nonce_b64url"], "proof": case["proof_b64url"]}
    assert case["body"] == json.dumps(body, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("case", DATA["claims"], ids=list(CLAIMS))
def test_each_claim_derives_again_through_the_public_api(case: dict[str, Any]) -> None:
    typed = parse_transfer_code(case["transfer_code"], parse_code=parse_code)
    assert typed.source_domain == case["source_domain"]
    assert typed.code.reveal().replace("-", "")[:12] == case["password_ascii"]
    code_id, key = transfer_code_credentials(typed.code, typed.source_domain)
    assert (code_id.hex(), key.hex()) == (case["code_id_hex"], case["key_hex"])
    nonce = bytes.fromhex(case["nonce_hex"])
    proof = transfer_code_proof(key, destination=case["destination"], nonce=nonce)
    assert proof.hex() == case["proof_hex"]
    assert check_transfer_code_proof(key, destination=case["destination"], nonce=nonce, proof=proof)


@pytest.mark.parametrize("check", DATA["proof_checks"], ids=[c["name"] for c in DATA["proof_checks"]])
def test_each_misbound_proof_is_refused(check: dict[str, Any]) -> None:
    claim = CLAIMS[check["claim"]]
    key, nonce = bytes.fromhex(claim["key_hex"]), bytes.fromhex(check["nonce_hex"])
    proof = bytes.fromhex(check["proof_hex"])
    assert proof.hex() == claim["proof_hex"], "the check presents the claim's own proof"
    expected = hmac.digest(
        key, LABELS["proof"].encode() + b"\x00" + check["destination"].encode() + b"\x00" + nonce, "sha256"
    )
    assert expected.hex() == check["expected_proof_hex"] and expected != proof
    verdict = check_transfer_code_proof(key, destination=check["destination"], nonce=nonce, proof=proof)
    assert verdict is check["valid"] is False
