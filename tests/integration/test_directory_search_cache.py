"""A district searches its cache of directory answers when a directory does not answer: a district the
directory dropped is not found there any more, once an answer that holds every match has shown it gone."""

from __future__ import annotations

import json
from pathlib import Path

from test_federation import DIRECTORY, _cli, _directory_fingerprint, _district, _join_and_approve

from support import ServedNode

BOTH = {"a.example.org", "b.example.org"}
NATIONAL = "national.example.gov"  # the `national` fixture's


def _search(home: Path, *text: str) -> tuple[set[str], list[str]]:
    found = json.loads(_cli(home, "directory", "search", *text, "--json").output)
    return {r["domain"] for r in found["results"]}, found["from_cache"]


def test_a_district_the_directory_dropped_leaves_the_cache(federation) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    assert _search(homes["a"]) == (BOTH, [])
    _cli(homes["dir"], "directory", "reject", "b.example.org", "--reason", "left the state", "--as", "op")
    # An answer about Springfield says nothing of B (in Shelbyville): while the directory is down, the cache
    # still has it.
    assert _search(homes["a"], "springfield") == ({"a.example.org"}, [])
    federation.served["dir"].stop()
    assert _search(homes["a"]) == (BOTH, [DIRECTORY])
    # The whole state's answer, without B: B is gone from the cache too.
    federation.served["dir"] = ServedNode(homes["dir"])
    assert _search(homes["a"]) == ({"a.example.org"}, [])
    federation.served["dir"].stop()
    assert _search(homes["a"]) == ({"a.example.org"}, [DIRECTORY])


def test_entries_cached_from_a_mirrored_directory_stay_verifiable(federation, national, tmp_path: Path) -> None:
    homes, urls = federation
    home, url = national
    _join_and_approve(homes, urls)
    _cli(home, "directory", "mirror", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]), "--as",
         "nat")  # fmt: skip
    # A is listed by the national directory itself too; B only through the state's entry.
    _cli(homes["a"], "directory", "join", url, "--as", "ada")
    _cli(home, "directory", "approve", "a.example.org", "--as", "nat")
    c = _district(tmp_path, "c.example.org")
    _cli(c, "directories", "add", url, "--fingerprint", _directory_fingerprint(home), "--as", "ada")
    assert _search(c, "shelbyville") == ({"b.example.org"}, [])
    # This answer holds no mirrored entry, so it names no other directory's key...
    assert _search(c, "springfield") == ({"a.example.org"}, [])
    # ...and B, cached from the answer before, still verifies with the state directory's key it named.
    national.served.stop()
    assert _search(c) == (BOTH, [NATIONAL])
