"""Whole message bodies, read up to a limit.

aiohttp's ``StreamReader.read(n)`` returns what has arrived so far, at most ``n`` bytes: not the body. A
body that comes in more than one piece (a directory listing of a megabyte, a request over a slow link)
was cut short there, and then refused as malformed or as not matching its digest.
"""

from __future__ import annotations

from aiohttp import StreamReader


async def read_body(stream: StreamReader, limit: int) -> bytes:
    """The whole body if it is at most ``limit`` bytes; otherwise its first ``limit + 1`` bytes, so that the
    caller sees it is too long and refuses it (nothing beyond that is read)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await stream.read(limit + 1 - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if stream.at_eof():  # the usual small body: all there at once, no second wait
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)
