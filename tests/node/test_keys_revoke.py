"""`satchel keys revoke` never leaves a node without a key of a use that has no end (spec/descriptor.md, Revoking
a key), and a home from before that whose last key ended says so and is mended by `satchel keys rotate`."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from node.clock import iso, now_iso, utc_now
from node.descriptor import build_descriptor
from node.home import open_node
from protocol import SatchelError
from protocol.key_chain import KnownKey, check_continuity

from support import run_cli


def _keys(home: Path, use: str) -> dict[str, dict]:
    return {k["key_id"]: k for k in json.loads(run_cli(home, "keys", "list", "--json").stdout) if k["use"] == use}


def _rotate(home: Path, use: str) -> tuple[str, str]:
    """(the key before, the new key): a rotation whose old key stays valid one day."""
    [old] = _keys(home, use)
    run_cli(home, "keys", "rotate", f"--{use}", "--overlap-days", "1", "--as", "admin")
    [new] = set(_keys(home, use)) - {old}
    return old, new


@pytest.mark.parametrize("use", ["identity", "encryption"])
def test_revoking_the_key_a_rotation_made_undoes_the_rotation(make_home, use: str) -> None:
    home = make_home()
    old, new = _rotate(home, use)
    assert _keys(home, use)[old]["not_after"] is not None  # to end in a day, which left the node with none
    revoked = run_cli(home, "keys", "revoke", new, "--as", "admin")
    assert f"{old} is the node's {use} key again, with no end date (it was to end at " in revoked.stdout
    keys = _keys(home, use)
    assert (keys[old]["status"], keys[old]["not_after"]) == ("active", None)
    assert keys[new]["status"] == "revoked"
    with open_node(home) as node:
        current = node.keys.identity if use == "identity" else node.keys.encryption
        assert current.public_key.key_id == old and node.keys.valid_until is None
        assert old in {k.key_id for k in build_descriptor(node).keys}  # peers learn it no longer ends
    (entry,) = [e for e in json.loads(run_cli(home, "audit", "--json").stdout) if e["action"] == "keys.revoke"]
    assert entry["details"]["kept"] == old and entry["details"]["kept_was_to_end"]


def test_revoking_the_old_key_after_a_rotation_leaves_the_new_one_as_it_is(make_home) -> None:
    home = make_home()
    old, new = _rotate(home, "identity")
    revoked = run_cli(home, "keys", "revoke", old, "--as", "admin")
    assert "again" not in revoked.stdout
    keys = _keys(home, "identity")
    assert keys[old]["status"] == "revoked" and (keys[new]["status"], keys[new]["not_after"]) == ("active", None)


def _ended_before_this_fix(home: Path, *, old_ends: str) -> tuple[str, str]:
    """A home where `keys revoke` took the key a rotation had just made, before revoking gave the key before
    it back its open end: that key is the last identity key, and ends at ``old_ends``."""
    old, new = _rotate(home, "identity")
    with sqlite3.connect(home / "satchel.db") as db:
        db.execute("UPDATE node_keys SET status = 'revoked', not_after = ? WHERE key_id = ?", [now_iso(), new])
        db.execute("UPDATE node_keys SET not_after = ? WHERE key_id = ?", [old_ends, old])
    db.close()
    return old, new


def test_a_home_whose_last_key_ended_says_so_and_keys_rotate_mends_it(make_home) -> None:
    home = make_home()
    ended = iso(utc_now() - timedelta(hours=1))
    old, _ = _ended_before_this_fix(home, old_ends=ended)
    refused = run_cli(home, "users", "list", ok=False)
    assert refused.exit_code == 2
    assert f"its identity key {old} stopped being valid at {ended}, and it has no other" in refused.stderr
    assert "make a new identity key with `satchel keys rotate --identity --as ADMIN`" in refused.stderr
    assert "(error code home.keys_expired)" in refused.stderr and "backup" not in refused.stderr
    assert old in _keys(home, "identity")  # `keys list` still shows what is there

    run_cli(home, "keys", "rotate", "--identity", "--as", "admin")
    with open_node(home) as node:
        mended = node.keys.identity.public_key.key_id
        assert mended != old and node.keys.valid_until is None
        # Peers that know the old key follow the new one: the old key endorsed it.
        descriptor = build_descriptor(node)
        public = node.db.execute("SELECT public_key FROM node_keys WHERE key_id = ?", [old]).fetchone()[0]
    assert check_continuity(descriptor, mended, {old: KnownKey(bytes(public))}) == (mended, old)
    run_cli(home, "users", "list")


def test_a_running_node_stops_signing_when_its_last_key_ends(make_home) -> None:
    home = make_home()
    ends = iso(utc_now() + timedelta(seconds=2))
    old, _ = _ended_before_this_fix(home, old_ends=ends)
    with open_node(home) as node:
        assert node.current_keys().identity.public_key.key_id == old and node.keys.valid_until == ends
        while now_iso() < ends:
            time.sleep(0.1)
        with pytest.raises(SatchelError) as stopped:  # not a signature with a key every peer now refuses
            node.current_keys()
        assert stopped.value.code == "home.keys_expired"
