"""How many connections `satchel serve` holds, and for how long, so that strangers cannot exhaust its files.

Anyone on the internet can open a connection and then send nothing, or a request head a byte at a time. Each
one holds a file descriptor; a service's usual limit is 1,024, shared with the database, the blobs and the
node's own calls to its peers. So the server (node.server) listens through ``bounded_factory``: beyond
``server.max_connections`` open at once, a new connection is answered ``503 server.busy`` at once and closed
(at most ``MAX_LINGERING`` of those linger to read what the client still sends), and the connections it keeps
must send a whole request head within ``server.idle_seconds`` of opening or of their last answer (aiohttp's
keep-alive timer, which since 3.14.4 also runs before the first request). Nor may a client hold one by not
reading: aiohttp waits with no limit for the socket to take an answer, so each connection is watched by
``_WriteWatch``, which closes it once the client has taken none of an answer for ``server.idle_seconds``.
``raise_open_files_limit`` lifts the process's soft limit to its hard limit first (as Go and nginx do), and
the server keeps ``FILES_RESERVED`` descriptors free of connections whatever the settings say.

One client could still take every connection, and every district would get 503 until it let go; so no client
address holds more than ``server.max_connections_per_address`` (a quarter of them unless set), beyond which a
new connection from it is answered ``503 server.address_busy`` and closed the same way. The address is the
socket's peer: the node reads no X-Forwarded-For (it would have to read a request head first, which is what a
connection is being refused before). An IPv6 client is counted by its /64, which one subscriber gets whole.
The district's own TLS terminator or load balancer (``server.trusted_proxies``, loopback by default) carries
every district's connections from its one address, so it is not limited per address; a terminator on the
same machine then has to limit per client itself, since the node sees only the terminator.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import json
import logging
import resource
import socket
import struct
import termios
import weakref
from collections.abc import Callable, Iterable

from aiohttp import web

from node.config import Network
from protocol import SatchelError

log = logging.getLogger("satchel.server")

# Descriptors kept for what the node opens itself: SQLite and its WAL, blobs and envelopes being read or
# written, calls to peers, the directory and SMTP, the thread pool's files.
FILES_RESERVED = 256
# How long a refused connection may keep sending (its request head) before it is closed anyway: reading it
# lets the client see the answer instead of a reset, and the few seconds bound what a flood of them holds.
LINGER_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5
# Refused connections lingering at once, at most: in a flood beyond the limit the rest are closed as soon as
# the answer is written, so that refusing cannot itself use up the files the limit is there to keep.
MAX_LINGERING = 64
# A protocol made for a new connection is told it is connected a loop iteration or two later; one never told
# (its socket failed at once) stops counting after this.
_CONNECTING_SECONDS = 1.0


class ServerBusy(SatchelError):
    """The node holds as many connections as it allows (``server.max_connections``); nothing was read.

    Sent before any request is read, so it is the one answer a node does not sign (spec/request-signing.md
    §7.2)."""

    code = "server.busy"
    default_hint = "try again in a few seconds; a node's outbox does so by itself"


class AddressBusy(SatchelError):
    """The client's address holds as many connections as one address may (``server.max_connections_per_address``);
    nothing was read. Unsigned, as ``server.busy`` is (spec/request-signing.md §7.2)."""

    code = "server.address_busy"
    default_hint = (
        "close connections your address holds open to this node, or try again in a few seconds; a node's outbox"
        " does so by itself"
    )


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a sandbox that refuses: the limit stays as it was
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(configured: int, open_files: int) -> int:
    """How many connections to hold at once: as configured, but never so many that the node's own files
    could not be opened (at least 16, for a limit so low nothing else would work either)."""
    return max(16, min(configured, open_files - FILES_RESERVED))


def per_address_cap(configured: int, cap: int) -> int:
    """Connections one address may hold: as configured, else (0) a quarter of those held in all."""
    return configured if configured > 0 else max(1, cap // 4)


def _busy_answer(error: SatchelError | None = None) -> bytes:
    error = error or ServerBusy("this node is holding as many connections as it is allowed; nothing was read")
    body = json.dumps({"error": {"code": error.code, "message": error.message, "hint": error.hint}}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {RETRY_AFTER_SECONDS}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_ADDRESS_BUSY = _busy_answer(
    AddressBusy("this address holds as many connections to this node as one address may; nothing was read")
)


class _Busy(asyncio.Protocol):
    """Answers 503 and half-closes; reads and drops what the client still sends for ``LINGER_SECONDS`` so
    the answer is not lost to a reset, then closes; given no ``lingering`` set (as many linger already), it
    closes as soon as the answer is written."""

    answer = _busy_answer()

    def __init__(self, lingering: weakref.WeakSet[_Busy] | None, answer: bytes | None = None) -> None:
        if answer is not None:
            self.answer = answer
        # Counted from now, not from connection_made: the loop makes every protocol of a burst of accepted
        # connections before it connects the first. Weak: one whose socket failed before it connected goes.
        self._lingering = lingering
        if lingering is not None:
            lingering.add(self)
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.answer)
        if self._lingering is None:
            transport.close()  # after the answer is written
            return
        if transport.can_write_eof():
            transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the client is done too: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._lingering is not None:
            self._lingering.discard(self)


def _unacknowledged(transport: asyncio.Transport) -> int:
    """Bytes written to the socket that its peer has not acknowledged yet (Linux's SIOCOUTQ), 0 where that
    cannot be asked."""
    sock = transport.get_extra_info("socket")
    try:
        answer = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ is the same number
    except (AttributeError, OSError):
        return 0
    return int(struct.unpack("i", answer)[0])


class _WriteWatch(asyncio.Protocol):
    """aiohttp's handler of one connection, closed (aborted) once its client has taken none of an answer for
    ``limit`` seconds.

    aiohttp waits for the socket to take an answer with no limit, and its keep-alive timer stops while it
    waits, so a client that pipelines requests and never reads held its connection for good. Progress is the
    client acknowledging bytes, not the answer being done: a peer fetching a large answer over a slow link
    is never cut, however long it takes."""

    # Four looks per ``limit``: a connection is closed between ``limit`` and 1.25 ``limit`` after its client
    # last took a byte.
    _LOOKS = 4

    def __init__(
        self, handler: web.RequestHandler, limit: float, addresses: _PerAddress | None = None
    ) -> None:
        self._handler = handler
        self._limit = limit
        self._addresses = addresses
        self._address: str | None = None  # counted against its address's limit while open
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._unsent = 0
        self._still = 0  # looks in a row that found nothing taken

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self._addresses is not None:
            admitted, self._address = self._addresses.admit(transport, self._handler)
            if not admitted:
                return
        self._transport = transport
        # No high-water mark: whatever the socket does not take at once pauses writing, so every byte of an
        # answer this process holds is watched, also the rest of one left when aiohttp closes the connection
        # (close waits for it for ever); and aiohttp handles the next pipelined request only once the socket
        # has taken the last answer whole, so a connection holds one answer in memory at most.
        transport.set_write_buffer_limits(high=0)
        self._handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        self._handler.eof_received()
        return None  # as aiohttp's: the transport closes once what was written has gone

    def pause_writing(self) -> None:
        self._handler.pause_writing()
        if self._transport is not None and self._timer is None:
            self._unsent, self._still = self._unsent_now(self._transport), 0
            self._timer = asyncio.get_running_loop().call_later(self._limit / self._LOOKS, self._look)

    def resume_writing(self) -> None:
        self._stop()
        self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        self._transport = None
        if self._addresses is not None and self._address is not None:
            self._addresses.leave(self._address)
            self._address = None
        self._handler.connection_lost(exc)

    @staticmethod
    def _unsent_now(transport: asyncio.Transport) -> int:
        # What the socket has not taken yet, and what it took that the client has not acknowledged: the
        # kernel's buffer can hold seconds of a slow link, during which only the second goes down.
        return transport.get_write_buffer_size() + _unacknowledged(transport)

    def _look(self) -> None:
        transport = self._transport
        if transport is None:
            return
        unsent = self._unsent_now(transport)
        # aiohttp waits for writing to resume before it writes another answer (or more than 64 KiB of one it
        # streams), so what is unsent goes down only as the client acknowledges bytes.
        self._still = 0 if unsent < self._unsent else self._still + 1
        self._unsent = unsent
        if self._still >= self._LOOKS:
            self._timer = None
            log.info("closed a connection from %s: it took none of its answer for %g seconds "
                     "(server.idle_seconds)", _peer(transport), self._limit)  # fmt: skip
            _reset(transport)
            return
        self._timer = asyncio.get_running_loop().call_later(self._limit / self._LOOKS, self._look)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _reset(transport: asyncio.Transport) -> None:
    """Close with a reset (as nginx's reset_timedout_connection): a plain close leaves the kernel holding the
    unsent answer, up to megabytes, and probing the client's closed window for minutes."""
    sock = transport.get_extra_info("socket")
    with contextlib.suppress(AttributeError, OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "a client"


def _address_of(transport: asyncio.BaseTransport) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return None  # a Unix socket, or a peer the kernel no longer knows (it is gone already)
    try:
        address = ipaddress.ip_address(peer[0].split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # an IPv4 client of a dual-stack socket
    return address


_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _as_seen(network: Network) -> tuple[Network, ...]:
    """A trusted network as the addresses it is compared with (``_address_of``): an IPv4 client of a dual-stack
    socket is its IPv4 address, so a network written IPv4-mapped (``::ffff:10.0.0.7``, as the socket's peer
    reads) is that IPv4 network, and one that holds every IPv4-mapped address (``::/0``) holds IPv4 too."""
    if not isinstance(network, ipaddress.IPv6Network):
        return (network,)
    if network.subnet_of(_IPV4_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return (ipaddress.IPv4Network((mapped, network.prefixlen - 96)),)
    if _IPV4_MAPPED.subnet_of(network):
        return (network, ipaddress.IPv4Network("0.0.0.0/0"))
    return (network,)


class _PerAddress:
    """How many connections each client address holds, and the refusal of those beyond ``limit``."""

    def __init__(
        self, limit: int, trusted: Iterable[Network], lingering: weakref.WeakSet[_Busy],
        forget: Callable[[web.RequestHandler], None],
    ) -> None:  # fmt: skip
        self.limit = limit
        self._trusted = tuple(seen for network in trusted for seen in _as_seen(network))
        self._lingering = lingering
        self._forget = forget
        self._held: dict[str, int] = {}
        self._refused: dict[str, int] = {}  # of addresses refused since they last held fewer than the limit

    def _key(self, transport: asyncio.BaseTransport) -> str | None:
        """What a connection counts against: its address, its /64 for IPv6; None for a trusted proxy's."""
        address = _address_of(transport)
        if address is None or any(address in network for network in self._trusted):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            return str(ipaddress.IPv6Network((address, 64), strict=False))
        return str(address)

    def admit(self, transport: asyncio.Transport, handler: web.RequestHandler) -> tuple[bool, str | None]:
        """Count a new connection against its address; or, beyond the limit, answer it 503 in place of
        ``handler`` (which never sees it). Returns (admitted, the address it is counted against)."""
        key = self._key(transport)
        if key is None:
            return True, None
        held = self._held.get(key, 0)
        if held < self.limit:
            self._held[key] = held + 1
            return True, key
        if key not in self._refused:
            log.warning("%s holds %d connections, the most one address may (server.max_connections_per_address):"
                        " new ones from it get 503 server.address_busy until some close", key, held)  # fmt: skip
        self._refused[key] = self._refused.get(key, 0) + 1
        self._forget(handler)
        busy = _Busy(self._lingering if len(self._lingering) < MAX_LINGERING else None, _ADDRESS_BUSY)
        transport.set_protocol(busy)
        busy.connection_made(transport)
        return False, None

    def leave(self, key: str) -> None:
        held = self._held.pop(key) - 1
        if held > 0:
            self._held[key] = held
        if key in self._refused and held < self.limit:
            log.warning("refused %d connections from %s beyond server.max_connections_per_address (%d)",
                        self._refused.pop(key), key, self.limit)  # fmt: skip


def bounded_factory(
    server: web.Server,
    cap: int,
    write_idle: float,
    *,
    per_address: int | None = None,
    trusted: Iterable[Network] = (),
) -> Callable[[], asyncio.BaseProtocol]:
    """A protocol factory for ``loop.create_server``: aiohttp's own while fewer than ``cap`` connections are
    open (and fewer than ``per_address`` from the client's address, unless it is ``trusted``), watched so that
    a client taking none of an answer for ``write_idle`` seconds is closed; else one that answers 503 and
    closes."""
    loop = asyncio.get_running_loop()
    # Handlers made but not yet connected: the loop accepts a burst of connections, making every protocol,
    # before it tells the first one it is connected (and aiohttp counts it in ``server.connections``).
    fresh: list[tuple[float, web.RequestHandler]] = []
    lingering: weakref.WeakSet[_Busy] = weakref.WeakSet()
    refused = 0

    def forget(handler: web.RequestHandler) -> None:  # one refused for its address: it will never connect
        fresh[:] = [(made, h) for made, h in fresh if h is not handler]

    addresses = None if per_address is None else _PerAddress(per_address, trusted, lingering, forget)

    def factory() -> asyncio.BaseProtocol:
        nonlocal refused
        now = loop.time()
        fresh[:] = [(made, h) for made, h in fresh if h.transport is None and now - made < _CONNECTING_SECONDS]
        if len(server.connections) + len(fresh) < cap:
            if refused:
                log.warning("refused %d connections beyond server.max_connections (%d) while at the limit",
                            refused, cap)  # fmt: skip
                refused = 0
            handler = server()
            fresh.append((now, handler))
            return _WriteWatch(handler, write_idle, addresses)
        if not refused:
            log.warning("holding %d connections, the limit (server.max_connections): new ones get 503 "
                        "server.busy until some close", cap)  # fmt: skip
        refused += 1
        return _Busy(lingering if len(lingering) < MAX_LINGERING else None)

    return factory
