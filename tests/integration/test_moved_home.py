"""A home moved to another directory (a larger disk, a restored backup) keeps its transfers working.

The transfers table records where each sealed envelope was written; the node finds it under its home as it
is now, so a pending transfer is still delivered and accepted after the move.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def _send(a, *args: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)


def _state(d, transfer_id: str) -> str:
    return json.loads(d.cli("transfers", "show", transfer_id, "--json").stdout)["state"]


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def _move(d, to: Path) -> None:
    d.stop()
    os.rename(d.home, to)  # the old directory is gone, as after a move to another disk
    d.home = to


def test_pending_transfers_are_delivered_and_accepted_after_both_homes_moved(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    document = tmp_path / "iep.pdf"
    document.write_bytes(os.urandom(1 << 20))
    a.cli("documents", "add", "100001", str(document), "--type", "iep", "--as", "coord")
    received = _send(a, "--student", "100001", "--all-records")  # delivered, waiting for its code at B
    _wait(lambda: _state(b, received["transfer_id"]) == "received")
    b.stop()
    sealed = _send(a, "--student", "100002")  # B is down: sealed at A, waiting for delivery
    assert _state(a, sealed["transfer_id"]) == "sealed"
    (tmp_path / "bigger-disk").mkdir()
    _move(a, tmp_path / "bigger-disk" / "a")
    _move(b, tmp_path / "bigger-disk" / "b")
    a.start()
    b.start()
    _wait(lambda: _state(a, sealed["transfer_id"]) == "delivered")  # read from A's new home
    accepted = b.cli("accept", received["transfer_id"], "--code", received["code"], "--as", "coord")
    assert "1 record(s)" in accepted.stdout, accepted.stdout
    assert _state(b, received["transfer_id"]) == "accepted"
    assert not (b.home / "envelopes" / "in" / f"{received['transfer_id']}.env").exists()  # opened: removed
