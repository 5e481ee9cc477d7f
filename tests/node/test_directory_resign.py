"""A directory whose identity key changes signs its own entries again a batch to a transaction: other writers
wait for a batch at most, and a walk stopped mid-way leaves every entry valid and is completed later."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto import EncryptionKey, IdentityKey, IdentityPublicKey
from node import directory_resign, directory_service
from node.clock import now_iso
from node.home import Node, open_node
from protocol.descriptor import Descriptor, sign_descriptor
from protocol.directory import DirectoryEntry, read_entry, sign_entry, sign_listing, verify_listing
from protocol.signed_document import b64url
from storage import settings
from storage.database import write_transaction

from support import DEV_ENV, ServedNode, free_port, published_key, run_cli

DIRECTORY = "directory.example.gov"
APPROVED = "2026-01-05T00:00:00Z"
# Signing one again takes about a millisecond: in one transaction, these held every other writer 3-4 s.
ENTRIES = 3000
# What another writer may wait for while they are signed again: a batch's write is a few milliseconds; the
# rest is room for a loaded machine.
WAIT_BOUND = 1.0
_DISTRICT_KEY, _ENCRYPTION_KEY = IdentityKey.generate(), EncryptionKey.generate()


@functools.cache
def _descriptor(domain: str) -> bytes:
    """A district's real signed descriptor (an identity and a hybrid encryption key): entries of 6.4 KB."""
    return sign_descriptor(Descriptor(
        role="district", domain=domain, name=f"School District of {domain}", state="IL", city="Springfield",
        zip="62701", nces_id="", base_url=f"https://satchel.{domain}", transfers_enabled=True, coordinator=None,
        keys=(published_key(_DISTRICT_KEY, "identity"), published_key(_ENCRYPTION_KEY, "encryption")),
        issued_at=APPROVED,
    ), _DISTRICT_KEY)  # fmt: skip


def _domains() -> list[str]:
    return [f"d{i:05}.example.org" for i in range(ENTRIES)]


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Path]:
    """A directory home with ENTRIES approved members, their entries signed by its key."""
    home = tmp_path / DIRECTORY
    run_cli(home, "directory", "init", "--domain", DIRECTORY, "--name", "State Board", "--state", "IL", "--city",
            "Springfield", "--zip", "62777", "--url", f"http://127.0.0.1:{free_port()}", env=DEV_ENV)  # fmt: skip
    run_cli(home, "users", "add", "op", "--email", "op@example.gov", "--name", "Op", "--role", "admin")
    with open_node(home, DEV_ENV) as node, write_transaction(node.db):
        key = node.current_keys().identity
        node.db.conn.executemany(
            "INSERT INTO directory_entries (domain, status, published, origin, name, state, city, zip, nces_id,"
            " descriptor, entry, joined_at, decided_at, decided_by, updated_at) VALUES (?, 'approved', 1, ?, ?,"
            " 'IL', 'Springfield', '62701', '', ?, ?, ?, ?, 'op', ?)",
            [(domain, DIRECTORY, domain, _descriptor(domain), _entry(domain, key), APPROVED, APPROVED, APPROVED)
             for domain in _domains()],
        )  # fmt: skip
    yield home


def _entry(domain: str, key: IdentityKey) -> bytes:
    entry = DirectoryEntry(directory=DIRECTORY, domain=domain, status="approved", approved_at=APPROVED,
                           issued_at=APPROVED, descriptor=_descriptor(domain))  # fmt: skip
    return sign_entry(entry, key)


def _signers(node: Node) -> dict[str, int]:
    """Key id -> how many of the directory's entries it signed; every one approved when the operator did."""
    counts: dict[str, int] = {}
    for (raw,) in node.db.execute("SELECT entry FROM directory_entries"):
        entry, signer = read_entry(bytes(raw))
        assert entry.approved_at == APPROVED
        counts[signer.key_id] = counts.get(signer.key_id, 0) + 1
    return counts


