"""node.http_errors.error_answer: what a peer reads when a request fails for a reason that is not its own."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from node.http_errors import Handler, error_answer


async def _write_to_full_device(_request: web.Request) -> web.Response:
    with open("/dev/full", "wb", buffering=0) as full:  # the kernel's ENOSPC, as from a full disk
        full.write(b"an envelope")
    return web.Response(text="unreachable")


async def _broken(_request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    # What node.signed_http's middleware does with whatever a handler raises.
    try:
        return await handler(request)
    except Exception as exc:
        return error_answer(request, exc)


async def _answer(path: str) -> tuple[int, dict]:
    app = web.Application(middlewares=[_errors])
    app.router.add_post("/full", _write_to_full_device)
    app.router.add_post("/bug", _broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}{path}") as response:
            return response.status, await response.json()
    finally:
        await runner.cleanup()


def test_a_full_disk_is_507_storage_full(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="satchel.http"):
        status, body = asyncio.run(_answer("/full"))
    # 507: the sender's outbox retries it later, as it does every 5xx, rather than giving the transfer up.
    assert status == 507
    assert body["error"]["code"] == "storage.full"
    assert body["error"]["message"] == "this node's disk is full" and "later" in body["error"]["hint"]
    # The operator reads it in one line of the log, without a traceback.
    assert any("POST /full failed: the disk is full" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)


def test_any_other_failure_is_500_with_a_reference() -> None:
    status, body = asyncio.run(_answer("/bug"))
    assert status == 500 and body["error"]["code"] == "satchel.internal"
    assert "reference" in body["error"]["message"] and "a bug" not in str(body)
