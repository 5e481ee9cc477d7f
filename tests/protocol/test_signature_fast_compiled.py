"""The compiled part of the signature fast path (protocol/_sigfast.c) decides exactly as the Python code.

protocol.signature_fast.read_request hands a request to the compiled read_request first,
http_signatures.check_request_headers to check_request (read_request and the profile's rules on times, key
ids and algorithms), and http_signatures.sign_answer an answer to signed_answer (built on answer_base, the
compiled signature_fast.prepare_answer); whatever they answer is taken as the Python code's answer (the same
functions with compiled=False). So on every request, mangled at random in
every field it reads, and every answer with one argument made odd, the two must give the same result, or
both decline. The compiled code may decline more (over its fixed limits: 64 header lines, names of 64
characters, bases of 16 KiB, an answer's Signature-Input member of 512 characters, signatures of 1 KiB, times
past 2**60); the inputs here stay within them unless a test says
otherwise, so here it must not.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import SessionKey
from protocol import http_signatures, signature_fast
from protocol.errors import SatchelError
from protocol.http_signatures import HttpRequestView, encode_nonce, sign_request
from tests.protocol.test_signature_fast import (
    _EDITS,
    _FIELDS,
    KEY,
    NOW,
    SESSION_KEY_ID,
    URL,
    _mangle,
    _request,
)

COMPILED = signature_fast.COMPILED
_READ = {"method": "POST", "target_uri": URL, "label": "sig1", "require": ("satchel-origin",)}
# Built wherever the machine has a C compiler (test_signature_fast.py checks that it is); without one the
# node uses the Python code alone, and there is nothing here to compare: these say so as skipped.
pytestmark = pytest.mark.skipif(COMPILED is None, reason="built without a C compiler: nothing compiled to compare")


def _both(headers: tuple[tuple[str, str], ...], **kwargs: object) -> tuple[object, object]:
    args = {**_READ, "has_body": True, **kwargs}
    python = signature_fast.read_request(headers, compiled=False, **args)  # type: ignore[arg-type]
    assert COMPILED is not None
    derived = signature_fast._target_uri(str(args["target_uri"]))
    compiled = COMPILED.read_request(
        headers, args["method"], derived, args["label"], args["require"], args["has_body"]
    )
    return python, None if compiled is None else signature_fast.from_compiled(compiled, str(args["label"]))


def test_the_compiled_reader_takes_the_canonical_shape() -> None:
    for key_id in (None, SESSION_KEY_ID):
        python, compiled = _both(_request(key_id=key_id).headers)
        assert python is not None and compiled == python


@settings(max_examples=600)
@given(
    st.sampled_from([*_FIELDS, "host", "x-other"]),
    _EDITS,
    st.sampled_from(
        [
            ["@method", "@target-uri", "content-digest", "content-type", "satchel-origin"],
            ["@target-uri", "@method", "satchel-origin", "content-type", "content-digest"],
            ["@method", "@target-uri", "content-digest", "content-type", "satchel-origin", "host"],
            ["@method", "@authority", "@path", "content-digest", "content-type", "satchel-origin"],
        ]
    ),
    st.booleans(),
    st.sampled_from([True, False, None]),
)
def test_mangled_requests_are_read_alike(
    field: str, edits: list[tuple[str, int, str]], components: list[str], session: bool, has_body: bool | None
) -> None:
    signed = _request(components, key_id=SESSION_KEY_ID if session else None)
    headers = (*signed.headers, ("X-Other", "  spaced\t"))
    python, compiled = _both(_mangle(headers, field, edits), has_body=has_body)
    assert compiled == python


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:-_ ;"


@settings(max_examples=600)
@given(
    st.sampled_from(["sig1=:", "sig1=", "sig2=:", "", "sig1=::"]),
    st.text(alphabet=_B64, max_size=20),
    st.sampled_from([":", "", "=:"]),
)
def test_any_signature_field_is_read_alike(prefix: str, middle: str, suffix: str) -> None:
    # The base64 of the Signature field: only its canonical form is read (what re-encoding gives back).
    signed = _request()
    headers = tuple((n, prefix + middle + suffix if n == "Signature" else v) for n, v in signed.headers)
    python, compiled = _both(headers)
    assert compiled == python


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(["Satchel-Origin", "SATCHEL-ORIGIN", "Content-Type", "X-A"]), max_size=4),
    st.text(alphabet=" \tab,\u00e9", max_size=6),
)
def test_repeated_and_odd_lines_are_combined_alike(names: list[str], value: str) -> None:
    # Lines of one field are combined in order, each stripped (RFC 9421 §2.1), whatever the case of the name.
    signed = _request()
    headers = (*signed.headers, *((name, value) for name in names))
    python, compiled = _both(headers)
    assert compiled == python


@given(st.sampled_from(["POST", "GET"]), st.sampled_from([URL, URL + "?a=1", "https://node-b.example:8443/x"]))
def test_method_and_target_are_what_the_base_says(method: str, target: str) -> None:
    signed = _request()
    view = HttpRequestView(method=method, target_uri=target, headers=signed.headers)
    python, compiled = _both(view.headers, method=method, target_uri=target)
    assert compiled == python


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=0, max_value=63))
def test_only_canonical_base64_signatures_are_read(raw: bytes, bits: int) -> None:
    # The last character before the padding carries bits the padding leaves over; a sender that sets them
    # writes another text for the same bytes, which the Python reader does not read as canonical.
    import base64

    text = base64.b64encode(raw).decode("ascii")
    data = text.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    changed = data[:-1] + alphabet[bits] + text[len(data) :]
    headers = tuple((n, f"sig1=:{changed}:" if n == "Signature" else v) for n, v in _request().headers)
    python, compiled = _both(headers)
    assert compiled == python


@given(st.one_of(st.sampled_from([21, 22, 128, 129]), st.integers(min_value=1, max_value=140)),
       st.sampled_from(["0", "A", "_", "="]))  # fmt: skip
def test_nonces_of_every_length_are_read_alike(length: int, char: str) -> None:
    python, compiled = _both(_input_rewritten(r'nonce="[^"]*"', f'nonce="{char * length}"'))
    assert compiled == python


@given(st.one_of(st.sampled_from([0, 1, 64, 65]), st.integers(min_value=0, max_value=70)),
       st.sampled_from(["", '"', "!", "=", ' "', '"x']))  # fmt: skip
def test_key_ids_of_every_length_and_ending_are_read_alike(length: int, ending: str) -> None:
    # The key id is the Signature-Input's last parameter: its length and the quote that must close it.
    python, compiled = _both(_input_rewritten(r'keyid="[^"]*"$', f'keyid="{"k" * length}{ending}'))
    assert compiled == python


def _input_rewritten(pattern: str, replacement: str) -> tuple[tuple[str, str], ...]:
    """A signed request's header lines with one parameter of its Signature-Input rewritten."""
    return tuple((n, re.sub(pattern, replacement, v) if n == "Signature-Input" else v) for n, v in _request().headers)


