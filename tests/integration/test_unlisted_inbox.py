"""Envelopes from a district this node knows only from its own web site (neither pinned nor in a trusted
directory) are kept waiting up to envelope.unlisted_inbox_mib; more from such districts is refused with a
code the sender's outbox retries, until some are accepted, rejected or expire, or the sender is pinned.
Before, anyone with an https host in some domain could fill the disk down to its reserve, and every district
this node does know was then refused too."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support import make_district


def _send(a, tmp_path: Path, name: str) -> dict:
    doc = tmp_path / f"{name}.pdf"
    doc.write_bytes(os.urandom(600 << 10))
    doc_id = json.loads(a.cli("documents", "add", "100001", str(doc), "--type", "iep", "--as", "coord",
                              "--json").stdout)["doc_id"]  # fmt: skip
    return json.loads(a.cli("send", "--to", "b.example.org", "--student", "100001", "--documents", doc_id,
                            "--as", "coord", "--json").stdout)  # fmt: skip


def _state(d, transfer_id: str) -> dict:
    return json.loads(d.cli("transfers", "show", transfer_id, "--json").stdout)


def test_a_web_only_sender_is_kept_within_its_share_until_pinned(tmp_path: Path) -> None:
    a, b = make_district(tmp_path, "a.example.org"), make_district(tmp_path, "b.example.org")
    b.env["SATCHEL_ENVELOPE_UNLISTED_INBOX_MIB"] = "1"
    a.start()
    b.start()
    try:
        a.cli("peers", "add", b.url, "--yes", "--as", "coord")  # A knows B; B meets A by its URL alone
        first = _send(a, tmp_path, "first")
        assert _state(b, first["transfer_id"])["peer_trust"] == "web"
        second = _send(a, tmp_path, "second")  # 0.6 MiB waiting + 0.6 MiB > 1 MiB
        shown = _state(a, second["transfer_id"])
        assert shown["state"] == "sealed" and "transfer.unlisted_inbox_full" in shown["delivery"]["last_error"]
        assert "refused a" in b.served.log() and "known only from its own web site" in b.served.log()
        assert b.cli("transfers", "show", second["transfer_id"], ok=False).exit_code == 2  # nothing kept at B

        b.cli("peers", "add", a.url, "--yes", "--as", "coord")  # B's coordinator checked A's fingerprint
        a.cli("transfers", "retry", second["transfer_id"], "--as", "coord")
        assert _state(b, second["transfer_id"])["state"] == "received"
    finally:
        a.stop()
        b.stop()
