"""Network parts for commands run outside `satchel serve`: one HTTP session, the keyring, a peer client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from node.home import Node
from node.keyring import Keyring
from node.peer_client import PeerClient
from node.progress import Progress


@dataclass(frozen=True, slots=True)
class Runtime:
    node: Node
    session: aiohttp.ClientSession
    keyring: Keyring
    client: PeerClient


@asynccontextmanager
async def runtime(node: Node, *, upload_progress: Progress | None = None) -> AsyncIterator[Runtime]:
    """``upload_progress``: as for :class:`PeerClient`, for a command that shows its uploads going out."""
    async with aiohttp.ClientSession() as session:
        keyring = Keyring(node, lambda: session, allow_loopback_http=node.config.federation.dev_loopback)
        try:
            yield Runtime(node, session, keyring, PeerClient(node, session, keyring, upload_progress=upload_progress))
        finally:
            await keyring.close()
