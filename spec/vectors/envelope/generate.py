"""Generate the envelope and code test vectors of spec/envelope.md §10 from the code's seams.

    .venv/bin/python spec/vectors/envelope/generate.py [--out DIR] [--refresh-parts]
    .venv/bin/python spec/vectors/envelope/generate.py --check  # exit 1 if a committed file is stale

Every input is derived from fixed seeds except HPKE's output: ``cryptography`` draws the KEM's ephemeral
randomness itself, so each vector's encapsulation is stored in ``parts.json`` (beside this script) and
reused. The script checks that every stored encapsulation still decapsulates to the expected secret under
the expected ``info``; when a format change makes one stale it stops, and ``--refresh-parts`` makes new ones.
Nothing here is edited by hand: change the script and run it again.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from crypto import EncryptionKey, IdentityKey
from crypto._codes import Code, check_symbol
from crypto._envelope_kdf import HPKE_SUITE, argon2_salt, code_key, hpke_info, payload_keys
from crypto._envelope_seal import _seal_from_parts
from protocol.envelope_format import (
    CHUNK_OVERHEAD,
    DEFAULT_POLICY,
    Argon2Params,
    OpenPolicy,
    parse_unverified_prefix,
)
from protocol.manifest import Manifest, ManifestRecord, ManifestStudent, encode_manifest
from protocol.msgpack_strict import pack_canonical, unpack_strict

HERE = Path(__file__).resolve().parent
PARTS = HERE / "parts.json"
NOW = 1767225600  # 2026-01-01T00:00:00Z
EXPIRES = NOW + 30 * 86400
SENDER_DOMAIN = "springfield.k12.example"
RECIPIENT_DOMAIN = "shelbyville.k12.example"
FAST = Argon2Params(time_cost=1, memory_kib=8)
FAST_POLICY = OpenPolicy(min_argon2=FAST)


def seed(*labels: str) -> bytes:
    return hashlib.sha256(b"satchel/v1/vectors/envelope/" + "/".join(labels).encode()).digest()


SENDER = IdentityKey(seed("sender-identity"))
OTHER_SENDER = IdentityKey(seed("other-sender-identity"))
RECIPIENT = EncryptionKey(
    seed("recipient-mlkem")[:32] + seed("recipient-mlkem-2")[:32] + seed("recipient-x25519")
)
OTHER_RECIPIENT = EncryptionKey(seed("other-mlkem")[:32] + seed("other-mlkem-2")[:32] + seed("other-x25519"))
KEYS = {"recipient": RECIPIENT, "other-recipient": OTHER_RECIPIENT}


def document(name: str, length: int) -> bytes:
    out, counter = bytearray(), 0
    while len(out) < length:
        out += hashlib.sha256(f"{name}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:length])


def doc_record(record_id: str, student: str, data: bytes, **extra: Any) -> ManifestRecord:
    return ManifestRecord(
        kind="document", record_id=record_id, student_sis_id=student, length=len(data),
        sha256=hashlib.sha256(data).digest(), media_type="application/pdf", title=f"Document {record_id}", **extra,
    )  # fmt: skip


STUDENT = ManifestStudent(
    sis_id="100234", given_name="Jaylynn", family_name="Student", birth_date="2009-02-12", grade="10", sex="F"
)


def manifest(
    records: tuple[ManifestRecord, ...], students: tuple[ManifestStudent, ...] = (STUDENT,), **kw: Any
):
    return Manifest(
        sender_domain=SENDER_DOMAIN, sender_key_id=SENDER.public_key.key_id, recipient_domain=RECIPIENT_DOMAIN,
        created=NOW - 60, students=students, records=records, **kw,
    )  # fmt: skip


@dataclass
class Case:
    """One envelope vector: how to seal it, how to damage it, and how to open it."""

    name: str
    description: str
    manifest: Manifest
    documents: bytes = b""
    chunk_size: int = 1024
    argon2: Argon2Params = FAST
    encapsulate_to: str = "recipient"
    manifest_bytes: bytes | None = None
    header_map: Callable[[bytes], bytes] | None = None
    damage: Callable[[bytes, int], bytes] | None = None
    code_text: str | None = None
    open_as: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def raw_map(pairs: list[tuple[str, Any]]) -> bytes:
    """A msgpack map in the order given, duplicates allowed: for invalid header and manifest vectors."""
    packer = msgpack.Packer(use_bin_type=True)
    return packer.pack_map_header(len(pairs)) + b"".join(packer.pack(k) + packer.pack(v) for k, v in pairs)


def edit_map(change: Callable[[dict[str, Any]], list[tuple[str, Any]]]) -> Callable[[bytes], bytes]:
    return lambda original: raw_map(change(unpack_strict(original, field="vector")))


def chunks_of(envelope: bytes, prefix_length: int, chunk_size: int) -> list[bytes]:
    body, size = envelope[prefix_length:], chunk_size + CHUNK_OVERHEAD
    return [body[i : i + size] for i in range(0, len(body), size)]


def rechunk(edit: Callable[[list[bytes]], list[bytes]]) -> Callable[[bytes, int], bytes]:
    def damage(envelope: bytes, prefix_length: int) -> bytes:
        return envelope[:prefix_length] + b"".join(edit(chunks_of(envelope, prefix_length, 1024)))

    return damage


def flip(offset: Callable[[bytes, int], int], bit: int = 0) -> Callable[[bytes, int], bytes]:
    def damage(envelope: bytes, prefix_length: int) -> bytes:
        at = offset(envelope, prefix_length)
        return envelope[:at] + bytes((envelope[at] ^ (1 << bit),)) + envelope[at + 1 :]

    return damage


def boundary_case() -> Case:
    """A payload that ends exactly on a chunk boundary: the final chunk is a full one."""
    length = 3000
    for _ in range(10):
        data = document("boundary", length)
        m = manifest((doc_record("doc-b", "100234", data),))
        total = 64 + len(encode_manifest(m)) + length
        if total % 1024 == 0:
            break
        length += 1024 - total % 1024
    return Case("valid-exact-chunk-boundary", "payload length a multiple of the chunk size", m, data)


def cases() -> list[Case]:
    d1, d2, d3 = document("iep", 2500), document("empty", 0), document("evaluation", 1700)
    multi = manifest(
        (
            doc_record("doc-1", "100234", d1),
            doc_record("doc-2", "100234", d2),
            doc_record("doc-3", "100234", d3),
        )
    )
    small = document("small", 300)
    single = manifest((doc_record("doc-s", "100234", small),))
    students = (
        STUDENT,
        ManifestStudent(sis_id="100240", given_name="Marcus", middle_name="J", family_name="Rivera",
                        birth_date="2011-09-30", grade="08", state_id="IL-88812", school="County Middle School",
                        recipient_sis_id="S-7781", username="mrivera", email="mrivera@students.example"),
        ManifestStudent(sis_id="100251", given_name="Ana", family_name="Øster-Núñez", birth_date="2012-01-05"),
    )  # fmt: skip
    report = document("report", 900)
    several = manifest(
        (
            doc_record("doc-r", "100240", report, document_type="evaluation-report"),
            ManifestRecord(kind="case", record_id="case-7", student_sis_id="100234",
                           metadata={"opened": "2025-10-02", "tags": ["attendance"], "level": 2}),
            ManifestRecord(kind="assessment", record_id="star-math-2025", student_sis_id="100251",
                           metadata={"test": "Star Math", "scaled_score": 612, "percentile": 55,
                                     "nested": {"a": None}}),
            ManifestRecord(kind="case", record_id="case-8", student_sis_id="100240", corrects="case-3"),
        ),
        students=students, notes="Transfer for the 2025-26 year.\nCall the counselor before import.",
        recipient_owner="counselor@shelbyville.k12.example",
    )  # fmt: skip
    empty = manifest((ManifestRecord(kind="case", record_id="case-1", student_sis_id="100234"),))
    wrong_digest = manifest(
        (replace(doc_record("doc-s", "100234", small), sha256=hashlib.sha256(b"x").digest()),)
    )
    elsewhere = replace(single, recipient_domain="ogdenville.k12.example")
    last = lambda env, p: len(env) - 1  # noqa: E731
    valid = [
        Case("valid-empty-payload", "no documents: the payload is the manifest block only", empty),
        Case("valid-single-chunk", "one small document, one chunk", single, small),
        Case("valid-multi-chunk", "three documents (one empty) across six 1 KiB chunks", multi, d1 + d2 + d3),
        Case("valid-several-students", "three students, documents, cases, assessments, notes", several, report),
        boundary_case(),
        Case("valid-production-kdf", "Argon2id t=3 m=64 MiB, default policy, 64 KiB chunks", single, small,
             chunk_size=65536, argon2=Argon2Params(time_cost=3, memory_kib=65536), open_as={"policy": "default"}),
    ]  # fmt: skip
    bad = [
        ("bad-magic", "first byte changed", dict(damage=flip(lambda e, p: 0)), "envelope.malformed"),
        ("unsupported-version", "version byte 3", dict(damage=flip(lambda e, p: 8, 1)),
         "envelope.unsupported_version"),
        ("unsupported-suite", "suite byte 3", dict(damage=flip(lambda e, p: 9, 1)), "envelope.unsupported_suite"),
        ("signature-flipped", "one bit of the signature", dict(damage=flip(lambda e, p: p - 1)),
         "envelope.signature_invalid"),
        ("wrong-sender-key", "opened with another sender's identity key", dict(open_as={"sender": "other"}),
         "envelope.signature_invalid"),
        ("header-flipped", "one bit of the header map", dict(damage=flip(lambda e, p: 80)),
         "envelope.signature_invalid"),
        ("key-check-flipped", "one bit of the key check", dict(damage=flip(lambda e, p: p - 65)),
         "envelope.signature_invalid"),
        ("not-recipient-domain", "opened by another domain",
         dict(open_as={"recipient_domain": "ogdenville.k12.example"}), "envelope.not_recipient"),
        ("not-recipient-key", "opened with another encryption key", dict(open_as={"recipient": "other-recipient"}),
         "envelope.not_recipient"),
        ("expired", "opened at the expiry time", dict(open_as={"now": EXPIRES}), "envelope.expired"),
        ("not-yet-valid", "created more than 300 s after now", dict(open_as={"now": NOW - 301}),
         "envelope.not_yet_valid"),
        ("weak-kdf-params", "Argon2id t=1 m=8 KiB under the default policy", dict(open_as={"policy": "default"}),
         "envelope.weak_kdf_params"),
        ("excessive-kdf-params", "Argon2id t=9 above the default maximum t=8",
         dict(argon2=Argon2Params(time_cost=9, memory_kib=8)), "envelope.excessive_kdf_params"),
        ("too-large", "payload above the receiver's max_payload_length",
         dict(open_as={"policy": {"max_payload_length": 1000}}), "envelope.too_large"),
        ("wrong-code", "opened with another valid code", dict(code_text="0000-0000-0000-0"),
         "envelope.wrong_code_or_key"),
        ("encapsulated-to-other-key", "validly signed, HPKE to another key",
         dict(encapsulate_to="other-recipient"), "envelope.wrong_code_or_key"),
        ("truncated-prefix", "cut inside the encapsulation", dict(damage=lambda e, p: e[:400]),
         "envelope.truncated"),
        ("truncated-final-chunk", "final chunk dropped", dict(damage=rechunk(lambda c: c[:-1])),
         "envelope.truncated"),
        ("truncated-mid-chunk", "cut inside chunk 3", dict(damage=lambda e, p: e[: p + 2 * 1041 + 500]),
         "envelope.truncated"),
        ("reordered-chunks", "chunks 1 and 2 swapped", dict(damage=rechunk(lambda c: [c[1], c[0], *c[2:]])),
         "envelope.corrupt"),
        ("duplicated-chunk", "chunk 1 replaced by chunk 0", dict(damage=rechunk(lambda c: [c[0], c[0], *c[2:]])),
         "envelope.corrupt"),
        ("final-chunk-first", "the final chunk in place of the first", dict(damage=rechunk(lambda c: [c[-1], *c[1:]])),
         "envelope.corrupt"),
        ("chunk-flipped", "one bit of chunk 3", dict(damage=flip(lambda e, p: p + 3 * 1041 + 7)), "envelope.corrupt"),
        ("last-byte-flipped", "one bit of the final tag", dict(damage=flip(last)), "envelope.corrupt"),
        ("trailing-bytes", "one byte after the final chunk", dict(damage=lambda e, p: e + b"\x00"),
         "envelope.trailing_bytes"),
        ("header-duplicate-key", "signed header map repeating kind",
         dict(header_map=edit_map(lambda h: [*sorted(h.items()), ("kind", "transfer")])), "msgpack.duplicate_key"),
        ("header-not-canonical", "signed header map with keys in reverse order",
         dict(header_map=edit_map(lambda h: sorted(h.items(), reverse=True))), "msgpack.not_canonical"),
        ("header-unknown-key", "signed header map with an extra key",
         dict(header_map=edit_map(lambda h: sorted([*h.items(), ("zz", 1)]))), "envelope.malformed"),
        ("header-wrong-type", "signed header map with created as a string",
         dict(header_map=edit_map(lambda h: sorted({**h, "created": str(h["created"])}.items()))),
         "envelope.malformed"),
        ("unsupported-content-type", "signed header map with another content type",
         dict(header_map=edit_map(lambda h: sorted({**h, "content_type": "application/x-other"}.items()))),
         "envelope.unsupported_content_type"),
        ("manifest-duplicate-key", "signed manifest repeating notes",
         dict(manifest_bytes=raw_map([*sorted(unpack_strict(encode_manifest(multi), field="m").items()),
                                     ("notes", "")])), "msgpack.duplicate_key"),
        ("manifest-trailing-bytes", "signed manifest followed by a byte",
         dict(manifest_bytes=encode_manifest(multi) + b"\xc0"), "msgpack.trailing_bytes"),
        ("manifest-wrong-type", "signed manifest with created as a string",
         dict(manifest_bytes=pack_canonical({**unpack_strict(encode_manifest(multi), field="m"), "created": "x"})),
         "manifest.malformed"),
        ("manifest-other-recipient", "signed manifest naming another recipient than the header",
         dict(manifest_bytes=encode_manifest(replace(multi, recipient_domain=elsewhere.recipient_domain))),
         "envelope.manifest_mismatch"),
    ]  # fmt: skip
    multi_wire = unpack_strict(encode_manifest(multi), field="m")

    def first_record(**change: Any) -> bytes:
        """The multi manifest, signed, with its first record's fields changed."""
        return pack_canonical({**multi_wire, "records": [{**multi_wire["records"][0], **change},
                                                         *multi_wire["records"][1:]]})  # fmt: skip

    bad += [
        ("truncated-magic", "the first five bytes: they agree with the magic as far as they go (§7 #1, #7)",
         dict(damage=lambda e, p: e[:5]), "envelope.truncated"),
        ("header-recipient-not-a-domain", "signed header map whose recipient_domain is not of §2.3 syntax",
         dict(header_map=edit_map(lambda h: sorted({**h, "recipient_domain": "shelbyville"}.items()))),
         "envelope.malformed"),
        ("header-nested-value", "signed header map with kind inside an array: deeper than the header's limit",
         dict(header_map=edit_map(lambda h: sorted({**h, "kind": ["transfer"]}.items()))),
         "msgpack.limit_exceeded"),
        ("manifest-other-sender-key", "manifest signed by the sender's key but naming another key (§7 #23a)",
         dict(manifest_bytes=pack_canonical({**multi_wire, "sender_key_id": OTHER_SENDER.public_key.key_id})),
         "manifest.signature_invalid"),
        ("manifest-metadata-too-deep", "signed manifest with metadata nested three deep (§5.1)",
         dict(manifest_bytes=first_record(metadata={"a": [[[1]]]})), "manifest.malformed"),
        ("manifest-metadata-deeper", "signed manifest with metadata nested four deep: the msgpack limit first",
         dict(manifest_bytes=first_record(metadata={"a": [[[[1]]]]})), "msgpack.limit_exceeded"),
        ("manifest-digest-too-long", "signed manifest with a 33-byte sha256: over the bin limit (§2.2)",
         dict(manifest_bytes=first_record(sha256=bytes(33))), "msgpack.limit_exceeded"),
    ]  # fmt: skip
    invalid = [Case(name, desc, multi, d1 + d2 + d3, error=error, **kw) for name, desc, kw, error in bad]
    invalid.append(
        Case("document-digest-mismatch", "a document differs from its manifest digest", wrong_digest, small,
             error="envelope.document_digest_mismatch")
    )  # fmt: skip
    return valid + invalid


