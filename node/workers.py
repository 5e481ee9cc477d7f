"""Periodic background work owned by the app: every task is created at startup and awaited at shutdown."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from node import codes_flow, directory_resign, partial_envelopes
from node.appkeys import NODE
from node.background_errors import log_failure
from node.directory_service import sync_mirrors
from node.disk_watch import watch_disk
from node.keyring import KEYRING
from node.partial_envelopes import UPLOADS
from node.requests_flow import flag_overdue
from node.temp_sweep import sweep_orphans
from node.transfer_actions import expire_due

log = logging.getLogger("satchel.workers")
MIRROR_INTERVAL = 600.0
EXPIRY_INTERVAL = 60.0
OVERDUE_INTERVAL = 3600.0
TEMP_SWEEP_INTERVAL = 3600.0
DISK_WATCH_INTERVAL = 600.0
RESIGN_INTERVAL = 60.0
Worker = Callable[[web.Application], AsyncIterator[None]]


def _periodic(
    name: str, interval: float, work: Callable[[web.Application], Awaitable[object] | object]
) -> Worker:
    """A cleanup context that runs ``work(app)`` now and then every ``interval`` seconds until shutdown; a
    failed pass is logged and the next one runs on time."""

    async def worker(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    done = work(app)
                    if inspect.isawaitable(done):
                        await done
                except Exception as exc:
                    log_failure(log, f"{name} pass", exc)
                await asyncio.sleep(interval)

        task = asyncio.create_task(loop(), name=name)
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return worker


# A directory pulls the directories it mirrors every ten minutes.
mirror_worker = _periodic("mirror-sync", MIRROR_INTERVAL, lambda app: sync_mirrors(app[NODE], app[KEYRING]))
# Every minute, transfers past their expiry move on (codes erased, sealed copies deleted), and transfer codes
# past their 30 days expire (their claim keys erased).
expiry_worker = _periodic(
    "expiry", EXPIRY_INTERVAL, lambda app: (expire_due(app[NODE]), codes_flow.expire_codes(app[NODE]))
)
# Hourly: requests unanswered past their working days are flagged and coordinators reminded.
overdue_worker = _periodic("overdue", OVERDUE_INTERVAL, lambda app: flag_overdue(app[NODE]))
# Hourly: temp files of writers killed mid-way (a sealed or received envelope can be gigabytes) go, and so
# do envelopes whose upload broke off and that nobody resumed in envelope.partial_keep_hours.
temp_sweep_worker = _periodic(
    "temp-sweep", TEMP_SWEEP_INTERVAL,
    lambda app: sweep_orphans(app[NODE]) + partial_envelopes.sweep(app[NODE], app[UPLOADS]),
)  # fmt: skip
# At start and every minute, on a directory: its own entries signed again after a key change, if a command
# that changed the key stopped before it was done (node.directory_resign); off the event loop.
resign_worker = _periodic(
    "directory-resign", RESIGN_INTERVAL, lambda app: directory_resign.finish_off_loop(app[NODE])
)
# Every ten minutes: is the disk running low? (node.disk_watch)
disk_watch_worker = _periodic("disk-watch", DISK_WATCH_INTERVAL, lambda app: watch_disk(app[NODE]))
