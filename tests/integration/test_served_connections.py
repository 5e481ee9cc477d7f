"""What `satchel serve` holds for strangers: a connection must send a whole request head within
`server.idle_seconds`, and take something of its answer within as long, and beyond `server.max_connections` a
new one is answered `503 server.busy`.

Before, a connection that sent nothing, or a request head a byte at a time, was held for an hour (aiohttp's
default), and there was no limit on how many: a few hundred of them from anyone on the internet used up the
service's 1,024 open files, and the node could no longer open its own database or blobs. Then, with both
bounded, a client that pipelined requests and never read the answers still held its connections for good
(aiohttp waits for the socket to take an answer with no limit): sixteen of them and every peer got 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from node.connection_limits import MAX_LINGERING
from node.home import open_node
from node.keyring import Keyring
from node.peer_client import PeerClient
from node.peers import PeerUnreachable, fetch_descriptor
from protocol import SatchelError
from protocol.descriptor import WELL_KNOWN_PATH

from support import DEV_ENV, free_port, make_district, wait_until

DESCRIPTOR_GET = f"GET {WELL_KNOWN_PATH} HTTP/1.1\r\nHost: node\r\n\r\n".encode()


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


async def _closed_after(url: str, behave) -> float:
    """Open a connection, let ``behave(reader, writer)`` use it, then read until the node hangs up; the
    seconds from opening to the hang-up."""
    reader, writer = await asyncio.open_connection(*_address(url))
    started = time.monotonic()
    try:
        await behave(reader, writer)
        while await asyncio.wait_for(reader.read(65536), timeout=20):
            pass
        return time.monotonic() - started
    finally:
        writer.close()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    pass


async def _trickling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A request head a byte every 0.2 s, never finished (until the node hangs up)."""
    for byte in b"GET /.well-known/satchel HTTP/1.1\r\nHost: node\r\nX-Slow: " + b"a" * 200:
        if writer.is_closing() or reader.at_eof():
            return
        writer.write(bytes([byte]))
        try:
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(0.2)


