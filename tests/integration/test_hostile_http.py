"""Requests anyone on the internet, or a peer holding a trusted key, can send that once reached a served node's
catch-all: each is now refused with a coded client error (or answered), and the node's log holds one line for
it, never a traceback.

Found by fuzzing a served node: a Host that is no host beside a Signature field (no key needed), a JSON
number of thousands of digits (Python's int() limit), the same number served as the descriptor of an unknown
key's origin (no key needed), a content-coded body, a peer that goes mid-body, and HTTP that is not HTTP.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from crypto import IdentityKey
from node.home import open_node
from node.http_errors import status_for
from node.signed_http import signed_request_headers

from support import District, free_port, make_district

PING = "/satchel/v1/ping"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A serving, with B pinned; B's key is all the test needs of B."""
    root = tmp_path_factory.mktemp("hostile")
    a, b = make_district(root, "a.example.org"), make_district(root, "b.example.org")
    a.start()
    b.start()
    try:
        a.cli("peers", "add", b.url, "--yes", "--as", "coord")
        b.cli("peers", "add", a.url, "--yes", "--as", "coord")
        b.stop()
        b_node = open_node(b.home, b.env)
        try:
            yield {"a": a, "b": b_node}
        finally:
            b_node.close()
    finally:
        a.stop()


def _exchange(district: District, raw: bytes, *, close_after_send: bool = False) -> tuple[int, dict, bytes]:
    # A HEAD's answer has its GET's Content-Length and no body.
    """Send ``raw`` bytes to the node; its answer as (status, headers, body)."""
    parts = urlsplit(district.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as conn:
        conn.sendall(raw)
        if close_after_send:
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
            head, sep, rest = answer.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                if raw.startswith(b"HEAD ") or len(rest) >= int(headers.get("content-length", -1)):
                    return int(lines[0].split()[1]), headers, rest
    return 0, {}, answer


def _request(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"",
             length: int | None = None) -> bytes:  # fmt: skip
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    if body or length is not None:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode() + body


def _signed(served: dict, path: str, body: bytes = b"", content_type: str | None = None,
            key: IdentityKey | None = None, origin: str | None = None) -> list[tuple[str, str]]:  # fmt: skip
    b = served["b"]
    _view, headers = signed_request_headers(
        method="POST", url=served["a"].url + path, body=body, content_type=content_type,
        key=key or b.current_keys().identity, origin=origin or b.config.node.base_url,
    )  # fmt: skip
    return headers


def _coded(status: int, body: bytes, code: str) -> None:
    error = json.loads(body)["error"]
    assert (status, error["code"]) == (status_for(code), code), (status, error)
    assert error["message"] and error.get("hint")


def _logged_since(served: dict, mark: int) -> str:
    time.sleep(0.2)  # the server writes its line as it answers
    return served["a"].served.log()[mark:]


def _mark(served: dict) -> int:
    return len(served["a"].served.log())


@pytest.mark.parametrize("host", ["a b", "[", "a@b", "x:abc", "é", ":80"])
def test_a_host_that_is_no_host_beside_a_signature_field_is_not_a_crash(served, host: str) -> None:
    mark = _mark(served)
    # A public route answers (unsigned: there is nothing to bind a signature to)...
    status, headers, body = _exchange(served["a"], _request("GET", "/satchel/v1/health", [("Host", host),
                                                                                          ("Signature", "x")]))
    assert status == 200 and "signature" not in headers, (status, body)
    # ...and a signed one refuses it with its code.
    status, _, body = _exchange(served["a"], _request("POST", PING, [("Host", host), ("Signature", "x"),
                                                                     ("Signature-Input", "x")]))
    code = json.loads(body)["error"]["code"]
    assert code in ("message.malformed", "signature.malformed") and status == status_for(code) == 400, body
    assert "Traceback" not in _logged_since(served, mark)


def test_a_signed_request_in_absolute_form_is_answered(served) -> None:
    url = served["a"].url + PING
    status, headers, body = _exchange(served["a"], _request("POST", url, _signed(served, PING)))
    assert status == 200 and "signature" in headers, (status, body)


@pytest.mark.parametrize("path", ["/satchel/v1/codes/claims", "/satchel/v1/requests"])
def test_a_number_of_thousands_of_digits_is_a_malformed_message(served, path: str) -> None:
    mark = _mark(served)
    body = b'{"n": ' + b"9" * 5000 + b"}"
    status, _, answer = _exchange(served["a"], _request("POST", path, _signed(served, path, body, "application/json"),
                                                        body))  # fmt: skip
    error = json.loads(answer)["error"]
    assert error["code"] == "message.malformed" and status == 400 and error["hint"], answer  # what to do, too
    assert "Traceback" not in _logged_since(served, mark)


def test_an_unknown_key_whose_origin_serves_such_a_number_is_unknown(served) -> None:
    port = free_port()
    evil = b'{"n": ' + b"9" * 5000 + b"}"
    started = threading.Event()

    async def descriptor(request: web.Request) -> web.Response:
        return web.Response(body=evil, content_type="application/json")

    def serve() -> None:
        async def run() -> None:
            app = web.Application()
            app.router.add_get("/.well-known/satchel", descriptor)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            started.set()
            await asyncio.sleep(60)

        asyncio.run(run())

    threading.Thread(target=serve, daemon=True).start()
    assert started.wait(10)
    mark = _mark(served)
    headers = _signed(served, PING, key=IdentityKey.generate(), origin=f"http://127.0.0.1:{port}")
    status, _, body = _exchange(served["a"], _request("POST", PING, headers))
    _coded(status, body, "signature.key_unknown")
    assert "Traceback" not in _logged_since(served, mark)


@pytest.mark.parametrize("coded", [b'{"x": 1}', gzip.compress(b'{"x": 1}')], ids=["not-gzip", "gzip"])
@pytest.mark.parametrize("path", [PING, "/satchel/v1/envelopes"])
def test_a_content_coded_body_is_refused_before_it_is_read(served, coded: bytes, path: str) -> None:
    # Signed over the bytes sent: aiohttp would have decoded them (or failed to, with a 500) and hashed the
    # decoded bytes, so a peer that followed the digest rule was refused as not matching.
    mark = _mark(served)
    headers = [*_signed(served, path, coded, "application/json"), ("Content-Encoding", "gzip")]
    status, _, body = _exchange(served["a"], _request("POST", path, headers, coded))
    _coded(status, body, "http.content_encoding")
    assert "Traceback" not in _logged_since(served, mark)


def test_a_peer_that_goes_mid_body_is_a_routine_refusal(served) -> None:
    mark = _mark(served)
    body = b'{"x": 1}' * 100
    raw = _request("POST", PING, _signed(served, PING, body, "application/json"), body)
    _exchange(served["a"], raw[:-400], close_after_send=True)
    logged = _logged_since(served, mark)
    assert "refused: http.body_incomplete" in logged and "Traceback" not in logged, logged


@pytest.mark.parametrize("raw", [
    _request("GET", "/satchel/v1/health", [("X-Big", "a" * 9000)]),
    _request("POST", PING, [("Host", "a")], b"x", length=-5),
    b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
], ids=["long-header", "negative-length", "not-utf8-path"])  # fmt: skip
def test_what_is_not_http_is_one_line_in_the_log(served, raw: bytes) -> None:
    mark = _mark(served)
    status, _, _ = _exchange(served["a"], raw)
    assert status == 400
    logged = _logged_since(served, mark)
    assert "refused a malformed HTTP request" in logged and "Traceback" not in logged, logged


@pytest.mark.parametrize("path", ["/.well-known/satchel", "/satchel/v1/health"])
def test_head_is_answered_where_get_is(served, path: str) -> None:
    status, headers, _ = _exchange(served["a"], _request("HEAD", path, [("Host", "a")]))
    assert status == 200 and "json" in headers["content-type"], headers


def test_the_node_logged_no_traceback_and_still_serves(served) -> None:
    assert "Traceback" not in served["a"].served.log()
    status, _, _ = _exchange(served["a"], _request("GET", "/satchel/v1/health", [("Host", "a")]))
    assert status == 200


_GOOD_CLAIM = {"code_id": "A" * 21 + "Q", "nonce": "B" * 21 + "w", "proof": "C" * 42 + "w"}  # 16, 16, 32 bytes


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code_id", "A" * 20 + "+Q"),  # the standard alphabet's '+'
        ("code_id", "A" * 21 + "Q=="),  # padded
        ("nonce", "B" * 10 + " " + "B" * 11 + "w"),  # a space, which a lenient decoder drops
        ("proof", "C" * 42 + "x"),  # the last character's unused bits set
        ("code_id", "A" * 23),  # 17 bytes
        ("code_id", "AAAA"),  # 3 bytes
        ("nonce", "AAAA"),  # under 16 bytes
        ("nonce", "A" * 88),  # 66 bytes: over 64
        ("proof", "A" * 40),  # 30 bytes
    ],
)
def test_a_claim_whose_values_are_not_what_a_claim_holds_is_malformed_and_no_failed_guess(
    served, field: str, value: str
) -> None:
    path = "/satchel/v1/codes/claims"
    body = json.dumps({**_GOOD_CLAIM, field: value}).encode()
    db = served["a"].home / "satchel.db"
    with sqlite3.connect(db) as conn:
        failures = conn.execute("SELECT count(*) FROM claim_failures").fetchone()[0]
    status, _, answer = _exchange(served["a"], _request("POST", path, _signed(served, path, body, "application/json"),
                                                        body))  # fmt: skip
    _coded(status, answer, "message.malformed")
    assert json.loads(answer)["error"]["field"] == field
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM claim_failures").fetchone()[0] == failures


