"""`satchel backup`: taken while the node serves, restored by putting it in place, and brought up to date."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support import make_district, run_cli, transfer_json, wait_until


def _send(a, *args: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)


def _backup(d, dest: Path, *more: str, ok: bool = True):
    return d.cli("backup", str(dest), "--as", "admin", "--json", *more, ok=ok)


def _add_document(d, tmp_path: Path, student: str, size: int) -> tuple[str, str]:
    path = tmp_path / f"doc-{os.urandom(4).hex()}.pdf"
    path.write_bytes(os.urandom(size))
    added = json.loads(d.cli("documents", "add", student, str(path), "--type", "iep", "--as", "coord",
                             "--json").stdout)  # fmt: skip
    return added["doc_id"], hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_backup_taken_while_serving_restores_the_node_whole(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    _add_document(a, tmp_path, "100001", 1 << 20)
    pending = _send(a, "--student", "100001", "--all-records")  # at B: received, waiting for its code
    wait_until(lambda: transfer_json(b, pending["transfer_id"])["state"] == "received")
    students = b.cli("students", "list", "--json").stdout
    dest = tmp_path / "backups" / "b"
    taken = json.loads(_backup(b, dest).stdout)  # B keeps serving meanwhile
    assert taken["whole"] and taken["envelopes"] == 1 and taken["database_bytes"] > 0
    assert json.loads((dest / "BACKUP.json").read_text())["domain"] == "b.example.org"
    assert not (dest / "satchel.db-wal").exists()  # one self-contained database file
    assert sqlite3.connect(dest / "satchel.db").execute("PRAGMA integrity_check").fetchone() == ("ok",)
    for key in (dest / "keys").iterdir():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    checked = json.loads(run_cli(dest, "check", "--blobs", "--json").stdout)  # the backup, checked as a home
    assert checked["whole"] and checked["envelopes_waiting"] == 1
    audit = json.loads(b.cli("audit", "--json").stdout)
    assert audit[0]["action"] == "home.backup" and audit[0]["actor"] == "admin"

    # The machine dies; the backup is put in its place and the node starts from it.
    b.stop()
    shutil.rmtree(b.home)
    b.home = dest
    b.start()
    assert b.cli("students", "list", "--json").stdout == students
    b.cli("audit", "verify")
    b.cli("accept", pending["transfer_id"], "--code", pending["code"], "--as", "coord")  # its keys, its envelope
    assert transfer_json(b, pending["transfer_id"])["state"] == "accepted"
    again = _send(a, "--student", "100002")  # A still reaches B, at the same address
    wait_until(lambda: transfer_json(a, again["transfer_id"])["state"] == "delivered")


def test_a_backup_brought_up_to_date_copies_what_is_new_and_drops_what_is_purged(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    kept, _ = _add_document(a, tmp_path, "100001", 200_000)
    purged, purged_sha = _add_document(a, tmp_path, "100002", 300_000)
    dest = tmp_path / "backup"
    first = json.loads(_backup(a, dest).stdout)
    assert (first["blobs"], first["blobs_copied"], first["removed"]) == (2, 2, 0)
    assert first["bytes_copied"] == 500_000
    second = json.loads(_backup(a, dest).stdout)
    assert (second["blobs"], second["blobs_copied"], second["bytes_copied"]) == (2, 0, 0)  # nothing new
    a.cli("purge", purged, "--as", "admin")
    _add_document(a, tmp_path, "100003", 100_000)
    third = json.loads(_backup(a, dest).stdout)
    assert (third["blobs"], third["blobs_copied"], third["removed"]) == (2, 1, 1)
    assert not list(dest.rglob(purged_sha))  # erased for good: from the latest backup too
    assert third["whole"]
    table = a.cli("backup", str(dest), "--as", "admin").stdout
    assert "Database" in table and "integrity checked" in table and "keep it as safe as the home" in table
    assert kept


def test_a_damaged_blob_is_not_copied_and_the_backup_says_so(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    _, sha = _add_document(a, tmp_path, "100001", 100_000)
    blob = a.home / "blobs" / "sha256" / sha[:2] / sha
    os.chmod(blob, 0o644)
    damaged = bytearray(blob.read_bytes())
    damaged[5000] ^= 1  # one flipped bit: bit rot
    blob.write_bytes(bytes(damaged))
    result = _backup(a, tmp_path / "backup", ok=False)
    assert result.exit_code == 1
    assert f"Damaged: blob {sha} no longer matches its SHA-256 and was not copied" in result.stderr
    assert "Hint: take these from an older backup" in result.stderr
    assert json.loads(result.stdout)["damaged"] == [sha] and not json.loads(result.stdout)["whole"]
    assert not list((tmp_path / "backup").rglob(sha))


def test_a_file_the_home_lost_is_kept_by_the_backup_that_holds_it(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    _, sha = _add_document(a, tmp_path, "100001", 100_000)
    dest = tmp_path / "backup"
    assert json.loads(_backup(a, dest).stdout)["whole"]
    good = dest / "blobs" / "sha256" / sha[:2] / sha
    # The home loses the document's bytes (a disk error, an rm by mistake); cron runs the nightly backup.
    (a.home / "blobs" / "sha256" / sha[:2] / sha).unlink()
    nightly = _backup(a, dest, ok=False)
    assert nightly.exit_code == 1  # the home needs attention…
    report = json.loads(nightly.stdout)
    assert report["lost_from_home"] == [f"blobs/sha256/{sha[:2]}/{sha}"] and report["removed"] == 0
    assert f"Lost from the home: blobs/sha256/{sha[:2]}/{sha} is used by the database" in nightly.stderr
    assert f"Hint: copy them back from {dest}" in nightly.stderr
    # …and the backup still holds the only good copy: it is whole, and the home is restored from it.
    assert good.is_file() and report["whole"]
    assert json.loads(run_cli(dest, "check", "--json").stdout)["whole"]
    shutil.copy2(good, a.home / "blobs" / "sha256" / sha[:2] / sha)
    assert json.loads(a.cli("check", "--json").stdout)["whole"]


def test_where_a_backup_may_go_and_who_may_take_it(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    inside = _backup(a, a.home / "backup", ok=False)
    assert inside.exit_code == 2 and "overlaps the home" in inside.stderr
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"\xff\xd8")
    refused = _backup(a, other, ok=False)
    assert refused.exit_code == 2 and "holds something that is not a Satchel backup" in refused.stderr
    assert (other / "holiday.jpg").exists() and len(list(other.iterdir())) == 1
    b = make_district(tmp_path, "b.example.org")
    _backup(b, tmp_path / "b-backup")
    mixed = _backup(a, tmp_path / "b-backup", ok=False)
    assert mixed.exit_code == 2 and "already holds a backup of b.example.org" in mixed.stderr
    odd = json.loads(_backup(a, tmp_path / "nightly #1?").stdout)  # no URI parts, whatever the name holds
    assert odd["whole"]
    nowhere = _backup(a, Path("/proc/satchel-backup"), ok=False)  # a directory that cannot be made there
    assert nowhere.exit_code == 2 and "Error: cannot write the backup at /proc/satchel-backup: " in nowhere.stderr
    assert "(error code backup.destination_failed)" in nowhere.stderr and "internal error" not in nowhere.stderr
    coordinator = a.cli("backup", str(tmp_path / "new"), "--as", "coord", ok=False)
    assert coordinator.exit_code == 2 and "operator.forbidden" in coordinator.stderr
    assert not (tmp_path / "new").exists()


def test_a_backup_killed_mid_way_is_finished_by_the_next_one(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    _, sha = _add_document(a, tmp_path, "100001", 96 << 20)
    dest = tmp_path / "backup"
    satchel = str(Path(sys.executable).with_name("satchel"))
    copying = subprocess.Popen(
        [satchel, "backup", str(dest), "--home", str(a.home), "--as", "admin"], env={**os.environ, **a.env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: bool(list(dest.rglob(f".{sha}.partial"))), timeout=60)  # in the middle of the document
    finally:
        copying.kill()
        copying.wait()
    assert json.loads((dest / "BACKUP.json").read_text())["complete"] is False
    again = json.loads(_backup(a, dest).stdout)  # the directory is this node's unfinished backup: go on
    assert again["whole"] and again["blobs"] == 1
    assert not list(dest.rglob(".*.partial"))
    assert json.loads((dest / "BACKUP.json").read_text())["complete"] is True


def test_a_backup_disk_too_small_is_refused_before_copying(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    _add_document(a, tmp_path, "100001", 3 << 20)
    disk = tmp_path / "usb"
    disk.mkdir()
    satchel = str(Path(sys.executable).with_name("satchel"))
    # A 2 MiB filesystem of its own, in a private mount namespace (no root needed), stands for the small disk.
    script = 'mount -t tmpfs -o size=2m tmpfs "$DISK" || exit 97; exec "$@"'
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
         satchel, "backup", str(disk / "satchel"), "--as", "admin", "--home", str(a.home)],
        env={**os.environ, **a.env, "DISK": str(disk)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode == 97 or done.stderr.startswith("unshare:"):
        pytest.skip(f"this machine allows no private mount namespace: {done.stderr[:300]}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"Error: backing up {a.home.resolve()} needs " in done.stderr and "which has " in done.stderr
    assert "or back up to a larger disk" in done.stderr and "(error code storage.full)" in done.stderr
