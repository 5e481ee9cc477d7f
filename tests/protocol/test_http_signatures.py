"""RFC 9421 signatures under the Satchel profile: the RFC's own vector, round trips, every rejection."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import IdentityKey, IdentityPublicKey
from protocol import content_digest, http_sessions, http_signatures, signature_errors, structured_fields
from protocol.content_digest import DigestMismatch, content_digest_header, verify_body_digest
from protocol.errors import InvalidInput, SatchelError, SignatureInvalid, all_error_classes
from protocol.http_signatures import (
    SUGGESTED_HTTP_STATUS,
    Component,
    HttpRequestView,
    HttpResponseView,
    SignatureKeyRevoked,
    SignatureKeyUnknown,
    SignatureParams,
    SignatureReplayed,
    encode_nonce,
    parse_signature,
    sign_request,
    sign_response,
    signature_base,
    verify_request,
    verify_response,
)

from support import load_script

# --- RFC 9421 Appendix B.2.6 ---------------------------------------------------------------------------

B14_D = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"
B14_X = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
B2_HEADERS = [
    ("Host", "example.com"),
    ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
    ("Content-Type", "application/json"),
    (
        "Content-Digest",
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
    ),
    ("Content-Length", "18"),
]
B2_BODY = b'{"hello": "world"}'
B26_SIGNATURE_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
)
B26_BASE = (
    b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    b'"@method": POST\n'
    b'"@path": /foo\n'
    b'"@authority": example.com\n'
    b'"content-type": application/json\n'
    b'"content-length": 18\n'
    b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length")'
    b';created=1618884473;keyid="test-key-ed25519"'
)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b2_request(*extra: tuple[str, str]) -> HttpRequestView:
    return HttpRequestView(
        method="POST", target_uri="https://example.com/foo?param=Value&Pet=dog", headers=[*B2_HEADERS, *extra]
    )


def test_rfc9421_b26_base_is_reproduced_and_the_published_signature_verifies() -> None:
    key = IdentityKey(_b64url(B14_D))
    assert key.public_key.raw == _b64url(B14_X)
    view = _b2_request(("Signature-Input", B26_SIGNATURE_INPUT), ("Signature", B26_SIGNATURE))
    parsed = parse_signature(view.headers, "sig-b26")
    base = signature_base(view, parsed.components, parsed.params)
    assert base == B26_BASE
    assert IdentityPublicKey(_b64url(B14_X)).verify_raw(base, parsed.signature) == base
    # Ed25519 is deterministic, so signing the same base gives the published bytes.
    assert key.sign_raw(base) == parsed.signature
    verify_body_digest(dict(B2_HEADERS)["Content-Digest"], B2_BODY)


def test_rfc9421_b26_base_from_our_own_types() -> None:
    components = ["date", "@method", "@path", "@authority", "content-type", "content-length"]
    params = SignatureParams.build(created=1618884473, keyid="test-key-ed25519")
    assert signature_base(_b2_request(), components, params) == B26_BASE


def test_verify_raw_rejects_a_changed_base() -> None:
    parsed = parse_signature(
        [("Signature-Input", B26_SIGNATURE_INPUT), ("Signature", B26_SIGNATURE)], "sig-b26"
    )
    with pytest.raises(SignatureInvalid):
        IdentityPublicKey(_b64url(B14_X)).verify_raw(B26_BASE + b" ", parsed.signature)
    with pytest.raises(SignatureInvalid):
        IdentityPublicKey(_b64url(B14_X)).verify_raw(B26_BASE, parsed.signature[:10])


def test_derived_components() -> None:
    view = HttpRequestView(method="GET", target_uri="HTTPS://Node-B.Example:443/a%20b/?x=1&y")
    params = SignatureParams.build(created=1)
    base = signature_base(
        view, ["@target-uri", "@authority", "@scheme", "@path", "@query", "@request-target"], params
    )
    assert base.decode().splitlines()[:6] == [
        '"@target-uri": HTTPS://Node-B.Example:443/a%20b/?x=1&y',
        '"@authority": node-b.example',
        '"@scheme": https',
        '"@path": /a%20b/',
        '"@query": ?x=1&y',
        '"@request-target": /a%20b/?x=1&y',
    ]
    bare = HttpRequestView(method="GET", target_uri="http://node-b.example:8080")
    assert signature_base(bare, ["@authority", "@path", "@query"], params).decode().splitlines()[:3] == [
        '"@authority": node-b.example:8080',
        '"@path": /',
        '"@query": ?',
    ]


def test_field_values_are_combined_and_trimmed() -> None:
    view = HttpRequestView(
        method="GET",
        target_uri="https://a.example/",
        headers=[("X-A", " one "), ("x-a", "two\t"), ("X-E", "")],
    )
    base = signature_base(view, ["x-a", "x-e"], SignatureParams.build(created=1))
    assert base.startswith(b'"x-a": one, two\n"x-e": \n')


def test_dictionary_member_and_sf_components() -> None:
    view = HttpRequestView(
        method="GET",
        target_uri="https://a.example/",
        headers=[("Content-Digest", "sha-256=:AAAA:;p=1,   sha-512=:AQID:")],
    )
    base = signature_base(
        view, ['"content-digest";key="sha-512"', '"content-digest";sf'], SignatureParams.build(created=1)
    )
    assert base.decode().splitlines()[:2] == [
        '"content-digest";key="sha-512": :AQID:',
        '"content-digest";sf: sha-256=:AAAA:;p=1, sha-512=:AQID:',
    ]


# --- the Satchel profile --------------------------------------------------------------------------------

SEED = hashlib.sha256(b"satchel test node b").digest()
KEY = IdentityKey(SEED)
KEY_ID = KEY.public_key.key_id
OTHER = IdentityKey(hashlib.sha256(b"satchel test node c").digest())
NOW = 1_750_000_000
NONCE = encode_nonce(bytes(range(16)))
BODY = b'{"records": ["r-1"]}'
TARGET = "https://node-b.example/v1/transfers?since=3"


def _resolve(key_id: str) -> IdentityPublicKey | None:
    return {KEY_ID: KEY.public_key, OTHER.public_key.key_id: OTHER.public_key}.get(key_id)


def _body_headers(body: bytes = BODY) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Content-Digest", content_digest_header(body)),
    ]


def _signed_request(
    headers: list[tuple[str, str]] | None = None,
    *,
    method: str = "POST",
    target: str = TARGET,
    **kwargs: object,
) -> HttpRequestView:
    view = HttpRequestView(
        method=method, target_uri=target, headers=_body_headers() if headers is None else headers
    )
    options: dict[str, object] = {"created": NOW, "expires": NOW + 300, "nonce": NONCE, **kwargs}
    added = sign_request(view, key_id=KEY_ID, sign=KEY.sign_raw, **options)  # type: ignore[arg-type]
    return HttpRequestView(method=view.method, target_uri=view.target_uri, headers=[*view.headers, *added])


def _verify(view: HttpRequestView, **kwargs: object) -> http_signatures.VerifiedSignature:
    options: dict[str, object] = {"resolve_key": _resolve, "now": NOW, "expected_authority": "node-b.example"}
    return verify_request(view, **{**options, **kwargs})  # type: ignore[arg-type]


def _replace(view: HttpRequestView, name: str, value: str | None) -> HttpRequestView:
    headers = [(k, v) for k, v in view.headers if k.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return HttpRequestView(method=view.method, target_uri=view.target_uri, headers=headers)


def test_round_trip_and_what_the_middleware_gets_back() -> None:
    view = _signed_request()
    signature_input = dict(view.headers)["Signature-Input"]
    assert signature_input == (
        'sig1=("@method" "@target-uri" "content-digest" "content-type")'
        f';created={NOW};expires={NOW + 300};nonce="{NONCE}";alg="ed25519";keyid="{KEY_ID}"'
    )
    verified = _verify(view)
    assert (verified.key_id, verified.nonce, verified.label) == (KEY_ID, NONCE, "sig1")
    assert (verified.created, verified.expires, verified.replay_until) == (NOW, NOW + 300, NOW + 360)
    assert [c.name for c in verified.components] == [
        "@method",
        "@target-uri",
        "content-digest",
        "content-type",
    ]
    # The middleware then streams the body through a digester built from the covered header.
    digester = content_digest.ContentDigester.for_header(verified.content_digest)
    digester.update(BODY)
    content_digest.verify_content_digest(verified.content_digest, digester)
    with pytest.raises(DigestMismatch):
        verify_body_digest(verified.content_digest, BODY + b"!")


def test_get_without_body_covers_no_digest() -> None:
    view = _signed_request([], method="GET", target=TARGET)
    assert '("@method" "@target-uri")' in dict(view.headers)["Signature-Input"]
    assert _verify(view).content_digest is None


def test_authority_path_query_form_is_accepted() -> None:
    components = ["@method", "@authority", "@path", "@query", "content-digest", "content-type"]
    _verify(_signed_request(components=components))


def test_response_covers_the_request_signature() -> None:
    request = _signed_request()
    response_body = b'{"accepted": true}'
    response = HttpResponseView(status=202, headers=_body_headers(response_body), request=request)
    added = sign_response(
        response, key_id=KEY_ID, sign=KEY.sign_raw, created=NOW, expires=NOW + 60, nonce=NONCE
    )
    assert dict(added)["Signature-Input"].startswith(
        'sig1=("@status" "content-digest" "content-type" "signature";req;key="sig1");'
    )
    signed = HttpResponseView(status=202, headers=[*response.headers, *added], request=request)
    verified = verify_response(signed, resolve_key=_resolve, now=NOW)
    request_signature = parse_signature(request.headers).signature
    base = signature_base(signed, verified.components, parse_signature(signed.headers).params)
    sig_line = f'"signature";req;key="sig1": :{base64.b64encode(request_signature).decode()}:'
    assert sig_line.encode() in base.split(b"\n")

    # The same response presented as the answer to a different request does not verify.
    other_request = _signed_request(nonce=encode_nonce(b"\x01" * 16))
    moved = HttpResponseView(status=202, headers=signed.headers, request=other_request)
    with pytest.raises(SignatureInvalid):
        verify_response(moved, resolve_key=_resolve, now=NOW)
    changed_status = HttpResponseView(status=200, headers=signed.headers, request=request)
    with pytest.raises(SignatureInvalid):
        verify_response(changed_status, resolve_key=_resolve, now=NOW)


def test_response_that_does_not_cover_the_request_signature_is_refused() -> None:
    request = _signed_request()
    response = HttpResponseView(status=204, request=request)
    # sign_response refuses to make this, so it is put together by hand.
    components = [Component(name="@status"), Component.parse('"@method";req')]
    params = SignatureParams.build(created=NOW, expires=NOW + 60, nonce=NONCE, keyid=KEY_ID)
    signature = KEY.sign_raw(signature_base(response, components, params))
    headers = [
        ("Signature-Input", "sig1=" + http_signatures.signature_params_value(components, params)),
        ("Signature", f"sig1=:{base64.b64encode(signature).decode()}:"),
    ]
    signed = HttpResponseView(status=204, headers=headers, request=request)
    with pytest.raises(http_signatures.SignatureComponentsMissing) as caught:
        verify_response(signed, resolve_key=_resolve, now=NOW)
    assert '"signature";req;key="sig1"' in caught.value.message
    with pytest.raises(http_signatures.SignatureComponentsMissing):
        sign_response(response, key_id=KEY_ID, sign=KEY.sign_raw, created=NOW, expires=NOW + 60, nonce=NONCE,
                      components=components)  # fmt: skip


def test_response_without_its_request_is_a_caller_error() -> None:
    with pytest.raises(InvalidInput):
        verify_response(HttpResponseView(status=200), resolve_key=_resolve, now=NOW)
    with pytest.raises(InvalidInput):
        sign_response(HttpResponseView(status=200), key_id=KEY_ID, sign=KEY.sign_raw, created=NOW,
                      expires=NOW + 60, nonce=NONCE)  # fmt: skip


def _with_input(view: HttpRequestView, signature_input: str) -> HttpRequestView:
    return _replace(view, "Signature-Input", signature_input)


def _sig_input(view: HttpRequestView) -> str:
    return dict(view.headers)["Signature-Input"]


REJECTIONS: list[tuple[str, Callable[[HttpRequestView], HttpRequestView], dict[str, object], str]] = [
    (
        "no signature",
        lambda v: _replace(_replace(v, "Signature", None), "Signature-Input", None),
        {},
        "signature.missing",
    ),
    ("no Signature field", lambda v: _replace(v, "Signature", None), {}, "signature.missing"),
    (
        "other label only",
        lambda v: _with_input(v, _sig_input(v).replace("sig1=", "sig2=")),
        {},
        "signature.missing",
    ),
    ("garbage input", lambda v: _with_input(v, "sig1=(((("), {}, "signature.malformed"),
    (
        "duplicate label",
        lambda v: _with_input(v, _sig_input(v) + ", " + _sig_input(v)),
        {},
        "signature.malformed",
    ),
    ("input not a list", lambda v: _with_input(v, 'sig1="@method"'), {}, "signature.malformed"),
    ("signature not bytes", lambda v: _replace(v, "Signature", "sig1=abc"), {}, "signature.malformed"),
    (
        "no nonce",
        lambda v: _with_input(v, _sig_input(v).replace(f';nonce="{NONCE}"', "")),
        {},
        "signature.malformed",
    ),
    ("short nonce", lambda v: _with_input(v, _sig_input(v).replace(NONCE, "abc")), {}, "signature.malformed"),
    (
        "no expires",
        lambda v: _with_input(v, _sig_input(v).replace(f";expires={NOW + 300}", "")),
        {},
        "signature.malformed",
    ),
    (
        "expires before created",
        lambda v: _with_input(v, _sig_input(v).replace(f"expires={NOW + 300}", f"expires={NOW - 1}")),
        {},
        "signature.malformed",
    ),
    (
        "created is a string",
        lambda v: _with_input(v, _sig_input(v).replace(f"created={NOW}", f'created="{NOW}"')),
        {},
        "signature.malformed",
    ),
    (
        "foreign keyid format",
        lambda v: _with_input(v, _sig_input(v).replace(KEY_ID, "test-key-ed25519")),
        {},
        "signature.malformed",
    ),
    ("unknown parameter", lambda v: _with_input(v, _sig_input(v) + ";colour=1"), {}, "signature.malformed"),
    (
        "uppercase component",
        lambda v: _with_input(v, _sig_input(v).replace('"@method"', '"@METHOD"')),
        {},
        "signature.malformed",
    ),
    (
        "covered twice",
        lambda v: _with_input(v, _sig_input(v).replace('"@method"', '"@method" "@method"')),
        {},
        "signature.malformed",
    ),
    (
        "req in a request",
        lambda v: _with_input(v, _sig_input(v).replace('"@method"', '"@method" "@path";req')),
        {},
        "signature.malformed",
    ),
    (
        "status in a request",
        lambda v: _with_input(v, _sig_input(v).replace('"@method"', '"@method" "@status"')),
        {},
        "signature.malformed",
    ),
    (
        "covered field absent",
        lambda v: _with_input(v, _sig_input(v).replace('"@method"', '"@method" "date"')),
        {},
        "signature.malformed",
    ),
    (
        "signature-params covered",
        lambda v: _with_input(v, _sig_input(v).replace('"@method"', '"@method" "@signature-params"')),
        {},
        "signature.malformed",
    ),
    (
        "digest not covered",
        lambda v: _with_input(v, _sig_input(v).replace(' "content-digest"', "")),
        {},
        "signature.components_missing",
    ),
    (
        "content-type not covered",
        lambda v: _with_input(v, _sig_input(v).replace(' "content-type"', "")),
        {},
        "signature.components_missing",
    ),
    (
        "method not covered",
        lambda v: _with_input(v, _sig_input(v).replace('"@method" ', "")),
        {},
        "signature.components_missing",
    ),
    (
        "target not covered",
        lambda v: _with_input(v, _sig_input(v).replace('"@target-uri" ', '"@path" ')),
        {},
        "signature.components_missing",
    ),
    ("extra requirement", lambda v: v, {"require_components": ["date"]}, "signature.components_missing"),
    (
        "body but no digest",
        lambda v: _replace(
            _with_input(v, _sig_input(v).replace(' "content-digest"', "")), "Content-Digest", None
        ),
        {},
        "signature.components_missing",
    ),
    (
        "other algorithm",
        lambda v: _with_input(v, _sig_input(v).replace('"ed25519"', '"rsa-pss-sha512"')),
        {},
        "signature.algorithm_unsupported",
    ),
    ("too far in the future", lambda v: v, {"now": NOW - 61}, "signature.not_yet_valid"),
    ("expired", lambda v: v, {"now": NOW + 361}, "signature.expired"),
    ("lifetime too long", lambda v: v, {"max_lifetime": 299}, "signature.lifetime_too_long"),
    ("unknown key", lambda v: v, {"resolve_key": lambda k: None}, "signature.key_unknown"),
    (
        "revoked key",
        lambda v: v,
        {"resolve_key": lambda k: (_ for _ in ()).throw(SignatureKeyRevoked("revoked"))},
        "signature.key_revoked",
    ),
    ("wrong key", lambda v: v, {"resolve_key": lambda k: OTHER.public_key}, "signature.invalid"),
    (
        "changed digest",
        lambda v: _replace(v, "Content-Digest", content_digest_header(b"other")),
        {},
        "signature.invalid",
    ),
    ("changed content type", lambda v: _replace(v, "Content-Type", "text/csv"), {}, "signature.invalid"),
    (
        "changed method",
        lambda v: HttpRequestView(method="PUT", target_uri=v.target_uri, headers=v.headers),
        {},
        "signature.invalid",
    ),
    (
        "changed query",
        lambda v: HttpRequestView(method=v.method, target_uri=TARGET + "&all=1", headers=v.headers),
        {},
        "signature.invalid",
    ),
    (
        "changed nonce",
        lambda v: _with_input(v, _sig_input(v).replace(NONCE, encode_nonce(b"\x07" * 16))),
        {},
        "signature.invalid",
    ),
    ("other node", lambda v: v, {"expected_authority": "node-c.example"}, "signature.wrong_destination"),
    ("other port", lambda v: v, {"expected_authority": "node-b.example:8443"}, "signature.wrong_destination"),
]


@pytest.mark.parametrize(
    ("tamper", "options", "code"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_every_rejection_has_its_code(
    tamper: Callable[[HttpRequestView], HttpRequestView], options: dict[str, object], code: str
) -> None:
    with pytest.raises(SatchelError) as caught:
        _verify(tamper(_signed_request()), **options)
    assert caught.value.code == code
    assert code in SUGGESTED_HTTP_STATUS
    assert caught.value.field or code in {"signature.key_revoked"}
    assert caught.value.hint


def test_key_free_checks_then_an_asynchronous_key_lookup() -> None:
    view = _signed_request()
    unverified = http_signatures.check_request_signature(view, now=NOW, expected_authority="node-b.example")
    assert isinstance(unverified, http_signatures.UnverifiedSignature)
    assert unverified.key_id == KEY_ID
    verified = unverified.verify(_resolve(unverified.key_id))
    assert isinstance(verified, http_signatures.VerifiedSignature)
    assert verified == _verify(view)
    with pytest.raises(SignatureKeyUnknown):
        unverified.verify(None)


def test_destination_is_judged_only_for_authentic_requests() -> None:
    view = _signed_request()
    with pytest.raises(SignatureInvalid):
        _verify(view, expected_authority="node-c.example", resolve_key=lambda k: OTHER.public_key)
    for bad in ["node-b.example/x", "user@node-b.example", "node-b.example:", ""]:
        with pytest.raises(InvalidInput):
            _verify(view, expected_authority=bad)


def test_clock_boundaries_are_inclusive() -> None:
    view = _signed_request()
    _verify(view, now=NOW - 60)
    _verify(view, now=NOW + 360)
    _verify(view, expected_authority="NODE-B.example:443")


def test_query_must_be_covered_when_present_in_the_path_form() -> None:
    view = _signed_request(components=["@method", "@authority", "@path", "content-digest", "content-type"],
                           target="https://node-b.example/v1/transfers")  # fmt: skip
    _verify(view)
    moved = HttpRequestView(method="POST", target_uri="https://node-b.example/v1/transfers?all=1",
                            headers=view.headers)  # fmt: skip
    with pytest.raises(http_signatures.SignatureComponentsMissing):
        _verify(moved)


def test_body_presence_from_the_transport_overrides_headers() -> None:
    view = _signed_request([], method="GET")
    with pytest.raises(http_signatures.SignatureComponentsMissing):
        _verify(view, has_body=True)
    chunked = _replace(view, "Transfer-Encoding", "chunked")
    with pytest.raises(http_signatures.SignatureComponentsMissing):
        _verify(chunked)


def test_signer_refuses_what_verifiers_would_refuse() -> None:
    view = HttpRequestView(method="POST", target_uri=TARGET, headers=[("Content-Length", "3")])
    sign = {"key_id": KEY_ID, "sign": KEY.sign_raw, "created": NOW, "nonce": NONCE}
    with pytest.raises(http_signatures.SignatureComponentsMissing):
        sign_request(view, expires=NOW + 300, **sign)  # type: ignore[arg-type]
    with pytest.raises(http_signatures.SignatureLifetimeTooLong):
        sign_request(view, expires=NOW + 301, has_body=False, **sign)  # type: ignore[arg-type]
    with pytest.raises(http_signatures.SignatureMalformed):
        sign_request(view, expires=NOW + 300, has_body=False, **{**sign, "nonce": "short"})  # type: ignore[arg-type]
    with pytest.raises(structured_fields.StructuredFieldMalformed):
        sign_request(view, expires=NOW + 300, has_body=False, label="Sig", **sign)  # type: ignore[arg-type]
    signed = _signed_request()
    with pytest.raises(InvalidInput):
        sign_request(signed, expires=NOW + 300, **sign)  # type: ignore[arg-type]
    sign_request(signed, expires=NOW + 300, label="sig2", **sign)  # type: ignore[arg-type]


def test_views_validate_on_construction() -> None:
    bad_targets = [
        "/relative",
        "ftp://a/",
        TARGET + "#f",
        "https://a.example:/",
        "https://u@a.example/",
        "https://",
    ]
    for method, target in [("P OST", TARGET), *(("POST", t) for t in bad_targets)]:
        with pytest.raises(SatchelError):
            HttpRequestView(method=method, target_uri=target)
    with pytest.raises(SatchelError):
        HttpResponseView(status=42)
    with pytest.raises(SatchelError):
        HttpRequestView(method="GET", target_uri=TARGET, headers=[("a", 1)])  # type: ignore[list-item]
    with pytest.raises(SatchelError):
        signature_base(
            HttpRequestView(method="GET", target_uri=TARGET, headers=[("x", "caf\u00e9")]),
            ["x"],
            SignatureParams.build(created=1),
        )


def test_component_parsing() -> None:
    component = Component.parse('"signature";req;key="sig1"')
    assert component.identifier == '"signature";req;key="sig1"'
    assert Component.parse("content-type") == Component(name="content-type")
    assert component.identity == Component.parse('"signature";key="sig1";req').identity
    for bad in ['"unterminated', "Content-Type", "@signature-params", "", "1;a", "@method;req", '"a b"']:
        with pytest.raises(SatchelError):
            Component.parse(bad)


def test_replay_error_is_defined_for_the_node() -> None:
    assert SignatureReplayed("seen").code == "signature.replayed"
    assert issubclass(SignatureKeyRevoked, SignatureKeyUnknown)


def test_every_code_here_has_a_suggested_status() -> None:
    modules = {
        signature_errors.__name__,
        content_digest.__name__,
        structured_fields.__name__,
        http_sessions.__name__,
    }
    codes = {cls.code for cls in all_error_classes() if cls.__module__ in modules}
    assert codes | {"signature.invalid"} == set(SUGGESTED_HTTP_STATUS)


def test_nonce_encoding() -> None:
    assert len(encode_nonce(bytes(16))) == 22
    with pytest.raises(InvalidInput):
        encode_nonce(bytes(15))


# --- properties -----------------------------------------------------------------------------------------

_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@given(_header_text, _header_text, st.sampled_from(["Signature-Input", "Signature", "Content-Digest"]))
def test_arbitrary_signature_headers_raise_only_satchel_errors(
    sig_input: str, signature: str, other: str
) -> None:
    base = _signed_request()
    for view in (
        _with_input(base, sig_input),
        _replace(base, "Signature", signature),
        _replace(_with_input(base, "sig1=" + sig_input), other, signature),
    ):
        with contextlib.suppress(SatchelError):
            _verify(view)


@given(st.text(max_size=80), st.text(max_size=80))
def test_arbitrary_unicode_raises_only_satchel_errors(sig_input: str, signature: str) -> None:
    view = HttpRequestView(
        method="POST", target_uri=TARGET, headers=[("Signature-Input", sig_input), ("Signature", signature)]
    )
    with contextlib.suppress(SatchelError):
        _verify(view)


_segment = st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@%2F", max_size=8).map(
    lambda s: s.replace("%", "%25").replace("%252F", "%2F")
)


@given(
    method=st.from_regex(r"[A-Z][A-Z0-9!#$&'*+.^_`|~-]{0,9}", fullmatch=True),
    segments=st.lists(_segment, max_size=4),
    query=st.none() | st.text(alphabet="abc=&/?%20+", max_size=12).map(lambda q: q.replace("%", "%25")),
    body=st.none() | st.binary(max_size=300),
    content_type=st.none() | st.sampled_from(["application/json", "text/csv; charset=utf-8", ""]),
)
def test_sign_then_verify_round_trips(
    method: str, segments: list[str], query: str | None, body: bytes | None, content_type: str | None
) -> None:
    target = "https://node-b.example/" + "/".join(segments) + ("" if query is None else "?" + query)
    headers: list[tuple[str, str]] = []
    if body is not None:
        headers += [
            ("Content-Length", str(len(body))),
            ("Content-Digest", content_digest_header(body, "sha-512")),
        ]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    view = _signed_request(headers, method=method, target=target, has_body=body is not None)
    verified = _verify(view, has_body=body is not None)
    if body is not None:
        verify_body_digest(verified.content_digest, body)
    else:
        assert verified.content_digest is None


# --- spec vectors ---------------------------------------------------------------------------------------

SPEC = Path(__file__).resolve().parents[2] / "spec"
VECTORS = SPEC / "vectors" / "request-signing"


def _generator() -> ModuleType:
    return load_script(VECTORS / "generate.py", "request_signing_generate")


def test_vectors_are_what_the_generator_produces() -> None:
    assert (VECTORS / "vectors.json").read_text() == _generator().render()


def _vector_request(case: dict[str, Any]) -> HttpRequestView:
    return HttpRequestView(
        method=case["method"], target_uri=case["target_uri"], headers=[tuple(h) for h in case["headers"]]
    )


def test_vectors_verify_from_their_json_alone() -> None:
    vectors = json.loads((VECTORS / "vectors.json").read_text())
    public = IdentityPublicKey(bytes.fromhex(vectors["key"]["public_key_hex"]))
    assert public.key_id == vectors["key"]["key_id"]
    known = {public.key_id: public}
    options = {**vectors["verify"], "resolve_key": known.get}

    req = vectors["request"]
    request = _vector_request({**req, "headers": req["headers"] + req["added_headers"]})
    verified = verify_request(request, **options)
    assert (
        signature_base(request, verified.components, parse_signature(request.headers).params).decode()
        == (req["signature_base"])
    )
    verify_body_digest(verified.content_digest, req["body_utf8"].encode())

    res = vectors["response"]
    response = HttpResponseView(
        status=res["status"],
        headers=[tuple(h) for h in res["headers"] + res["added_headers"]],
        request=request,
    )
    response_options = {k: v for k, v in options.items() if k not in ("expected_authority", "require_components")}
    verified_response = verify_response(response, **response_options)
    verify_body_digest(verified_response.content_digest, res["body_utf8"].encode())

    # The worked example in the spec is these bytes, not a hand copy that could drift.
    text = (SPEC / "request-signing.md").read_text()
    for snippet in (req["signature_base"], res["signature_base"], *(v for _, v in req["added_headers"])):
        assert snippet in text


def test_invalid_vectors_fail_with_their_codes() -> None:
    vectors = json.loads((VECTORS / "vectors.json").read_text())
    public = IdentityPublicKey(bytes.fromhex(vectors["key"]["public_key_hex"]))
    seen: set[tuple[str, str]] = set()  # a stand-in for the node's replay store

    def present(case: dict[str, Any]) -> None:
        options = {**vectors["verify"], "resolve_key": {public.key_id: public}.get}
        options.update({k: case[k] for k in ("now", "expected_authority") if k in case})
        verified = verify_request(_vector_request(case), **options)
        if (verified.key_id, verified.nonce) in seen:
            raise SignatureReplayed("nonce already seen", field="Signature-Input")
        seen.add((verified.key_id, verified.nonce))
        verify_body_digest(
            verified.content_digest, case.get("body_utf8", vectors["request"]["body_utf8"]).encode()
        )

    for case in vectors["invalid"]:
        seen.clear()
        with pytest.raises(SatchelError) as caught:
            for _ in range(case.get("presentations", 1)):
                present(case)
        assert caught.value.code == case["expected_code"], case["name"]


def test_session_vectors_verify_from_their_json_alone() -> None:
    """§11 from the vectors only: X25519 and HKDF straight from `cryptography`, not through crypto/."""
    import hmac as hmac_module

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from crypto import SessionKey
    from protocol.http_sessions import parse_answer, parse_offer

    vectors = json.loads((VECTORS / "vectors.json").read_text())
    session = vectors["session"]
    client_secret = X25519PrivateKey.from_private_bytes(bytes.fromhex(session["client_share_secret_hex"]))
    server_secret = X25519PrivateKey.from_private_bytes(bytes.fromhex(session["server_share_secret_hex"]))
    client_share = parse_offer(session["offer_body_utf8"].encode())
    answer = parse_answer(session["answer_body_utf8"].encode())
    assert client_share == client_secret.public_key().public_bytes_raw()
    assert answer.share == server_secret.public_key().public_bytes_raw()
    shared = client_secret.exchange(X25519PublicKey.from_public_bytes(answer.share))
    assert shared == server_secret.exchange(X25519PublicKey.from_public_bytes(client_share))
    info = bytes.fromhex(session["hkdf_info_hex"])
    assert info == b"satchel/v1/http-session\x00" + "\x00".join(
        [answer.session_id, str(answer.expires), session["client_key_id"], session["server_key_id"],
         session["client_origin"]]
    ).encode()  # fmt: skip
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=client_share + answer.share, info=info).derive(
        shared
    )
    assert okm.hex() == session["to_server_key_hex"] + session["to_client_key_hex"]

    req, res = session["request"], session["response"]
    request = _vector_request({**req, "headers": req["headers"] + req["added_headers"]})
    to_server = SessionKey(answer.session_id, okm[:32])
    verified = verify_request(request, resolve_key={answer.session_id: to_server}.get, now=1_767_225_605,
                              expected_authority="node-b.example",
                              require_components=vectors["verify"]["require_components"])  # fmt: skip
    assert verified.signature == hmac_module.digest(okm[:32], req["signature_base"].encode(), "sha256")
    response = HttpResponseView(status=res["status"], headers=[tuple(h) for h in res["headers"] + res["added_headers"]],
                                request=request)  # fmt: skip
    verified_response = verify_response(
        response,
        resolve_key={answer.session_id: SessionKey(answer.session_id, okm[32:])}.get,
        now=1_767_225_605,
    )
    assert verified_response.signature == hmac_module.digest(
        okm[32:], res["signature_base"].encode(), "sha256"
    )
    # The response key does not verify requests: each direction has its own.
    with pytest.raises(SignatureInvalid):
        verify_request(request, resolve_key={answer.session_id: SessionKey(answer.session_id, okm[32:])}.get,
                       now=1_767_225_605, expected_authority="node-b.example")  # fmt: skip
