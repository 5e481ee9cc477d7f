"""spec/ is enough to build a compatible node: tests/spec/outsider_http.py, written from the spec's text and
vectors alone (it imports nothing of Satchel's), reproduces every vector of request signing, descriptors,
receipts and records requests, and then talks signed HTTP with a real node on loopback: it fetches and
verifies the node's descriptor, is pinned by the node's operator, pings with its node key and in a session,
verifies every signed answer, and sees a replayed, a stale and a mis-addressed request refused with the codes
request-signing.md §8 names."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

import outsider_http as o
from support import District, free_port

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"


def _load(topic: str) -> dict[str, Any]:
    return json.loads((VECTORS / topic / "vectors.json").read_text(encoding="utf-8"))


SIGNING = _load("request-signing")
DESCRIPTORS = _load("descriptor")
RECEIPTS = _load("receipts")
REQUESTS = _load("records-requests")


def _params(signature_input: str) -> tuple[int, int, str]:
    m = re.search(r';created=(\d+);expires=(\d+);nonce="([^"]+)"', signature_input)
    assert m is not None
    return int(m[1]), int(m[2]), m[3]


def _message(case: dict[str, Any], *, body: str | None = None) -> o.Message:
    """A vector's message; an invalid case without a body of its own carries the request's (§10)."""
    text = case.get("body_utf8", SIGNING["request"]["body_utf8"] if body is None else body)
    return o.Message(headers=[(k, v) for k, v in case["headers"]], body=text.encode("utf-8"), method=case.get("method"),
                     target_uri=case.get("target_uri"), status=case.get("status"))  # fmt: skip


def _signed(case: dict[str, Any]) -> o.Message:
    msg = _message(case)
    msg.headers += [(k, v) for k, v in case["added_headers"]]
    return msg


KEY = o.NodeKey.from_seed(bytes.fromhex(SIGNING["key"]["seed_hex"]))


# --- (a) every vector ---------------------------------------------------------------------------------------


def test_the_vector_key_and_key_ids() -> None:
    assert KEY.public.hex() == SIGNING["key"]["public_key_hex"]
    assert KEY.key_id == SIGNING["key"]["key_id"]
    unknown = bytes.fromhex(SIGNING["unknown_key"]["public_key_hex"])
    assert o.key_id("ed25519", unknown) == SIGNING["unknown_key"]["key_id"]


@pytest.mark.parametrize("kind", ["request", "response"])
def test_signature_base_and_added_fields_byte_for_byte(kind: str) -> None:
    case = SIGNING[kind]
    msg = _message(case, body=case["body_utf8"])
    request = _signed(SIGNING["request"]) if kind == "response" else None
    created, expires, nonce = _params(case["added_headers"][0][1])
    added = o.sign(msg, key=KEY, keyid=KEY.key_id, alg="ed25519", created=created, expires=expires, nonce=nonce,
                   request=request)  # fmt: skip
    assert added == [(k, v) for k, v in case["added_headers"]]
    require = SIGNING["verify"]["require_components"] if kind == "request" else ()
    checked = o.check_signature(msg, now=SIGNING["verify"]["now"], request=request, require=require)
    assert checked.base == case["signature_base"].encode("ascii")
    o.verify_checked(checked, Ed25519PublicKey.from_public_bytes(KEY.public))


def test_the_signed_response_verifies_against_the_request_as_sent() -> None:
    request, response = _signed(SIGNING["request"]), _signed(SIGNING["response"])
    key = Ed25519PublicKey.from_public_bytes(KEY.public)
    o.verify_response(response, request, now=SIGNING["verify"]["now"], key=key)
    other = _signed(SIGNING["request"])
    other.headers = [(k, v.replace("iHBV", "iHBW")) if k == "Signature" else (k, v) for k, v in other.headers]
    with pytest.raises(o.Refused) as refused:  # bound to that one request's signature (§4.2)
        o.verify_response(response, other, now=SIGNING["verify"]["now"], key=key)
    assert refused.value.code == "signature.invalid"


def _receiver(case: dict[str, Any]) -> o.Receiver:
    def resolve(keyid: str, origin: str | None) -> Ed25519PublicKey:
        if keyid == KEY.key_id:
            return Ed25519PublicKey.from_public_bytes(KEY.public)
        raise o.Refused("signature.key_unknown")

    verify = SIGNING["verify"]
    return o.Receiver(authority=case.get("expected_authority", verify["expected_authority"]), resolve=resolve,
                      skew=verify["max_skew"], lifetime=verify["max_lifetime"],
                      require=tuple(verify["require_components"]))  # fmt: skip


@pytest.mark.parametrize("case", SIGNING["invalid"], ids=lambda c: c["name"])
def test_invalid_request_vectors_are_refused_with_their_code(case: dict[str, Any]) -> None:
    receiver = _receiver(case)
    now = case.get("now", SIGNING["verify"]["now"])
    for _ in range(case.get("presentations", 1) - 1):
        receiver.verify_request(_message(case), now=now)
    with pytest.raises(o.Refused) as refused:
        receiver.verify_request(_message(case), now=now)
    assert refused.value.code == case["expected_code"]


def test_the_valid_request_passes_the_receiver_once() -> None:
    receiver = _receiver({})
    receiver.verify_request(_signed(SIGNING["request"]), now=SIGNING["verify"]["now"])
    with pytest.raises(o.Refused, match=r"signature\.replayed"):
        receiver.verify_request(_signed(SIGNING["request"]), now=SIGNING["verify"]["now"])


def test_session_vectors_keys_bases_and_signatures() -> None:
    s = SIGNING["session"]
    client = X25519PrivateKey.from_private_bytes(bytes.fromhex(s["client_share_secret_hex"]))
    server = X25519PrivateKey.from_private_bytes(bytes.fromhex(s["server_share_secret_hex"]))
    assert o.canonical_json({"share": o.b64url(o.x25519_public(client))}).decode() == s["offer_body_utf8"]
    session_id, server_share, expires = o.parse_session_answer(s["answer_body_utf8"].encode())
    assert server_share == o.x25519_public(server)
    context = o.session_context(session_id, expires, s["client_key_id"], s["server_key_id"], s["client_origin"])
    assert (o.SESSION_INFO + context).hex() == s["hkdf_info_hex"]
    derived = {}
    for own_is_client, secret in ((True, client), (False, server)):
        derived[own_is_client] = keys = o.derive_session(
            own_secret=secret, client_share=o.x25519_public(client), server_share=server_share,
            session_id=session_id, expires=expires, client_keyid=s["client_key_id"],
            server_keyid=s["server_key_id"], origin=s["client_origin"], own_is_client=own_is_client,
        )  # fmt: skip
        assert (keys.to_server.hex(), keys.to_client.hex()) == (s["to_server_key_hex"], s["to_client_key_hex"])
    keys = derived[True]
    request = _message(s["request"], body=s["request"]["body_utf8"])
    created, expires_at, nonce = _params(s["request"]["added_headers"][0][1])
    assert o.sign(request, key=keys.to_server, keyid=session_id, alg="hmac-sha256", created=created,
                  expires=expires_at, nonce=nonce) == [(k, v) for k, v in s["request"]["added_headers"]]  # fmt: skip
    receiver = _receiver({})
    receiver.sessions[session_id] = derived[False]
    checked = receiver.verify_request(request, now=SIGNING["verify"]["now"])
    assert checked.base == s["request"]["signature_base"].encode("ascii")
    with pytest.raises(o.Refused, match=r"signature\.replayed"):  # a sequence number is taken once
        receiver.verify_request(_signed(s["request"]), now=SIGNING["verify"]["now"])
    response = _message(s["response"], body=s["response"]["body_utf8"])
    created, expires_at, nonce = _params(s["response"]["added_headers"][0][1])
    added = o.sign(response, key=keys.to_client, keyid=session_id, alg="hmac-sha256", created=created,
                   expires=expires_at, nonce=nonce, request=request)  # fmt: skip
    assert added == [(k, v) for k, v in s["response"]["added_headers"]]
    checked = o.verify_response(response, request, now=SIGNING["verify"]["now"], key=keys.to_client)
    assert checked.base == s["response"]["signature_base"].encode("ascii")
    with pytest.raises(o.Refused, match=r"signature\.invalid"):  # a response is never a request (§11)
        o.verify_response(response, request, now=SIGNING["verify"]["now"], key=keys.to_server)


@pytest.mark.parametrize("case", DESCRIPTORS["cases"], ids=lambda c: c["name"])
def test_descriptor_vectors(case: dict[str, Any]) -> None:
    try:
        descriptor = o.verify_descriptor(case["document"].encode("ascii"))
    except o.Refused as refused:
        assert {"error": refused.code, "field": refused.field} == case["expect"]
    else:
        assert {"domain": descriptor.domain, "serves_its_domain": descriptor.serves_its_domain()} == case["expect"]


def _published(vectors: dict[str, Any]):
    return lambda domain: vectors["published"].get(domain, [])


@pytest.mark.parametrize("case", RECEIPTS["cases"], ids=lambda c: c["name"])
def test_receipt_vectors(case: dict[str, Any]) -> None:
    transfer, expect = RECEIPTS["transfer"], case["expect"]
    check = case.get("check")
    sealed = transfer["envelope_sha256"] if check is not None and check["to_domain"] == transfer["sender"] else None
    try:
        result = o.verify_receipt(case["document"].encode("ascii"), published=_published(RECEIPTS), check=check,
                                  envelope_sha256=sealed)  # fmt: skip
    except o.Refused as refused:
        assert {"error": refused.code, "field": refused.field} == expect
        return
    assert "error" not in expect, expect
    receipt = result["receipt"]
    assert result["signed_by"] == expect["signed_by"]
    assert result["payload"] == case["payload"].encode("utf-8")
    assert (o.canonical_json(receipt) == result["payload"]) is case["canonical"]
    read = {name: receipt[name] for name in expect["receipt"] if name in receipt}
    read["created_unix"] = o.parse_time(receipt["created"])
    digest = receipt["envelope_sha256"]
    read["envelope_sha256_hex"] = None if digest is None else o.unb64url(digest).hex()
    if receipt["counts"] is not None:
        counts = receipt["counts"]
        read["counts"] = {**counts, "complete": counts["students_imported"] == counts["students_total"]}
    assert read == expect["receipt"]


@pytest.mark.parametrize("case", REQUESTS["cases"], ids=lambda c: c["name"])
def test_records_request_vectors(case: dict[str, Any]) -> None:
    expect = case["expect"]
    try:
        result = o.verify_records_document(case["document"].encode("utf-8"), case["verify_as"],
                                           published=_published(REQUESTS))  # fmt: skip
    except o.Refused as refused:
        assert {"error": refused.code, "field": refused.field} == expect
        return
    assert "error" not in expect, expect
    parsed = result["parsed"]
    assert result["payload"] == case["payload"].encode("utf-8")
    assert {name: parsed[name] for name in expect["parsed"]} == expect["parsed"]
    assert (o.canonical_json(parsed) == result["payload"]) is expect["reencodes_to_payload"]


def test_vector_key_seeds_give_the_published_key_ids() -> None:
    for vectors in (RECEIPTS, REQUESTS):
        for key in vectors["keys"]:
            node_key = o.NodeKey.from_seed(bytes.fromhex(key["seed_hex"]))
            assert (node_key.public.hex(), node_key.key_id) == (key["public_key_hex"], key["key_id"])


# Differential: random requests signed by one implementation verify under the other, over the same base.
_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_requests = st.fixed_dictionaries({
    "method": st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    "host": st.sampled_from(["node-b.example", "NODE-B.example:8443", "127.0.0.1:20001", "[::1]:8440"]),
    "path": st.lists(st.from_regex(r"([A-Za-z0-9._~-]|%[0-9A-F]{2}){1,8}", fullmatch=True), max_size=3).map("/".join),
    "query": st.none() | st.from_regex(r"([A-Za-z0-9=&._~-]|%[0-9A-F]{2}){0,10}", fullmatch=True),
    "body": st.binary(max_size=40),
    "content_type": st.none() | _text,
    "origin": _text,
    "created": st.integers(0, 2**40),
    "lifetime": st.integers(1, 300),
    "nonce": st.from_regex(r"[A-Za-z0-9_-]{22,40}", fullmatch=True),
})  # fmt: skip


def _request_of(r: dict[str, Any]) -> o.Message:
    uri = f"https://{r['host']}/{r['path']}" + (f"?{r['query']}" if r["query"] is not None else "")
    headers = [("Satchel-Origin", r["origin"])] + ([("Content-Type", r["content_type"])] if r["content_type"] else [])
    return o.Message(headers=headers, body=r["body"], method=r["method"], target_uri=uri)


@given(_requests)
def test_what_the_outsider_signs_satchel_verifies(r: dict[str, Any]) -> None:
    from crypto import IdentityPublicKey
    from protocol.http_signatures import HttpRequestView, verify_request

    msg = _request_of(r)
    o.sign(msg, key=KEY, keyid=KEY.key_id, alg="ed25519", created=r["created"], expires=r["created"] + r["lifetime"],
           nonce=r["nonce"])  # fmt: skip
    view = HttpRequestView(method=msg.method or "", target_uri=msg.target_uri or "", headers=tuple(msg.headers))
    verified = verify_request(view, resolve_key=lambda keyid: IdentityPublicKey(KEY.public), now=r["created"],
                              expected_authority=None, require_components=["satchel-origin"],
                              has_body=bool(r["body"]))  # fmt: skip
    assert verified.nonce == r["nonce"]


@given(_requests)
def test_what_satchel_signs_the_outsider_verifies(r: dict[str, Any]) -> None:
    from crypto import IdentityKey
    from protocol.content_digest import content_digest_header
    from protocol.http_signatures import HttpRequestView, sign_request

    msg = _request_of(r)
    if r["body"]:
        msg.headers.append(("Content-Digest", content_digest_header(r["body"])))
    view = HttpRequestView(method=msg.method or "", target_uri=msg.target_uri or "", headers=tuple(msg.headers))
    components = ["@method", "@target-uri", *(["content-digest"] if r["body"] else []),
                  *(["content-type"] if r["content_type"] else []), "satchel-origin"]  # fmt: skip
    added = sign_request(view, key_id=KEY.key_id, sign=IdentityKey(bytes.fromhex(SIGNING["key"]["seed_hex"])).sign_raw,
                         created=r["created"], expires=r["created"] + r["lifetime"], nonce=r["nonce"],
                         components=components, has_body=bool(r["body"]))  # fmt: skip
    msg.headers += added
    checked = o.check_signature(msg, now=r["created"])
    o.verify_checked(checked, Ed25519PublicKey.from_public_bytes(KEY.public))
    o.check_digest(msg)


@given(st.binary(max_size=300) | st.sampled_from([c["document"].encode() for c in RECEIPTS["cases"][:5]]))
def test_the_outsiders_document_verifiers_refuse_bad_bytes_with_codes_only(data: bytes) -> None:
    request = "satchel/v1/records-request"
    for verify in (o.verify_descriptor, lambda d: o.verify_receipt(d, published=_published(RECEIPTS)),
                   lambda d: o.verify_records_document(d, request, published=_published(REQUESTS))):  # fmt: skip
        with contextlib.suppress(o.Refused):
            verify(data)


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120), st.binary(max_size=8))
def test_the_outsiders_signature_check_refuses_bad_fields_with_codes_only(signature_input: str, sig: bytes) -> None:
    msg = _message(SIGNING["request"])
    signature = "sig1=:" + base64.b64encode(sig).decode() + ":"
    msg.headers += [("Signature-Input", signature_input), ("Signature", signature)]
    with pytest.raises(o.Refused):
        _receiver({}).verify_request(msg, now=SIGNING["verify"]["now"])


# --- (b) a real node on loopback ----------------------------------------------------------------------------

OUTSIDER_DOMAIN = "outsider.example.net"



# The nodes the outside node's operator pinned: key id -> Ed25519 public key (the outside node's own key chain).
PINNED_BY_OUTSIDER: dict[str, bytes] = {}


def _answer_ping(outsider: o.Outsider, receiver: o.Receiver, request: web.Request, body: bytes) -> web.Response:
    """The outside node as a server: verify a signed ping (§7) and sign the answer (§4.2, §6)."""
    # The target URI as §4.1 says a receiver rebuilds it: its own base_url's scheme, Host, the request target.
    scheme = outsider.origin.split("://", 1)[0]
    received = o.Message(headers=list(request.headers.items()), body=body, method=request.method,
                         target_uri=f"{scheme}://{request.host}{request.raw_path}")  # fmt: skip
    try:
        checked = receiver.verify_request(received, now=int(time.time()))
    except o.Refused as refused:
        status, answer = 401, {"error": {"code": refused.code, "message": str(refused)}}
    else:
        status, answer = 200, {"pong": OUTSIDER_DOMAIN, "caller": "b.example.org", "caller_key": checked.keyid,
                               "trust": "pinned"}  # fmt: skip
    payload = o.canonical_json(answer)
    response = o.Message(headers=[("Content-Type", "application/json")], body=payload, status=status)
    now = int(time.time())
    o.sign(response, key=outsider.key, keyid=outsider.key.key_id, alg="ed25519", created=now, expires=now + 60,
           nonce=o.new_nonce(), request=received)  # fmt: skip
    return web.Response(status=status, body=payload, headers=response.headers)


@pytest.fixture
async def outsider() -> AsyncIterator[o.Outsider]:
    """The outside node: its own key, its descriptor served at its base URL (where the node fetches it), and a
    ping endpoint that verifies a node's signed request with the keys its operator pinned."""
    key = o.NodeKey.generate()
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    issued = o.format_time(int(time.time()))
    document = o.make_descriptor(key, domain=OUTSIDER_DOMAIN, base_url=origin, name="Outsider District",
                                 issued_at=issued)  # fmt: skip
    outside = o.Outsider(key=key, origin=origin)

    def resolve(keyid: str, origin: str | None) -> Ed25519PublicKey:
        if keyid not in PINNED_BY_OUTSIDER:
            raise o.Refused("signature.key_unknown")
        return Ed25519PublicKey.from_public_bytes(PINNED_BY_OUTSIDER[keyid])

    receiver = o.Receiver(authority=o.authority_of(origin), resolve=resolve)

    async def well_known(request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/satchel-descriptor+json")

    async def ping(request: web.Request) -> web.Response:
        return _answer_ping(outside, receiver, request, await request.read())

    app = web.Application()
    app.router.add_get("/.well-known/satchel", well_known)
    app.router.add_post("/satchel/v1/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    PINNED_BY_OUTSIDER.clear()
    try:
        yield outside
    finally:
        await runner.cleanup()


async def _descriptor(http: aiohttp.ClientSession, district: District) -> o.Descriptor:
    async with http.get(district.url + "/.well-known/satchel") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "application/satchel-descriptor+json"
        return o.verify_descriptor(await answer.read(), domain=district.domain)


async def _pin(district: District, outsider: o.Outsider) -> str:
    """What the node's operator does for an outside node (request-signing.md §7.1 step 1): `satchel peers add`."""
    result = await asyncio.to_thread(district.cli, "peers", "add", outsider.origin, "--yes", "--as", "coord")
    return result.output


async def _ping(http: aiohttp.ClientSession, outsider: o.Outsider, node: o.Descriptor, **build: Any) -> o.Exchange:
    return await outsider.send(http, outsider.build("POST", node.base_url + "/satchel/v1/ping", **build))


async def test_the_outsider_verifies_the_nodes_descriptor(district: District) -> None:
    async with aiohttp.ClientSession() as http:
        node = await _descriptor(http, district)
    assert node.base_url == district.url
    assert len(node.identity_keys) == 1
    assert not node.serves_its_domain()  # plain http on loopback: trusted by pinning, not by where it is served


async def test_pinned_outsider_pings_and_verifies_the_signed_answer(district: District, outsider: o.Outsider) -> None:
    async with aiohttp.ClientSession() as http:
        node = await _descriptor(http, district)
        output = await _pin(district, outsider)
        # The fingerprint the node's operator reads back by phone is the one the outsider computes (descriptor.md).
        assert o.fingerprint("ed25519", outsider.key.public) in output
        exchange = await _ping(http, outsider, node)
        assert exchange.response.status == 200, exchange.response.body
        checked = outsider.verify(exchange, node)
        assert checked.keyid in node.identity_keys
        assert exchange.json() == {"pong": district.domain, "caller": OUTSIDER_DOMAIN,
                                   "caller_key": outsider.key.key_id, "trust": "pinned"}  # fmt: skip


async def test_the_node_pings_the_outsider_and_verifies_its_signed_answer(
    district: District, outsider: o.Outsider
) -> None:
    """The other direction: the outsider verifies the node's signed request and signs its answer, which the
    node (`satchel peers ping`) verifies."""
    async with aiohttp.ClientSession() as http:
        node = await _descriptor(http, district)
    await _pin(district, outsider)
    result = await asyncio.to_thread(district.cli, "peers", "ping", OUTSIDER_DOMAIN, ok=False)
    assert result.exit_code != 0  # the outsider has not pinned the node yet: it refuses, with a signed answer
    assert "signature.key_unknown" in result.output, result.output
    PINNED_BY_OUTSIDER.update(node.identity_keys)
    result = await asyncio.to_thread(district.cli, "peers", "ping", OUTSIDER_DOMAIN)
    assert f"{OUTSIDER_DOMAIN} answered, signed; it saw us as b.example.org (trust: pinned)" in result.output


async def test_an_outsider_known_only_by_its_url_is_looked_up_in_development_mode(
    district: District, outsider: o.Outsider
) -> None:
    """§7.1 step 3: the node fetches the unknown keyid's descriptor from Satchel-Origin; on loopback in
    development mode that proves the domain (descriptor.md step 8)."""
    async with aiohttp.ClientSession() as http:
        node = await _descriptor(http, district)
        exchange = await _ping(http, outsider, node)
        assert exchange.response.status == 200, exchange.response.body
        outsider.verify(exchange, node)
        assert exchange.json()["trust"] == "web"


async def test_a_session_ping_is_signed_both_ways_with_hmac(district: District, outsider: o.Outsider) -> None:
    async with aiohttp.ClientSession() as http:
        node = await _descriptor(http, district)
        await _pin(district, outsider)
        session, opened = await outsider.open_session(http, node)
        now = int(time.time())
        sent, answered = (o.check_signature(m, now=now, request=opened.request).created
                          for m in (opened.request, opened.response))  # fmt: skip
        assert sent <= session.expires - 900 <= answered  # the server's clock when it opened the session
        for _ in range(2):
            exchange = await _ping(http, outsider, node, session=session)
            assert exchange.response.status == 200, exchange.response.body
            checked = outsider.verify(exchange, node)
            assert (checked.keyid, checked.alg) == (session.session_id, "hmac-sha256")
            assert exchange.json()["caller"] == OUTSIDER_DOMAIN
        # The same request again: its sequence number was taken (§11), refused in an answer the client verifies.
        again = await outsider.send(http, exchange.request)
        assert (again.response.status, again.error_code) == (401, "signature.replayed")
        # Refused before the session is established, so signed with the node key (§11, Responses).
        assert outsider.verify(again, node).keyid in node.identity_keys
        # A session the node does not hold.
        stranger = o.SessionKeys("hs-" + "A" * 22, session.expires, session.to_server, session.to_client)
        unknown = await _ping(http, outsider, node, session=stranger)
        assert (unknown.response.status, unknown.error_code) == (401, "signature.session_unknown")
        assert outsider.verify(unknown, node).keyid in node.identity_keys
        # Sequence number 0 is no sequence number.
        zero = await _ping(http, outsider, node, session=session, nonce="0" * 22)
        assert (zero.response.status, zero.error_code) == (400, "signature.malformed")


async def test_replayed_stale_and_misaddressed_requests_are_refused(district: District, outsider: o.Outsider) -> None:
    async with aiohttp.ClientSession() as http:
        node = await _descriptor(http, district)
        await _pin(district, outsider)
        first = await _ping(http, outsider, node)
        assert first.response.status == 200, first.response.body
        replayed = await outsider.send(http, first.request)  # the same bytes again: (keyid, nonce) seen
        stale = await _ping(http, outsider, node, created=int(time.time()) - 1000, lifetime=200)
        ahead = await _ping(http, outsider, node, created=int(time.time()) + 1000)
        # Signed for another node (its authority in @target-uri and Host), delivered to this one.
        elsewhere = "127.0.0.1:1"
        misaddressed = await outsider.send(http, outsider.build("POST", f"http://{elsewhere}/satchel/v1/ping"),
                                           connect_to=node.base_url, host=elsewhere)  # fmt: skip
        refusals = {"replayed": replayed, "stale": stale, "ahead": ahead, "misaddressed": misaddressed}
        assert {name: (e.response.status, e.error_code) for name, e in refusals.items()} == {
            "replayed": (401, "signature.replayed"),
            "stale": (401, "signature.expired"),
            "ahead": (401, "signature.not_yet_valid"),
            "misaddressed": (421, "signature.wrong_destination"),
        }
        for exchange in refusals.values():  # refusals are signed too, bound to the request refused
            outsider.verify(exchange, node)


def _variant(outsider: o.Outsider, node: o.Descriptor, components: list[Any], params: Any, *,
             digest: str | None = None, more: tuple[tuple[str, str], ...] = ()) -> o.Message:  # fmt: skip
    body = b'{"hello":"node"}'
    headers = [("Satchel-Origin", outsider.origin), ("Content-Type", "application/json"),
               ("Content-Digest", digest or o.content_digest(body)), *more]  # fmt: skip
    msg = o.Message(headers=headers, body=body, method="POST", target_uri=node.base_url + "/satchel/v1/ping")
    items = [o.Item(c) if isinstance(c, str) else c for c in components]
    now = int(time.time())
    o.sign_as(msg, outsider.key, items, params(now, outsider.key.key_id))
    return msg


def _std(now: int, keyid: str) -> tuple[tuple[str, Any], ...]:
    return (("created", now), ("expires", now + 100), ("nonce", o.new_nonce()), ("alg", "ed25519"), ("keyid", keyid))


_BODY = ["content-digest", "content-type", "satchel-origin"]
SHA512 = "sha-512=:" + base64.b64encode(hashlib.sha512(b'{"hello":"node"}').digest()).decode() + ":"


VARIANTS: dict[str, tuple[Any, ...]] = {
    # name: (components, params, digest, more header lines, expected code or None)
    "parameters in another order, no alg": (
        ["@method", "@target-uri", *_BODY],
        lambda now, k: (("keyid", k), ("nonce", o.new_nonce()), ("expires", now + 300), ("created", now)),
        None, (), None),
    "@authority and @path for @target-uri, other order": (
        ["satchel-origin", "content-type", "@path", "content-digest", "@authority", "@method", "@scheme"],
        _std, None, (), None),
    "a tag parameter and a 128-character nonce": (
        ["@method", "@target-uri", *_BODY],
        lambda now, k: (("created", now), ("expires", now + 1), ("nonce", "n" * 128), ("keyid", k), ("tag", "x")),
        None, (), None),
    "sha-512 beside sha-256": (
        ["@method", "@target-uri", *_BODY], _std, SHA512 + ", " + o.content_digest(b'{"hello":"node"}'), (), None),
    "another label beside sig1": (
        ["@method", "@target-uri", *_BODY], _std, None,
        (("Signature-Input", 'theirs=("@method");keyid="x"'), ("Signature", "theirs=:AAAA:")), None),
    "content-digest covered only as ;sf": (
        ["@method", "@target-uri", o.Item("content-digest", (("sf", True),)), "content-type", "satchel-origin"],
        _std, None, (), "signature.components_missing"),
}  # fmt: skip


async def test_every_valid_serialisation_is_accepted(district: District, outsider: o.Outsider) -> None:
    """§3-§4: a receiver accepts what the profile allows beyond Satchel's own way of writing it."""
    async with aiohttp.ClientSession() as http:
        node = await _descriptor(http, district)
        await _pin(district, outsider)
        seen = {}
        for name, (components, params, digest, more, _) in VARIANTS.items():
            exchange = await outsider.send(http, _variant(outsider, node, components, params, digest=digest, more=more))
            outsider.verify(exchange, node)
            seen[name] = exchange.error_code
    assert seen == {name: variant[4] for name, variant in VARIANTS.items()}
