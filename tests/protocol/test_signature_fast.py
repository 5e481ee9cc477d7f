"""The fast path for canonical signatures decides exactly what the general RFC 9421 code decides.

protocol/signature_fast.py reads and writes one shape of Signature-Input without the general parser.
These tests take signed messages, mangle their signature fields and headers at random, and check that
with and without the fast path the outcome is the same: the same verified fields and signature base,
or the same error code. Signing through the fast path must produce fields the general parser reads back
to the very same base.
"""

from __future__ import annotations

import dataclasses
import shutil
import sysconfig
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import IdentityKey
from protocol import http_signatures
from protocol.content_digest import content_digest_header, parse_content_digest
from protocol.errors import SatchelError
from protocol.http_signatures import (
    HttpRequestView,
    HttpResponseView,
    encode_nonce,
    sign_request,
    sign_response,
)
from protocol.signature_fast import combined_fields
from protocol.structured_fields import parse_dictionary, serialize_dictionary

KEY = IdentityKey.generate()
NOW = 1_767_225_600
URL = "https://node-b.example/satchel/v1/ping"
BODY = b'{"a":1}'
SESSION_KEY_ID = "hs-" + "A" * 22
PROFILE = ["@method", "@target-uri", "content-digest", "content-type", "satchel-origin"]


def _request(
    components: list[str] | None = None, *, key_id: str | None = None, nonce_seed: int = 1
) -> HttpRequestView:
    headers = [
        ("Host", "node-b.example"),
        ("Content-Type", "application/json"),
        ("Content-Digest", content_digest_header(BODY)),
        ("Satchel-Origin", "https://node-a.example"),
        ("Content-Length", str(len(BODY))),
    ]
    view = HttpRequestView(method="POST", target_uri=URL, headers=headers)
    signature = sign_request(
        view, key_id=key_id or KEY.public_key.key_id, sign=KEY.sign_raw, created=NOW, expires=NOW + 120,
        nonce=encode_nonce(nonce_seed.to_bytes(16, "big")), components=components or PROFILE, has_body=True,
    )  # fmt: skip
    return HttpRequestView(method="POST", target_uri=URL, headers=(*headers, *signature))


def _response(request: HttpRequestView) -> HttpResponseView:
    body = b'{"pong":"b"}'
    headers = [("Content-Type", "application/json"), ("Content-Digest", content_digest_header(body))]
    view = HttpResponseView(status=200, headers=headers, request=request)
    signature = sign_response(
        view, key_id=KEY.public_key.key_id, sign=KEY.sign_raw, created=NOW, expires=NOW + 60,
        nonce=encode_nonce(b"r" * 16), has_body=True,
    )  # fmt: skip
    return HttpResponseView(status=200, headers=(*headers, *signature), request=request)


def _outcome(
    message: HttpRequestView | HttpResponseView, *, fast: bool, has_body: bool | None = True
) -> object:
    is_request = isinstance(message, HttpRequestView)
    try:
        found = http_signatures._check(
            message, now=NOW + 10, max_skew=60, max_lifetime=300, label="sig1", request_label="sig1",
            require_components=("satchel-origin",) if is_request else (), has_body=has_body,
            fast=fast,
        )  # fmt: skip
    except SatchelError as exc:
        return ("error", exc.code)
    return dataclasses.asdict(found)


def _general_request_outcome(view: HttpRequestView, *, has_body: bool | None, authority: str | None) -> object:
    try:
        found = http_signatures._check(
            view, now=NOW + 10, max_skew=60, max_lifetime=300, label="sig1", request_label="sig1",
            require_components=("satchel-origin",), has_body=has_body, fast=False,
            misaddressed=http_signatures._misaddressed(view, authority),
        )  # fmt: skip
    except SatchelError as exc:
        return ("error", exc.code)
    return dataclasses.asdict(found)


def _fields_outcome(
    headers: tuple[tuple[str, str], ...],
    *,
    has_body: bool | None,
    authority: str | None = None,
    method: str = "POST",
    target_uri: str = URL,
) -> object:
    """check_request_headers (the server's way in): "declined" when it leaves the request to the general code."""
    try:
        found = http_signatures.check_request_headers(
            headers, method=method, target_uri=target_uri, now=NOW + 10,
            expected_authority=authority, max_skew=60, max_lifetime=300, label="sig1",
            require_components=("satchel-origin",), has_body=has_body,
        )  # fmt: skip
    except SatchelError as exc:
        return ("error", exc.code)
    return "declined" if found is None else dataclasses.asdict(found)


