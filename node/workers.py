"""Periodic background work owned by the app: every task is created at startup and awaited at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from node.appkeys import NODE
from node.directory_service import sync_mirrors
from node.keyring import KEYRING
from node.requests_flow import flag_overdue
from node.transfer_actions import expire_due

log = logging.getLogger("satchel.workers")
MIRROR_INTERVAL = 600.0
EXPIRY_INTERVAL = 60.0
OVERDUE_INTERVAL = 3600.0


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


async def expiry_worker(app: web.Application) -> AsyncIterator[None]:
    """Every minute, transfers past their expiry move on: codes erased, sealed copies deleted."""

    async def loop() -> None:
        while True:
            try:
                expire_due(app[NODE])
            except Exception:
                log.exception("expiry pass failed; will try again")
            await asyncio.sleep(EXPIRY_INTERVAL)

    task = asyncio.create_task(loop(), name="expiry")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def overdue_worker(app: web.Application) -> AsyncIterator[None]:
    """Hourly: requests unanswered past their working days are flagged and coordinators reminded."""

    async def loop() -> None:
        while True:
            try:
                flag_overdue(app[NODE])
            except Exception:
                log.exception("overdue pass failed; will try again")
            await asyncio.sleep(OVERDUE_INTERVAL)

    task = asyncio.create_task(loop(), name="overdue")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
