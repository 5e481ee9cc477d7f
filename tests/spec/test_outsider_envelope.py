"""spec/ is enough to build a compatible node: an implementation written from the text alone meets the vectors.

tests/spec/outsider_envelope.py was written from spec/README.md, spec/envelope.md, spec/codes.md and the JSON
vectors only. Here it opens or refuses every envelope vector exactly as recorded (same bytes, same error
code, same intermediate values), parses every code and transfer code, derives every claim, and seals
envelopes that Satchel's own opener opens. The differential tests at the end keep the text's finer rules
(msgpack error order, code normalisation) and Satchel's behaviour from drifting apart.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import msgpack
import nacl.bindings as sodium
import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.spec import outsider_envelope as outsider

ROOT = Path(__file__).resolve().parents[2]
ENVELOPES = ROOT / "spec" / "vectors" / "envelope"
TRANSFER_CODES = ROOT / "spec" / "vectors" / "transfer-codes" / "vectors.json"
ENVELOPE_FILES = sorted(p for p in ENVELOPES.glob("*.json") if p.name not in {"codes.json", "parts.json"})
OURS = {"crypto", "protocol", "node", "storage", "cli", "tests"}


def _open(vector: dict[str, Any]) -> outsider.Opened:
    return outsider.open_envelope(
        bytes.fromhex(vector["envelope"]),
        code=vector["code"],
        sender_public_key=bytes.fromhex(vector["sender_public_key"]),
        sender_key_id=vector["sender_key_id"],
        recipient_secret_key=bytes.fromhex(vector["recipient_secret_key"]),
        recipient_key_id=vector["recipient_key_id"],
        recipient_domain=vector["recipient_domain"],
        now=vector["now"],
        policy=vector["policy"],
    )


@pytest.mark.parametrize("path", ENVELOPE_FILES, ids=lambda p: p.stem)
def test_the_outsider_opens_or_refuses_every_envelope_vector_as_recorded(path: Path) -> None:
    vector = json.loads(path.read_text())
    if "expected_error" in vector:
        with pytest.raises(outsider.OutsiderError) as refused:
            _open(vector)
        assert refused.value.code == vector["expected_error"]
        return
    opened = _open(vector)
    expected = vector["expected"]
    assert opened.manifest_bytes.hex() == expected["manifest"]
    assert opened.manifest_signature.hex() == expected["manifest_signature"]
    assert b"".join(opened.documents).hex() == expected["documents"]
    assert opened.chunk_count == expected["chunk_count"]
    assert {name: value.hex() for name, value in opened.intermediate.items()} == vector["intermediate"]
    key = outsider.RecipientKey(bytes.fromhex(vector["recipient_secret_key"]))
    assert key.public_bytes().hex() == vector["recipient_public_key"]
    documents = [r for r in opened.manifest["records"] if r["kind"] == "document"]
    assert [hashlib.sha256(d).digest() for d in opened.documents] == [r["sha256"] for r in documents]


def test_every_vector_file_is_read() -> None:
    """Nothing in the vector folder escapes this file: parts.json holds each envelope's HPKE output."""
    names = {p.name for p in ENVELOPES.glob("*.json")}
    assert names == {p.name for p in ENVELOPE_FILES} | {"codes.json", "parts.json"}
    parts = json.loads((ENVELOPES / "parts.json").read_text())
    assert set(parts) == {p.stem for p in ENVELOPE_FILES}
    for name, part in parts.items():
        envelope = bytes.fromhex(json.loads((ENVELOPES / f"{name}.json").read_text())["envelope"])
        assert len(part) == 2 * outsider.ENC_LENGTH
        # damaged framing aside, the part is the encapsulation field, right after its length (§3)
        if bytes.fromhex(part) not in envelope:
            assert name in {"truncated-prefix", "truncated-magic"}, name


