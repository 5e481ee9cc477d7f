"""Interoperation with an independent RFC 9421 implementation: PyPI ``http-message-signatures`` (pyauth).

That library signs and verifies duck-typed messages (``method``/``url``/``headers`` for requests,
``status_code``/``headers``/``request`` for responses), so no HTTP client library is needed here. Its
verifier reads the wall clock, so these tests sign with the current time.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from dataclasses import dataclass

import http_message_signatures as hms
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import algorithms
from http_message_signatures.structures import CaseInsensitiveDict

from crypto import IdentityKey, IdentityPublicKey
from protocol.content_digest import content_digest_header, verify_body_digest
from protocol.errors import SignatureInvalid
from protocol.http_signatures import (
    HttpRequestView,
    HttpResponseView,
    encode_nonce,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)

SEED = hashlib.sha256(b"satchel interop node").digest()
KEY = IdentityKey(SEED)
KEY_ID = KEY.public_key.key_id
_PRIVATE = Ed25519PrivateKey.from_private_bytes(SEED)
RESOLVER = hms.MappingKeyResolver(
    public_keys={KEY_ID: _PRIVATE.public_key()}, private_keys={KEY_ID: _PRIVATE}
)
TARGET = "https://node-b.example/v1/transfers?since=3"
BODY = b'{"records": ["r-1", "r-2"]}'


@dataclass
class LibRequest:
    method: str
    url: str
    headers: CaseInsensitiveDict


@dataclass
class LibResponse:
    status_code: int
    headers: CaseInsensitiveDict
    request: LibRequest


def _resolve(key_id: str) -> IdentityPublicKey | None:
    return KEY.public_key if key_id == KEY_ID else None


def _lib_times(now: int) -> dict[str, datetime.datetime]:
    utc = datetime.UTC
    return {
        "created": datetime.datetime.fromtimestamp(now, utc),
        "expires": datetime.datetime.fromtimestamp(now + 300, utc),
    }


def _signer() -> hms.HTTPMessageSigner:
    return hms.HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=RESOLVER)


def _verifier() -> hms.HTTPMessageVerifier:
    return hms.HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=RESOLVER)


def _our_request(now: int) -> tuple[HttpRequestView, LibRequest]:
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(BODY))),
        ("Content-Digest", content_digest_header(BODY)),
    ]
    view = HttpRequestView(method="POST", target_uri=TARGET, headers=headers)
    added = sign_request(
        view,
        key_id=KEY_ID,
        sign=KEY.sign_raw,
        created=now,
        expires=now + 300,
        nonce=encode_nonce(b"\x05" * 16),
    )
    signed = HttpRequestView(method="POST", target_uri=TARGET, headers=[*headers, *added])
    return signed, LibRequest("POST", TARGET, CaseInsensitiveDict(signed.headers))


def test_their_signed_request_verifies_with_ours() -> None:
    now = int(time.time())
    message = LibRequest(
        "POST",
        TARGET,
        CaseInsensitiveDict({"Content-Type": "application/json", "Content-Length": str(len(BODY))}),
    )
    _signer().sign(
        message, key_id=KEY_ID, label="sig1", nonce=encode_nonce(b"\x01" * 16), body=BODY,
        covered_component_ids=("@method", "@target-uri", "content-type"), **_lib_times(now),
    )  # fmt: skip
    view = HttpRequestView(
        method=message.method, target_uri=message.url, headers=list(message.headers.items())
    )
    verified = verify_request(view, resolve_key=_resolve, now=now, expected_authority="node-b.example")
    assert verified.key_id == KEY_ID
    verify_body_digest(verified.content_digest, BODY)

    tampered = HttpRequestView(method="PUT", target_uri=message.url, headers=view.headers)
    with pytest.raises(SignatureInvalid):
        verify_request(tampered, resolve_key=_resolve, now=now, expected_authority="node-b.example")


def test_our_signed_request_verifies_with_theirs() -> None:
    _, message = _our_request(int(time.time()))
    [result] = _verifier().verify(
        message, body=BODY, require_components=("@method", "@target-uri", "content-digest", "content-type")
    )
    assert result.parameters["keyid"] == KEY_ID
    assert result.body == BODY
    message.headers["Content-Type"] = "text/plain"
    with pytest.raises(hms.InvalidSignature):
        _verifier().verify(message)


def test_their_signed_response_verifies_with_ours() -> None:
    now = int(time.time())
    request_view, request = _our_request(now)
    response_body = b'{"accepted": true}'
    headers = {
        "Content-Type": "application/json",
        "Content-Digest": content_digest_header(response_body, "sha-512"),
    }
    message = LibResponse(202, CaseInsensitiveDict(headers), request)
    _signer().sign(
        message, key_id=KEY_ID, label="sig1", nonce=encode_nonce(b"\x02" * 16), use_existing_digest=True,
        covered_component_ids=("@status", "content-digest", "content-type", '"signature";req;key="sig1"'),
        **_lib_times(now),
    )  # fmt: skip
    view = HttpResponseView(status=202, headers=list(message.headers.items()), request=request_view)
    verified = verify_response(view, resolve_key=_resolve, now=now)
    verify_body_digest(verified.content_digest, response_body)


def test_our_signed_response_verifies_with_theirs() -> None:
    now = int(time.time())
    request_view, request = _our_request(now)
    response_body = b'{"accepted": true}'
    headers = [("Content-Type", "application/json"), ("Content-Digest", content_digest_header(response_body))]
    view = HttpResponseView(status=202, headers=headers, request=request_view)
    added = sign_response(
        view,
        key_id=KEY_ID,
        sign=KEY.sign_raw,
        created=now,
        expires=now + 60,
        nonce=encode_nonce(b"\x03" * 16),
    )
    message = LibResponse(202, CaseInsensitiveDict([*headers, *added]), request)
    [result] = _verifier().verify(
        message, body=response_body, require_components=("@status", '"signature";req;key="sig1"')
    )
    assert (
        result.covered_components['"signature";req;key="sig1"']
        == request.headers["Signature"][len("sig1=") :]
    )
