"""What a coordinator reads of where transfers and requests stand: `transfers list` and `transfers show`, in
tables and in --json, at both districts, say the same thing about the same transfer."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _send(a, *args: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)


def _listed(d, transfer_id: str) -> dict:
    (row,) = [t for t in json.loads(d.cli("transfers", "list", "--json").stdout) if t["transfer_id"] == transfer_id]
    return row


def _table_cells(d, transfer_id: str) -> list[str]:
    (line,) = [line for line in d.cli("transfers", "list").stdout.splitlines() if line.startswith(transfer_id)]
    return line.split()


def _counts(d, transfer_id: str) -> tuple[dict, dict, list[str], str]:
    shown = json.loads(d.cli("transfers", "show", transfer_id, "--json").stdout)
    listed = _listed(d, transfer_id)
    for key in ("students", "records", "documents"):
        assert listed[key] == shown[key], (d.domain, key, listed[key], shown[key])
    return listed, shown, _table_cells(d, transfer_id), d.cli("transfers", "show", transfer_id).stdout


def test_the_counts_of_a_transfer_agree_between_list_and_show_on_both_sides(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    doc = tmp_path / "iep.pdf"
    doc.write_bytes(os.urandom(1000))
    a.cli("documents", "add", "100001", str(doc), "--type", "iep", "--title", "IEP 2026", "--as", "coord")
    sent = _send(a, "--student", "100001", "--all-records")
    tid = sent["transfer_id"]
    # Demographics only: no record, which the list said as "-" (unknown) where show said 0.
    bare = _send(a, "--student", "100002")["transfer_id"]
    listed, _, cells, text = _counts(a, bare)
    assert (listed["students"], listed["records"], listed["documents"]) == (1, 0, 0)
    assert cells[4:6] == ["1", "0"] and "Records:   0" in text

    # Sealed at the receiver: it cannot know what the envelope holds before its code opens it. Neither view
    # may say 0 students (a transfer always carries one), nor the two views differ.
    listed, _, cells, text = _counts(b, tid)
    assert (listed["students"], listed["records"], listed["documents"]) == (None, None, None)
    assert cells[4:6] == ["-", "-"] and "Students:    - (sealed: counted once its code opens it)" in text

    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    # Opened: the receiver reads what came, as the sender reads what went.
    listed, shown, cells, text = _counts(b, tid)
    assert (listed["students"], listed["records"], listed["documents"]) == (1, sent["records"], 1)
    assert sent["records"] >= 1 and cells[4:6] == ["1", str(sent["records"])]
    assert "Students:    1\n" in text and f"Records:     {sent['records']}\n" in text
    assert (shown["students"], shown["records"], shown["documents"]) == (
        sent["students"], sent["records"], sent["documents"])  # fmt: skip
