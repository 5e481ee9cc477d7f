"""A whole envelope's fsync at the receiver runs off the event loop.

Syncing a gigabyte envelope takes the kernel seconds (the page cache writes it all out at that moment); on the
loop's thread it froze the server for that long: measured 0.6 s for a half-gigabyte grade, every other peer's
request and the health check waiting behind it. B serves in this process so that its fsyncs can be watched
(``os.fsync`` still runs; the test only notes which file each call synced and on which thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from pathlib import Path

import pytest
from aiohttp import web

from node.app import create_app
from node.config import load_config
from node.receiving import RECEIVING

from support import make_district

DOCUMENT = 3 << 20


def test_the_received_envelope_is_synced_off_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = make_district(tmp_path, "a.example.org"), make_district(tmp_path, "b.example.org")
    inbox = (b.home / "envelopes" / "in").resolve()
    synced: list[tuple[str, int]] = []  # (path of the synced file, thread)
    real_fsync = os.fsync

    def noting(fd: int) -> None:
        with contextlib.suppress(OSError):  # a descriptor closed meanwhile: nothing to note
            synced.append((os.readlink(f"/proc/self/fd/{fd}"), threading.get_ident()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", noting)
    document = tmp_path / "iep.pdf"
    document.write_bytes(os.urandom(DOCUMENT))
    a.start()
    try:
        loop_thread, sent = asyncio.run(_deliver(a, b, document))
    finally:
        a.stop()
    assert json.loads(b.cli("transfers", "show", sent["transfer_id"], "--json").stdout)["state"] == "received"
    received = [(path, thread) for path, thread in synced
                if Path(path).parent == inbox and Path(path).name.startswith(f"{RECEIVING}-")]  # fmt: skip
    assert received, f"B synced no arriving envelope; it synced {[p for p, _ in synced]}"
    assert all(thread != loop_thread for _, thread in received), "the envelope was synced on the loop's thread"


async def _deliver(a, b, document: Path) -> tuple[int, dict]:
    """B served on its URL's port in this process; A pins it and sends it the document. Returns the loop's
    thread and what `send` said."""
    runner = web.AppRunner(create_app(load_config(b.home, b.env)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(b.url.rsplit(":", 1)[1])).start()
    try:
        await asyncio.to_thread(a.cli, "peers", "add", b.url, "--yes", "--as", "coord")
        await asyncio.to_thread(b.cli, "peers", "add", a.url, "--yes", "--as", "coord")
        added = await asyncio.to_thread(a.cli, "documents", "add", "100001", str(document), "--type", "iep",
                                        "--as", "coord", "--json")  # fmt: skip
        sent = await asyncio.to_thread(a.cli, "send", "--to", b.domain, "--student", "100001", "--documents",
                                       json.loads(added.stdout)["doc_id"], "--as", "coord", "--json")  # fmt: skip
        return threading.get_ident(), json.loads(sent.stdout)
    finally:
        await runner.cleanup()
