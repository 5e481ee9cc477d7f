"""spec/vectors/envelope: regenerate byte for byte, then open every vector through the public API."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from crypto import (
    EncryptionKey,
    IdentityPublicKey,
    open_envelope,
    parse_code,
    peek_unverified_sender,
    verify_manifest,
)
from crypto._envelope_kdf import HPKE_SUITE, argon2_salt, code_key, hpke_info, payload_keys
from protocol import Argon2Params, OpenPolicy, SatchelError
from protocol.envelope_format import parse_header_map, parse_unverified_prefix

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "spec" / "vectors" / "envelope"
FILES = sorted(p for p in VECTORS.glob("*.json") if p.name not in {"parts.json", "codes.json"})


def test_generator_reproduces_the_committed_vectors(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--out", str(tmp_path)],
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    generated = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in VECTORS.glob("*.json") if p.name != "parts.json")
    assert generated == committed
    for name in generated:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), name


def test_vectors_cover_the_issue() -> None:
    names = {p.stem for p in FILES}
    valid = {n for n in names if n.startswith("valid-")}
    assert {"valid-empty-payload", "valid-multi-chunk", "valid-several-students"} <= valid
    errors = {json.loads(p.read_text())["expected_error"] for p in FILES if not p.stem.startswith("valid-")}
    assert {
        "envelope.signature_invalid", "envelope.not_recipient", "envelope.truncated", "envelope.corrupt",
        "envelope.unsupported_version", "envelope.unsupported_suite", "envelope.weak_kdf_params",
        "envelope.expired", "envelope.wrong_code_or_key", "envelope.trailing_bytes", "msgpack.duplicate_key",
    } <= errors  # fmt: skip


def _policy(raw: dict[str, int]) -> OpenPolicy:
    return OpenPolicy(
        min_argon2=Argon2Params(time_cost=raw["min_argon2_t"], memory_kib=raw["min_argon2_m"]),
        max_argon2=Argon2Params(time_cost=raw["max_argon2_t"], memory_kib=raw["max_argon2_m"]),
        max_header_length=raw["max_header_length"],
        max_manifest_length=raw["max_manifest_length"],
        max_payload_length=raw["max_payload_length"],
        max_chunk_size=raw["max_chunk_size"],
        clock_skew=raw["clock_skew"],
    )


def _open(vector: dict[str, Any], sink: io.BytesIO) -> Any:
    envelope = bytes.fromhex(vector["envelope"])
    sender = IdentityPublicKey(bytes.fromhex(vector["sender_public_key"]))
    recipient = EncryptionKey(bytes.fromhex(vector["recipient_secret_key"]))
    assert recipient.public_key.key_id == vector["recipient_key_id"]
    return open_envelope(
        io.BytesIO(envelope),
        sink,
        code=parse_code(vector["code"]),
        sender_key=sender,
        recipient_key=recipient,
        recipient_domain=vector["recipient_domain"],
        now=vector["now"],
        policy=_policy(vector["policy"]),
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_vector_opens_or_fails_as_recorded(path: Path) -> None:
    vector = json.loads(path.read_text())
    sink = io.BytesIO()
    if "expected_error" in vector:
        with pytest.raises(SatchelError) as info:
            _open(vector, sink)
        assert info.value.code == vector["expected_error"]
        return
    assert peek_unverified_sender(bytes.fromhex(vector["envelope"])[:400])[1] == vector["sender_key_id"]
    opened = _open(vector, sink)
    expected = vector["expected"]
    assert sink.getvalue().hex() == expected["documents"]
    assert opened.manifest_bytes.hex() == expected["manifest"]
    assert opened.manifest_signature.hex() == expected["manifest_signature"]
    assert opened.header.chunk_count == expected["chunk_count"]
    sender = IdentityPublicKey(bytes.fromhex(vector["sender_public_key"]))
    assert verify_manifest(opened.manifest_bytes, opened.manifest_signature, sender) == opened.manifest


@pytest.mark.parametrize("path", [p for p in FILES if p.stem.startswith("valid-")], ids=lambda p: p.stem)
def test_intermediate_values_follow_the_key_schedule(path: Path) -> None:
    vector = json.loads(path.read_text())
    steps = {k: bytes.fromhex(v) for k, v in vector["intermediate"].items()}
    prefix = parse_unverified_prefix(bytes.fromhex(vector["envelope"]), max_header_length=8192)
    header = parse_header_map(prefix)
    recipient = EncryptionKey(bytes.fromhex(vector["recipient_secret_key"]))
    assert hpke_info(prefix.signed_part[: prefix.preamble_length]) == steps["hpke_info"]
    assert (
        HPKE_SUITE.decrypt(prefix.encapsulation, recipient.hpke_key(), info=steps["hpke_info"])
        == (steps["hpke_secret"])
    )
    assert argon2_salt(header.envelope_id_bytes) == steps["argon2id_salt"]
    assert code_key(parse_code(vector["code"]), header.envelope_id_bytes, header.argon2) == steps["code_key"]
    transcript = prefix.signed_part[: prefix.encapsulation_end]
    assert payload_keys(steps["hpke_secret"], steps["code_key"], transcript) == (
        steps["payload_key"],
        steps["key_check"],
    )
    assert prefix.key_check == steps["key_check"]
    assert hashlib.sha256(transcript).digest() == steps["hkdf_salt"]
    assert hmac.digest(steps["hkdf_salt"], steps["hpke_secret"] + steps["code_key"], "sha256") == steps["prk"]
    assert HKDFExpand(hashes.SHA256(), 32, b"satchel/v1/envelope/payload-key").derive(steps["prk"]) == (
        steps["payload_key"]
    )
    assert recipient.public_key.raw.hex() == vector["recipient_public_key"]


@pytest.mark.parametrize("path", [p for p in FILES if p.stem.startswith("valid-")], ids=lambda p: p.stem)
def test_the_x_wing_steps_are_those_of_the_spec(path: Path) -> None:
    """spec/envelope.md §8.3: the combiner the vectors show is the one HPKE used to seal the secret."""
    vector = json.loads(path.read_text())
    steps = {k: bytes.fromhex(v) for k, v in vector["intermediate"].items()}
    encapsulation = parse_unverified_prefix(bytes.fromhex(vector["envelope"]), max_header_length=8192).encapsulation
    secret = bytes.fromhex(vector["recipient_secret_key"])
    ct_m, ct_x = encapsulation[:1088], encapsulation[1088:1120]
    assert mlkem.MLKEM768PrivateKey.from_seed_bytes(secret[:64]).decapsulate(ct_m) == steps["xwing_ss_mlkem"]
    x_key = x25519.X25519PrivateKey.from_private_bytes(secret[64:])
    assert x_key.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x)) == steps["xwing_ss_x25519"]
    pk_x = x_key.public_key().public_bytes_raw()
    label = bytes.fromhex("5c2e2f2f5e5c")
    combined = hashlib.sha3_256(steps["xwing_ss_mlkem"] + steps["xwing_ss_x25519"] + ct_x + pk_x + label).digest()
    assert combined == steps["kem_shared_secret"]


def test_code_vectors() -> None:
    for entry in json.loads((VECTORS / "codes.json").read_text())["vectors"]:
        if "error" in entry:
            with pytest.raises(SatchelError) as info:
                parse_code(entry["input"])
            assert info.value.code == entry["error"], entry
        else:
            code = parse_code(entry["input"])
            assert code.reveal() == entry["display"], entry
            assert code._kdf_input() == entry["canonical"].encode(), entry
