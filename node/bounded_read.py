"""Whole message bodies, read up to a limit.

aiohttp's ``StreamReader.read(n)`` returns what has arrived so far, at most ``n`` bytes: not the body. A
body that comes in more than one piece (a directory listing of a megabyte, a request over a slow link)
was cut short there, and then refused as malformed or as not matching its digest.

A server also gives up on a body that stops arriving: aiohttp waits for it as long as the connection
lives, and a connection whose peer vanished mid-upload (a dropped link, a crashed sender) lives for two
hours of TCP keepalive, holding the handler and the partial file all that time.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext

from aiohttp import StreamReader

from protocol import SatchelError


class BodyStalled(SatchelError):
    """A request body stopped arriving: nothing came for longer than the node waits."""

    code = "http.body_stalled"
    default_hint = "send the request again (a retry is safe: messages carry ids)"


class BodyIncomplete(SatchelError):
    """The connection closed before the whole request body arrived (a dropped link, a sender stopped)."""

    code = "http.body_incomplete"
    default_hint = "send the request again (a retry is safe: messages carry ids)"


async def read_chunk(stream: StreamReader, size: int, idle: float | None) -> bytes:
    """Up to ``size`` bytes of what has arrived (b"" at the end); :class:`BodyStalled` when ``idle`` seconds
    pass with nothing arriving, and :class:`BodyIncomplete` when the peer goes before the body's end.
    Refused with a code, these are routine, not internal errors with a traceback in the operator's log."""
    if stream.is_eof():  # all of it has arrived (a small body comes with its head): nothing to wait for
        return _arrived(stream, size)
    try:
        async with asyncio.timeout(idle) if idle is not None else nullcontext():
            return await stream.read(size)
    except TimeoutError:
        raise BodyStalled(f"nothing of the body arrived for {idle:g} s", field="body") from None
    except ConnectionResetError:
        raise BodyIncomplete("the connection closed before the whole body arrived", field="body") from None


def _arrived(stream: StreamReader, size: int) -> bytes:
    try:
        return stream.read_nowait(size)
    except ConnectionResetError:
        raise BodyIncomplete("the connection closed before the whole body arrived", field="body") from None


async def read_body(stream: StreamReader, limit: int, *, idle: float | None = None) -> bytes:
    """The whole body if it is at most ``limit`` bytes; otherwise its first ``limit + 1`` bytes, so that the
    caller sees it is too long and refuses it (nothing beyond that is read). ``idle``: as for
    :func:`read_chunk`."""
    if stream.is_eof():  # the usual small body: all of it came with its head, and is taken in one call
        return _arrived(stream, limit + 1)
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await read_chunk(stream, limit + 1 - size, idle)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if stream.at_eof():  # the usual small body: all there at once, no second wait
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)
