"""`satchel serve`: run the app until SIGINT or SIGTERM, then shut down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import cast

from aiohttp import web

from node.app import create_app
from node.config import NodeConfig

log = logging.getLogger("satchel.server")


async def run_server(
    config: NodeConfig, *, host: str, port: int, on_ready: Callable[[str], None] | None = None
) -> None:
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = cast(asyncio.Server | None, site._server)
        sockets = server.sockets if server else []  # the bound port, when 0 was asked for
        bound_host, bound_port = sockets[0].getsockname()[:2] if sockets else (host, port)
        url = f"http://{bound_host}:{bound_port}"
        log.info("listening on %s", url)
        if on_ready:
            on_ready(url)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        # cleanup() stops accepting, lets in-flight requests finish, then runs cleanup contexts.
        await runner.cleanup()
