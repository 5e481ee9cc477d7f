"""`satchel serve`: run the app until SIGINT or SIGTERM, then shut down cleanly."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from node.app import create_app
from node.config import NodeConfig
from node.connection_limits import bounded_factory, connection_cap, per_address_cap, raise_open_files_limit
from protocol import SatchelError

log = logging.getLogger("satchel.server")


class _ConnectionLog(logging.LoggerAdapter):
    """aiohttp's log of its connections, where a request that is not HTTP (a bad header line, a bad
    Content-Length, a scanner's junk) is one line saying so, not an error with a traceback: anyone on the
    internet can send those, and each one would otherwise fill the operator's log with a page."""

    def exception(self, msg: object, *args: object, exc_info: object = True, **kwargs: object) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.logger.info("refused a malformed HTTP request: %s", exc_info.message or type(exc_info).__name__)
            return
        if isinstance(exc_info, web.RequestPayloadError):
            # The unread rest of a refused request's body (aiohttp reads it to reuse the connection) was
            # malformed too: a content coding it could not decode, a broken chunk.
            self.logger.info("dropped a request body that cannot be read: %s", exc_info)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


class CannotListen(SatchelError):
    """The server cannot listen on its address: another program holds the port, or it needs privileges."""

    code = "server.cannot_listen"
    default_hint = "choose another port with --port or server.port in satchel.toml"


def _cannot_listen(host: str, port: int, exc: OSError) -> CannotListen:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return CannotListen(
            f"cannot listen on {where}: another program already listens there", field="server.port",
            hint="is `satchel serve` already running for this home? (`ss -ltnp` shows who holds the port); stop "
                 "it, or choose another port with --port or server.port in satchel.toml",
        )  # fmt: skip
    if exc.errno == errno.EACCES:
        return CannotListen(
            f"cannot listen on {where}: ports below 1024 need privileges", field="server.port",
            hint="listen on a port above 1024 (8440 is the default) and let the TLS terminator forward to it",
        )  # fmt: skip
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return CannotListen(
            f"cannot listen on {where}: this machine has no such address", field="server.host",
            hint="use 127.0.0.1 behind a TLS terminator on this machine, or one of this machine's addresses",
        )  # fmt: skip
    return CannotListen(f"cannot listen on {where}: {exc.strerror or exc}", field="server.port")


# On SIGTERM, requests in flight get this long to finish before they are cancelled. Every answer takes well
# under a second; only an envelope upload can take minutes, and what arrived of one is kept for its sender to
# resume (node.partial_envelopes), so an upgrade need not wait aiohttp's default minute for it.
SHUTDOWN_GRACE = 10.0


async def run_server(
    config: NodeConfig, *, host: str, port: int, on_ready: Callable[[str], None] | None = None
) -> None:
    open_files = raise_open_files_limit()
    cap = connection_cap(config.server.max_connections, open_files)
    if cap < config.server.max_connections:
        log.warning("holding at most %d connections, not server.max_connections (%d): this process may open %d "
                    "files (raise LimitNOFILE= in the service's unit)", cap, config.server.max_connections,
                    open_files)  # fmt: skip
    app = create_app(config)
    # keepalive_timeout: a connection must send a whole request head within idle_seconds of opening or of
    # its last answer; bounded_factory bounds the wait for a client to take an answer (node.connection_limits).
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE,
                           keepalive_timeout=config.server.idle_seconds,
                           logger=_ConnectionLog(logging.getLogger("aiohttp.server")))  # fmt: skip
    await runner.setup()
    loop = asyncio.get_running_loop()
    assert runner.server is not None
    try:
        server = await loop.create_server(
            bounded_factory(
                runner.server, cap, write_idle=config.server.idle_seconds,
                per_address=per_address_cap(config.server.max_connections_per_address, cap),
                trusted=config.server.trusted_proxies,
            ), host, port,
        )  # fmt: skip
    except BaseException as exc:
        await runner.cleanup()  # the app's workers and HTTP session were started by setup(): stop them
        if isinstance(exc, OSError):
            raise _cannot_listen(host, port, exc) from exc
        raise
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        sockets = server.sockets  # the bound port, when 0 was asked for
        bound_host, bound_port = sockets[0].getsockname()[:2] if sockets else (host, port)
        url = f"http://{bound_host}:{bound_port}"
        log.info("listening on %s", url)
        if on_ready:
            on_ready(url)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        server.close()  # stop accepting; then cleanup() lets requests in flight finish and runs cleanup contexts
        await runner.cleanup()
