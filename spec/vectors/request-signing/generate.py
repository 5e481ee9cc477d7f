"""Generate spec/vectors/request-signing/vectors.json from the code (never edit the JSON by hand).

    .venv/bin/python spec/vectors/request-signing/generate.py          # rewrite vectors.json
    .venv/bin/python spec/vectors/request-signing/generate.py --check  # exit 1 if it is stale

Everything random is fixed here: the key seed, the times and the nonces.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path
from typing import Any

from crypto import IdentityKey, SessionShare
from protocol.content_digest import content_digest_header
from protocol.http_sessions import (
    SessionAnswer,
    answer_body,
    new_session_id,
    offer_body,
    sequence_nonce,
    session_context,
)
from protocol.http_signatures import (
    Component,
    HttpRequestView,
    HttpResponseView,
    SignatureParams,
    encode_nonce,
    parse_signature,
    sign_request,
    sign_response,
    signature_base,
    signature_params_value,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # spec/vectors, for vector_kit
import vector_kit

OUT = Path(__file__).with_name("vectors.json")
SEED = hashlib.sha256(b"satchel/v1/vectors/request-signing/node-a").digest()
OTHER_SEED = hashlib.sha256(b"satchel/v1/vectors/request-signing/node-z").digest()
CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z
NONCE = encode_nonce(hashlib.sha256(b"satchel/v1/vectors/request-signing/nonce-1").digest()[:16])
RESPONSE_NONCE = encode_nonce(hashlib.sha256(b"satchel/v1/vectors/request-signing/nonce-2").digest()[:16])
TARGET = "https://node-b.example/v1/transfers?since=3"
BODY = b'{"transfer":"t-0001","records":1}'
RESPONSE_BODY = b'{"status":"accepted"}'
SERVER_SEED = hashlib.sha256(b"satchel/v1/vectors/request-signing/node-b").digest()
CLIENT_SHARE_SECRET = hashlib.sha256(b"satchel/v1/vectors/request-signing/session-client").digest()
SERVER_SHARE_SECRET = hashlib.sha256(b"satchel/v1/vectors/request-signing/session-server").digest()
SESSION_ID = new_session_id(hashlib.sha256(b"satchel/v1/vectors/request-signing/session-id").digest()[:16])
CLIENT_ORIGIN = "https://node-a.example"
# §4.1: what a Satchel signer covers, in its order; "satchel-origin" is required by every node (item 5).
COMPONENTS = ["@method", "@target-uri", "content-digest", "content-type", "satchel-origin"]
REQUIRED = ["satchel-origin"]


def _pairs(headers: Any) -> list[list[str]]:
    return [[name, value] for name, value in headers]


def _hand_signed(
    view: HttpRequestView, key: IdentityKey, components: list[str], **params: Any
) -> HttpRequestView:
    """Sign outside the profile's own guards, for the invalid cases sign_request refuses to produce."""
    covered = [Component.parse(c) for c in components]
    signature_params = SignatureParams.build(**params)
    signature = key.sign_raw(signature_base(view, covered, signature_params))
    headers = [
        *view.headers,
        ("Signature-Input", "sig1=" + signature_params_value(covered, signature_params)),
        ("Signature", f"sig1=:{base64.b64encode(signature).decode()}:"),
    ]
    return HttpRequestView(method=view.method, target_uri=view.target_uri, headers=headers)


