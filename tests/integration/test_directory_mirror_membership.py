"""A directory that mirrors another keeps its own members apart from the mirrored directory's: a district's
request to be listed here waits for this operator, whatever the other directory decided, and a pull of the
other directory neither replaces this directory's own entries nor outlives the other's rejection."""

from __future__ import annotations

import json
from pathlib import Path

from test_federation import DIRECTORY, _cli, _directory_fingerprint, _district, _join_and_approve

NATIONAL = "national.example.gov"  # the `national` fixture's


def _held(home: Path, domain: str) -> dict[str, str]:
    """origin -> status of the entries ``home`` holds for ``domain``, the published one marked with a "*"."""
    listed = json.loads(_cli(home, "directory", "list", "--json").output)
    return {e["origin"]: e["status"] + "*" * e["published"] for e in listed if e["domain"] == domain}


def _found_via(searcher: Path, domain: str) -> str | None:
    """The directory whose entry ``searcher`` finds for ``domain``, if any."""
    results = json.loads(_cli(searcher, "directory", "search", "--json").output)["results"]
    return next((r["directory"] for r in results if r["domain"] == domain), None)


def test_a_join_beside_a_mirrored_entry_waits_for_this_operator(federation, national, tmp_path: Path) -> None:
    homes, urls = federation
    home, url = national
    _join_and_approve(homes, urls)  # the state directory approved a and b
    _cli(home, "directory", "mirror", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]), "--as",
         "nat")  # fmt: skip
    c = _district(tmp_path, "c.example.org")
    _cli(c, "directories", "add", url, "--fingerprint", _directory_fingerprint(home), "--as", "ada")
    assert _found_via(c, "a.example.org") == DIRECTORY

    # A asks the national directory to list it itself: the state's approval is not this operator's.
    assert "status: pending" in _cli(homes["a"], "directory", "join", url, "--as", "ada").output
    assert _held(home, "a.example.org") == {DIRECTORY: "approved*", NATIONAL: "pending"}
    assert _found_via(c, "a.example.org") == DIRECTORY  # still published, on the state's word
    # Its updates do not get it approved either.
    _cli(homes["a"], "transfers", "disable", "--as", "ada")
    assert _held(home, "a.example.org") == {DIRECTORY: "approved*", NATIONAL: "pending"}

    # The state drops A: the pull takes the state's entry away, and A's own request here still waits.
    _cli(homes["dir"], "directory", "reject", "a.example.org", "--reason", "closed", "--as", "op")
    assert f"{DIRECTORY}: 1 entries, 1 removed" in _cli(home, "directory", "sync").output
    assert _held(home, "a.example.org") == {NATIONAL: "pending"}
    assert _found_via(c, "a.example.org") is None

    # Once this operator approves, A is listed here first-hand.
    _cli(home, "directory", "approve", "a.example.org", "--as", "nat")
    assert _found_via(c, "a.example.org") == NATIONAL


def test_a_pull_leaves_this_directorys_own_entries_as_its_operator_left_them(federation, national) -> None:
    homes, urls = federation
    home, url = national
    # Both districts ask the national directory first; its operator rejects B and has not decided on A.
    for key in ("a", "b"):
        assert "status: pending" in _cli(homes[key], "directory", "join", url, "--as", "ada").output
    _cli(home, "directory", "reject", "b.example.org", "--reason", "not a district", "--as", "nat")
    _join_and_approve(homes, urls)  # the state directory approves both
    _cli(home, "directory", "mirror", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]), "--as",
         "nat")  # fmt: skip
    assert _held(home, "a.example.org") == {NATIONAL: "pending", DIRECTORY: "approved*"}
    assert _held(home, "b.example.org") == {NATIONAL: "rejected", DIRECTORY: "approved*"}
    # The next pull changes nothing of that, and the operator's decisions still apply to the entries they took.
    assert f"{DIRECTORY}: 2 entries, 0 removed" in _cli(home, "directory", "sync").output
    assert _held(home, "a.example.org") == {NATIONAL: "pending", DIRECTORY: "approved*"}
    assert "a.example.org is now approved" in _cli(home, "directory", "approve", "a.example.org", "--as", "nat").output
    assert _held(home, "a.example.org") == {NATIONAL: "approved*", DIRECTORY: "approved"}
    assert f"{DIRECTORY}: 2 entries, 0 removed" in _cli(home, "directory", "sync").output
    assert _held(home, "a.example.org") == {NATIONAL: "approved*", DIRECTORY: "approved"}
    assert _held(home, "b.example.org") == {NATIONAL: "rejected", DIRECTORY: "approved*"}
