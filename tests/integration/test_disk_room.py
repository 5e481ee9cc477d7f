"""A disk without room: every large write is refused before it starts, clearly, and nothing is lost.

The reserve (``storage.reserve_mib``) is set above the disk's real free space to make a node short of room;
the last test fills a real (small, private) filesystem to the last byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import node_fields, transfer_json, wait_until


def _send(a, *args: str, ok: bool = True):
    return a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json", ok=ok)


def _beyond_free(home: Path) -> str:
    """A reserve, in MiB, larger than all the space free on the disk of ``home``."""
    reserve = (shutil.disk_usage(home).free >> 20) + 1024
    assert reserve <= 1 << 20, "the test disk has more than 1 TiB free; the reserve cannot exceed it"
    return str(reserve)


def test_a_receiver_without_room_refuses_before_writing_and_is_sent_it_later(pair) -> None:
    a, b, _ = pair
    b.stop()
    b.env["SATCHEL_STORAGE_RESERVE_MIB"] = _beyond_free(b.home)
    b.start()
    sent = _send(a, "--student", "100001", "--all-records")
    tid = json.loads(sent.stdout)["transfer_id"]
    # The coordinator who sent it reads at once that it waits, and why.
    assert "Not delivered to b.example.org yet: storage.full: " in sent.stderr
    assert "Hint: the serving node (`satchel serve`) tries again on its own" in sent.stderr
    shown = transfer_json(a, tid)
    assert shown["state"] == "sealed"  # kept by the sender, to be tried again
    assert shown["delivery"]["attempts"] >= 1
    assert shown["delivery"]["last_error"].startswith("storage.full: ")
    assert "b.example.org has no room for a " in shown["delivery"]["last_error"]
    assert shown["delivery"]["last_error"].endswith("; their hint: your node keeps the envelope and tries again "
                                                    "later; its operator has been told in the node's log")
    table = a.cli("transfers", "show", tid).stdout
    assert "Delivery" in table and "storage.full" in table
    [listed] = json.loads(a.cli("transfers", "list", "--json").stdout)
    assert listed["delivery_error"].startswith("storage.full: ")
    assert "sealed (not delivered yet)" in a.cli("transfers", "list").stdout
    # The receiver wrote nothing: no transfer, no partial file; its operator reads why in the log.
    assert json.loads(b.cli("transfers", "list", "--json").stdout) == []
    inbox = b.home / "envelopes" / "in"
    assert not (inbox.is_dir() and list(inbox.iterdir()))
    assert b.served is not None
    log = b.served.stop()
    b.served = None
    assert "no room for a " in log and "(storage.reserve_mib); free " in log
    del b.env["SATCHEL_STORAGE_RESERVE_MIB"]
    b.start()
    wait_until(lambda: transfer_json(a, tid)["state"] == "delivered")
    assert transfer_json(a, tid)["delivery"] is None
    assert json.loads(a.cli("transfers", "list", "--json").stdout)[0]["delivery_error"] is None
    assert [t["transfer_id"] for t in json.loads(b.cli("transfers", "list", "--json").stdout)] == [tid]


def test_a_sender_without_room_refuses_to_seal_and_keeps_nothing(pair, tmp_path: Path) -> None:
    a, _b, _ = pair
    document = tmp_path / "iep.pdf"
    document.write_bytes(os.urandom(3 << 20))
    a.cli("documents", "add", "100001", str(document), "--type", "iep", "--as", "coord")
    a.env["SATCHEL_STORAGE_RESERVE_MIB"] = _beyond_free(a.home)
    refused = _send(a, "--student", "100001", "--all-records", ok=False)
    assert refused.exit_code == 2
    assert "Error: sealing the transfer needs 3.0 MiB on the disk that holds " in refused.stderr
    assert "(storage.reserve_mib)" in refused.stderr and "Hint: free at least " in refused.stderr
    assert "(error code storage.full)" in refused.stderr
    assert json.loads(a.cli("transfers", "list", "--json").stdout) == []
    assert not list((a.home / "envelopes" / "out").glob("*"))


def test_a_document_without_room_is_refused_before_it_is_copied(pair, tmp_path: Path) -> None:
    a, _b, _ = pair
    document = tmp_path / "disk-image.iso"
    with document.open("wb") as handle:
        handle.truncate(shutil.disk_usage(a.home).free + (1 << 30))  # sparse: more than the disk has, none taken
    refused = a.cli("documents", "add", "100001", str(document), "--type", "other", "--as", "coord", ok=False)
    assert "Error: storing disk-image.iso needs " in refused.stderr and " on the disk that holds " in refused.stderr
    assert "(error code storage.full)" in refused.stderr and "Hint: free at least " in refused.stderr
    small = tmp_path / "iep.pdf"
    small.write_bytes(os.urandom(1 << 20))
    a.env["SATCHEL_STORAGE_RESERVE_MIB"] = _beyond_free(a.home)  # room for the file, not for the reserve too
    short = a.cli("documents", "add", "100001", str(small), "--type", "iep", "--as", "coord", ok=False)
    del a.env["SATCHEL_STORAGE_RESERVE_MIB"]
    assert "(storage.reserve_mib)" in short.stderr and "(error code storage.full)" in short.stderr
    assert json.loads(a.cli("documents", "list", "100001", "--json").stdout) == []
    assert not [p for p in (a.home / "blobs").rglob("*") if p.is_file()]


def test_accepting_without_room_is_refused_before_the_code_is_tried(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    document = tmp_path / "evaluation.pdf"
    document.write_bytes(os.urandom(2 << 20))
    a.cli("documents", "add", "100001", str(document), "--type", "evaluation", "--as", "coord")
    sent = json.loads(_send(a, "--student", "100001", "--all-records").stdout)
    tid, code = sent["transfer_id"], sent["code"]
    wait_until(lambda: transfer_json(b, tid)["state"] == "received")
    b.env["SATCHEL_STORAGE_RESERVE_MIB"] = _beyond_free(b.home)  # for the command; the server keeps its own
    short = b.cli("accept", tid, "--code", code, "--as", "coord", ok=False)
    assert short.exit_code == 2, short.output
    assert "Error: opening the transfer needs 2.0 MiB on the disk that holds " in short.stderr
    assert "(error code storage.full)" in short.stderr
    b.env.pop("SATCHEL_STORAGE_RESERVE_MIB", None)
    assert transfer_json(b, tid)["state"] == "received" and transfer_json(b, tid)["wrong_codes"] == 0
    assert not [p for p in (b.home / "blobs").rglob("*") if p.is_file() and p.stat().st_size >= 2 << 20]
    b.cli("accept", tid, "--code", code, "--as", "coord")
    assert transfer_json(b, tid)["state"] == "accepted"


# Run inside a private mount namespace (``unshare``), so that a small filesystem of its own can be filled to
# the last byte without root and without touching the machine's disks.
_FULL_DISK = """
set -u
mount -t tmpfs -o size=8m tmpfs "$DISK" || exit 97
cp -a "$TEMPLATE" "$DISK/home"
dd if=/dev/zero of="$DISK/filler" bs=4k 2>/dev/null
echo "== users add"; "$SATCHEL" users add bob --email bob@a.example.org --name Bob --role coordinator \
    --as admin --home "$DISK/home"; echo "rc=$?"