@pytest.mark.parametrize("late", [("Content-Type", "application/json"), ("Content-Digest", "sha-256=:AA==:")])
@pytest.mark.parametrize("has_body", [True, False, None])
def test_a_field_that_must_be_covered_but_is_not_is_declined_alike(
    late: tuple[str, str], has_body: bool | None
) -> None:
    # Signed without the field, which then arrives anyway: the profile wants it covered when present.
    headers = [("Host", "node-b.example"), ("Satchel-Origin", "https://node-a.example")]
    view = HttpRequestView(method="POST", target_uri=URL, headers=headers)
    lines = sign_request(
        view, key_id=KEY.public_key.key_id, sign=KEY.sign_raw, created=NOW, expires=NOW + 120,
        nonce=encode_nonce(b"n" * 16), components=["@method", "@target-uri", "satchel-origin"], has_body=False,
    )  # fmt: skip
    python, compiled = _both((*headers, *lines, late), has_body=has_body)
    assert compiled == python
    python, compiled = _both((*headers, *lines), has_body=has_body)
    assert compiled == python


@pytest.mark.parametrize("value", ["https://a.example\n\"@method\": GET", "a\rb", "a\x7f", "caf\u00e9", "a\x00b", "\n"])
def test_a_covered_value_that_is_not_one_printable_line_is_declined_alike(value: str) -> None:
    # A line break in a value would forge a line of the base; the Python reader counts them.
    headers = tuple((n, value if n == "Satchel-Origin" else v) for n, v in _request().headers)
    python, compiled = _both(headers)
    assert python is None and compiled is None


