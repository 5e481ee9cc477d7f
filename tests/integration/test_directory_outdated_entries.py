"""A directory upgraded with entries an older release stored under its own, looser checks: a district's name
with a tab in it was taken until control characters were refused. The district's update replaces such an
entry, and the operator can reject one (not approve it), where each refused with a malformed message that
neither of them could get past."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from test_federation import _cli, _directory_fingerprint, _identity, _join_and_approve

from protocol.descriptor import sign_descriptor, verify_descriptor
from protocol.directory import read_entry, sign_entry

from support import ServedNode, wait_until


def _as_an_older_release_stored_it(homes: dict[str, Path]) -> None:
    """B's entry at the directory holds B's descriptor with a tab in its name, signed by B's key: what a
    directory before control characters were refused kept from B's join."""
    with sqlite3.connect(homes["dir"] / "satchel.db") as conn:
        (stored,) = conn.execute("SELECT descriptor FROM directory_entries WHERE domain = 'b.example.org'").fetchone()
        current = verify_descriptor(stored).descriptor
        older = replace(current, name=current.name.replace(" ", "\t", 1))
        conn.execute(
            "UPDATE directory_entries SET descriptor = ?, name = ? WHERE domain = 'b.example.org'",
            [sign_descriptor(older, _identity(homes["b"])), older.name],
        )


def _listed(homes: dict[str, Path]) -> list[str]:
    return [r["domain"] for r in json.loads(_cli(homes["a"], "directory", "search", "--json").output)["results"]]


def _b_as_listed(homes: dict[str, Path]) -> dict:
    results = json.loads(_cli(homes["a"], "directory", "search", "--json").output)["results"]
    return next(r for r in results if r["domain"] == "b.example.org")


def test_the_district_update_replaces_an_entry_an_older_version_stored(federation) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    _as_an_older_release_stored_it(homes)

    # B's node, upgraded, sends its descriptor again: the directory compares keys, not the old name.
    assert "status: approved" in _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada").output
    listed = _b_as_listed(homes)
    assert listed["name"] == json.loads(_cli(homes["b"], "info", "--json").output)["name"]


def test_an_entry_an_older_version_stored_can_be_rejected_not_approved(federation) -> None:
    homes, urls = federation
    _cli(homes["a"], "directories", "add", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]),
         "--as", "ada")  # fmt: skip
    _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada")
    _as_an_older_release_stored_it(homes)

    refused = _cli(homes["dir"], "directory", "approve", "b.example.org", "--as", "op", ok=False).stderr
    assert "directory.entry_outdated" in refused and "older version" in refused, refused
    assert "`satchel directory reject b.example.org`" in refused, refused
    _cli(homes["dir"], "directory", "reject", "b.example.org", "--reason", "stored by the old version", "--as", "op")

    assert "status: pending" in _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada").output
    _cli(homes["dir"], "directory", "approve", "b.example.org", "--as", "op")
    assert "\t" not in _b_as_listed(homes)["name"]


def test_a_district_upgraded_from_a_contact_with_a_tab_is_listed_again_as_it_starts(federation) -> None:
    """B's coordinator contact was set with a tab under an older release, and the directory stored B's
    descriptor with it. Upgraded, B's migration makes the contact one line, and B, starting, sends the
    directory its descriptor: listed again without anyone doing anything (search dropped B until then)."""
    homes, urls = federation
    _join_and_approve(homes, urls)
    federation.served["b"].stop()
    with sqlite3.connect(homes["b"] / "satchel.db") as conn:  # B's home as the older release left it
        (stored,) = conn.execute("SELECT value FROM settings WHERE key = 'district.contact'").fetchone()
        contact = json.loads(stored)
        conn.execute("UPDATE settings SET value = ? WHERE key = 'district.contact'",
                     [json.dumps({**contact, "title": "Registrar\t"})])  # fmt: skip
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0026_one_line_names'")
        # What B pushed to the directory then was the descriptor with the tab.
        conn.execute("UPDATE directory_memberships SET pushed_descriptor_sha256 = 'as the older release pushed it'")
    with sqlite3.connect(homes["dir"] / "satchel.db") as conn:  # and the directory's entry for B
        query = "SELECT descriptor, entry FROM directory_entries WHERE domain = 'b.example.org'"
        signed, entry = conn.execute(query).fetchone()
        current = verify_descriptor(signed).descriptor
        assert current.coordinator is not None
        older = replace(current, coordinator=replace(current.coordinator, title="Registrar\t"))
        older_signed = sign_descriptor(older, _identity(homes["b"]))
        older_entry = sign_entry(replace(read_entry(entry)[0], descriptor=older_signed), _identity(homes["dir"]))
        conn.execute("UPDATE directory_entries SET descriptor = ?, entry = ? WHERE domain = 'b.example.org'",
                     [older_signed, older_entry])  # fmt: skip
    assert "b.example.org" not in _listed(homes)  # every district of this version drops the entry

    federation.served["b"] = ServedNode(homes["b"])

    wait_until(lambda: "b.example.org" in _listed(homes))
    assert json.loads(_cli(homes["b"], "contact", "show", "--json").output)["title"] == "Registrar"