def build() -> dict[str, Any]:
    key, other = IdentityKey(SEED), IdentityKey(OTHER_SEED)
    key_id = key.public_key.key_id
    expires = CREATED + 300
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(BODY))),
        ("Content-Digest", content_digest_header(BODY)),
        ("Satchel-Origin", CLIENT_ORIGIN),
    ]
    unsigned = HttpRequestView(method="POST", target_uri=TARGET, headers=headers)
    options = {"created": CREATED, "expires": expires, "nonce": NONCE}
    components = COMPONENTS
    added = sign_request(unsigned, key_id=key_id, sign=key.sign_raw, components=components, **options)
    request = HttpRequestView(method="POST", target_uri=TARGET, headers=[*headers, *added])
    base = signature_base(request, components, _params(added))

    response_headers = [
        ("Content-Type", "application/json"),
        ("Content-Digest", content_digest_header(RESPONSE_BODY)),
    ]
    response = HttpResponseView(status=202, headers=response_headers, request=request)
    response_added = sign_response(
        response,
        key_id=key_id,
        sign=key.sign_raw,
        created=CREATED + 1,
        expires=CREATED + 61,
        nonce=RESPONSE_NONCE,
    )
    response_components = ["@status", "content-digest", "content-type", '"signature";req;key="sig1"']
    response_base = signature_base(response, response_components, _params(response_added))

    params = {"created": CREATED, "expires": expires, "nonce": NONCE, "alg": "ed25519", "keyid": key_id}
    invalid = [
        _case("no signature", unsigned, "signature.missing"),
        _case("nonce too short", _hand_signed(unsigned, key, components, **{**params, "nonce": "abc"}),
              "signature.malformed"),
        _case("digest not covered", _hand_signed(unsigned, key, [c for c in components if c != "content-digest"],
              **params), "signature.components_missing"),
        _case("origin not covered", _hand_signed(unsigned, key, [c for c in components if c != "satchel-origin"],
              **params), "signature.components_missing"),
        _case("other algorithm", _hand_signed(unsigned, key, components, **{**params, "alg": "rsa-pss-sha512"}),
              "signature.algorithm_unsupported"),
        _case("signed an hour ahead", request, "signature.not_yet_valid", now=CREATED - 3600),
        _case("expired", request, "signature.expired", now=expires + 61),
        _case("valid for an hour", _hand_signed(unsigned, key, components, **{**params, "expires": CREATED + 3600}),
              "signature.lifetime_too_long"),
        _case("unknown key", _hand_signed(unsigned, other, components, **{**params,
              "keyid": other.public_key.key_id}), "signature.key_unknown"),
        _case("content type changed", _swap(request, "Content-Type", "text/csv"), "signature.invalid"),
        _case("sent to another node", request, "signature.wrong_destination", expected_authority="node-c.example"),
        _case("body changed", request, "digest.mismatch", body=BODY.replace(b"0001", b"0002")),
        {**_case("replayed", request, "signature.replayed"), "presentations": 2,
         "note": "the second presentation is refused by the node's replay store, not by verify_request"},
    ]  # fmt: skip
    return {
        "description": "Satchel request signing (RFC 9421 + RFC 9530), see spec/request-signing.md",
        "generator": "spec/vectors/request-signing/generate.py",
        "key": {"seed_hex": SEED.hex(), "public_key_hex": key.public_key.raw.hex(), "key_id": key_id},
        "unknown_key": {"public_key_hex": other.public_key.raw.hex(), "key_id": other.public_key.key_id},
        "verify": {
            "now": CREATED + 5,
            "max_skew": 60,
            "max_lifetime": 300,
            "expected_authority": "node-b.example",
            "require_components": REQUIRED,
        },
        "request": {
            "method": "POST",
            "target_uri": TARGET,
            "headers": _pairs(headers),
            "body_utf8": BODY.decode(),
            "signature_base": base.decode(),
            "added_headers": _pairs(added),
        },
        "response": {
            "status": 202,
            "headers": _pairs(response_headers),
            "body_utf8": RESPONSE_BODY.decode(),
            "signature_base": response_base.decode(),
            "added_headers": _pairs(response_added),
        },
        "invalid": invalid,
        "session": _session(key, IdentityKey(SERVER_SEED)),
    }


