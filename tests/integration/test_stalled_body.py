"""A request body that stops arriving is given up on after `server.body_idle_seconds`.

A sender whose link drops mid-upload leaves a half-open connection behind; without a limit the receiving
node would hold the handler and the partial envelope file for the two hours TCP keepalive takes to notice.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

from node.clock import new_id
from node.home import open_node
from node.signed_http import signed_request_headers
from node.transfer_delivery import ENVELOPE_ID_HEADER
from protocol.content_digest import content_digest_header

from support import make_district

ENVELOPES = "/satchel/v1/envelopes"


def _partial_files(home: Path) -> list[Path]:
    inbox = home / "envelopes" / "in"
    return [p for p in inbox.glob(".receiving-*")] if inbox.is_dir() else []


def _wait(condition, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def _stalled_upload(url: str, headers: list[tuple[str, str]], length: int, sent: bytes,
                          home: Path) -> bytes:  # fmt: skip
    """Send the head and the first bytes of a body of ``length``, then nothing; what the server answers."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [f"POST {parts.path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers), f"Content-Length: {length}"]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + sent)
    await writer.drain()
    try:
        # While the body is still coming, the node holds a partial file for it...
        await asyncio.to_thread(_wait, lambda: _partial_files(home), "the partial file")
        # ...and once nothing has come for the idle limit it answers (or hangs up), and keeps nothing.
        return await asyncio.wait_for(reader.read(), timeout=15)
    finally:
        writer.close()


def test_an_upload_that_stops_arriving_is_dropped_with_its_partial_file(tmp_path: Path, smtp) -> None:
    _mailbox, port = smtp
    a, b = make_district(tmp_path, "a.example.org", port), make_district(tmp_path, "b.example.org", port)
    b.env["SATCHEL_SERVER_BODY_IDLE_SECONDS"] = "1"
    a.start()
    b.start()
    try:
        a.cli("peers", "add", b.url, "--yes", "--as", "coord")
        b.cli("peers", "add", a.url, "--yes", "--as", "coord")
        node = open_node(a.home, a.env)
        try:
            key, origin = node.current_keys().identity, node.config.node.base_url
        finally:
            node.close()
        whole = bytes(1 << 20)  # what the sender meant to send; only its first bytes ever arrive
        url = b.url + ENVELOPES
        _, headers = signed_request_headers(
            method="POST", url=url, body=b"", content_type="application/octet-stream", key=key, origin=origin,
            body_digest=content_digest_header(whole), extra_headers=((ENVELOPE_ID_HEADER, new_id()),),
        )  # fmt: skip
        started = time.monotonic()
        # Fewer bytes than an envelope's header: the node is still waiting for them when the link goes.
        answer = asyncio.run(_stalled_upload(url, headers, len(whole), whole[:100], b.home))
        # Answered and closed soon after the idle limit (1 s): not after aiohttp's lingering close, which
        # waited 10 s more for a body that had stopped coming, holding the connection.
        assert time.monotonic() - started < 8
        if answer:  # the connection was still there to answer on
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"http.body_stalled" in answer and b"Connection: close" in answer
        _wait(lambda: not _partial_files(b.home), "the partial file to be removed", timeout=5)
        # B is none the worse: it still answers its peers.
        assert "answered" in a.cli("peers", "ping", b.domain).stdout
    finally:
        a.stop()
        b.stop()