def test_the_code_vectors() -> None:
    for entry in json.loads((ENVELOPES / "codes.json").read_text())["vectors"]:
        if "error" in entry:
            with pytest.raises(outsider.OutsiderError) as refused:
                outsider.parse_code(entry["input"])
            assert refused.value.code == entry["error"], entry
        else:
            canonical = outsider.parse_code(entry["input"])
            assert canonical == entry["canonical"], entry
            assert outsider.display_code(canonical) == entry["display"], entry


TRANSFER = json.loads(TRANSFER_CODES.read_text())


@pytest.mark.parametrize("case", TRANSFER["parsing"], ids=lambda c: c["name"])
def test_the_transfer_code_parsing_vectors(case: dict[str, Any]) -> None:
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(outsider.OutsiderError) as refused:
            outsider.parse_transfer_code(case["text"])
        assert (refused.value.code, refused.value.field) == (expect["error"], expect["field"])
    else:
        parsed = outsider.parse_transfer_code(case["text"])
        assert (parsed.code, parsed.display, parsed.source_domain) == (
            expect["code"], expect["display"], expect["source_domain"],
        )  # fmt: skip


def test_the_transfer_code_claim_vectors() -> None:
    labels = TRANSFER["labels"]
    assert (labels["salt"], labels["code_id"], labels["proof"]) == (
        outsider.CLAIM_SALT_LABEL.decode(), outsider.CLAIM_ID_LABEL.decode(), outsider.CLAIM_PROOF_LABEL.decode(),
    )  # fmt: skip
    keys = {}
    for claim in TRANSFER["claims"]:
        parsed = outsider.parse_transfer_code(claim["transfer_code"])
        assert parsed.source_domain == claim["source_domain"]
        assert parsed.code == claim["password_ascii"] and parsed.code.encode().hex() == claim["password_hex"]
        assert claim["argon2id"] == {"version": 0x13, "t": 3, "m_kib": 65536, "p": 1, "length": 32}
        assert outsider.claim_salt(parsed.source_domain).hex() == claim["salt_hex"]
        key = keys[claim["name"]] = outsider.claim_key(parsed.code, parsed.source_domain)
        assert key.hex() == claim["key_hex"]
        code_id = outsider.claim_code_id(key)
        assert (code_id.hex(), outsider.b64url(code_id)) == (claim["code_id_hex"], claim["code_id_b64url"])
        nonce = bytes.fromhex(claim["nonce_hex"])
        assert outsider.b64url(nonce) == claim["nonce_b64url"]
        proof = outsider.claim_proof(key, claim["destination"], nonce)
        assert (proof.hex(), outsider.b64url(proof)) == (claim["proof_hex"], claim["proof_b64url"])
        assert outsider.claim_body(key, claim["destination"], nonce) == claim["body"]
    for check in TRANSFER["proof_checks"]:
        expected = outsider.claim_proof(keys[check["claim"]], check["destination"], bytes.fromhex(check["nonce_hex"]))
        assert expected.hex() == check["expected_proof_hex"]
        assert (expected.hex() == check["proof_hex"]) is check["valid"]


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(0, 200), min_size=1, max_size=5), key=st.binary(min_size=32, max_size=32))
def test_secretstream_from_the_spec_text_is_libsodiums(lengths: list[int], key: bytes) -> None:
    """envelope.md §6, for implementers without libsodium: both directions, every message length mod 16."""
    messages = [bytes(i % 251 for i in range(n)) for n in lengths]
    tags = [outsider.TAG_MESSAGE] * (len(messages) - 1) + [outsider.TAG_FINAL]
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    push = sodium.crypto_secretstream_xchacha20poly1305_push
    theirs = [push(state, m, None, t) for m, t in zip(messages, tags, strict=True)]
    ours = outsider.SecretStream(key, header)
    assert [ours.push(m, t) for m, t in zip(messages, tags, strict=True)] == theirs
    reader = outsider.SecretStream(key, header)
    assert [reader.pull(c) for c in theirs] == list(zip(messages, tags, strict=True))


