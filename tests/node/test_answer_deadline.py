"""The deadline on writing answers (node.connection_limits): a connection whose client takes none of its answer
for the limit is reset, one taking it slowly is served to the end, and requests pipelined behind an answer
not taken are not answered into memory meanwhile.

A real aiohttp server on loopback behind ``bounded_factory``, as `satchel serve` runs it; the listening socket's
send buffer is fixed (the accepted ones inherit it) so that the sizes below are known, not autotuned.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from node.connection_limits import bounded_factory

GET = b"GET /answer HTTP/1.1\r\nHost: node\r\n\r\n"
LIMIT = 0.5


@asynccontextmanager
async def _serving(body: bytes, send_buffer: int) -> AsyncIterator[tuple[int, web.Server, list[float]]]:
    """A server answering every request with ``body``; yields its port, the aiohttp server (its connections)
    and the times of the answers begun."""
    loop = asyncio.get_running_loop()
    answered: list[float] = []

    async def answer(request: web.BaseRequest) -> web.Response:
        answered.append(loop.time())
        return web.Response(body=body)

    server = web.Server(answer)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)  # the accepted sockets inherit it
    sock.bind(("127.0.0.1", 0))
    listener = await loop.create_server(bounded_factory(server, 16, LIMIT), sock=sock)
    try:
        yield sock.getsockname()[1], server, answered
    finally:
        listener.close()
        await server.shutdown(1)
        await listener.wait_closed()


def _asking(port: int, requests: bytes) -> socket.socket:
    conn = socket.socket()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.connect(("127.0.0.1", port))
    conn.sendall(requests)
    return conn


CLOSING_GET = b"GET /answer HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(("requests", "size", "half_closed"), [
    (GET * 100, 256 * 1024, False),  # pipelined behind an answer that is never taken
    (GET * 100, 256 * 1024, True),  # the same, then the client's end shut: aiohttp closes once answers have gone
    # One answer, then aiohttp closes the connection with less of it unsent than asyncio's usual high-water
    # mark, which would never have paused writing.
    (CLOSING_GET, 64 * 1024, False),
])  # fmt: skip
async def test_a_client_taking_none_of_its_answer_is_reset_after_the_limit(
    requests: bytes, size: int, half_closed: bool
) -> None:
    loop = asyncio.get_running_loop()
    async with _serving(bytes(size), send_buffer=16 * 1024) as (port, server, answered):
        conn = _asking(port, requests)
        with conn:
            if half_closed:
                conn.shutdown(socket.SHUT_WR)
            deadline = loop.time() + 10
            while not (answered and not server.connections):
                assert loop.time() < deadline, "the connection is still held"
                await asyncio.sleep(0.02)
            # The client took what fitted in the buffers between at once, then nothing.
            held = loop.time() - answered[0]
            assert LIMIT - 0.01 <= held < LIMIT * 1.25 + 0.5, held
            # Requests pipelined behind the first were not answered into memory while it waited.
            assert len(answered) == 1
            conn.settimeout(5)
            with pytest.raises(ConnectionResetError):  # not a close that leaves the kernel the rest to send
                while conn.recv(65536):
                    pass


def _read_slowly(conn: socket.socket, slowly: int) -> bytes:
    """Read one answer: its first ``slowly`` bytes at some 32 KB a second, the rest at once."""
    conn.settimeout(5)
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer) < _whole_length(answer):
        chunk = conn.recv(2048 if len(answer) < slowly else 65536)
        assert chunk, f"closed after {len(answer)} bytes"
        answer += chunk
        if len(answer) < slowly:
            time.sleep(1 / 16)
    return answer


def _whole_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))  # fmt: skip
    return len(head) + 4 + length


async def test_an_answer_taken_slowly_is_served_whole() -> None:
    """The node's kernel takes more of the answer only once a third of its buffer is free, much longer than
    the limit at this pace: bytes the client acknowledges count as taken, not only those handed to the kernel,
    and however long the whole answer takes does not count."""
    body = bytes(192 * 1024)
    async with _serving(body, send_buffer=64 * 1024) as (port, server, _answered):
        conn = _asking(port, GET)
        with conn:
            started = time.monotonic()
            answer = await asyncio.to_thread(_read_slowly, conn, 96 * 1024)
            took = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(body)
            assert took > 5 * LIMIT, took
            assert len(server.connections) == 1  # kept for the client's next request
