"""spec/vectors/descriptor: what the generator writes is what is committed, and a verifier built from the JSON
alone reaches each case's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from protocol import SatchelError
from protocol.descriptor import serves_its_domain, verify_descriptor

from support import load_script

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors" / "descriptor"
CASES = json.loads((VECTORS / "vectors.json").read_text())["cases"]


def _generator() -> ModuleType:
    return load_script(VECTORS / "generate.py", "descriptor_vectors_generate")


def test_vectors_are_what_the_generator_produces() -> None:
    assert (VECTORS / "vectors.json").read_text() == _generator().render()


def test_vectors_cover_acceptance_and_each_refusal() -> None:
    verdicts = {c["expect"].get("error") for c in CASES}
    assert {None, "signature.invalid", "descriptor.key_not_listed", "message.malformed"} <= verdicts
    assert {c["expect"].get("serves_its_domain") for c in CASES if "domain" in c["expect"]} == {True, False}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_vector_gets_its_verdict(case: dict) -> None:
    document = case["document"].encode("ascii")
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(SatchelError) as refused:
            verify_descriptor(document)
        assert (refused.value.code, refused.value.field) == (expect["error"], expect["field"])
    else:
        descriptor = verify_descriptor(document).descriptor
        assert (descriptor.domain, serves_its_domain(descriptor)) == (expect["domain"], expect["serves_its_domain"])