def test_the_x_wing_hpke_of_the_spec_is_the_librarys() -> None:
    """envelope.md §8.3 written out: what the text seals a library opens, and the other way round."""
    key = outsider.RecipientKey(hashlib.sha512(b"outsider").digest() + hashlib.sha256(b"x25519").digest())
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    library_key = hpke.MLKEM768X25519PrivateKey(key.mlkem, key.x25519)
    info, secret = b"satchel/v1/envelope/hpke\x00" + bytes(32), bytes(range(32))
    sealed = outsider.hpke_seal(key.public_bytes(), secret, info)
    assert len(sealed) == outsider.ENC_LENGTH
    assert suite.decrypt(sealed, library_key, info=info) == secret
    assert outsider.hpke_open(key, suite.encrypt(secret, library_key.public_key(), info=info), info) == secret


# --- the other direction: Satchel opens what the outsider seals (this side imports ours) ------------------------

SENDER_SEED = hashlib.sha256(b"outsider sender").digest()
SENDER_PUBLIC = Ed25519PrivateKey.from_private_bytes(SENDER_SEED).public_key().public_bytes_raw()
RECIPIENT_SECRET = hashlib.sha512(b"outsider recipient").digest() + hashlib.sha256(b"outsider x25519").digest()


def _outsider_envelope(documents: list[bytes], *, chunk_size: int, metadata: Any) -> tuple[bytes, dict[str, Any]]:
    from crypto import EncryptionKey, IdentityKey

    sender, recipient = IdentityKey(SENDER_SEED), EncryptionKey(RECIPIENT_SECRET).public_key
    manifest = {
        "created": 1767225000, "format": 1, "notes": "Written by another team.\nFrom the spec alone.",
        "recipient_domain": "shelbyville.k12.example", "recipient_owner": None, "sender_domain": "outside.example",
        "sender_key_id": sender.public_key.key_id,
        "students": [{
            "birth_date": "2012-03-04", "email": None, "family_name": "Núñez", "given_name": "Ana", "grade": "07",
            "middle_name": None, "recipient_sis_id": None, "school": None, "sex": None, "sis_id": "S-1",
            "state_id": "IL-1", "username": None,
        }],
        "records": [
            {"corrects": None, "document_type": None, "id": f"doc-{i}", "kind": "document", "length": len(d),
             "media_type": "application/pdf", "metadata": metadata, "sha256": hashlib.sha256(d).digest(),
             "student": "S-1", "title": f"Document {i}"}
            for i, d in enumerate(documents)
        ] + [{"corrects": None, "document_type": None, "id": "case-1", "kind": "case", "length": None,
              "media_type": None, "metadata": {"level": -3}, "sha256": None, "student": "S-1", "title": None}],
    }  # fmt: skip
    envelope = outsider.seal_envelope(
        manifest=manifest, documents=documents,
        sender_key=Ed25519PrivateKey.from_private_bytes(SENDER_SEED), sender_domain="outside.example",
        sender_key_id=sender.public_key.key_id, recipient_public_key=recipient.raw,
        recipient_domain="shelbyville.k12.example", recipient_key_id=recipient.key_id, code="7K2Q-M9XD-RT4B-J",
        now=1767225600, expires=1767225600 + 86400, argon2_t=1, argon2_m=8, chunk_size=chunk_size,
    )  # fmt: skip
    return envelope, manifest


def _satchel_opens(envelope: bytes) -> tuple[Any, bytes]:
    from crypto import EncryptionKey, IdentityKey, open_envelope, parse_code
    from protocol import Argon2Params, OpenPolicy

    documents = io.BytesIO()
    opened = open_envelope(
        io.BytesIO(envelope), documents, code=parse_code("7k2q m9xd rt4b j"),
        sender_key=IdentityKey(SENDER_SEED).public_key, recipient_key=EncryptionKey(RECIPIENT_SECRET),
        recipient_domain="shelbyville.k12.example", now=1767225700,
        policy=OpenPolicy(min_argon2=Argon2Params(time_cost=1, memory_kib=8)),
    )  # fmt: skip
    return opened, documents.getvalue()


