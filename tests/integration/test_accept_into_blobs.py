"""Accepting opens documents straight into the blob store, held by the transfer until it is imported."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from node.home import open_node
from node.temp_sweep import sweep_orphans


def _send(a, *args: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)


def _add_document(a, tmp_path: Path, student: str, name: str, size: int) -> tuple[str, str]:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    added = json.loads(a.cli("documents", "add", student, str(path), "--type", "other", "--as", "coord",
                             "--json").stdout)  # fmt: skip
    return added["doc_id"], hashlib.sha256(path.read_bytes()).hexdigest()


def _wait_received(b, tid: str) -> None:
    deadline = time.monotonic() + 30
    while json.loads(b.cli("transfers", "show", tid, "--json").stdout)["state"] != "received":
        assert time.monotonic() < deadline, "not delivered in time"
        time.sleep(0.1)


def _blob(home: Path, sha: str) -> Path:
    return home / "blobs" / "sha256" / sha[:2] / sha


def _every_blob_is_whole(home: Path) -> list[Path]:
    stored = [p for p in (home / "blobs" / "sha256").rglob("*") if p.is_file()]
    for path in stored:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, f"{path} is not what its name says"
    return stored


def test_reject_after_accept_removes_the_blobs_only_that_transfer_held(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    shared_doc, shared = _add_document(a, tmp_path, "100001", "shared.pdf", 40_000)
    own_doc, own = _add_document(a, tmp_path, "100001", "own.pdf", 30_000)
    first = _send(a, "--student", "100001", "--documents", f"{shared_doc},{own_doc}")
    second = _send(a, "--student", "100001", "--documents", shared_doc)
    for sent in (first, second):
        _wait_received(b, sent["transfer_id"])
        b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord")
    assert _blob(b.home, shared).is_file() and _blob(b.home, own).is_file()
    assert not (b.home / "staging").exists() or not list((b.home / "staging").iterdir())

    b.cli("reject", first["transfer_id"], "--reason", "sent twice", "--as", "coord")
    assert not _blob(b.home, own).exists()
    assert _blob(b.home, shared).is_file()  # the second transfer still waits to import it

    # Imported, the blob belongs to a document; rejecting is no longer possible, purging the document is.
    b.cli("import", "preview", second["transfer_id"], "--as", "coord")
    b.cli("import", "run", second["transfer_id"], "--as", "coord")
    [doc] = json.loads(b.cli("documents", "list", "100001", "--json").stdout)
    assert (
        doc["sha256"] == shared
        and "signed by a.example.org" in b.cli("documents", "verify", doc["doc_id"]).stdout
    )
    b.cli("purge", doc["doc_id"], "--as", "admin")
    assert not _blob(b.home, shared).exists()
    assert "hash chain verified" in b.cli("audit", "verify").stdout


def test_a_failed_accept_leaves_no_blob_and_can_be_retried(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    doc_id, sha = _add_document(a, tmp_path, "100001", "report.pdf", 3 << 20)
    sent = _send(a, "--student", "100001", "--documents", doc_id)
    tid = sent["transfer_id"]
    _wait_received(b, tid)
    with sqlite3.connect(b.home / "satchel.db") as conn:
        envelope = Path(
            conn.execute("SELECT envelope_path FROM transfers WHERE transfer_id = ?", [tid]).fetchone()[0]
        )
    whole = envelope.read_bytes()
    # The disk lost the envelope's tail: the opener fails after writing part of the document.
    envelope.write_bytes(whole[: len(whole) - (1 << 20)])
    failed = b.cli("accept", tid, "--code", sent["code"], "--as", "coord", ok=False)
    assert failed.exit_code != 0
    assert not _blob(b.home, sha).exists()
    assert not list((b.home / "blobs" / "tmp").iterdir())
    shown = json.loads(b.cli("transfers", "show", tid, "--json").stdout)
    assert shown["state"] == "received" and shown["peer_trust"] == "pinned"
    shown_text = b.cli("transfers", "show", tid).stdout
    assert "a.example.org (pinned here after a fingerprint check)" in shown_text
    # Times are written one way in every column and field: UTC with Z, as created_at is.
    [listed] = json.loads(b.cli("transfers", "list", "--json").stdout)
    for when in (shown["created_at"], shown["expires_at"], listed["created_at"], listed["expires_at"],
                 sent["expires_at"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", when), when
    assert f"Expires:     {shown['expires_at']}" in shown_text

    envelope.write_bytes(whole)
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    assert _blob(b.home, sha).stat().st_size == 3 << 20
    assert not envelope.exists()


def test_accept_killed_midway_leaves_only_temp_files_and_a_retry_works(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    docs = [_add_document(a, tmp_path, "100001", f"d{n}.pdf", 4 << 20) for n in range(40)]
    sent = _send(a, "--student", "100001", "--documents", ",".join(d for d, _ in docs))
    tid = sent["transfer_id"]
    _wait_received(b, tid)
    b.stop()  # no server: only the accept below touches B's home
    satchel = str(Path(sys.executable).with_name("satchel"))
    command = [satchel, "accept", tid, "--code", sent["code"], "--as", "coord", "--home", str(b.home)]
    proc = subprocess.Popen(command, env={**os.environ, **b.env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    temp = b.home / "blobs" / "tmp"
    deadline = time.monotonic() + 60
    while not (temp.is_dir() and len(list(temp.iterdir())) >= 3):  # a few documents in
        assert time.monotonic() < deadline and proc.poll() is None, "the accept did not get going"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(temp.iterdir())
    assert _every_blob_is_whole(b.home) == []  # nothing under a real name before the whole envelope checked
    with sqlite3.connect(b.home / "satchel.db") as conn:
        assert (
            conn.execute("SELECT state FROM transfers WHERE transfer_id = ?", [tid]).fetchone()[0]
            == "received"
        )

    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    stored = _every_blob_is_whole(b.home)
    assert {p.name for p in stored} == {sha for _, sha in docs}
    # The killed accept's temp files stay until they are an hour old; then the server's sweep removes them.
    left = list(temp.iterdir())
    assert left
    node = open_node(b.home, {**os.environ, **b.env})
    try:
        assert sweep_orphans(node) == 0
        assert sweep_orphans(node, now=time.time() + 2 * 3600) == len(left)
    finally:
        node.close()
    assert not list(temp.iterdir()) and _every_blob_is_whole(b.home) == stored


def _staged_as_an_older_version_did(b, tid: str, shas: list[str]) -> Path:
    """What an older version left of an accepted transfer: the documents back to back in one staging file, no
    blobs."""
    staged = b.home / "staging" / f"{tid}.payload"
    staged.parent.mkdir(exist_ok=True)
    staged.write_bytes(b"".join(_blob(b.home, sha).read_bytes() for sha in shas))
    for sha in shas:
        _blob(b.home, sha).unlink()
    with sqlite3.connect(b.home / "satchel.db") as conn:
        conn.execute("DELETE FROM received_blobs WHERE transfer_id = ?", [tid])
        conn.execute("UPDATE transfers SET staging_path = ? WHERE transfer_id = ?", [str(staged), tid])
    return staged


def test_a_purge_takes_the_record_out_of_a_transfer_staged_by_an_older_version(pair, tmp_path: Path) -> None:
    # Found left over: the purge erased the record from the staged transfer's manifest, but its bytes stayed in
    # the staging file until that transfer was imported or rejected, which may be never.
    a, b, _ = pair
    purged, kept = (_add_document(a, tmp_path, "100001", f"doc{n}.pdf", 20_000 + n) for n in range(2))
    first = _send(a, "--student", "100001", "--documents", purged[0])
    _wait_received(b, first["transfer_id"])
    b.cli("accept", first["transfer_id"], "--code", first["code"], "--as", "coord")
    b.cli("import", "preview", first["transfer_id"], "--as", "coord")
    b.cli("import", "run", first["transfer_id"], "--as", "coord")
    # Sent again with another document, and accepted by an older version, which staged them.
    later = _send(a, "--student", "100001", "--documents", f"{purged[0]},{kept[0]}")
    _wait_received(b, later["transfer_id"])
    b.cli("accept", later["transfer_id"], "--code", later["code"], "--as", "coord")
    staged = _staged_as_an_older_version_did(b, later["transfer_id"], [purged[1], kept[1]])
    [landed] = [d for d in json.loads(b.cli("documents", "list", "100001", "--json").stdout)
                if d["sha256"] == purged[1]]  # fmt: skip
    b.cli("purge", landed["doc_id"], "--as", "admin")
    assert not staged.exists()
    assert {p.name for p in _every_blob_is_whole(b.home)} >= {kept[1]}
    assert not _blob(b.home, purged[1]).exists()
    # The transfer imports the other document as before.
    b.cli("import", "preview", later["transfer_id"], "--as", "coord")
    b.cli("import", "run", later["transfer_id"], "--as", "coord")
    listed = json.loads(b.cli("documents", "list", "100001", "--json").stdout)
    assert kept[1] in {d["sha256"] for d in listed} and purged[1] not in {d["sha256"] for d in listed
                                                                            if d["status"] != "purged"}


def test_a_transfer_staged_by_an_older_version_still_imports(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    docs = [_add_document(a, tmp_path, "100001", f"old{n}.pdf", 10_000 + n) for n in range(3)]
    sent = _send(a, "--student", "100001", "--documents", ",".join(d for d, _ in docs))
    tid = sent["transfer_id"]
    _wait_received(b, tid)
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    staged = _staged_as_an_older_version_did(b, tid, [sha for _, sha in docs])
    b.cli("import", "preview", tid, "--as", "coord")
    b.cli("import", "run", tid, "--as", "coord")
    listed = json.loads(b.cli("documents", "list", "100001", "--json").stdout)
    assert sorted(d["sha256"] for d in listed) == sorted(sha for _, sha in docs)
    assert len(_every_blob_is_whole(b.home)) == 3 and not staged.exists()


def test_a_new_document_gets_its_blob_name_only_in_the_transaction_that_records_it(
    pair, tmp_path: Path
) -> None:
    """A purge deletes a blob no document uses, checking and deleting under the write lock; so `documents add`
    renames its blob into place under that lock too, or a purge of the last document with the same bytes could
    delete them between the rename and the new document's row."""
    a, _, _ = pair
    path = tmp_path / "late.pdf"
    path.write_bytes(os.urandom(300_000))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    satchel = str(Path(sys.executable).with_name("satchel"))
    command = [satchel, "documents", "add", "100001", str(path), "--type", "other", "--as", "coord",
               "--home", str(a.home)]  # fmt: skip
    holder = sqlite3.connect(a.home / "satchel.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the lock a purge holds while it checks and deletes
        proc = subprocess.Popen(command, env={**os.environ, **a.env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # fmt: skip
        temp = a.home / "blobs" / "tmp"
        deadline = time.monotonic() + 30
        while not (temp.is_dir() and any(p.stat().st_size == 300_000 for p in temp.iterdir())):
            assert time.monotonic() < deadline and proc.poll() is None, "the bytes were not staged"
            time.sleep(0.01)
        time.sleep(0.3)
        assert proc.poll() is None  # waiting for the lock…
        assert not _blob(a.home, sha).exists()  # …with its bytes not yet under their name
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _blob(a.home, sha).is_file() and not list(temp.iterdir())
