"""Envelopes from a district this node knows only from its own web site (neither pinned nor in a trusted
directory) are kept waiting up to envelope.unlisted_inbox_mib; more from such districts is refused with a
code the sender's outbox retries, until some are accepted, rejected or expire, or the sender is pinned.
Before, anyone with an https host in some domain could fill the disk down to its reserve, and every district
this node does know was then refused too."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cutting_proxy import CuttingProxy
from support import free_port, make_district, wait_until


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
        served = b.served  # its log is read from stderr by a thread: the line may come a moment after the answer
        wait_until(lambda: "refused a" in served.log() and "known only from its own web site" in served.log(), 10)
        assert b.cli("transfers", "show", second["transfer_id"], ok=False).exit_code == 2  # nothing kept at B

        b.cli("peers", "add", a.url, "--yes", "--as", "coord")  # B's coordinator checked A's fingerprint
        a.cli("transfers", "retry", second["transfer_id"], "--as", "coord")
        assert _state(b, second["transfer_id"])["state"] == "received"
    finally:
        a.stop()
        b.stop()


def test_envelopes_still_arriving_count_against_the_bound_too(tmp_path: Path) -> None:
    """Before, the bound counted only envelopes already stored: any number sent at once each found it not yet
    reached. Here A's first envelope is held mid-upload by a proxy while the second arrives."""
    a, b = make_district(tmp_path, "a.example.org"), make_district(tmp_path, "b.example.org")
    b.env["SATCHEL_ENVELOPE_UNLISTED_INBOX_MIB"] = "1"
    proxy = CuttingProxy(int(b.url.rsplit(":", 1)[1]), free_port())
    with proxy:
        a.start()
        b.start(port=proxy.target_port)
        first = None
        try:
            a.cli("peers", "add", b.url, "--yes", "--as", "coord")
            a.cli("peers", "ping", "b.example.org")  # B meets A by its URL alone, and keeps its key
            a.stop()  # so that only the commands below deliver (A's outbox would retry on its own)
            doc = tmp_path / "first.pdf"
            doc.write_bytes(os.urandom(600 << 10))
            doc_id = json.loads(a.cli("documents", "add", "100001", str(doc), "--type", "iep", "--as", "coord",
                                      "--json").stdout)["doc_id"]  # fmt: skip
            proxy.hold_next_upload(after=300 << 10)
            first = a.spawn("send", "--to", "b.example.org", "--student", "100001", "--documents", doc_id, "--as",
                            "coord", "--json")  # fmt: skip
            assert proxy.held.wait(60), "the first upload did not start"
            # A command waits for deliveries queued since it began, counted in whole seconds: the second must
            # begin in a later second than the first was queued, or it waits the minute for that upload.
            time.sleep(1.1)
            second = _send(a, tmp_path, "second")  # 0.6 MiB arriving + 0.6 MiB > 1 MiB
            shown = _state(a, second["transfer_id"])
            assert shown["state"] == "sealed" and "transfer.unlisted_inbox_full" in shown["delivery"]["last_error"]
            proxy.release()
            out, err = first.communicate(timeout=60)
            assert first.returncode == 0, err
            assert _state(b, json.loads(out)["transfer_id"])["state"] == "received"
        finally:
            if first is not None and first.poll() is None:
                first.kill()
            a.stop()
            b.stop()
