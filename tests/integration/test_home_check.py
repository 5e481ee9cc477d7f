"""`satchel check`: a sound home passes; each kind of damage is named, with what to do, and exit status 1."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

from support import make_district


def _add_document(d, tmp_path: Path, student: str, size: int) -> str:
    path = tmp_path / f"doc-{os.urandom(4).hex()}.pdf"
    path.write_bytes(os.urandom(size))
    d.cli("documents", "add", student, str(path), "--type", "iep", "--as", "coord")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check(d, *more: str, ok: bool = True):
    return d.cli("check", *more, ok=ok)


def test_a_sound_home_passes_and_damage_is_named(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    lost = _add_document(a, tmp_path, "100001", 50_000)
    rotten = _add_document(a, tmp_path, "100002", 70_000)
    sound = json.loads(_check(a, "--blobs", "--json").stdout)
    assert sound["whole"] and sound["blobs_used"] == 2 and sound["blobs_hashed"] == 2
    assert sound["audit_entries"] > 0 and sound["database"] == [] and sound["missing"] == []
    table = _check(a).stdout
    assert "integrity check passed" in table and "hash chain verified" in table and "add --blobs" in table

    (a.home / "blobs" / "sha256" / lost[:2] / lost).unlink()
    blob = a.home / "blobs" / "sha256" / rotten[:2] / rotten
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x40  # bit rot: same size, other bytes
    blob.write_bytes(bytes(data))
    found = _check(a, "--blobs", ok=False)
    assert found.exit_code == 1
    assert f"Missing: blob {lost}" in found.stderr
    assert f"Damaged: blob {rotten} no longer matches its SHA-256" in found.stderr
    assert "Hint: restore what is named from the latest backup" in found.stderr
    assert "(error code storage.blob_missing)" in found.stderr and "(error code storage.blob_corrupt)" in found.stderr
    # Without --blobs the contents are not read: the missing file is still found, the rot is not looked for.
    quick = json.loads(_check(a, "--json", ok=False).stdout)
    assert quick["missing"] == [f"blob {lost}"] and quick["damaged"] == [] and quick["blobs_hashed"] is None


def test_an_edited_audit_log_is_named(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    with sqlite3.connect(a.home / "satchel.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    found = _check(a, ok=False)
    assert found.exit_code == 1 and "Audit log: audit entry 2 was modified" in found.stderr
    assert "(error code audit.chain_broken)" in found.stderr


def test_a_waiting_envelope_that_is_gone_is_named(pair) -> None:
    a, b, _ = pair
    b.stop()
    tid = json.loads(a.cli("send", "--to", "b.example.org", "--student", "100001", "--as", "coord",
                           "--json").stdout)["transfer_id"]  # fmt: skip
    assert json.loads(_check(a, "--json").stdout)["envelopes_waiting"] == 1
    a.stop()  # its outbox worker would otherwise keep reading the envelope
    (a.home / "envelopes" / "out" / f"{tid}.env").unlink()
    found = _check(a, ok=False)
    assert f"Missing: envelope of transfer {tid}" in found.stderr


def test_a_home_other_users_may_read_is_named_and_a_new_one_is_not(tmp_path: Path) -> None:
    a = make_district(tmp_path, "a.example.org")
    assert stat.S_IMODE(a.home.stat().st_mode) == 0o700  # made so by init
    for name in ("satchel.db", "satchel.toml"):
        assert stat.S_IMODE((a.home / name).stat().st_mode) == 0o600, name
    assert json.loads(_check(a, "--json").stdout)["exposed"] is None
    os.chmod(a.home, 0o755)  # as homes were made before: the database readable by every user
    found = _check(a, ok=False)
    assert found.exit_code == 1 and "other users may enter (mode 0755)" in found.stdout
    assert f"fix it with `chmod 700 {a.home}`" in found.stderr and "restore" not in found.stderr
    os.chmod(a.home, 0o700)
    assert json.loads(_check(a, "--json").stdout)["whole"]
