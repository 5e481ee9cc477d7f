"""spec/vectors/directory: what the generator writes is what is committed, and a receiver whose trusted
directory keys come from the JSON alone reaches each entry's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crypto import IdentityKey, IdentityPublicKey
from protocol import SatchelError
from protocol.directory import verify_entry
from protocol.json_strict import dumps_canonical
from protocol.signed_document import unb64url

from support import load_script

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "directory"
DATA = json.loads((VECTORS / "vectors.json").read_text())
CASES = DATA["cases"]
KEYS = {k["key_id"]: IdentityPublicKey(bytes.fromhex(k["public_key_hex"])) for k in DATA["keys"]}
DIRECTORY_KEYS = {domain: KEYS[key_id] for domain, key_id in DATA["trusted_directories"].items()}


def _generator() -> ModuleType:
    return load_script(VECTORS / "generate.py", "directory_vectors_generate")


def test_vectors_are_what_the_generator_produces() -> None:
    assert (VECTORS / "vectors.json").read_text() == _generator().render()


def test_keys_are_what_their_seeds_make() -> None:
    for key in DATA["keys"]:
        public = IdentityKey(bytes.fromhex(key["seed_hex"])).public_key
        assert (public.raw.hex(), public.key_id) == (key["public_key_hex"], key["key_id"])


def test_vectors_cover_acceptance_and_each_refusal() -> None:
    verdicts = {c["expect"].get("error") for c in CASES}
    assert {None, "signature.invalid", "directory.entry_invalid", "directory.untrusted", "descriptor.mismatch",
            "descriptor.key_not_listed", "message.malformed"} <= verdicts  # fmt: skip
    refused_fields = {c["expect"]["field"] for c in CASES if "error" in c["expect"]}
    assert {"status", "domain", "purpose", "version"} <= refused_fields
    assert {"directory", "approved_at", "issued_at"} <= refused_fields
    # Each member's form is refused on its own, as message.malformed: not a directory that is not a domain
    # reported as untrusted, nor a time taken as any string.
    malformed = {c["expect"]["field"] for c in CASES if c["expect"].get("error") == "message.malformed"}
    assert {"directory", "domain", "approved_at", "issued_at", "version"} <= malformed
    # Entries of both trusted directories verify: each with the key of the directory it names.
    named = {c["expect"]["entry"]["directory"] for c in CASES if "entry" in c["expect"]}
    assert named == set(DIRECTORY_KEYS)


def test_an_entry_with_a_member_version_1_does_not_define_verifies() -> None:
    known = {"version", "directory", "domain", "status", "approved_at", "issued_at", "descriptor"}
    # Entries with every member version 1 defines and more (not a descriptor given where an entry belongs).
    unknown = [c for c in CASES if set(json.loads(c["payload"])) > known]
    assert unknown and all("entry" in c["expect"] for c in unknown)
    for case in unknown:
        verified = verify_entry(case["document"].encode("ascii"), directory_keys=DIRECTORY_KEYS)
        assert verified.signed == case["document"].encode("ascii")  # kept, unknown member and all
        assert case["expect"]["reencodes_to_payload"] is False


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_vector_gets_its_verdict(case: dict[str, Any]) -> None:
    document = case["document"].encode("ascii")
    payload = unb64url(json.loads(document)["payload"], field="payload")
    assert payload == case["payload"].encode("utf-8")
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(SatchelError) as refused:
            verify_entry(document, directory_keys=DIRECTORY_KEYS)
        assert (refused.value.code, refused.value.field) == (expect["error"], expect["field"])
        return
    verified = verify_entry(document, directory_keys=DIRECTORY_KEYS)
    entry, district = verified.entry, verified.district
    assert {k: v for k, v in entry.to_json().items() if k != "descriptor"} == expect["entry"]
    got = {"domain": district.descriptor.domain, "role": district.descriptor.role,
           "name": district.descriptor.name, "signer_key_id": district.signer.key_id}  # fmt: skip
    assert got == expect["district"]
    assert district.signer == KEYS[expect["district"]["signer_key_id"]]
    assert verified.signed == document
    assert (dumps_canonical(entry.to_json()) == payload) is expect["reencodes_to_payload"]