def test_over_its_limits_the_compiled_reader_leaves_the_request_to_python() -> None:
    # Past 64 header lines, a name of 64 characters or a base of 16 KiB, the compiled reader declines and
    # read_request reads with Python: the outcome is the Python reader's, never a cut or overrun base.
    base = _request().headers
    long_value = tuple((n, "x" * 20_000 if n == "Satchel-Origin" else v) for n, v in base)
    many = (*base, *((f"X-{i}", "1") for i in range(70)))
    long_name = (*base, ("X-" + "n" * 70, "1"))
    for headers in (many, long_name, long_value):
        python, compiled = _both(headers)
        assert python is not None and compiled is None
        assert signature_fast.read_request(headers, has_body=True, **_READ) == python  # type: ignore[arg-type]


_TEXT = st.text(alphabet=' \t"=:;,()/+-_*.aAzZ09\n\x7f\u00e9', max_size=12)
_ANSWER = {
    "status": 200, "content_digest": "sha-256=:AAAA:", "content_type": "application/json",
    "request_signature": "sig1=:AAAA:", "label": "sig1", "request_label": "sig1", "created": NOW,
    "expires": NOW + 60, "nonce": "A" * 22, "alg": "hmac-sha256", "key_id": "hs-" + "A" * 22,
}  # fmt: skip
_ODD: dict[str, st.SearchStrategy[object]] = {
    "status": st.one_of(st.sampled_from([99, 100, 999, 1000, True, 2**70]), st.integers()),
    "content_digest": st.one_of(st.sampled_from([" a\t", "a\tb", "\ta b "]), _TEXT),
    "content_type": _TEXT,
    "request_signature": st.one_of(
        st.sampled_from(["sig1=:AB==:", "sig1=:AAA=:", "sig2=:AAAA:", "sig1=:AA==:, sig1=:AA==:", "sig1=::"]),
        st.none(), _TEXT, _TEXT.map(lambda t: f"sig1=:{t}:"),
    ),
    "label": st.one_of(st.sampled_from(["Sig1", "s*g.1-_", "*", "", "1a", "a" * 400]), _TEXT),
    "request_label": st.one_of(st.sampled_from(["sig2", "*", "SIG", "sig 1", "a" * 400]), _TEXT),
    "created": st.one_of(st.sampled_from([-1, 0, 10**15 - 1, 10**15, 2**64, True, 1.0]), st.integers()),
    "expires": st.one_of(st.sampled_from([-1, 0, 10**15 - 1, 10**15, 2**64]), st.integers()),
    "nonce": st.one_of(
        st.one_of(st.sampled_from([21, 22, 128, 129]), st.integers(min_value=0, max_value=140)).map(lambda n: "A" * n),
        st.sampled_from(["A" * 21 + "="]), _TEXT,
    ),
    "alg": st.one_of(st.sampled_from([None, "ed25519", "rsa", "", "ed25519 "]), _TEXT),
    "key_id": st.one_of(
        st.one_of(st.sampled_from([0, 1, 64, 65]), st.integers(min_value=0, max_value=70)).map(lambda n: "x" * n), _TEXT
    ),
}


@settings(max_examples=1000)
@given(st.data())
def test_answers_are_based_alike(data: st.DataObject) -> None:
    # From an answer a node sends, one argument changed to something odd: the compiled code must take or
    # leave it exactly as the Python code does (so each of its checks is reached on its own).
    assert COMPILED is not None
    field = data.draw(st.sampled_from(sorted(_ODD)))
    a: dict[str, Any] = {**_ANSWER, field: data.draw(_ODD[field])}
    python = signature_fast.prepare_answer(
        a["status"], a["content_digest"], a["content_type"], a["request_signature"], label=a["label"],
        created=a["created"], expires=a["expires"], nonce=a["nonce"], alg=a["alg"], key_id=a["key_id"],
        request_label=a["request_label"],
    )  # fmt: skip
    compiled = COMPILED.answer_base(
        a["status"], a["content_digest"], a["content_type"], a["request_signature"], a["label"], a["request_label"],
        a["created"], a["expires"], a["nonce"], a["alg"], a["key_id"],
    )  # fmt: skip
    assert compiled == python