def _rotate_in_a_process(home: Path) -> subprocess.Popen[str]:
    satchel = str(Path(sys.executable).with_name("satchel"))
    return subprocess.Popen([satchel, "keys", "rotate", "--identity", "--as", "op", "--home", str(home)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **DEV_ENV})  # fmt: skip


def test_other_writers_wait_for_a_batch_at_most_while_the_entries_are_signed_again(directory: Path) -> None:
    with open_node(directory, DEV_ENV) as node:
        old = node.current_keys().identity.public_key.key_id
        rotating = _rotate_in_a_process(directory)
        # Another writer (as the serving node, taking a join request) writes all along.
        waits, ticks = [], 0
        while rotating.poll() is None:
            started = time.monotonic()
            with write_transaction(node.db):
                settings.put(node.db, "test.tick", ticks)
            waits.append(time.monotonic() - started)
            ticks += 1
            time.sleep(0.005)
        assert rotating.returncode == 0, rotating.stderr.read() if rotating.stderr else ""
        new = node.current_keys().identity.public_key.key_id
        assert new != old and _signers(node) == {new: ENTRIES}
        assert max(waits) < WAIT_BOUND, (max(waits), ticks)
        assert not directory_resign.pending(node)
    [resigned] = [e for e in _audit(directory) if e["action"] == "directory.entries.resigned"]
    assert (resigned["actor"], resigned["subject"], resigned["details"]) == ("op", new, {"count": ENTRIES})


def _audit(home: Path) -> list[dict]:
    import json

    return json.loads(run_cli(home, "audit", "--json").output)


def _walk_feed(node: Node, key: IdentityPublicKey) -> tuple[int, int]:
    """(entries verified, entries rejected) of the directory's whole mirror feed, as a client following
    ``key`` verifies it."""
    verified = rejected = 0
    after = ""
    while True:
        page = directory_service.feed_page(node, after=after, limit=500)
        listing = verify_listing(sign_listing(page, node.current_keys().identity), directory=DIRECTORY,
                                 directory_key=key)  # fmt: skip
        verified, rejected = verified + len(listing.entries), rejected + len(listing.rejected)
        if page.next is None:
            return verified, rejected
        after = page.next


def _stop_midway(node: Node, directory: Path) -> None:
    """Rotate the key in a process killed (a power cut) once some batches are written and before the last."""
    rotating = _rotate_in_a_process(directory)
    while (state := settings.get(node.db, directory_resign.STATE_KEY)) is None or state["after"] == "":
        assert rotating.poll() is None, "the rotation ended before it could be stopped"
        time.sleep(0.002)
    rotating.kill()
    rotating.wait()


@pytest.mark.parametrize("completed_by", ["the serving node's start", "the next keys command"])
def test_a_walk_stopped_midway_leaves_every_entry_valid_and_is_completed(directory: Path, completed_by: str) -> None:
    with open_node(directory, DEV_ENV) as node:
        old = node.current_keys().identity.public_key.key_id
        _stop_midway(node, directory)
        signers = _signers(node)
        new = node.current_keys().identity.public_key.key_id
        assert set(signers) == {old, new} and sum(signers.values()) == ENTRIES, signers
        assert directory_resign.pending(node)
        # Meanwhile a client that follows the new key verifies every entry: the listing vouches for the old key,
        # which is not revoked, as the key of those not signed again yet.
        new_key = node.current_keys().identity.public_key
        assert _walk_feed(node, new_key) == (ENTRIES, 0)

        if completed_by == "the serving node's start":
            served = ServedNode(directory)
            try:
                deadline = time.monotonic() + 60
                while directory_resign.pending(node):
                    assert time.monotonic() < deadline, served.log()[-3000:]
                    time.sleep(0.1)
            finally:
                served.stop()
        else:  # the operator revokes the old key: from then on, only the new key's entries are good
            run_cli(directory, "keys", "revoke", old, "--as", "op", env=DEV_ENV)
        assert _signers(node) == {new: ENTRIES} and not directory_resign.pending(node)
        assert _walk_feed(node, new_key) == (ENTRIES, 0)
        # Done, the listings vouch for no key but the directory's own.
        assert directory_service.feed_page(node, limit=1).sources == ()
    [resigned] = [e for e in _audit(directory) if e["action"] == "directory.entries.resigned"]
    assert (resigned["subject"], resigned["details"]) == (new, {"count": ENTRIES})


