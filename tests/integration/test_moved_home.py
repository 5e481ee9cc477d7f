"""A home moved to another directory (a larger disk, a restored backup) keeps its transfers working.

The transfers table records where each sealed envelope was written; the node finds it under its home as it
is now, so a pending transfer is still delivered and accepted after the move.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from support import transfer_json, wait_until


def _send(a, *args: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)


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
    wait_until(lambda: transfer_json(b, received["transfer_id"])["state"] == "received")
    b.stop()
    sealed = _send(a, "--student", "100002")  # B is down: sealed at A, waiting for delivery
    assert transfer_json(a, sealed["transfer_id"])["state"] == "sealed"
    (tmp_path / "bigger-disk").mkdir()
    _move(a, tmp_path / "bigger-disk" / "a")
    _move(b, tmp_path / "bigger-disk" / "b")
    a.start()
    b.start()
    wait_until(lambda: transfer_json(a, sealed["transfer_id"])["state"] == "delivered")  # read from A's new home
    accepted = b.cli("accept", received["transfer_id"], "--code", received["code"], "--as", "coord")
    assert "1 record(s)" in accepted.stdout, accepted.stdout
    assert transfer_json(b, received["transfer_id"])["state"] == "accepted"
    assert not (b.home / "envelopes" / "in" / f"{received['transfer_id']}.env").exists()  # opened: removed