def test_the_compiled_answer_takes_what_a_node_sends() -> None:
    assert COMPILED is not None
    args = (200, "sha-256=:AAAA:", "application/json", "sig1=:AAAA:", "sig1", "sig1", NOW, NOW + 60, "A" * 22,
            "hmac-sha256", "hs-" + "A" * 22)  # fmt: skip
    compiled = COMPILED.answer_base(*args)
    assert compiled is not None
    python = signature_fast.prepare_answer(
        200, "sha-256=:AAAA:", "application/json", "sig1=:AAAA:", label="sig1", created=NOW,
        expires=NOW + 60, nonce="A" * 22, alg="hmac-sha256", key_id="hs-" + "A" * 22, request_label="sig1",
    )  # fmt: skip
    assert compiled == python


def _python_signed_answer(a: dict[str, Any]) -> tuple[str, str] | None:
    """http_signatures.sign_answer without the compiled code; None where it raises for a bad call."""
    try:
        lines = http_signatures.sign_answer(
            a["status"], content_digest=a["content_digest"], content_type=a["content_type"],
            request_signature=a["request_signature"], key_id=a["key_id"], sign=a["sign"], created=a["created"],
            expires=a["expires"], nonce=a["nonce"], label=a["label"], request_label=a["request_label"],
            include_alg=a["include_alg"], compiled=False,
        )  # fmt: skip
    except SatchelError:
        return None
    return None if lines is None else (lines[0][1], lines[1][1])


_SESSION = SessionKey("hs-" + "B" * 22, bytes(range(32)))
_SIGNED = {**_ANSWER, "key_id": _SESSION.key_id, "include_alg": True, "sign": _SESSION.sign_raw}
_SIGNED_ODD: dict[str, st.SearchStrategy[object]] = {
    **_ODD,
    "key_id": st.one_of(
        st.sampled_from(
            ["hs-" + "B" * 21, "hs-" + "B" * 23, "hs-" + "B" * 21 + "=", KEY.public_key.key_id, "ed25519-" + "l" * 16,
             "ed25519-" + "0" * 15, "ed25519-" + "0" * 16, "ED25519-" + "0" * 16, "xs-" + "B" * 22]
        ),
        st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyzA", min_size=16, max_size=16).map("ed25519-".__add__),
        _TEXT,
    ),
    "include_alg": st.sampled_from([True, False, 1, None]),
    "expires": st.one_of(st.sampled_from([NOW, NOW - 1, NOW + 1, NOW + 300, NOW + 301, 10**15]), st.integers()),
    "sign": st.sampled_from(
        [KEY.sign_raw, lambda base: bytearray(_SESSION.sign_raw(base)), lambda base: b"", lambda base: b"x" * 2000]
    ),
}


@settings(max_examples=1000)
@given(st.data())
def test_signed_answers_are_signed_alike(data: st.DataObject) -> None:
    # As for answer_base, one argument of a real session answer at a time; the rules a signer applies to
    # itself (key ids, times, the key's one algorithm) are the compiled code's too, and sign(base) as bytes.
    assert COMPILED is not None
    field = data.draw(st.sampled_from(sorted(_SIGNED_ODD)))
    node_key = data.draw(st.booleans())  # an answer signed with the node key (no session): alg is optional
    start = {**_SIGNED, "key_id": KEY.public_key.key_id, "sign": KEY.sign_raw} if node_key else _SIGNED
    a: dict[str, Any] = {**start, field: data.draw(_SIGNED_ODD[field])}
    compiled = COMPILED.signed_answer(
        a["status"], a["content_digest"], a["content_type"], a["request_signature"], a["label"], a["request_label"],
        a["created"], a["expires"], a["nonce"], a["key_id"], a["include_alg"], a["sign"],
    )  # fmt: skip
    python = _python_signed_answer(a)
    if compiled is None and python is not None:
        # Its only declines of its own: a signature over 1 KiB (no Satchel key makes one) and odd types.
        assert len(python[1]) > 1000 or type(a["include_alg"]) is not bool
    else:
        assert compiled == python


