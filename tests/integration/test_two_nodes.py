"""Two district nodes in-process on loopback port 0: each fetches and verifies the other's descriptor."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from node.app import create_app
from node.config import load_config
from node.peers import PeerBadResponse, fetch_descriptor
from protocol.descriptor import DescriptorMismatch

from support import run_cli


@asynccontextmanager
async def running(home: Path) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(load_config(home, {})))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_each_node_verifies_the_other(make_home) -> None:
    home_a, home_b = make_home("a.example.org"), make_home("b.example.org")
    run_cli(home_b, "transfers", "enable", "--as", "coord")
    run_cli(home_b, "contact", "set", "--as", "coord", "--name", "Bo B", "--title", "Registrar",
            "--email", "bo@b.example.org", "--phone", "+1 217-555-0199")  # fmt: skip
    asyncio.run(_fetch_each_other(home_a, home_b))


async def _fetch_each_other(home_a: Path, home_b: Path) -> None:
    async with running(home_a) as url_a, running(home_b) as url_b, aiohttp.ClientSession() as session:
        seen_by_a = await fetch_descriptor(session, url_b, expected_domain="b.example.org")
        seen_by_b = await fetch_descriptor(session, url_a, expected_domain="a.example.org")
        assert seen_by_a.descriptor.transfers_enabled and seen_by_a.descriptor.coordinator is not None
        assert seen_by_a.descriptor.coordinator.phone == "+1 217-555-0199"
        assert not seen_by_b.descriptor.transfers_enabled
        with pytest.raises(DescriptorMismatch):
            await fetch_descriptor(session, url_a, expected_domain="b.example.org")
        with pytest.raises(PeerBadResponse):
            await fetch_descriptor(session, url_a + "/nowhere")
        # Errors reach peers as the canonical JSON body, never a traceback.
        async with session.post(url_a + "/.well-known/satchel") as response:
            assert response.status == 405
            assert (await response.json())["error"]["code"] == "http.method_not_allowed"
