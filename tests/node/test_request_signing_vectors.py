"""The request-signing vectors (spec/vectors/request-signing) as a Satchel node's middleware takes them: with
the components every node requires (§4.1 item 5), not only those the protocol module requires by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.signed_http import REQUIRED_EVERYWHERE
from protocol import SatchelError
from protocol.http_signatures import HttpRequestView, check_request_signature

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "spec/vectors/request-signing/vectors.json").read_text())


def _key_free_checks(case: dict[str, Any], headers: list[list[str]]) -> str:
    """What node.signed_http's middleware makes of a vector request before it looks up any key."""
    verify = VECTORS["verify"]
    view = HttpRequestView(method=case["method"], target_uri=case["target_uri"], headers=[tuple(h) for h in headers])
    try:
        check_request_signature(
            view, now=case.get("now", verify["now"]), has_body=True, require_components=REQUIRED_EVERYWHERE,
            expected_authority=case.get("expected_authority", verify["expected_authority"]),
        )  # fmt: skip
    except SatchelError as exc:
        return exc.code
    return "passed"


def test_the_vectors_require_what_every_node_requires() -> None:
    assert VECTORS["verify"]["require_components"] == list(REQUIRED_EVERYWHERE)


@pytest.mark.parametrize("where", ["request", "session"])
def test_the_valid_vector_requests_pass(where: str) -> None:
    request = VECTORS["request"] if where == "request" else VECTORS["session"]["request"]
    assert _key_free_checks(request, request["headers"] + request["added_headers"]) == "passed"


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda case: case["name"])
def test_each_invalid_vector_is_refused_with_its_code_or_left_to_the_key(case: dict[str, Any]) -> None:
    # "passed": what is wrong shows only once the key is looked up or the body read (an unknown key, a
    # changed content type or body, a replay); tests/protocol/test_http_signatures.py checks those codes.
    assert _key_free_checks(case, case["headers"]) in ("passed", case["expected_code"])
