"""`transfers list` and `transfers show` give a transfer's expiry only while it is open: for one that is over
(here rejected) an old expiry read as a deadline still to meet. `--json` keeps the value for scripts."""

from __future__ import annotations

import json


def _send(a, student: str) -> dict:
    return json.loads(a.cli("send", "--to", "b.example.org", "--student", student, "--as", "coord", "--json").stdout)


def test_a_transfer_that_is_over_shows_no_expiry_in_the_tables_and_keeps_it_in_json(pair) -> None:
    a, b, _ = pair
    over, open_ = _send(a, "100001"), _send(a, "100002")
    for sent in (over, open_):
        b.cli("accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord")
    b.cli("reject", over["transfer_id"], "--reason", "not ours after all", "--as", "coord")

    listed = {t["transfer_id"]: t for t in json.loads(b.cli("transfers", "list", "--json").stdout)}
    assert listed[over["transfer_id"]]["state"] == "rejected" and listed[open_["transfer_id"]]["state"] == "accepted"
    assert listed[over["transfer_id"]]["expires_at"] and listed[open_["transfer_id"]]["expires_at"]
    rows = {line.split()[0]: line.split() for line in b.cli("transfers", "list").stdout.splitlines()[1:]}
    assert rows[over["transfer_id"]][-1] == "-"
    assert rows[open_["transfer_id"]][-1] == listed[open_["transfer_id"]]["expires_at"]

    shown = json.loads(b.cli("transfers", "show", over["transfer_id"], "--json").stdout)
    assert shown["expires_at"] == listed[over["transfer_id"]]["expires_at"]
    fields = dict(line.split(None, 1) for line in b.cli("transfers", "show", over["transfer_id"]).stdout.splitlines()
                  if line.startswith("Expires"))  # fmt: skip
    assert fields == {"Expires:": "-"}
    fields = dict(line.split(None, 1) for line in b.cli("transfers", "show", open_["transfer_id"]).stdout.splitlines()
                  if line.startswith("Expires"))  # fmt: skip
    assert fields == {"Expires:": listed[open_["transfer_id"]]["expires_at"]}
