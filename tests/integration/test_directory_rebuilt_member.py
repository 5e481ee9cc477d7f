"""A member district rebuilt with a new identity key (its home lost, no backup) can be listed again: each
refusal on the way says what the directory's operator does next, and once the operator has rejected the old
entry, the new node's join waits for approval like a first one."""

from __future__ import annotations

import json
import shutil

from test_federation import DIRECTORY, _cli, _directory_fingerprint, _district

from node.home import init_home

from support import ServedNode, node_fields


def _identity_key(home) -> str:
    info = json.loads(_cli(home, "info", "--json").output)
    return [k["id"] for k in info["keys"] if k["use"] == "identity"][-1]


def _rebuild_b(federation, homes, urls) -> None:
    """B loses its home and is rebuilt at the same domain and URL: a new identity key that nothing endorses."""
    federation.served["b"].stop()
    shutil.rmtree(homes["b"])
    init_home(homes["b"], node=node_fields("b.example.org", urls["b"]))
    _cli(homes["b"], "users", "add", "ada", "--email", "ada@b.example.org", "--name", "Ada", "--role", "admin")
    federation.served["b"] = ServedNode(homes["b"])


def test_a_member_rebuilt_with_a_new_key_joins_again_once_the_operator_decided(federation, tmp_path) -> None:
    homes, urls = federation
    _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada")
    _cli(homes["dir"], "directory", "approve", "b.example.org", "--as", "op")
    old_key = _identity_key(homes["b"])
    _rebuild_b(federation, homes, urls)
    new_key = _identity_key(homes["b"])
    assert new_key != old_key

    # The directory knows B by its old key, so it cannot check the request: it says why, and what its operator
    # does about it.
    refused = _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada", ok=False).stderr
    assert "signature.key_unknown" in refused and "b.example.org is now signed by" in refused, refused
    assert "`satchel peers add URL --repin`" in refused and "`satchel directory reject DOMAIN`" in refused, refused
    # The operator confirms the new fingerprint by phone and re-pins B: the request now verifies, but B is
    # still listed under its old key, which a new one may replace only by the operator's decision.
    _cli(homes["dir"], "peers", "add", urls["b"], "--repin", "--yes", "--as", "op")
    refused = _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada", ok=False).stderr
    assert "descriptor.key_changed" in refused and f"approved here under identity key {old_key}" in refused, refused
    assert "`satchel directory reject b.example.org`" in refused and "peers add" not in refused, refused
    # Rejected, the old entry binds no key: B's join is a new request, pending until approved.
    _cli(homes["dir"], "directory", "reject", "b.example.org", "--reason", "rebuilt", "--as", "op")
    assert "status: pending" in _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada").output
    _cli(homes["dir"], "directory", "approve", "b.example.org", "--as", "op")

    # A district that meets B through the directory now learns its new key.
    c = _district(tmp_path, "c.example.org")
    _cli(c, "directories", "add", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]), "--as", "ada")
    [found] = json.loads(_cli(c, "directory", "search", "--json").output)["results"]
    assert (found["domain"], found["directory"]) == ("b.example.org", DIRECTORY)
    assert new_key in found["fingerprints"] and old_key not in found["fingerprints"]


def test_a_pending_member_keeps_its_key_until_the_operator_rejects_it(federation) -> None:
    homes, urls = federation
    _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada")
    # Another node at B's URL, re-pinned by the operator, does not replace the pending request with its own.
    _rebuild_b(federation, homes, urls)
    _cli(homes["dir"], "peers", "add", urls["b"], "--repin", "--yes", "--as", "op")
    refused = _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada", ok=False).stderr
    assert "descriptor.key_changed" in refused and "b.example.org is pending here" in refused, refused
    _cli(homes["dir"], "directory", "reject", "b.example.org", "--as", "op")
    assert "status: pending" in _cli(homes["b"], "directory", "join", urls["dir"], "--as", "ada").output
