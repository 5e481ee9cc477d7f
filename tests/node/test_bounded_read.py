"""read_body: the whole body however it arrives, and never more than one byte past the limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from node.bounded_read import BodyStalled, read_body


async def _send_in_pieces(request: web.Request) -> web.StreamResponse:
    """A plain aiohttp server that writes the body it is told to, a piece at a time with pauses."""
    pieces = [bytes.fromhex(p) for p in json.loads(await request.read())]
    response = web.StreamResponse()
    await response.prepare(request)
    for piece in pieces:
        await response.write(piece)
        await asyncio.sleep(0.001)
    await response.write_eof()
    return response


@asynccontextmanager
async def _serving(method: str, handler) -> AsyncIterator[str]:
    """A plain aiohttp server on a free loopback port answering ``method /`` with ``handler``; its URL."""
    app = web.Application()
    app.router.add_route(method, "/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def _received(pieces: list[bytes], limit: int) -> tuple[bytes, bytes]:
    """What read_body returns of a body sent over loopback in ``pieces``, and what is left after it."""
    async with _serving("POST", _send_in_pieces) as url, aiohttp.ClientSession() as http, http.post(
        url, data=json.dumps([p.hex() for p in pieces])
    ) as response:
        body = await read_body(response.content, limit)
        return body, await response.content.read()


@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(st.binary(min_size=1, max_size=20_000), max_size=8), limit=st.integers(0, 100_000))
def test_the_whole_body_comes_back_or_the_first_byte_past_the_limit(pieces, limit) -> None:
    whole = b"".join(pieces)
    body, rest = asyncio.run(_received(pieces, limit))
    assert body == whole[: limit + 1]
    assert body + rest == whole  # nothing read past what it returns


async def _stall_then_finish(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"first")
    await asyncio.sleep(float(request.query["pause"]))
    await response.write(b" and the rest")
    await response.write_eof()
    return response


async def _read_with_pause(pause: float, idle: float) -> bytes | str:
    async with _serving("GET", _stall_then_finish) as url, aiohttp.ClientSession() as http, http.get(
        f"{url}?pause={pause}"
    ) as response:
        try:
            return await read_body(response.content, 1000, idle=idle)
        except BodyStalled as exc:
            return exc.code


def test_a_body_that_stops_arriving_longer_than_the_idle_limit_is_given_up_on() -> None:
    assert asyncio.run(_read_with_pause(2.0, idle=0.3)) == "http.body_stalled"
    # A pause shorter than the limit is only a slow link: the body comes whole.
    assert asyncio.run(_read_with_pause(0.1, idle=2.0)) == b"first and the rest"