def _walked_by_hand(node: Node) -> directory_resign._Walker:
    """Take the walk here, as another process's walker would (go on with it by :func:`_step`)."""
    walker = directory_resign._Walker(node, None)
    assert walker.take(wait=False)
    return walker


def _step(walker: directory_resign._Walker) -> bool:
    """One batch of ``walker``'s walk; False once it is done."""
    batch = walker.next()
    if batch is None:
        return False
    now = now_iso()
    assert walker.store(batch, directory_resign._sign(batch, now), now), "another walker took the walk"
    return True


def test_the_serving_node_leaves_a_walk_another_process_holds_to_it(directory: Path) -> None:
    # A command takes up a stopped walk while the directory serves: the serving node's timer (at its start and
    # every minute) went through the same entries beside it, at twice the CPU and write lock.
    with open_node(directory, DEV_ENV) as node:
        _stop_midway(node, directory)
        walker = _walked_by_hand(node)
        new = node.current_keys().identity.public_key.key_id
        left = ENTRIES - _signers(node)[new]
        before, signers = settings.get(node.db, directory_resign.STATE_KEY), _signers(node)
        served = ServedNode(directory)
        try:
            time.sleep(2.0)  # its start's pass: the whole walk, in a second or two, if it took it on
            assert settings.get(node.db, directory_resign.STATE_KEY) == before and _signers(node) == signers
            while _step(walker):  # the holder goes on, undisturbed
                pass
            assert _signers(node) == {new: ENTRIES} and not directory_resign.pending(node)
            assert walker.done == left
        finally:
            served.stop()
        assert "directory-resign pass" not in served.log()


def test_a_hold_that_ran_out_is_taken_over(directory: Path) -> None:
    # A walker that renewed nothing for HOLD_SECONDS (its machine suspended, its process frozen) let go.
    with open_node(directory, DEV_ENV) as node:
        _stop_midway(node, directory)
        hold = {"token": "frozen", "pid": os.getppid()}  # a process that runs
        with write_transaction(node.db):
            settings.put(node.db, directory_resign.WALKER_KEY, hold | {"until": "2999-01-01T00:00:00Z"})
        assert directory_resign.finish(node, wait=False) == 0 and directory_resign.pending(node)
        with write_transaction(node.db):
            settings.put(node.db, directory_resign.WALKER_KEY, hold | {"until": "2026-01-01T00:00:00Z"})
        assert directory_resign.finish(node, wait=False) > 0 and not directory_resign.pending(node)
        assert settings.get(node.db, directory_resign.WALKER_KEY) is None


def test_a_command_waits_for_the_walk_another_process_holds_and_shows_how_far_it_is(
    directory: Path, tmp_path: Path
) -> None:
    with open_node(directory, DEV_ENV) as node:
        old = node.current_keys().identity.public_key.key_id
        _stop_midway(node, directory)
        walker = _walked_by_hand(node)
        left = ENTRIES - _signers(node)[node.current_keys().identity.public_key.key_id]
        # The operator revokes the old key meanwhile: the command goes on with the walk, which is held here.
        stderr = tmp_path / "revoke.err"
        satchel = str(Path(sys.executable).with_name("satchel"))
        with stderr.open("w") as err:
            revoking = subprocess.Popen(
                [satchel, "keys", "revoke", old, "--as", "op", "--home", str(directory)], stdout=subprocess.PIPE,
                stderr=err, text=True, env={**os.environ, **DEV_ENV, "SATCHEL_PROGRESS": "1"},
            )  # fmt: skip
            deadline = time.monotonic() + 30
            while "Signing the directory's entries again" not in stderr.read_text():  # it waits, and says how far
                assert revoking.poll() is None and time.monotonic() < deadline, stderr.read_text()
                time.sleep(0.05)
            while _step(walker):
                time.sleep(0.05)
            assert revoking.wait(timeout=30) == 0, stderr.read_text()
        assert walker.done == left  # every entry signed again here: the command signed none
        shown = stderr.read_text()
        assert f"Signing the directory's entries again: {ENTRIES:,} of {ENTRIES:,} entries (100%)" in shown, shown
        assert not directory_resign.pending(node)
        assert settings.get(node.db, directory_resign.WALKER_KEY) is None