def test_the_compiled_code_signs_what_a_node_answers() -> None:
    for key_id, sign in ((_SESSION.key_id, _SESSION.sign_raw), (KEY.public_key.key_id, KEY.sign_raw)):
        a = {**_SIGNED, "key_id": key_id, "sign": sign}
        python = _python_signed_answer(a)
        assert python is not None and COMPILED is not None
        assert COMPILED.signed_answer(
            a["status"], a["content_digest"], a["content_type"], a["request_signature"], a["label"],
            a["request_label"], a["created"], a["expires"], a["nonce"], a["key_id"], a["include_alg"], a["sign"],
        ) == python  # fmt: skip


@settings(max_examples=400)
@given(
    st.lists(st.tuples(st.text(max_size=70), st.text(max_size=300)), max_size=70),
    st.text(max_size=10),
    st.sampled_from([True, False, None]),
)
def test_any_header_lines_are_read_alike_or_left_to_python(
    lines: list[tuple[str, str]], method: str, has_body: bool | None
) -> None:
    # Whatever arrives (any text, any number of lines, names of any length): the compiled reader answers as
    # the Python reader or leaves the request to it, and never fails in a way of its own.
    headers = (*_request().headers, *lines)
    kwargs = {**_READ, "method": method or "POST", "has_body": has_body}
    python = signature_fast.read_request(headers, compiled=False, **kwargs)  # type: ignore[arg-type]
    assert signature_fast.read_request(headers, **kwargs) == python  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "components",
    [
        '"@method" "@target-uri" "content-digest" "content-type" "satchel-origin)',
        '"@method" "@target-uri" "content-digest" "content-type" "satchel-origin" "host)',
        '"@method" "@target-uri" "content-digest" "content-type" "satchel-origin) ',
        '"@method" "@target-uri" "content-digest" "content-type" "satchel-origin" ',
        '"@method" "@target-uri" "content-digest" "content-type" satchel-origin',
        '"@method" "@target-uri" "content-digest" "content-type" "satchel-origin";sf',
        '"@method" "@target-uri" "content-digest" "content-type" "satchel-origin" "signature";req;key="sig1"',
        '"@method"  "@target-uri" "content-digest" "content-type" "satchel-origin"',
        '',
    ],
)
def test_odd_component_lists_are_read_alike(components: str) -> None:
    # Component lists the random edits rarely write: an item whose closing quote is missing, so that the
    # list's own ")" could be taken for it, spaces doubled or trailing, parameters, a ;req item in a request.
    signed = _request()
    headers = tuple(
        (n, re.sub(r"\(.*\)", lambda _: f"({components})", v, count=1) if n == "Signature-Input" else v)
        for n, v in signed.headers
    )
    python, compiled = _both(headers)
    assert compiled == python


# check_request: read_request and then the profile's rules on what it read (key id, algorithm, times), which
# http_signatures.check_request_headers takes as its answer when it is not None.


_CHECK = {"now": NOW, "max_skew": 60, "max_lifetime": 300, "has_body": True}


def _outcome(headers: tuple[tuple[str, str], ...], *, compiled: bool, **kwargs: Any) -> object:
    """check_request_headers' answer, or the code of the error it raised."""
    args = {**_CHECK, **kwargs}
    try:
        return http_signatures.check_request_headers(
            headers, method="POST", target_uri=URL, now=args["now"],
            expected_authority="node-b.example", max_skew=args["max_skew"], max_lifetime=args["max_lifetime"],
            require_components=("satchel-origin",), has_body=args["has_body"], compiled=compiled,
        )  # fmt: skip
    except SatchelError as exc:
        return exc.code


def _checked_alike(headers: tuple[tuple[str, str], ...], **kwargs: Any) -> object:
    """Assert the compiled check takes exactly what the Python code takes, with the same result; that result."""
    python = _outcome(headers, compiled=False, **kwargs)
    args = {**_CHECK, **kwargs}
    taken = signature_fast.checked_request(
        headers, method="POST", target_uri=URL, label="sig1", require=("satchel-origin",), has_body=args["has_body"],
        now=args["now"], max_skew=args["max_skew"], max_lifetime=args["max_lifetime"],
    )  # fmt: skip
    assert (taken is not None) == isinstance(python, http_signatures.UnverifiedSignature)
    assert _outcome(headers, compiled=True, **kwargs) == python
    return python