def code_for(name: str) -> Code:
    return Code._from_int(int.from_bytes(seed(name, "code")[:8], "big") >> 4)


def seal(case: Case, encapsulation: bytes | None) -> bytes:
    out = io.BytesIO()
    header_map = None
    if case.header_map is not None:
        plain = seal(replace(case, header_map=None, damage=None), encapsulation)
        header_map = case.header_map(parse_unverified_prefix(plain, max_header_length=8192).header_map)
    _seal_from_parts(
        io.BytesIO(case.documents), out, manifest=case.manifest, sender_key=SENDER,
        recipient_key=RECIPIENT.public_key, code=code_for(case.name), now=NOW, expires=EXPIRES, kind="transfer",
        argon2=case.argon2, chunk_size=case.chunk_size,
        envelope_id=(NOW * 1000).to_bytes(6, "big") + seed(case.name, "ulid")[:10],
        hpke_secret=seed(case.name, "hpke-secret"), stream_header=seed(case.name, "stream-header")[:24],
        encapsulation=encapsulation if encapsulation is not None else bytes(1168),
        manifest_bytes=case.manifest_bytes, header_map=header_map,
    )  # fmt: skip
    return out.getvalue()


def encapsulation_for(case: Case, stored: dict[str, str], refresh: bool) -> bytes:
    """The stored HPKE output for this case, checked against the info its envelope now has."""
    prefix = parse_unverified_prefix(seal(case, None), max_header_length=8192)
    info = hpke_info(prefix.signed_part[: prefix.preamble_length])
    key = KEYS[case.encapsulate_to]
    if case.name in stored:
        candidate = bytes.fromhex(stored[case.name])
        try:
            if HPKE_SUITE.decrypt(candidate, key.hpke_key(), info=info) == seed(case.name, "hpke-secret"):
                return candidate
        except Exception:  # any failure means the stored part is stale
            pass
    if not refresh:
        sys.exit(f"parts.json has no current encapsulation for {case.name}; run with --refresh-parts")
    fresh = HPKE_SUITE.encrypt(seed(case.name, "hpke-secret"), key.public_key.hpke_key(), info=info)
    stored[case.name] = fresh.hex()
    return fresh