def test_a_rotation_shows_how_far_the_signing_again_is_on_standard_error(directory: Path) -> None:
    rotating = subprocess.run(
        [str(Path(sys.executable).with_name("satchel")), "keys", "rotate", "--identity", "--as", "op", "--home",
         str(directory)], capture_output=True, text=True, env={**os.environ, **DEV_ENV, "SATCHEL_PROGRESS": "1"},
    )  # fmt: skip
    assert rotating.returncode == 0, rotating.stderr
    assert f"of {ENTRIES:,} entries" in rotating.stderr
    assert rotating.stderr.rstrip().endswith(f"{ENTRIES:,} of {ENTRIES:,} entries (100%)"), rotating.stderr[-300:]
    assert "Signing" not in rotating.stdout and rotating.stdout.startswith("New identity key")


def test_a_mirror_vouches_for_the_earlier_key_of_a_directory_it_took_entries_signed_by(tmp_path: Path) -> None:
    # A pull during the mirrored directory's walk took entries signed by its earlier key, which that
    # directory's pages vouched for; until a pull after the walk takes them again, the mirror vouches too.
    home = tmp_path / "national.example.gov"
    run_cli(home, "directory", "init", "--domain", "national.example.gov", "--name", "National", "--state", "DC",
            "--city", "Washington", "--zip", "20001", "--url", "http://127.0.0.1:9", env=DEV_ENV)  # fmt: skip
    earlier, now = IdentityKey.generate(), IdentityKey.generate()
    with open_node(home, DEV_ENV) as node:
        with write_transaction(node.db):
            node.db.execute("INSERT INTO directory_mirrors (base_url, domain, public_key, added_by, added_at)"
                            " VALUES ('http://127.0.0.1:9', ?, ?, 'nat', ?)", [DIRECTORY, now.public_key.raw, APPROVED])
            for domain, key in (("a.example.org", earlier), ("b.example.org", now)):
                node.db.execute(
                    "INSERT INTO directory_entries (domain, status, published, origin, name, state, city, zip,"
                    " nces_id, descriptor, entry, joined_at, updated_at) VALUES (?, 'approved', 1, ?, ?, 'IL', 'X',"
                    " '62701', '', ?, ?, ?, ?)",
                    [domain, DIRECTORY, domain, _descriptor(domain), _entry(domain, key), APPROVED, APPROVED],
                )  # fmt: skip
        mirror_key = node.current_keys().identity.public_key

        def verified() -> int:
            page = directory_service.feed_page(node)
            listing = verify_listing(sign_listing(page, node.current_keys().identity),
                                     directory="national.example.gov", directory_key=mirror_key)  # fmt: skip
            return len(listing.entries)

        assert verified() == 1  # the pinned key's only
        with write_transaction(node.db):
            settings.put(node.db, f"directory.mirror.earlier_keys.{DIRECTORY}", [b64url(earlier.public_key.raw)])
        assert verified() == 2
        # The pinned key comes last, for a receiver that keeps one key per domain (the last).
        assert directory_service.feed_page(node).sources[-1].public_key == now.public_key.raw