def test_a_well_formed_claim_of_no_code_is_unknown_and_counted(served) -> None:
    path = "/satchel/v1/codes/claims"
    body = json.dumps(_GOOD_CLAIM).encode()
    db = served["a"].home / "satchel.db"
    with sqlite3.connect(db) as conn:
        failures = conn.execute("SELECT count(*) FROM claim_failures").fetchone()[0]
    status, _, answer = _exchange(served["a"], _request("POST", path, _signed(served, path, body, "application/json"),
                                                        body))  # fmt: skip
    _coded(status, answer, "code.unknown")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM claim_failures").fetchone()[0] == failures + 1


def test_an_answer_posted_under_another_request_s_path_is_a_mismatch(served) -> None:
    from datetime import UTC, datetime

    from node.clock import new_id
    from protocol.records_request import Person, RequestResponse, ResponseKind, sign_request_response

    b = served["b"]
    answer = RequestResponse(
        kind=ResponseKind.REJECTED, request_id=new_id(), from_domain="b.example.org", to_domain="a.example.org",
        created=datetime.now(UTC).replace(microsecond=0), comments="no such student",
        person=Person(name="Cory Coordinator", email="coord@b.example.org", phone="+1 217-555-0100"),
    )  # fmt: skip
    body = sign_request_response(answer, b.current_keys().identity)
    path = f"/satchel/v1/requests/{new_id()}/responses"  # not the request the answer is about
    headers = _signed(served, path, body, "application/satchel-request-response+json")
    status, _, text = _exchange(served["a"], _request("POST", path, headers, body))
    _coded(status, text, "request.mismatch")
    assert json.loads(text)["error"]["field"] == "request_id"