def test_satchel_opens_what_the_outsider_seals() -> None:
    """envelope.md §8.1 from the text: framing, header map, X-Wing HPKE, key schedule, manifest, chunks."""
    documents = [b"%PDF-1.7 " * 300, b"", bytes(range(256)) * 5 + b"tail"]
    envelope, manifest = _outsider_envelope(documents, chunk_size=1024, metadata={"a": [1, {"b": "c\td"}]})
    opened, staged = _satchel_opens(envelope)
    assert staged == b"".join(documents)
    assert opened.manifest_bytes == outsider.encode_canonical(manifest)
    assert [r.record_id for r in opened.manifest.records] == ["doc-0", "doc-1", "doc-2", "case-1"]
    assert opened.header.sender_domain == "outside.example" and opened.header.chunk_count == 5
    # and the outsider opens its own envelope as it opens Satchel's
    again = outsider.open_envelope(
        envelope, code="7K2QM9XDRT4BJ", sender_public_key=SENDER_PUBLIC, sender_key_id=opened.header.sender_key_id,
        recipient_secret_key=RECIPIENT_SECRET, recipient_key_id=opened.header.recipient_key_id,
        recipient_domain="shelbyville.k12.example", now=1767225700, policy={"min_argon2_t": 1, "min_argon2_m": 8},
    )  # fmt: skip
    assert again.documents == documents


