"""A directory rotates its identity key: it signs its own entries again with the new key, and the districts
and directories that pinned the old one follow the endorsement chain to the new one, as they do a peer's.
With no chain (a directory rebuilt from scratch), they refuse it and say how to pin it again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from test_federation import DIRECTORY, _cli, _directory_fingerprint, _district, _join_and_approve

from crypto import IdentityPublicKey
from node import directory_resign, directory_service
from node.home import open_node
from protocol.signed_document import b64url
from storage import settings
from storage.database import write_transaction

from support import DEV_ENV, ServedNode

NATIONAL = "national.example.gov"  # the `national` fixture's
MEMBERS = {"a.example.org", "b.example.org"}


def _found(home: Path) -> dict[str, str]:
    """domain -> directory of each district ``home`` finds in its state."""
    results = json.loads(_cli(home, "directory", "search", "--json").output)["results"]
    return {r["domain"]: r["directory"] for r in results}


def _identity_keys(home: Path) -> list[tuple[str, str]]:
    """(key id, fingerprint) of each identity key ``home`` publishes, oldest first."""
    info = json.loads(_cli(home, "info", "--json").output)
    return [(k["id"], k["fingerprint"]) for k in info["keys"] if k["use"] == "identity"]


def _pinned(home: Path) -> str:
    [trusted] = json.loads(_cli(home, "directories", "list", "--json").output)["trusted"]
    return trusted["key_id"]


def _audit(home: Path, action: str) -> list[dict]:
    return [e for e in json.loads(_cli(home, "audit", "--json").output) if e["action"] == action]


def test_districts_follow_the_directory_to_its_new_key(federation, tmp_path: Path) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    c = _district(tmp_path, "c.example.org")
    _cli(c, "directories", "add", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]), "--as", "ada")
    [(old, _)] = _identity_keys(homes["dir"])

    _cli(homes["dir"], "keys", "rotate", "--identity", "--as", "op")
    [(_, _), (new, new_fingerprint)] = _identity_keys(homes["dir"])
    [resigned] = _audit(homes["dir"], "directory.entries.resigned")
    assert (resigned["subject"], resigned["details"]) == (new, {"count": 2})

    # B searches: the listing comes signed by the new key, which the old one endorses, so B pins it and goes on.
    assert _found(homes["b"]) == dict.fromkeys(MEMBERS, DIRECTORY)
    assert _pinned(homes["b"]) == new
    [followed] = _audit(homes["b"], "directories.key_followed")
    assert followed["details"] == {"url": urls["dir"], "from": old, "to": new}
    # A has not searched since: it meets B's key through the directory's key look-up, and follows there too.
    assert "answered" in _cli(homes["b"], "peers", "ping", "a.example.org").output
    assert _pinned(homes["a"]) == new and _found(homes["a"]) == dict.fromkeys(MEMBERS, DIRECTORY)

    # The directory revokes its old key once the overlap is over; C, which pinned it and was away all along,
    # still follows: what the old key endorsed before it was revoked stands.
    _cli(homes["dir"], "keys", "revoke", old, "--as", "op")
    assert _found(c) == dict.fromkeys(MEMBERS, DIRECTORY) and _pinned(c) == new
    # A district told the new fingerprint by the operator pins it afresh: the approved members are all there.
    d = _district(tmp_path, "d.example.org")
    _cli(d, "directories", "add", urls["dir"], "--fingerprint", new_fingerprint, "--as", "ada")
    assert _found(d) == dict.fromkeys(MEMBERS, DIRECTORY)
    # What A cached since verifies with the key it follows: with the directory down, A still finds both.
    federation.served["dir"].stop()
    cached = json.loads(_cli(homes["a"], "directory", "search", "--json").output)
    assert cached["from_cache"] == [DIRECTORY] and {r["domain"] for r in cached["results"]} == MEMBERS


def test_a_directory_rebuilt_with_a_new_key_is_refused_until_pinned_again(federation, tmp_path: Path) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    assert _found(homes["a"]) == dict.fromkeys(MEMBERS, DIRECTORY)
    # The directory's home is lost and made again at the same URL: its new key has no endorsement.
    federation.served["dir"].stop()
    shutil.rmtree(homes["dir"])
    _cli(homes["dir"], "directory", "init", "--domain", DIRECTORY, "--name", "State Board", "--state", "IL",
         "--city", "Springfield", "--zip", "62777", "--url", urls["dir"])  # fmt: skip
    federation.served["dir"] = ServedNode(homes["dir"])
    refused = _cli(homes["a"], "directory", "search", "--json", ok=False).stderr
    assert "directory.entry_invalid" in refused and "does not endorse" in refused, refused
    assert f"`satchel directories add {urls['dir']} --fingerprint FP`" in refused, refused
    # After a phone call, the district pins the new fingerprint: the directory answers again (empty, rebuilt).
    _cli(homes["a"], "directories", "add", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]),
         "--as", "ada")  # fmt: skip
    assert _found(homes["a"]) == {}


def _mirrored(homes: dict, urls: dict, national: tuple[Path, str], tmp_path: Path) -> tuple[Path, Path]:
    """The state directory's members approved, the national directory mirroring it, and district C trusting the
    national one: (the national directory's home, C's home)."""
    home, url = national
    _join_and_approve(homes, urls)
    _cli(home, "directory", "mirror", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]), "--as",
         "nat")  # fmt: skip
    c = _district(tmp_path, "c.example.org")
    _cli(c, "directories", "add", url, "--fingerprint", _directory_fingerprint(home), "--as", "ada")
    return home, c


def test_a_mirror_follows_the_directory_it_mirrors_to_its_new_key(federation, national, tmp_path: Path) -> None:
    homes, urls = federation
    home, c = _mirrored(homes, urls, national, tmp_path)
    assert _found(c) == dict.fromkeys(MEMBERS, DIRECTORY)

    _cli(homes["dir"], "keys", "rotate", "--identity", "--as", "op")
    [(old, _), (new, _)] = _identity_keys(homes["dir"])
    # Until the national directory pulls again, it serves the entries it holds, vouching for the old key.
    assert _found(c) == dict.fromkeys(MEMBERS, DIRECTORY)
    assert f"{DIRECTORY}: 2 entries, 0 removed" in _cli(home, "directory", "sync").output
    [followed] = _audit(home, "directory.mirror.key_followed")
    assert followed["details"] == {"url": urls["dir"], "from": old, "to": new}
    # The entries taken again are signed by the new key, which the national directory now vouches for.
    assert _found(c) == dict.fromkeys(MEMBERS, DIRECTORY)
    assert f"{DIRECTORY}: 2 entries, 0 removed" in _cli(home, "directory", "sync").output
    assert len(_audit(home, "directory.mirror.key_followed")) == 1

    # The national directory rotates its own key: C follows it, and still finds the state's entries.
    _cli(home, "keys", "rotate", "--identity", "--as", "nat")
    assert _found(c) == dict.fromkeys(MEMBERS, DIRECTORY)
    assert _pinned(c) == _identity_keys(home)[-1][0]


def _mirror_vouches(home: Path) -> list[str]:
    """Key ids ``home``'s listings vouch for as the state directory's, in order."""
    with open_node(home, DEV_ENV) as node:
        sources = directory_service.feed_page(node).sources
    return [IdentityPublicKey(s.public_key).key_id for s in sources if s.domain == DIRECTORY]


def test_a_mirror_pulling_while_the_directory_signs_its_entries_again_keeps_the_earlier_key(
    federation, national, tmp_path: Path
) -> None:
    homes, urls = federation
    home, c = _mirrored(homes, urls, national, tmp_path)
    [(old, _)] = _identity_keys(homes["dir"])

    # The state directory rotates its key, and its entries are to be signed again; the walk is held by another
    # process that has not got to them (so the serving node leaves it too), and the command is stopped.
    holder = subprocess.Popen(["sleep", "600"])
    rotating = None
    try:
        with open_node(homes["dir"], DEV_ENV) as node:
            with write_transaction(node.db):
                settings.put(node.db, directory_resign.WALKER_KEY,
                             {"token": "elsewhere", "pid": holder.pid, "until": "2999-01-01T00:00:00Z"})  # fmt: skip
            rotating = subprocess.Popen(
                [str(Path(sys.executable).with_name("satchel")), "keys", "rotate", "--identity", "--as", "op",
                 "--home", str(homes["dir"])], env={**os.environ, **DEV_ENV},
            )  # fmt: skip
            deadline = time.monotonic() + 30
            while not directory_resign.pending(node):
                assert rotating.poll() is None and time.monotonic() < deadline, "the rotation did not wait"
                time.sleep(0.05)
            rotating.kill()
            [(_, _), (new, _)] = _identity_keys(homes["dir"])
            old_key = next(k for k in directory_resign.vouched_keys(node) if k.key_id == old)

            # The national directory pulls: it follows the new key, and takes the entries still signed by the old
            # one, which the state's pages vouch for; it keeps that key, and vouches for it before the new one.
            assert f"{DIRECTORY}: 2 entries, 0 removed" in _cli(home, "directory", "sync").output
            with open_node(home, DEV_ENV) as mirror:
                kept = settings.get(mirror.db, f"directory.mirror.earlier_keys.{DIRECTORY}")
            assert kept == [b64url(old_key.raw)]
            assert _mirror_vouches(home) == [old, new]
            # So a district that trusts the national directory verifies every one of them.
            assert _found(c) == dict.fromkeys(MEMBERS, DIRECTORY)

            holder.kill()  # the holder is gone: the walk is taken up and finished
            holder.wait()
            assert directory_resign.finish(node) == 2
    finally:
        for process in (holder, rotating):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    # The next pull takes them again, signed by the new key; the state's pages vouch for no earlier key, so
    # neither does the national directory from then on.
    assert f"{DIRECTORY}: 2 entries, 0 removed" in _cli(home, "directory", "sync").output
    assert _mirror_vouches(home) == [new]
    assert _found(c) == dict.fromkeys(MEMBERS, DIRECTORY)
