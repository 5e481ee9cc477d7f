"""What a stranger's request can make a served node look up (spec/request-signing.md §7.1, bounding
discovery): a request signed with an unknown key makes the node fetch the URL the request names in
Satchel-Origin. Before, every such request did, without limit: anyone without a key could make a node
connect wherever they chose, as often as they sent requests, and query its directories as often."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from crypto import IdentityKey
from node.home import init_home, open_node
from node.keyring import Keyring
from node.signed_http import signed_request_headers
from protocol.http_signatures import SignatureKeyUnknown

from support import DEV_ENV, ServedNode, free_port, node_fields, run_cli, wait_until

PING = "/satchel/v1/ping"
BUDGET = 5


class OriginServer:
    """An https-less stand-in for strangers' origins on loopback: counts every GET, answers 404 (after
    ``delay`` seconds)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.port = free_port()
        self.hits: Counter[str] = Counter()
        started = threading.Event()

        async def count(request: web.Request) -> web.Response:
            self.hits[request.path] += 1
            await asyncio.sleep(delay)
            return web.Response(status=404)

        async def serve() -> None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", count)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            started.set()
            await asyncio.sleep(600)

        threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
        assert started.wait(10)

    def origin(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedNode]:
    home = tmp_path / "a.example.org"
    init_home(home, node=node_fields("a.example.org", f"http://127.0.0.1:{free_port()}"))
    node = ServedNode(home, {**DEV_ENV, "SATCHEL_FEDERATION_KEY_LOOKUPS_PER_MINUTE": str(BUDGET)})
    try:
        yield node
    finally:
        node.stop()