@settings(max_examples=15, deadline=None)
@given(
    lengths=st.lists(st.sampled_from([0, 1, 15, 16, 17, 63, 64, 65, 1000, 1024, 1025, 2047]), min_size=1, max_size=3)
)
def test_satchel_opens_outsider_envelopes_of_any_length(lengths: list[int]) -> None:
    documents = [hashlib.sha256(str(n).encode()).digest() * (n // 32 + 1) for n in lengths]
    documents = [d[:n] for d, n in zip(documents, lengths, strict=True)]
    envelope, _ = _outsider_envelope(documents, chunk_size=1024, metadata={})
    assert _satchel_opens(envelope)[1] == b"".join(documents)


@settings(max_examples=15, deadline=None)
@given(
    lengths=st.lists(st.sampled_from([0, 1, 15, 16, 17, 959, 960, 961, 2048, 3001]), min_size=1, max_size=3),
    chunk_size=st.sampled_from([1024, 2048]),
    kind=st.sampled_from(["transfer", "release", "import"]),
)
def test_the_outsider_opens_what_satchel_seals(lengths: list[int], chunk_size: int, kind: str) -> None:
    """The vectors' direction with payloads of any length: §6's chunking and last chunk, as Satchel seals."""
    from crypto import EncryptionKey, IdentityKey, generate_code, seal_envelope
    from protocol import Argon2Params, Manifest, ManifestRecord, ManifestStudent

    sender, recipient = IdentityKey(SENDER_SEED), EncryptionKey(RECIPIENT_SECRET)
    documents = [bytes((i * 7 + n) % 256 for i in range(n)) for n in lengths]
    manifest = Manifest(
        sender_domain="springfield.k12.example", sender_key_id=sender.public_key.key_id,
        recipient_domain="shelbyville.k12.example", created=1767225000,
        students=(ManifestStudent(sis_id="1", given_name="A", family_name="B", birth_date="2010-01-01"),),
        records=tuple(
            ManifestRecord(kind="document", record_id=f"d{i}", student_sis_id="1", length=len(d),
                           sha256=hashlib.sha256(d).digest(), media_type="text/plain", title=f"D{i}")
            for i, d in enumerate(documents)
        ),
    )  # fmt: skip
    code, out = generate_code(), io.BytesIO()
    seal_envelope(
        io.BytesIO(b"".join(documents)), out, manifest=manifest, sender_key=sender, recipient_key=recipient.public_key,
        code=code, now=1767225600, expires=1767225600 + 60, kind=kind, argon2=Argon2Params(time_cost=1, memory_kib=8),
        chunk_size=chunk_size,
    )  # fmt: skip
    opened = outsider.open_envelope(
        out.getvalue(), code=code.reveal(), sender_public_key=SENDER_PUBLIC, sender_key_id=sender.public_key.key_id,
        recipient_secret_key=RECIPIENT_SECRET, recipient_key_id=recipient.public_key.key_id,
        recipient_domain="shelbyville.k12.example", now=1767225601, policy={"min_argon2_t": 1, "min_argon2_m": 8},
    )  # fmt: skip
    assert opened.documents == documents and opened.header["kind"] == kind


# --- differential: the text's finer rules are Satchel's ------------------------------------------------------

_LEAVES = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8) | st.binary(max_size=8)
    | st.sampled_from(["x" * 257, "é" * 129, b"y" * 33, 1.5, msgpack.ExtType(1, b"ab"), msgpack.Timestamp(1, 0)])
)  # fmt: skip
_VALUES = st.recursive(
    _LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abcé"), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES, cut=st.integers(-3, 400), extra=st.binary(max_size=2), flip=st.integers(0, 400))
def test_msgpack_errors_come_in_the_order_the_spec_gives(value: Any, cut: int, extra: bytes, flip: int) -> None:
    """envelope.md §2.2: the outsider's decoder, written from the text, and Satchel's agree byte for byte."""
    from protocol import SatchelError
    from protocol.msgpack_strict import MsgpackLimits, unpack_strict

    data = bytearray(msgpack.packb(value, use_bin_type=True))
    if flip < len(data) and extra:
        data[flip] ^= extra[0]
    data = data[:cut] + extra if 0 <= cut < len(data) else data + extra[1:]
    theirs = {
        "header": MsgpackLimits(max_bytes=8192, max_depth=1, max_str=256, max_bin=32, max_map=32),
        "manifest": MsgpackLimits(max_bytes=8 << 20, max_depth=7, max_str=262144, max_bin=32, max_array=1 << 20,
                                  max_map=256),
    }  # fmt: skip
    for name, limits in (("header", outsider.HEADER_LIMITS), ("manifest", outsider.MANIFEST_LIMITS)):
        try:
            ours: Any = ("ok", outsider.decode_canonical(bytes(data), limits))
        except outsider.OutsiderError as refused:
            ours = refused.code
        try:
            satchel: Any = ("ok", unpack_strict(bytes(data), field=name, limits=theirs[name]))
        except SatchelError as refused:
            satchel = refused.code
        assert ours == satchel, (name, bytes(data).hex())


_TYPED = st.lists(
    st.sampled_from([*"7K2QM9XDRT4BJ-_ @.aobilsuIOLU", "\u0131", "\u00df", "\uff20", "\u00a0", "\u2212", "é"]),
    max_size=24,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(typed=_TYPED | st.sampled_from(["7K2Q-M9XD-RT4B-J", "7K2Q-M9XD-RT4B-J@springfield.k12.example"]).flatmap(
    lambda base: st.tuples(st.integers(0, len(base)), _TYPED).map(lambda p: base[: p[0]] + p[1] + base[p[0]:])
))  # fmt: skip
def test_codes_are_read_as_satchel_reads_them(typed: str) -> None:
    """codes.md §5 and §7.1, written out: the outsider's reading of any text is Satchel's."""
    from crypto import parse_code
    from protocol import SatchelError
    from protocol.transfer_code import parse_transfer_code

    def outsider_reading() -> Any:
        try:
            code = outsider.parse_code(typed)
        except outsider.OutsiderError as refused:
            code = refused.code
        try:
            parsed = outsider.parse_transfer_code(typed)
            transfer: Any = (parsed.code, parsed.source_domain)
        except outsider.OutsiderError as refused:
            transfer = (refused.code, refused.field)
        return code, transfer

    def satchel_reading() -> Any:
        try:
            code = parse_code(typed)._kdf_input().decode()
        except SatchelError as refused:
            code = refused.code
        try:
            parsed = parse_transfer_code(typed)
            transfer: Any = (parsed.code._kdf_input().decode(), parsed.source_domain)
        except SatchelError as refused:
            transfer = (refused.code, refused.field)
        return code, transfer

    assert outsider_reading() == satchel_reading()