_EDITS = st.lists(
    st.tuples(
        st.sampled_from(
            ["insert", "delete", "replace", "duplicate-line", "space", "upper", "repeat-item", "drop"]
        ),
        st.integers(min_value=0, max_value=400),
        st.sampled_from([*' ;=:"()\t,0123456789abcz*-@+/_AZ\\', "\x01", "\n", "\u00e9"]),
    ),
    max_size=3,
)


def _mangle(headers: tuple[tuple[str, str], ...], field: str, edits: list[tuple[str, int, str]]) -> tuple:
    out = list(headers)
    for i, (name, value) in enumerate(headers):
        if name.lower() != field:
            continue
        for kind, at, char in edits:
            at %= len(value) + 1
            if kind == "insert":
                value = value[:at] + char + value[at:]
            elif kind == "delete":
                value = value[:at] + value[at + 1 :]
            elif kind == "replace":
                value = value[:at] + char + value[at + 1 :]
            elif kind == "drop":
                pass  # below
            elif kind == "space":
                value = value[:at] + " " + value[at:]
            elif kind == "upper":
                value = value.upper()
            elif kind == "repeat-item":
                # A component listed twice: `("a" "b")` -> `("a" "a" "b")`.
                start = value.find('"', at)
                end = value.find('"', start + 1) if start >= 0 else -1
                if end > start >= 0:
                    value = value[: end + 1] + " " + value[start : end + 1] + value[end + 1 :]
            else:
                out.append((name, value[:at]))
        out[i] = (name, value)
    dropped = {
        i
        for i, (name, _) in enumerate(headers)
        if name.lower() == field and any(e[0] == "drop" for e in edits)
    }
    return tuple(line for i, line in enumerate(out) if i not in dropped)


_FIELDS = [
    "signature-input",
    "signature",
    "content-digest",
    "content-type",
    "satchel-origin",
    "content-length",
]


@settings(max_examples=400)
@given(
    st.sampled_from(_FIELDS),
    _EDITS,
    st.sampled_from(
        [
            ["@method", "@target-uri", "content-digest", "content-type", "satchel-origin"],
            ["@target-uri", "@method", "satchel-origin", "content-type", "content-digest"],
            ["@method", "@authority", "@path", "content-digest", "content-type", "satchel-origin"],
            ["satchel-origin", "content-type", "content-digest", "@target-uri", "@method"],
        ]
    ),
    st.booleans(),
    st.sampled_from([True, False, None]),
)
def test_requests_get_the_same_outcome_with_and_without_the_fast_path(
    field: str, edits: list[tuple[str, int, str]], components: list[str], session: bool, has_body: bool | None
) -> None:
    signed = _request(components, key_id=SESSION_KEY_ID if session else None)
    mangled = HttpRequestView(method="POST", target_uri=URL, headers=_mangle(signed.headers, field, edits))
    general = _outcome(mangled, fast=False, has_body=has_body)
    assert _outcome(mangled, fast=True, has_body=has_body) == general
    # A node reads a request from its combined fields, without a view: it decides the same, or declines.
    assert _fields_outcome(mangled.headers, has_body=has_body) in ("declined", general)


@settings(max_examples=300)
@given(
    st.one_of(st.sampled_from(["POST", "GET", "post", "P OST", "", "PO\u00e9ST"]), st.text(max_size=8)),
    st.one_of(
        st.sampled_from(
            [
                URL,
                "https://node-b.example:443/satchel/v1/ping",
                "https://NODE-B.example/satchel/v1/ping",
                "https://node-b.example/satchel/v1/ping?x=1",
                "http://node-b.example/satchel/v1/ping",
                "https://node-b.example/satchel/v1/ping#f",
                "https://node-b.example/a b",
                "https://other.example/satchel/v1/ping",
                "https://node-b.example",
                "node-b.example/satchel/v1/ping",
            ]
        ),
        st.text(max_size=40),
    ),
    st.sampled_from([None, "node-b.example", "node-b.example:443", "other.example"]),
)
def test_a_request_read_from_its_fields_is_judged_as_its_view_is(
    method: str, target: str, authority: str | None
) -> None:
    # The server builds no view on the fast path: a method or target URI no view accepts must be declined
    # (the general code then refuses it), and any other must come out as from the view, misaddressing too.
    headers = _request().headers
    try:
        view = HttpRequestView(method=method, target_uri=target, headers=headers)
    except SatchelError as exc:
        general: object = ("error", exc.code)
    else:
        general = _general_request_outcome(view, has_body=True, authority=authority)
    outcome = _fields_outcome(headers, has_body=True, authority=authority, method=method, target_uri=target)
    assert outcome in ("declined", general)