def _with_params(headers: tuple[tuple[str, str], ...], params: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, re.sub(r"\);.*", lambda _: ");" + params, v) if n == "Signature-Input" else v) for n, v in headers)


_NODE_KEY_IDS = [KEY.public_key.key_id, "ed25519-" + "l" * 16, "ed25519-" + "0" * 15, "ed25519-" + "0" * 17,
                 "ED25519-" + "0" * 16, "ed25519_" + "0" * 16, "ed25519-" + "u" * 16]  # fmt: skip
_SESSION_KEY_IDS = [SESSION_KEY_ID, "hs-" + "A" * 21, "hs-" + "A" * 23, "hs-" + "-_" * 11, "hs" + "A" * 23, "x"]


def test_the_compiled_check_takes_what_nodes_send() -> None:
    for key_id in (None, SESSION_KEY_ID):
        signed = _request(key_id=key_id)
        assert isinstance(_checked_alike(signed.headers), http_signatures.UnverifiedSignature)


@settings(max_examples=800)
@given(
    st.one_of(st.integers(min_value=NOW - 500, max_value=NOW + 500), st.sampled_from([0, 10**15 - 1])),
    st.one_of(st.integers(min_value=-3, max_value=400), st.sampled_from([0, 1, 300, 301, 10**14])),
    st.integers(min_value=-600, max_value=600),
    st.sampled_from([*_NODE_KEY_IDS, *_SESSION_KEY_IDS]),
    st.sampled_from([None, "ed25519", "hmac-sha256"]),
    st.sampled_from([0, 1, 60, 600]),
    st.sampled_from([0, 120, 300, 10**6]),
)
def test_the_profile_rules_are_applied_alike(
    created: int, lifetime: int, now_offset: int, key_id: str, alg: str | None, max_skew: int, max_lifetime: int
) -> None:
    # Every rule on its own and at its edges: times against now, skew and lifetime; key ids of both kinds
    # and near misses; the algorithm each kind of key signs with, said or not.
    expires = created + lifetime
    if not 0 <= expires < 10**15:
        return  # no such Signature-Input: the reader's grammar has 15 digits at most
    params = f'created={created};expires={expires};nonce="{"N" * 22}"' + (f';alg="{alg}"' if alg else "")
    headers = _with_params(_request().headers, params + f';keyid="{key_id}"')
    _checked_alike(headers, now=NOW + now_offset, max_skew=max_skew, max_lifetime=max_lifetime)


@settings(max_examples=400)
@given(st.sampled_from(_FIELDS), _EDITS, st.booleans(), st.sampled_from([True, False, None]))
def test_mangled_requests_are_checked_alike(
    field: str, edits: list[tuple[str, int, str]], session: bool, has_body: bool | None
) -> None:
    signed = _request(key_id=SESSION_KEY_ID if session else None)
    _checked_alike(_mangle(signed.headers, field, edits), has_body=has_body, now=NOW + 30)


@pytest.mark.parametrize(
    ("now", "max_skew", "max_lifetime"),
    [(2**70, 60, 300), (NOW, 2**63, 300), (NOW, 60, 2**64), (-(2**63), 60, 300), (NOW, -(2**62), 300), (True, 60, 300)],
)
def test_past_its_limits_the_compiled_check_leaves_the_request_to_python(
    now: int, max_skew: int, max_lifetime: int
) -> None:
    # Arguments outside what the compiled code compares (past a 64-bit integer, or not an int): it declines,
    # and the outcome is the Python code's.
    headers = _request().headers
    taken = signature_fast.checked_request(
        headers, method="POST", target_uri=URL, label="sig1", require=("satchel-origin",), has_body=True,
        now=now, max_skew=max_skew, max_lifetime=max_lifetime,
    )  # fmt: skip
    assert taken is None
    assert _outcome(headers, compiled=True, now=now, max_skew=max_skew, max_lifetime=max_lifetime) == _outcome(
        headers, compiled=False, now=now, max_skew=max_skew, max_lifetime=max_lifetime
    )