def policy_json(policy: OpenPolicy) -> dict[str, int]:
    return {
        "min_argon2_t": policy.min_argon2.time_cost, "min_argon2_m": policy.min_argon2.memory_kib,
        "max_argon2_t": policy.max_argon2.time_cost, "max_argon2_m": policy.max_argon2.memory_kib,
        "max_header_length": policy.max_header_length, "max_manifest_length": policy.max_manifest_length,
        "max_payload_length": policy.max_payload_length, "max_chunk_size": policy.max_chunk_size,
        "clock_skew": policy.clock_skew,
    }  # fmt: skip


def vector(case: Case, encapsulation: bytes) -> dict[str, Any]:
    envelope = seal(case, encapsulation)
    prefix = parse_unverified_prefix(envelope, max_header_length=8192)
    if case.damage is not None:
        envelope = case.damage(envelope, prefix.length)
    policy_choice = case.open_as.get("policy")
    policy = DEFAULT_POLICY if policy_choice == "default" else FAST_POLICY
    if isinstance(policy_choice, dict):
        policy = replace(FAST_POLICY, **policy_choice)
    recipient = KEYS[case.open_as.get("recipient", "recipient")]
    sender = OTHER_SENDER if case.open_as.get("sender") == "other" else SENDER
    code = code_for(case.name)
    result: dict[str, Any] = {
        "name": case.name,
        "description": case.description,
        "sender_public_key": sender.public_key.raw.hex(),
        "sender_key_id": sender.public_key.key_id,
        "recipient_secret_key": recipient._secret.hex(),
        "recipient_public_key": recipient.public_key.raw.hex(),
        "recipient_key_id": recipient.public_key.key_id,
        "recipient_domain": case.open_as.get("recipient_domain", RECIPIENT_DOMAIN),
        "code": case.code_text or code.reveal(),
        "now": case.open_as.get("now", NOW),
        "policy": policy_json(policy),
        "envelope": envelope.hex(),
    }
    if case.error is not None:
        result["expected_error"] = case.error
        return result
    secret_code = code_key(code, _envelope_id(prefix), case.argon2)
    payload_key, key_check = payload_keys(
        seed(case.name, "hpke-secret"), secret_code, prefix.signed_part[: prefix.encapsulation_end]
    )
    transcript = prefix.signed_part[: prefix.encapsulation_end]
    hkdf_salt = hashlib.sha256(transcript).digest()
    result["intermediate"] = {
        "hpke_info": hpke_info(prefix.signed_part[: prefix.preamble_length]).hex(),
        **{name: value.hex() for name, value in xwing_decapsulation(recipient, prefix.encapsulation).items()},
        "hpke_secret": seed(case.name, "hpke-secret").hex(),
        "argon2id_salt": argon2_salt(_envelope_id(prefix)).hex(),
        "code_key": secret_code.hex(),
        "hkdf_salt": hkdf_salt.hex(),
        "prk": hmac.digest(hkdf_salt, seed(case.name, "hpke-secret") + secret_code, "sha256").hex(),
        "payload_key": payload_key.hex(),
        "key_check": key_check.hex(),
    }
    manifest_bytes = case.manifest_bytes or encode_manifest(case.manifest)
    result["expected"] = {
        "manifest": manifest_bytes.hex(),
        "manifest_signature": SENDER.sign(b"satchel/v1/manifest", manifest_bytes).hex(),
        "documents": case.documents.hex(),
        "chunk_count": -(-(64 + len(manifest_bytes) + len(case.documents)) // case.chunk_size),
    }
    return result


XWING_LABEL = b"\\.//^\\"


def xwing_decapsulation(recipient: EncryptionKey, encapsulation: bytes) -> dict[str, bytes]:
    """The X-Wing steps of spec/envelope.md §8.3 that cryptography's HPKE keeps inside, for implementers."""
    ct_m, ct_x = encapsulation[:1088], encapsulation[1088:1120]
    ss_m = recipient._mlkem.decapsulate(ct_m)
    ss_x = recipient._x25519.exchange(X25519PublicKey.from_public_bytes(ct_x))
    pk_x = recipient.public_key.raw[1184:]
    shared = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()
    return {"xwing_ss_mlkem": ss_m, "xwing_ss_x25519": ss_x, "kem_shared_secret": shared}


def _envelope_id(prefix: Any) -> bytes:
    return unpack_strict(prefix.header_map, field="header")["envelope_id"]


def code_vectors() -> list[dict[str, str]]:
    """Typed inputs and what parse_code makes of them (spec/codes.md §7)."""
    base = code_for("codes")
    text = base.reveal()
    data = text.replace("-", "")[:12]
    i = next(i for i in range(11) if data[i] != data[i + 1])
    swapped = data[:i] + data[i + 1] + data[i] + data[i + 2 :]
    wrong = data[:5] + ("1" if data[5] != "1" else "2") + data[6:]
    entries = [
        (text, text), (text.lower(), text), (text.replace("-", " "), text), (text.replace("-", ""), text),
        (" " + text.lower().replace("-", " - ") + "\t", text),
        (swapped + check_symbol(data), "code.typo"), (wrong + check_symbol(data), "code.typo"),
        (data + ("0" if check_symbol(data) != "0" else "1"), "code.typo"),
        (data, "code.malformed"), (data + check_symbol(data) + "7", "code.malformed"),
        (data[:11] + "U" + check_symbol(data), "code.malformed"), ("", "code.malformed"),
    ]  # fmt: skip
    zero_oil = "O1LI-0000-0000-" + check_symbol("011100000000")
    entries.append((zero_oil, "0111-0000-0000-" + check_symbol("011100000000")))
    # Unicode's full upper-casing (spec/codes.md §5 step 4): dotless i becomes I (so 1), sharp s becomes SS.
    dotless = "1111-0000-0000-" + check_symbol("111100000000")
    entries.append(("\u0131" + dotless[1:], dotless))
    sharp = "SS00000000AB"
    entries.append(("\u00df00-0000-00AB-" + check_symbol(sharp), "SS00-0000-00AB-" + check_symbol(sharp)))
    out: list[dict[str, str]] = []
    for typed, expect in entries:
        if expect.startswith("code."):
            out.append({"input": typed, "error": expect})
        else:
            out.append({"input": typed, "display": expect, "canonical": expect.replace("-", "")[:12]})
    return out


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--refresh-parts", action="store_true")
    parser.add_argument("--check", action="store_true", help="compare with the committed files; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as scratch:
            main(["--out", scratch])
            made = {p.name: p.read_bytes() for p in Path(scratch).glob("*.json")}
        committed = {p.name: p.read_bytes() for p in HERE.glob("*.json") if p.name != "parts.json"}
        stale = sorted(name for name in made.keys() | committed.keys() if made.get(name) != committed.get(name))
        if stale:
            sys.exit("stale: " + ", ".join(stale) + "; run spec/vectors/envelope/generate.py")
        return
    stored = json.loads(PARTS.read_text()) if PARTS.exists() else {}
    args.out.mkdir(parents=True, exist_ok=True)
    for case in cases():
        write_json(
            args.out / f"{case.name}.json", vector(case, encapsulation_for(case, stored, args.refresh_parts))
        )
    write_json(
        args.out / "codes.json",
        {
            "description": "typed inputs: the code they parse to (display and canonical form) or the error",
            "vectors": code_vectors(),
        },
    )
    if args.refresh_parts:
        PARTS.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
