"""A disk that fills while an envelope is arriving: the upload passed the room check, then the disk ran out
(another program took the space). The receiver answers storage.full, keeps nothing of it, and takes the
envelope whole when the sender tries again.

The receiver serves from a small filesystem of its own, in a private mount namespace (``unshare``, no root
needed); the test sends the first megabyte as the sending node would (signed with its key), waits until the
receiver is writing it, fills that filesystem to the last byte, then sends the rest.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from node.home import open_node
from node.receiving import RECEIVING
from node.sending import ENVELOPE_TYPE
from node.signed_http import signed_request_headers
from node.transfer_delivery import ENVELOPE_ID_HEADER, ENVELOPE_PATH

from support import transfer_json

_SERVE_ON_SMALL_DISK = """
mount -t tmpfs -o size=24m tmpfs "$DISK" || exit 97
cp -a "$SOURCE" "$DISK/home" || exit 98
exec "$SATCHEL" serve --home "$DISK/home" --port "$PORT" --dev
"""
FIRST = 1 << 20


def _serve_on_small_disk(b, disk: Path) -> subprocess.Popen:
    port = b.url.rsplit(":", 1)[1]
    satchel = str(Path(sys.executable).with_name("satchel"))
    proc = subprocess.Popen(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _SERVE_ON_SMALL_DISK],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **b.env, "PYTHONUNBUFFERED": "1", "DISK": str(disk), "SOURCE": str(b.home),
             "SATCHEL": satchel, "PORT": port, "SATCHEL_STORAGE_RESERVE_MIB": "0"},  # the check: 6 MiB fit
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read()
        proc.wait(timeout=30)
        if proc.returncode == 97 or err.startswith("unshare:"):
            pytest.skip(f"this machine allows no private mount namespace for a small filesystem: {err[:300]}")
        raise AssertionError(f"the receiver did not start (exit {proc.returncode}): {err[-2000:]}")
    assert re.search(r"listening on http://127\.0\.0\.1:\d+", line), line
    return proc


def _transfers_at_b(b, proc: subprocess.Popen, disk: Path) -> list[dict]:
    """`satchel transfers list` on B's home, run inside B's namespace, where its small disk is mounted."""
    satchel = str(Path(sys.executable).with_name("satchel"))
    listed = subprocess.run(
        ["nsenter", "--target", str(proc.pid), "--user", "--mount", "--preserve-credentials", satchel, "transfers",
         "list", "--json", "--home", str(disk / "home")],
        env={**os.environ, **b.env}, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(listed.stdout)


def _fill(disk: Path) -> None:
    """Write zeros on ``disk`` until it has no block left."""
    with (disk / "filler").open("wb") as out:
        zeros = bytes(64 << 10)
        try:
            while True:
                out.write(zeros)
                out.flush()
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    small = bytes(512)
    with (disk / "filler-tail").open("wb", buffering=0) as out:
        try:
            while out.write(small):
                pass
        except OSError as exc:
            assert exc.errno == 28, exc


async def _upload_filling_the_disk(a, b, tid: str, data: bytes, disk: Path) -> tuple[int, dict] | str:
    """Send the envelope as A's node does; after the first megabyte, once B writes it, fill B's disk."""
    node = open_node(a.home)
    try:
        identity = node.current_keys().identity
    finally:
        node.close()
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"
    url = b.url + ENVELOPE_PATH
    _view, headers = signed_request_headers(
        method="POST", url=url, body=b"", content_type=ENVELOPE_TYPE, key=identity, origin=a.url,
        body_digest=digest, extra_headers=((ENVELOPE_ID_HEADER, tid),),
    )  # fmt: skip
    inbox = disk / "home" / "envelopes" / "in"

    async def body() -> AsyncIterator[bytes]:
        yield data[:FIRST]
        for _ in range(200):  # B writes only after the header passed its checks, the room check among them
            if any(p.stat().st_size > 0 for p in inbox.glob(f"{RECEIVING}-*")):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("B never started writing the envelope")
        await asyncio.to_thread(_fill, disk)
        for start in range(FIRST, len(data), 64 << 10):
            yield data[start : start + (64 << 10)]

    async with aiohttp.ClientSession() as session:
        try:
            async with session.post(url, data=body(), headers=[*headers, ("Content-Length", str(len(data)))]) as r:
                return r.status, json.loads(await r.read())
        except aiohttp.ClientError as exc:  # B answered and closed before the last bytes went out
            return type(exc).__name__


def test_an_envelope_is_refused_whole_when_the_disk_fills_mid_upload(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    document = tmp_path / "evaluation.pdf"
    document.write_bytes(os.urandom(6 << 20))
    a.cli("documents", "add", "100001", str(document), "--type", "evaluation", "--as", "coord")
    a.stop()  # only the test, then the command below, deliver
    b.stop()
    sent = json.loads(a.cli("send", "--to", "b.example.org", "--student", "100001", "--all-records", "--as",
                            "coord", "--json").stdout)  # fmt: skip
    tid = sent["transfer_id"]
    assert transfer_json(a, tid)["state"] == "sealed"
    [envelope] = (a.home / "envelopes" / "out").glob(f"{tid}*")
    sealed = envelope.read_bytes()  # A drops its copy once delivered
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = _serve_on_small_disk(b, disk)
    seen = Path(f"/proc/{proc.pid}/root") / str(disk).lstrip("/")  # the small disk, as B sees it
    try:
        answer = asyncio.run(_upload_filling_the_disk(a, b, tid, sealed, seen))
        assert (seen / "filler").exists(), "the disk was to fill after B's room check, not before"
        # B answered storage.full (or closed the connection on the unread rest, as servers do once they
        # have answered); either way it kept nothing of the envelope and knows nothing of the transfer.
        if not isinstance(answer, str):
            status, problem = answer
            assert (status, problem["error"]["code"]) == (507, "storage.full"), answer
        assert list((seen / "home" / "envelopes" / "in").iterdir()) == []
        (seen / "filler").unlink()
        (seen / "filler-tail").unlink()
        assert _transfers_at_b(b, proc, disk) == []
        # Room again: A's coordinator retries, and the whole envelope goes through.
        assert f"Transfer {tid}: delivered." in a.cli("transfers", "retry", tid, "--as", "coord").stdout
        [received] = _transfers_at_b(b, proc, disk)
        assert received["transfer_id"] == tid and received["state"] == "received"
        assert (seen / "home" / "envelopes" / "in" / f"{tid}.env").read_bytes() == sealed
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    # Refused while writing (the middleware's storage error), not by the room check before the first byte.
    assert "request POST /satchel/v1/envelopes failed: " in err and "no room for a " not in err, err[-3000:]
    assert "Traceback" not in err and "internal error" not in err