def _ping(
    served: ServedNode, key: IdentityKey, origin: str, *, naming: str | None = None
) -> tuple[int, dict, dict]:
    """A ping signed with ``key``; ``naming``: the key id written in instead of ``key``'s own (anyone's)."""
    _view, headers = signed_request_headers(method="POST", url=served.url + PING, body=b"{}",
                                            content_type="application/json", key=key, origin=origin)  # fmt: skip
    if naming is not None:
        headers = [(name, value.replace(key.public_key.key_id, naming)) for name, value in headers]
    request = urllib.request.Request(served.url + PING, data=b"{}", method="POST", headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_a_burst_of_unknown_keys_is_looked_up_only_within_the_budget(served: ServedNode) -> None:
    origins = OriginServer()
    started = time.monotonic()
    answers = [_ping(served, IdentityKey.generate(), origins.origin(f"o{i}")) for i in range(4 * BUDGET)]
    elapsed = time.monotonic() - started
    codes = Counter(body["error"]["code"] for _status, _headers, body in answers)
    looked_up = codes["signature.key_unknown"]
    # The bucket refills at BUDGET a minute: a slow machine may earn one more lookup while the burst runs.
    assert BUDGET <= looked_up <= BUDGET + int(elapsed * BUDGET / 60) + 1, codes
    assert codes["signature.key_lookup_limited"] == 4 * BUDGET - looked_up
    assert sum(origins.hits.values()) == looked_up  # each admitted lookup fetched its origin once, no more
    limited = [(s, h, b) for s, h, b in answers if b["error"]["code"] == "signature.key_lookup_limited"]
    status, headers, body = limited[0]
    assert status == 503 and headers["Retry-After"] == "60"
    assert body["error"]["field"] == "Signature-Input" and "peers add" in body["error"]["hint"]
    assert "Traceback" not in served.log()


def test_a_key_not_found_from_an_origin_is_not_looked_up_there_again_for_a_while(served: ServedNode) -> None:
    origins = OriginServer()
    key = IdentityKey.generate()
    first = _ping(served, key, origins.origin("first"))
    again = _ping(served, key, origins.origin("first"))
    assert first[0] == again[0] == 401
    assert first[2]["error"]["code"] == again[2]["error"]["code"] == "signature.key_unknown"
    assert "looked up from this origin less than 5 minutes ago" in again[2]["error"]["message"]
    # Another origin is another lookup (within the budget): the key's owner may be the one naming it.
    elsewhere = _ping(served, key, origins.origin("second"))
    assert (elsewhere[0], elsewhere[2]["error"]["code"]) == (401, "signature.key_unknown")
    assert "less than 5 minutes ago" not in elsewhere[2]["error"]["message"]
    assert origins.hits == Counter({"/first/.well-known/satchel": 1, "/second/.well-known/satchel": 1})


def test_an_origin_that_did_not_give_the_key_rests_whatever_key_names_it(served: ServedNode) -> None:
    origins = OriginServer()
    for _ in range(3):
        status, _headers, body = _ping(served, IdentityKey.generate(), origins.origin("same"))
        assert (status, body["error"]["code"]) == (401, "signature.key_unknown")
    assert origins.hits == Counter({"/same/.well-known/satchel": 1})


class Listener:
    """A bare TCP listener that counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_outside_development_mode_a_stranger_origin_on_this_network_is_never_connected_to(
    tmp_path: Path, host: str
) -> None:
    home = tmp_path / "a.example.org"
    init_home(home, node=node_fields("a.example.org", "https://a.example.org"))
    run_cli(home, "users", "add", "ada", "--email", "ada@a.example.org", "--name", "Ada", "--role", "admin")
    listener = Listener()
    node = open_node(home, {})
    try:

        async def scenario() -> str:
            async with aiohttp.ClientSession() as http:
                keyring = Keyring(node, lambda: http, allow_loopback_http=False)
                try:
                    with pytest.raises(SignatureKeyUnknown) as refused:
                        await keyring.resolve(IdentityKey.generate().public_key.key_id, origin=f"https://{host}:{listener.port}",
                                              claimed=True)  # fmt: skip
                    # The node's own choices (a peer it calls, an operator's `peers add`) are not limited.
                    with pytest.raises(SignatureKeyUnknown):
                        await keyring.resolve(IdentityKey.generate().public_key.key_id, origin=f"https://{host}:{listener.port}/mine")
                finally:
                    await keyring.close()
                return refused.value.code

        assert asyncio.run(scenario()) == "signature.key_unknown"
        time.sleep(0.5)
        assert listener.accepted == 1  # only the second, unclaimed lookup connected
    finally:
        node.close()
        listener.close()


@pytest.mark.parametrize(
    "origin", ["https://" + "a" * 70 + ".example", "https://a..example", "https://.example"],
    ids=["label over 63", "empty label", "leading dot"],
)  # fmt: skip
def test_an_origin_whose_host_name_cannot_be_looked_up_is_refused_with_a_code(
    served: ServedNode, origin: str
) -> None:
    # getaddrinfo's IDNA codec refuses such names with UnicodeError, which aiohttp lets through.
    status, _headers, body = _ping(served, IdentityKey.generate(), origin)
    assert (status, body["error"]["code"]) == (401, "signature.key_unknown"), (status, body)
    # The server's log is read from its stderr by a thread: the line may come a moment after the answer.
    wait_until(lambda: f"origin {origin} could not resolve" in served.log(), timeout=10)
    log = served.log()
    assert "Traceback" not in log and "satchel.internal" not in log
    assert log.count(f"origin {origin} could not resolve") == 1


# -- a district's key id named by a stranger ---------------------------------------------------------------


@pytest.fixture
def web_only(served: ServedNode, tmp_path: Path) -> Iterator[tuple[ServedNode, Path, str]]:
    """District V, which the served node knows nothing of: met through its own origin (trust "web")."""
    v_url = f"http://127.0.0.1:{free_port()}"
    v_home = tmp_path / "v.example.org"
    init_home(v_home, node=node_fields("v.example.org", v_url))
    v = ServedNode(v_home, DEV_ENV)  # serves V's descriptor
    try:
        yield served, v_home, v_url
    finally:
        v.stop()


def _v_key(v_home: Path) -> IdentityKey:
    v = open_node(v_home, DEV_ENV)
    try:
        return v.current_keys().identity
    finally:
        v.close()


def test_a_stranger_naming_a_districts_key_id_with_a_dead_origin_does_not_keep_the_district_out(
    web_only: tuple[ServedNode, Path, str],
) -> None:
    served, v_home, v_url = web_only
    v_key = _v_key(v_home)
    # A stranger's request that names V's key id (public) but is signed with a key of its own.
    dead = f"http://127.0.0.1:{free_port()}"
    status, _headers, body = _ping(served, IdentityKey.generate(), dead, naming=v_key.public_key.key_id)
    assert (status, body["error"]["code"]) == (401, "signature.key_unknown")
    status, _headers, body = _ping(served, v_key, v_url)  # V itself, a moment later, from its real origin
    assert (status, body.get("trust")) == (200, "web"), body


def test_a_districts_request_does_not_wait_on_a_strangers_lookup_of_its_key_id(
    web_only: tuple[ServedNode, Path, str],
) -> None:
    served, v_home, v_url = web_only
    v_key = _v_key(v_home)
    slow = OriginServer(delay=3.0)
    stranger = threading.Thread(target=_ping, args=(served, IdentityKey.generate(), slow.origin("x")),
                                kwargs={"naming": v_key.public_key.key_id})  # fmt: skip
    stranger.start()
    try:
        deadline = time.monotonic() + 10
        while not slow.hits and time.monotonic() < deadline:  # the stranger's lookup is under way
            time.sleep(0.02)
        assert slow.hits
        status, _headers, body = _ping(served, v_key, v_url)
        assert (status, body.get("trust")) == (200, "web"), body
    finally:
        stranger.join(30)