@settings(max_examples=400)
@given(st.sampled_from([*_FIELDS[:4], "request-signature"]), _EDITS)
def test_responses_get_the_same_outcome_with_and_without_the_fast_path(
    field: str, edits: list[tuple[str, int, str]]
) -> None:
    response = _response(_request())
    if field == "request-signature":
        request = response.request
        assert request is not None
        changed = HttpRequestView(
            method="POST", target_uri=URL, headers=_mangle(request.headers, "signature", edits)
        )
        response = HttpResponseView(status=200, headers=response.headers, request=changed)
    else:
        response = HttpResponseView(
            status=200, headers=_mangle(response.headers, field, edits), request=response.request
        )
    assert _outcome(response, fast=True) == _outcome(response, fast=False)


@pytest.mark.parametrize("value", ["https://node-a.example\n\"@method\": GET", "https://caf\u00e9.example", "a\x7f"])
def test_a_covered_value_that_is_not_one_printable_line_is_left_to_the_general_code(value: str) -> None:
    # The fast path checks a whole base in one scan; a value with a line break or a character outside
    # printable ASCII must still send the message to the general code, and the outcome must not change.
    from protocol import signature_fast

    signed = _request()
    headers = tuple((n, value if n == "Satchel-Origin" else v) for n, v in signed.headers)
    view = HttpRequestView(method="POST", target_uri=URL, headers=headers)
    assert signature_fast.read(view, label="sig1", request_label="sig1", require=(), has_body=True) is None
    assert _outcome(view, fast=True) == _outcome(view, fast=False)
    assert _outcome(view, fast=False)[0] == "error"  # type: ignore[index]


def test_the_fast_path_does_take_the_canonical_shape() -> None:
    # Otherwise the equivalence above would hold trivially, and nothing would be faster.
    from protocol import signature_fast

    request = _request()
    assert signature_fast.read(request, label="sig1", request_label="sig1", require=(), has_body=True)
    assert signature_fast.read(
        _response(request), label="sig1", request_label="sig1", require=(), has_body=True
    )
    for session in (False, True):
        signed = _request(key_id=SESSION_KEY_ID if session else None)
        outcome = _fields_outcome(signed.headers, has_body=True, authority="node-b.example")
        assert outcome == _general_request_outcome(signed, has_body=True, authority="node-b.example")
        assert isinstance(outcome, dict) and outcome["misaddressed"] is False
        answer = _answer_lines(signed, "application/json", 200, fast=True)
        assert answer != "declined" and answer == _answer_lines(signed, "application/json", 200)


def _answer_lines(
    request: HttpRequestView,
    content_type: str,
    status: int,
    *,
    others: tuple[tuple[str, str], ...] = (),
    fast: bool = False,
) -> object:
    """The signature lines of an answer, signed from its two fields' values (as a node does) or from views."""
    digest = content_digest_header(b'{"pong":"b"}')
    signing: dict[str, Any] = {
        "key_id": KEY.public_key.key_id, "sign": KEY.sign_raw, "created": NOW, "expires": NOW + 60,
        "nonce": encode_nonce(b"r" * 16),
    }  # fmt: skip
    try:
        if fast:
            lines = http_signatures.sign_answer(
                status, content_digest=digest, content_type=content_type,
                request_signature=combined_fields(request.headers).get("signature"), **signing,
            )  # fmt: skip
            return "declined" if lines is None else lines
        headers = (*others, ("Content-Type", content_type), ("Content-Digest", digest))
        view = HttpResponseView(status=status, headers=headers, request=request)
        return sign_response(view, has_body=True, **signing)
    except SatchelError as exc:
        return ("error", exc.code)


@settings(max_examples=300)
@given(
    st.sampled_from(["content-type", "request-signature", "x-extra"]),
    _EDITS,
    st.sampled_from([200, 202, 404, 99, 1000]),
)
def test_an_answer_signed_from_its_fields_is_signed_as_from_its_view(
    field: str, edits: list[tuple[str, int, str]], status: int
) -> None:
    request = _request()
    content_type, others = "application/json", (("X-Extra", "1"),)
    if field == "request-signature":
        request = HttpRequestView(
            method="POST", target_uri=URL, headers=_mangle(request.headers, "signature", edits)
        )
    elif field == "content-type":
        kept = [edit for edit in edits if edit[0] not in ("drop", "duplicate-line")]  # the node sets one line
        content_type = _mangle((("Content-Type", content_type),), "content-type", kept)[0][1]
    else:
        others = _mangle(others, "x-extra", edits)  # fields the answer does not cover change nothing
    fast = _answer_lines(request, content_type, status, fast=True)
    assert fast in ("declined", _answer_lines(request, content_type, status, others=others))


