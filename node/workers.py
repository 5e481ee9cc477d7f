"""Periodic background work owned by the app: every task is created at startup and awaited at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from node.appkeys import NODE
from node.directory_service import sync_mirrors
from node.keyring import KEYRING

log = logging.getLogger("satchel.workers")
MIRROR_INTERVAL = 600.0


async def mirror_worker(app: web.Application) -> AsyncIterator[None]:
    """A directory pulls the directories it mirrors every ten minutes."""

    async def loop() -> None:
        while True:
            try:
                await sync_mirrors(app[NODE], app[KEYRING])
            except Exception:
                log.exception("mirror sync failed; will try again")
            await asyncio.sleep(MIRROR_INTERVAL)

    task = asyncio.create_task(loop(), name="mirror-sync")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
