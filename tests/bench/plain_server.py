"""The unsigned baseline of goal 5: `python -m tests.bench.plain_server PORT`.

A minimal aiohttp application with the same route as a node's signed ping, served the way `satchel serve`
serves (an AppRunner without access log, one TCPSite on loopback): it reads the body and answers a small
JSON document, and does nothing else. Prints "listening on URL" once ready; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web


async def ping(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"pong": "plain.example.org", "caller": None, "caller_key": None, "trust": None})


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/satchel/v1/ping", ping)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