echo "== serve"; "$SATCHEL" serve --home "$DISK/home" --port 0 --dev; echo "rc=$?"
rm "$DISK/filler"
echo "== users list"; "$SATCHEL" users list --json --home "$DISK/home"
"""


def test_a_full_disk_is_named_as_such_and_nothing_is_changed(tmp_path: Path) -> None:
    from node.home import init_home

    from support import run_cli

    template = tmp_path / "home"
    init_home(template, node=node_fields("a.example.org"))
    run_cli(template, "users", "add", "admin", "--email", "admin@a.example.org", "--name", "Ada", "--role", "admin")
    disk = tmp_path / "disk"
    disk.mkdir()
    satchel = str(Path(sys.executable).with_name("satchel"))
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _FULL_DISK],
        env={**os.environ, "DISK": str(disk), "TEMPLATE": str(template), "SATCHEL": satchel},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode == 97 or done.stderr.startswith("unshare:"):
        pytest.skip(f"this machine allows no private mount namespace for a small filesystem: {done.stderr[:300]}")
    out, err = done.stdout, done.stderr
    added, served, listed = out.split("== users add\n")[1].split("== serve\n")[0], \
        out.split("== serve\n")[1].split("== users list\n")[0], out.split("== users list\n")[1]  # fmt: skip
    # Each command said what is wrong and what to do, with its code, instead of "unexpected internal error".
    assert added.strip() == "rc=2" and served.strip() == "rc=2", out + err
    assert err.count("Error: the disk holding the database is full") == 2, err
    assert err.count("Hint: free space on the disk that holds the node's home") == 2
    assert err.count("(error code storage.full)") == 2 and "internal error" not in err and "Traceback" not in err
    # Once there is room again, the home is as it was: the refused command changed nothing.
    assert [u["username"] for u in json.loads(listed)] == ["admin"]


def test_a_coordinator_retries_at_once_when_the_receiver_has_made_room(pair) -> None:
    a, b, _ = pair
    a.stop()  # no serving node at A: only the commands below deliver
    b.stop()
    b.env["SATCHEL_STORAGE_RESERVE_MIB"] = _beyond_free(b.home)
    b.start()
    tid = json.loads(_send(a, "--student", "100001").stdout)["transfer_id"]
    still = a.cli("transfers", "retry", tid, "--as", "coord", ok=False)
    assert still.exit_code == 1
    assert "still not delivered; last answer: storage.full: " in still.stderr and "tries again at " in still.stderr
    b.stop()
    del b.env["SATCHEL_STORAGE_RESERVE_MIB"]
    b.start()  # B's IT has made room; A's next try may be far off (backoff), the coordinator need not wait
    done = a.cli("transfers", "retry", tid, "--as", "coord")
    assert f"Transfer {tid}: delivered." in done.stdout
    assert transfer_json(a, tid)["state"] == "delivered"
    again = a.cli("transfers", "retry", tid, "--as", "coord", ok=False)
    assert again.exit_code == 2 and "is not waiting for delivery (state delivered)" in again.stderr
    assert any(e["action"] == "transfer.retry" for e in json.loads(a.cli("audit", "--json").stdout))