@pytest.mark.parametrize("max_skew", [0, 60])
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_the_times_are_checked_alike_at_their_edges(max_skew: int, delta: int) -> None:
    # created at most max_skew ahead of now, expires at most max_skew behind it, after created and at most
    # max_lifetime later.
    now, key = NOW + 1000, KEY.public_key.key_id
    cases = [
        (now + max_skew + delta, now + max_skew + delta + 100, delta <= 0),
        (now - max_skew + delta - 100, now - max_skew + delta, delta >= 0),
        (now, now + 120 + delta, delta <= 0),
        (now, now + delta, delta > 0),
    ]
    for created, expires, valid in cases:
        params = f'created={created};expires={expires};nonce="{"N" * 22}";alg="ed25519";keyid="{key}"'
        outcome = _checked_alike(
            _with_params(_request().headers, params), now=now, max_skew=max_skew, max_lifetime=120
        )
        assert isinstance(outcome, http_signatures.UnverifiedSignature) == valid


def test_the_compiled_calls_keep_no_memory() -> None:
    # Each returns new objects and drops every one it made on the way: a reference kept would grow the
    # process with every request a node answers.
    import tracemalloc

    assert COMPILED is not None
    headers, target = _request(key_id=SESSION_KEY_ID).headers, signature_fast._target_uri(URL)
    answer = (200, "sha-256=:AAAA:", "application/json", "sig1=:AAAA:", "sig1", "sig1", NOW, NOW + 60, "A" * 22)
    calls = [
        lambda: COMPILED.read_request(headers, "POST", target, "sig1", ("satchel-origin",), True),
        lambda: COMPILED.check_request(headers, "POST", target, "sig1", ("satchel-origin",), True, NOW, 60, 300),
        lambda: COMPILED.check_request(headers, "POST", target, "sig1", ("satchel-origin",), True, NOW + 999, 60, 300),
        lambda: COMPILED.answer_base(*answer, "hmac-sha256", _SESSION.key_id),
        lambda: COMPILED.signed_answer(*answer, _SESSION.key_id, True, _SESSION.sign_raw),
    ]
    for call in calls:
        assert call() is not None or call is calls[2]
        tracemalloc.start()
        try:
            for _ in range(50):
                call()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(2000):
                call()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert grown < 20_000, f"call {calls.index(call)} kept {grown} bytes over 2,000 calls"


def _based(**changes: Any) -> tuple[object, object]:
    a = {**_ANSWER, **changes}
    python = signature_fast.prepare_answer(
        a["status"], a["content_digest"], a["content_type"], a["request_signature"], label=a["label"],
        created=a["created"], expires=a["expires"], nonce=a["nonce"], alg=a["alg"], key_id=a["key_id"],
        request_label=a["request_label"],
    )  # fmt: skip
    assert COMPILED is not None
    compiled = COMPILED.answer_base(
        a["status"], a["content_digest"], a["content_type"], a["request_signature"], a["label"], a["request_label"],
        a["created"], a["expires"], a["nonce"], a["alg"], a["key_id"],
    )  # fmt: skip
    return python, compiled


def test_an_answer_base_of_16_kib_is_the_compiled_codes_and_a_byte_more_is_not() -> None:
    python, compiled = _based()
    assert isinstance(python, tuple) and compiled == python
    fits = 16384 - (len(python[1]) - len(_ANSWER["content_type"]))  # a Content-Type this long fills 16 KiB
    python, compiled = _based(content_type="a" * fits)
    assert isinstance(python, tuple) and len(python[1]) == 16384 and compiled == python
    python, compiled = _based(content_type="a" * (fits + 1))
    assert python is not None and compiled is None


def test_past_its_limits_the_compiled_answer_leaves_it_to_python() -> None:
    # A request label too long for the compiled code's member (512 characters), a base over 16 KiB: it
    # declines, and sign_answer signs with the Python code.
    for changes in ({"request_label": "a" * 500, "request_signature": "a" * 500 + "=:AAAA:"},
                    {"content_type": "a" * 17_000}):  # fmt: skip
        python, compiled = _based(**changes)
        assert python is not None and compiled is None
        a = {**_SIGNED, **changes}
        compiled_signed = COMPILED.signed_answer(  # type: ignore[union-attr]
            a["status"], a["content_digest"], a["content_type"], a["request_signature"], a["label"],
            a["request_label"], a["created"], a["expires"], a["nonce"], a["key_id"], a["include_alg"], a["sign"],
        )  # fmt: skip
        assert compiled_signed is None and _python_signed_answer(a) is not None
