"""An accepted transfer stays importable and its documents verifiable whatever becomes of the sender's keys here
afterwards (spec/envelope.md §5.3): its manifest is verified against the key that verified it at acceptance."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from test_fixing_mistakes import _add_document, _json, _send_accept
from test_revoked_keys_in_flight import _keys

from support import District


def _accepted(a: District, b: District, tmp_path: Path) -> str:
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(3_000))
    _add_document(a, "100001", doc, "IEP")
    return _send_accept(a, b, "--student", "100001", "--all-records")


def _rotate_and_revoke(a: District) -> str:
    [old] = [k["key_id"] for k in _keys(a, "identity") if k["status"] == "active" and k["not_after"] is None]
    a.cli("keys", "rotate", "--identity", "--as", "admin")
    a.cli("keys", "revoke", old, "--as", "admin")
    return old


def _imported_and_verified(b: District, tid: str) -> str:
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    assert _json(b, "import", "run", tid, "--as", "coord", "--json")["imported"] == 1
    [doc] = _json(b, "documents", "list", "100001", "--json")
    return b.cli("documents", "verify", doc["doc_id"]).stdout


def _accepted_on(b: District, tid: str) -> str:
    [event] = [
        e for e in _json(b, "transfers", "show", tid, "--json")["timeline"] if e["kind"] == "state.accepted"
    ]
    return str(event["at"])[:10]


def test_a_transfer_accepted_before_the_sender_was_re_pinned_is_imported_and_verified(pair, tmp_path) -> None:
    # The receiver forgets the sender's keys when it re-pins it (after a key change confirmed by phone); the
    # manifest was verified again against the keys held then, so the transfer it had accepted could no longer be
    # imported ("the manifest's signature does not verify", or import.not_ready with no key left at all).
    a, b, _ = pair
    tid = _accepted(a, b, tmp_path)
    old = _rotate_and_revoke(a)
    b.cli("peers", "add", a.url, "--repin", "--yes", "--as", "coord")
    assert old not in b.cli("peers", "show", "a.example.org", "--json").stdout  # forgotten
    verified = _imported_and_verified(b, tid)
    assert f"signed by a.example.org in transfer {tid}." in verified
    assert (f"Signed by key {old}, valid when the transfer was accepted on {_accepted_on(b, tid)}, since forgotten "
            "here when the sender was re-pinned.") in verified  # fmt: skip
    _json(b, "import", "log", tid, "--json")


def test_a_key_revoked_after_acceptance_does_not_undo_what_it_signed_and_verify_says_so(
    pair, tmp_path
) -> None:
    # Revoked after the transfer was accepted, the key still proves what it signed then; documents verify says
    # that the key has been revoked since. (A key revoked before the envelope arrived is refused on arrival:
    # test_revoked_keys_in_flight.)
    a, b, _ = pair
    tid = _accepted(a, b, tmp_path)
    old = _rotate_and_revoke(a)
    b.cli("peers", "refresh", "a.example.org")
    verified = _imported_and_verified(b, tid)
    assert (f"Signed by key {old}, valid when the transfer was accepted on {_accepted_on(b, tid)}, "
            "since revoked.") in verified  # fmt: skip
    # A transfer signed with the new key is verified as usual, with nothing to say about its key.
    doc = tmp_path / "later.pdf"
    doc.write_bytes(os.urandom(2_000))
    later = _add_document(a, "100001", doc, "Later")
    second = _send_accept(a, b, "--student", "100001", "--documents", later)
    b.cli("import", "preview", second, "--as", "coord")
    b.cli("import", "run", second, "--as", "coord")
    [new_doc] = [
        d["doc_id"] for d in _json(b, "documents", "list", "100001", "--json") if d["title"] == "Later"
    ]
    assert b.cli("documents", "verify", new_doc).stdout.strip().endswith(f"in transfer {second}.")


def _forget_signers(b: District) -> None:
    """What a transfer accepted by a Satchel from before the key that verified a manifest was kept holds."""
    with sqlite3.connect(b.home / "satchel.db") as conn:
        conn.execute("UPDATE transfer_manifests SET signer_key_id = NULL, signer_public_key = NULL")


def test_a_transfer_accepted_by_an_older_version_keeps_the_key_that_verifies_it_at_its_first_check(
    pair, tmp_path
) -> None:
    a, b, _ = pair
    tid = _accepted(a, b, tmp_path)
    _forget_signers(b)
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")  # verified by a key held: kept
    _rotate_and_revoke(a)
    b.cli("peers", "add", a.url, "--repin", "--yes", "--as", "coord")
    assert "since forgotten here" in _imported_and_verified(b, tid)

    # Forgotten before any check recorded it, the key is gone for good: said as such, not "accept it first".
    other = _accepted(a, b, tmp_path)
    _forget_signers(b)
    _rotate_and_revoke(a)
    b.cli("peers", "add", a.url, "--repin", "--yes", "--as", "coord")
    refused = b.cli("import", "preview", other, "--as", "coord", ok=False)
    assert refused.exit_code != 0 and "manifest.signature_invalid" in refused.stderr, refused.stderr
    assert "forgotten since (a re-pin)" in refused.stderr and "import.not_ready" not in refused.stderr
    assert "send the records again" in refused.stderr