@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=1, max_value=300),
    st.binary(min_size=16, max_size=96),
    st.booleans(),
)
def test_fast_signing_writes_what_the_general_parser_reads_back(
    created: int, lifetime: int, nonce: bytes, session: bool
) -> None:
    view = HttpRequestView(method="GET", target_uri=URL, headers=[("Host", "node-b.example")])
    key_id = SESSION_KEY_ID if session else KEY.public_key.key_id
    lines = sign_request(
        view, key_id=key_id, sign=KEY.sign_raw, created=created, expires=created + lifetime,
        nonce=encode_nonce(nonce), has_body=False,
    )  # fmt: skip
    fields = dict(lines)
    # Canonical: the general serialiser writes the same text for what the general parser reads.
    for name in ("Signature-Input", "Signature"):
        assert serialize_dictionary(parse_dictionary(fields[name])) == fields[name]
    signed = HttpRequestView(method="GET", target_uri=URL, headers=(*view.headers, *lines))
    general = http_signatures._check(
        signed, now=created, max_skew=60, max_lifetime=300, label="sig1", request_label="sig1",
        require_components=(), has_body=False, fast=False,
    )  # fmt: skip
    KEY.public_key.verify_raw(general.signature_base, general.signature)
    assert general.key_id == key_id
    assert [c.name for c in general.components] == ["@method", "@target-uri"]


def test_session_keys_sign_only_with_hmac_and_node_keys_only_with_ed25519() -> None:
    for key_id, alg in ((SESSION_KEY_ID, "ed25519"), (KEY.public_key.key_id, "hmac-sha256")):
        view = _request(key_id=key_id)
        swapped = tuple(
            (n, v.replace(f'alg="{http_signatures.algorithm_for(key_id)}"', f'alg="{alg}"'))
            for n, v in view.headers
        )
        forged = HttpRequestView(method="POST", target_uri=URL, headers=swapped)
        for fast in (True, False):
            assert _outcome(forged, fast=fast) == ("error", "signature.algorithm_unsupported")


@given(st.binary(min_size=0, max_size=64), st.sampled_from(["", " ", "  "]))
def test_content_digest_fast_parse_matches_the_general_one(body: bytes, pad: str) -> None:
    value = pad + content_digest_header(body) + pad
    assert parse_content_digest(value) == {"sha-256": __import__("hashlib").sha256(body).digest()}


@pytest.mark.parametrize(
    "value", ["sha-256=:AAAA:", "sha-256=:AAA=:", "sha-256=:AA==:, sha-512=:AA==:", "sha-256=:AB==:"]
)
def test_content_digest_odd_values_parse_as_the_general_parser_says(value: str) -> None:
    parsed = parse_dictionary(value)
    assert parse_content_digest(value) == {k: v.value for k, v in parsed.items()}  # type: ignore[union-attr]


@pytest.mark.parametrize("has_body", [True, False, None])
@pytest.mark.parametrize("length", ["0", "7", None])
def test_a_body_without_a_covered_digest_is_judged_alike(has_body: bool | None, length: str | None) -> None:
    headers = [("Host", "node-b.example"), ("Satchel-Origin", "https://node-a.example")]
    headers += [("Content-Length", length)] if length is not None else []
    view = HttpRequestView(method="POST", target_uri=URL, headers=headers)
    lines = sign_request(
        view, key_id=KEY.public_key.key_id, sign=KEY.sign_raw, created=NOW, expires=NOW + 120,
        nonce=encode_nonce(b"n" * 16), components=["@method", "@target-uri", "satchel-origin"], has_body=False,
    )  # fmt: skip
    signed = HttpRequestView(method="POST", target_uri=URL, headers=(*headers, *lines))
    assert _outcome(signed, fast=True, has_body=has_body) == _outcome(signed, fast=False, has_body=has_body)


def test_the_compiled_code_is_built_wherever_a_compiler_is() -> None:
    # `make install` compiles protocol/_sigfast.c (setup.py) when the machine has a C compiler, as CI's has; a
    # build that silently lost it there would leave every node on the slower path and
    # test_signature_fast_compiled.py comparing nothing. Without a compiler the install goes on and the node
    # uses this Python code alone, which the whole suite then runs on.
    from protocol import signature_fast

    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is not None:
        assert signature_fast.COMPILED is not None, f"protocol/_sigfast.c was not compiled though {compiler} is here"
    else:
        assert signature_fast.COMPILED is None