def _session(client: IdentityKey, server: IdentityKey) -> dict[str, Any]:
    """§11: the handshake's bodies, the derived keys, and a request and response signed in the session."""
    client_share = SessionShare.from_secret_bytes(CLIENT_SHARE_SECRET)
    server_share = SessionShare.from_secret_bytes(SERVER_SHARE_SECRET)
    expires = CREATED + 900
    context = session_context(
        session_id=SESSION_ID, expires=expires, client_key_id=client.public_key.key_id,
        server_key_id=server.public_key.key_id, client_origin=CLIENT_ORIGIN,
    )  # fmt: skip
    shares = {"client_share": client_share.public, "server_share": server_share.public}
    keys = client_share.agree(server_share.public, session_id=SESSION_ID, context=context, **shares)
    assert keys.to_server.sign_raw(b"x") == server_share.agree(
        client_share.public, session_id=SESSION_ID, context=context, **shares
    ).to_server.sign_raw(b"x")
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Digest", content_digest_header(BODY)),
        ("Satchel-Origin", CLIENT_ORIGIN),
    ]
    unsigned = HttpRequestView(method="POST", target_uri=TARGET, headers=headers)
    added = sign_request(
        unsigned, key_id=SESSION_ID, sign=keys.to_server.sign_raw, created=CREATED, expires=CREATED + 120,
        nonce=sequence_nonce(1), components=COMPONENTS,
    )  # fmt: skip
    request = HttpRequestView(method="POST", target_uri=TARGET, headers=[*headers, *added])
    response_headers = [
        ("Content-Type", "application/json"),
        ("Content-Digest", content_digest_header(RESPONSE_BODY)),
    ]
    response = HttpResponseView(status=202, headers=response_headers, request=request)
    response_added = sign_response(
        response, key_id=SESSION_ID, sign=keys.to_client.sign_raw, created=CREATED + 1, expires=CREATED + 61,
        nonce=RESPONSE_NONCE,
    )  # fmt: skip
    return {
        "client_key_id": client.public_key.key_id,
        "server_key_id": server.public_key.key_id,
        "client_origin": CLIENT_ORIGIN,
        "client_share_secret_hex": CLIENT_SHARE_SECRET.hex(),
        "server_share_secret_hex": SERVER_SHARE_SECRET.hex(),
        "offer_body_utf8": offer_body(client_share.public).decode(),
        "answer_body_utf8": answer_body(SessionAnswer(SESSION_ID, server_share.public, expires)).decode(),
        "hkdf_info_hex": (b"satchel/v1/http-session\x00" + context).hex(),
        # The generator may look inside: an implementer needs these bytes to find a mistake.
        "to_server_key_hex": keys.to_server._secret.hex(),
        "to_client_key_hex": keys.to_client._secret.hex(),
        "request": {
            "method": "POST", "target_uri": TARGET, "headers": _pairs(headers), "body_utf8": BODY.decode(),
            "signature_base": signature_base(request, [c.name for c in parse_signature(added).components],
                                             _params(added)).decode(),
            "added_headers": _pairs(added),
        },
        "response": {
            "status": 202, "headers": _pairs(response_headers), "body_utf8": RESPONSE_BODY.decode(),
            "signature_base": signature_base(response, parse_signature(response_added).components,
                                             _params(response_added)).decode(),
            "added_headers": _pairs(response_added),
        },
    }  # fmt: skip


def _params(added: list[tuple[str, str]]) -> SignatureParams:
    return parse_signature(added).params


def _swap(view: HttpRequestView, name: str, value: str) -> HttpRequestView:
    headers = [(k, value if k == name else v) for k, v in view.headers]
    return HttpRequestView(method=view.method, target_uri=view.target_uri, headers=headers)


def _case(name: str, view: HttpRequestView, code: str, **overrides: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "name": name,
        "method": view.method,
        "target_uri": view.target_uri,
        "headers": _pairs(view.headers),
    }
    if "body" in overrides:
        case["body_utf8"] = overrides.pop("body").decode()
    return {**case, **overrides, "expected_code": code}


def render() -> str:
    return vector_kit.render(build())


def main(argv: list[str]) -> int:
    return vector_kit.write_or_check(OUT, render(), argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