async def _answered_then_idle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Three requests a second apart, each answered on the same connection; then nothing more."""
    for _ in range(3):
        writer.write(DESCRIPTOR_GET)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))  # fmt: skip
        await reader.readexactly(length)
        await asyncio.sleep(1.0)


def test_a_connection_that_does_not_finish_a_request_head_in_time_is_closed(tmp_path: Path) -> None:
    b = make_district(tmp_path, "b.example.org")
    b.env["SATCHEL_SERVER_IDLE_SECONDS"] = "2"
    b.start()
    try:
        async def scenario() -> list[float]:
            return list(await asyncio.gather(
                _closed_after(b.url, _silent), _closed_after(b.url, _trickling),
                _closed_after(b.url, _answered_then_idle),
            ))  # fmt: skip

        silent, trickling, answered = asyncio.run(scenario())
        # Nothing sent, or a head still arriving a byte at a time: closed two seconds after opening.
        assert 1.5 < silent < 6, silent
        assert 1.5 < trickling < 6, trickling
        # A connection in use is not cut: each answer gives it two more seconds for its next request head
        # (its last answer came two seconds after it opened).
        assert 2 + 1.5 < answered < 2 + 6, answered
        # The node serves on: a new connection is answered.
        async def fetch() -> int:
            async with aiohttp.ClientSession() as http, http.get(b.url + WELL_KNOWN_PATH) as response:
                return response.status

        assert asyncio.run(fetch()) == 200
    finally:
        b.stop()


def _held_connections(url: str, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        held.append(socket.create_connection(_address(url), timeout=10))
    return held


def _answer_on_new_connection(url: str, source: str | None = None) -> bytes:
    """The answer to a GET of the descriptor on a new connection (from loopback address ``source``)."""
    with socket.create_connection(_address(url), timeout=10,
                                  source_address=(source, 0) if source else None) as conn:  # fmt: skip
        conn.sendall(DESCRIPTOR_GET)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and not chunks[0].startswith(b"HTTP/1.1 503"):
                break  # a served answer: the connection stays open for the next request
        return b"".join(chunks)


SEND = ("send", "--to", "b.example.org", "--student", "100001", "--assessments", "--as", "coord", "--json")


def test_beyond_max_connections_a_new_one_is_answered_busy_and_a_sender_tries_again(tmp_path: Path) -> None:
    a, b = make_district(tmp_path, "a.example.org"), make_district(tmp_path, "b.example.org")
    b.env["SATCHEL_SERVER_MAX_CONNECTIONS"] = "16"  # the least allowed
    a.start()
    b.start()
    held: list[socket.socket] = []
    try:
        a.cli("peers", "add", b.url, "--yes", "--as", "coord")
        b.cli("peers", "add", a.url, "--yes", "--as", "coord")
        a.stop()  # so that only the test's commands deliver
        held = _held_connections(b.url, 16)  # anyone's: sending nothing, each holding one of B's files
        answer = _answer_on_new_connection(b.url)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), answer[:300]
        assert b"Retry-After: 5" in head
        assert json.loads(body)["error"]["code"] == "server.busy"

        # A district's delivery meanwhile gets that unsigned 503: it is not believed as a refusal, only as
        # "not now", and the transfer waits for its next try.
        sent = json.loads(a.cli(*SEND).stdout)
        tid = sent["transfer_id"]
        shown = json.loads(a.cli("transfers", "show", tid, "--json").stdout)
        assert shown["state"] == "sealed"
        assert "answered HTTP 503 without a signature" in shown["delivery"]["last_error"]
        assert b.cli("transfers", "show", tid, ok=False).exit_code == 2  # nothing arrived at B

        for conn in held:
            conn.close()
        held = []
        wait_until(lambda: _answer_on_new_connection(b.url).startswith(b"HTTP/1.1 200"))
        a.cli("transfers", "retry", tid, "--as", "coord")
        assert json.loads(b.cli("transfers", "show", tid, "--json").stdout)["state"] == "received"
        log = b.served.log() if b.served else ""
        assert "holding 16 connections, the limit (server.max_connections)" in log
        assert "Traceback" not in log
    finally:
        for conn in held:
            conn.close()
        a.stop()
        b.stop()


def test_one_address_cannot_take_every_connection_and_a_proxys_is_not_limited(tmp_path: Path) -> None:
    # One client held all of server.max_connections, and every district got 503 until it let go. Each of
    # 127.0.0.0/8 is its own address to the node: .1 and .2 are two clients, .3 the district's TLS terminator.
    b = make_district(tmp_path, "b.example.org")
    b.env |= {"SATCHEL_SERVER_MAX_CONNECTIONS": "16", "SATCHEL_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "4",
              "SATCHEL_SERVER_TRUSTED_PROXIES": "127.0.0.3"}  # fmt: skip
    b.start()
    held: list[socket.socket] = []
    try:
        assert b.served is not None
        held = [socket.create_connection(_address(b.url), timeout=10, source_address=("127.0.0.1", 0))
                for _ in range(4)]  # fmt: skip
        wait_until(lambda: _answer_on_new_connection(b.url, "127.0.0.1").startswith(b"HTTP/1.1 503"))
        head, _, body = _answer_on_new_connection(b.url, "127.0.0.1").partition(b"\r\n\r\n")
        assert b"Retry-After: 5" in head and b"Connection: close" in head
        error = json.loads(body)["error"]
        assert error["code"] == "server.address_busy" and "close connections" in error["hint"]
        # Another address is served as before: twelve connections are left for everyone else.
        assert _answer_on_new_connection(b.url, "127.0.0.2").startswith(b"HTTP/1.1 200")
        # The terminator carries every district from its one address: it takes more than four, up to the limit.
        held += [socket.create_connection(_address(b.url), timeout=10, source_address=("127.0.0.3", 0))
                 for _ in range(8)]  # fmt: skip
        assert _answer_on_new_connection(b.url, "127.0.0.3").startswith(b"HTTP/1.1 200")
        # The client lets one go: it may open another.
        held.pop(0).close()
        wait_until(lambda: _answer_on_new_connection(b.url, "127.0.0.1").startswith(b"HTTP/1.1 200"))
        # The log is copied from the server's stderr by a thread: wait for the line rather than read it at once.
        refused = r"refused \d+ connections from 127\.0\.0\.1 beyond server\.max_connections_per_"
        wait_until(lambda: re.search(refused, b.served.log()) is not None)
        log = b.served.log()
        assert "127.0.0.1 holds 4 connections, the most one address may" in log
        assert "127.0.0.2" not in log and "127.0.0.3" not in log and "Traceback" not in log
    finally:
        for conn in held:
            conn.close()
        b.stop()


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_flood_beyond_the_limit_cannot_use_up_files_by_being_refused(tmp_path: Path) -> None:
    b = make_district(tmp_path, "b.example.org")
    b.env["SATCHEL_SERVER_MAX_CONNECTIONS"] = "16"
    b.start()
    held: list[socket.socket] = []
    try:
        assert b.served is not None
        pid = b.served.proc.pid
        held = _held_connections(b.url, 16)
        wait_until(lambda: _answer_on_new_connection(b.url).startswith(b"HTTP/1.1 503"))
        before = _open_files(pid)
        flood = _held_connections(b.url, 200)  # never read, never closed by the client: each could linger
        held += flood
        time.sleep(0.5)
        # At most MAX_LINGERING of them linger (2 s each, reading what the client sends); the rest are
        # closed as soon as their answer is written.
        assert _open_files(pid) <= before + MAX_LINGERING + 8, (_open_files(pid), before)
        for conn in flood:  # and every one was told, not reset
            assert conn.recv(65536).startswith(b"HTTP/1.1 503 Service Unavailable")
    finally:
        for conn in held:
            conn.close()
        b.stop()


def test_an_unsigned_try_later_from_a_proxy_is_an_unreachable_peer(make_home) -> None:
    """The TLS terminator in front of a node that is down answers 502-504 itself: a caller is told the peer
    is not there now (retried), not that a signature is missing."""
    statuses = iter([502, 503, 504, 429, 500, 503])

    async def proxy(request: web.Request) -> web.Response:
        return web.Response(status=next(statuses), text="<html>Bad Gateway</html>", content_type="text/html")

    async def scenario() -> list[str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        node = open_node(make_home(), DEV_ENV)
        said = []
        try:
            async with aiohttp.ClientSession() as http:
                client = PeerClient(node, http, Keyring(node, lambda: http, allow_loopback_http=True))
                for _ in range(5):
                    try:
                        await client.call(f"http://127.0.0.1:{port}", "GET", "/satchel/v1/ping")
                    except PeerUnreachable as exc:
                        said.append(f"unreachable: {exc.message}")
                    except SatchelError as exc:
                        said.append(exc.code)
                try:  # a node's descriptor, fetched to pin it or to find a key: the same "not now"
                    await fetch_descriptor(http, f"http://127.0.0.1:{port}")
                except SatchelError as exc:
                    said.append(f"{exc.code}: {exc.message}")
        finally:
            node.close()
            await runner.cleanup()
        return said

    said = asyncio.run(scenario())
    for status, line in zip((502, 503, 504, 429), said, strict=False):
        assert line.startswith("unreachable:") and f"answered HTTP {status} without a signature" in line, line
    assert said[4] == "signature.missing"  # any other unsigned answer is what it always was
    assert said[5].startswith("peer.unreachable:") and "answered HTTP 503: the node is busy" in said[5], said[5]


def _not_reading(url: str, requests: int) -> socket.socket:
    """A connection that pipelines ``requests`` GETs of the descriptor and never reads an answer."""
    conn = socket.socket()
    # Linux sizes the node's send buffer by the segment size its client announces: with small segments and
    # a small window, the buffers between are full after some 100 KB of answers, not 4 MiB, and the node is
    # left waiting for the client within a fraction of a second.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    conn.connect(_address(url))
    conn.setblocking(False)
    with contextlib.suppress(BlockingIOError):  # as many as the kernels take; the rest are not needed
        conn.send(DESCRIPTOR_GET * requests)
    return conn


def _memory_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith(f"{field}:")))


def test_a_client_that_does_not_read_its_answers_is_closed_and_its_connection_freed(tmp_path: Path) -> None:
    b = make_district(tmp_path, "b.example.org")
    b.env["SATCHEL_SERVER_MAX_CONNECTIONS"] = "16"
    b.env["SATCHEL_SERVER_IDLE_SECONDS"] = "2"
    b.start()
    held: list[socket.socket] = []
    try:
        assert b.served is not None
        resident = _memory_kib(b.served.proc.pid, "VmRSS")
        held = [_not_reading(b.url, 2000) for _ in range(16)]  # megabytes of answers asked for on each
        started = time.monotonic()
        assert _answer_on_new_connection(b.url).startswith(b"HTTP/1.1 503")  # every connection is held
        # Each is closed once it has taken nothing for two seconds, and its file is free for others.
        closed = "it took none of its answer for 2 seconds (server.idle_seconds)"
        wait_until(lambda: b.served is not None and b.served.log().count(closed) == 16)
        assert 1.5 < time.monotonic() - started < 15
        assert _answer_on_new_connection(b.url).startswith(b"HTTP/1.1 200")
        # Meanwhile answers were not piled up in memory: a connection holds one while it waits for its client.
        assert _memory_kib(b.served.proc.pid, "VmHWM") - resident < 20 * 1024
        for conn in held:  # reset, not left to the kernel to close while it holds the unsent answers
            conn.setblocking(True)
            conn.settimeout(5)
            with pytest.raises(ConnectionResetError):
                while conn.recv(65536):
                    pass
        assert "Traceback" not in b.served.log()
    finally:
        for conn in held:
            conn.close()
        b.stop()
