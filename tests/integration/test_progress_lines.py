"""Long commands show how far they are on a terminal (`SATCHEL_PROGRESS=1` stands in for one here), and
nothing of it when their output goes to a script."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from storage.free_space import size_text

from support import run_cli

SHOWN = {"SATCHEL_PROGRESS": "1"}


def _shown(district, *args: str):
    return run_cli(district.home, *args, env={**district.env, **SHOWN})


def _last_drawn(stderr: str, label: str) -> str:
    """The last state of the progress line (each redraw starts with a carriage return)."""
    drawn = [part.strip() for part in stderr.replace("\r", "\n").splitlines() if part.startswith(label)]
    return drawn[-1] if drawn else ""


def test_send_deliver_accept_and_import_show_their_progress_only_when_asked(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    document = tmp_path / "evaluation.pdf"
    document.write_bytes(os.urandom(3 * 2**20))
    doc_id = json.loads(a.cli("documents", "add", "100001", str(document), "--type", "evaluation", "--as",
                              "coord", "--json").stdout)["doc_id"]  # fmt: skip
    send = ("send", "--to", b.domain, "--student", "100001", "--documents", doc_id, "--as", "coord", "--json")

    quiet = a.cli(*send)  # output for a script: no progress line anywhere
    assert "Sealing" not in quiet.stderr and json.loads(quiet.stdout)["transfer_id"]
    a.stop()  # so that the command itself uploads the envelope, not A's serving node racing it
    shown = _shown(a, *send)
    assert _last_drawn(shown.stderr, "Sealing") == "Sealing 3.0 MiB of 3.0 MiB (100%)"
    sent = json.loads(shown.stdout)  # the JSON on stdout is untouched by the line on stderr
    size = f"{sent['bytes'] / 2**20:.1f} MiB"  # the sealed documents and the envelope's own bytes
    assert sent["bytes"] > 3 * 2**20
    assert _last_drawn(shown.stderr, "Delivering") == f"Delivering {size} of {size} (100%)", shown.stderr

    deadline = time.monotonic() + 30
    while json.loads(b.cli("transfers", "show", sent["transfer_id"], "--json").stdout)["state"] != "received":
        assert time.monotonic() < deadline, "not delivered in time"
        time.sleep(0.1)
    opened = _shown(b, "accept", sent["transfer_id"], "--code", sent["code"], "--as", "coord")
    assert _last_drawn(opened.stderr, "Opening") == "Opening 3.0 MiB of 3.0 MiB (100%)", opened.stderr
    assert "Accepted transfer" in opened.stdout
    b.cli("import", "preview", sent["transfer_id"], "--school", "0101", "--as", "coord")
    imported = _shown(b, "import", "run", sent["transfer_id"], "--as", "coord")
    assert _last_drawn(imported.stderr, "Importing") == "Importing 1 of 1 students (100%)", imported.stderr


def test_a_roster_import_says_what_it_is_doing(pair, tmp_path: Path) -> None:
    from fixtures_oneroster import make_bundle, write_bundle

    a, _b, _ = pair
    students = [{"sis_id": f"{300000 + i}", "given_name": "Ana", "family_name": f"Family{i}"} for i in range(2500)]
    bundle = write_bundle(tmp_path / "roster", make_bundle(students))
    shown = _shown(a, "roster", "import", str(bundle), "--as", "coord")
    steps = [line.strip() for line in shown.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert steps[0] == "Reading the roster..."
    read = (bundle / "users.csv").stat().st_size + sum(
        (bundle / name).stat().st_size for name in ("manifest.csv", "orgs.csv", "demographics.csv", "enrollments.csv"))
    assert f"Reading the roster {size_text(read)} of {size_text(read)} (100%)" in steps
    assert steps[-1] == "Saving 2,500 of 2,500 students (100%)"
    # Two lines, each ended: the saving line does not draw over the end of the reading one.
    assert shown.stderr.count("\n") >= 2 and shown.stderr.endswith("\n")
    assert "Students: 2,500 added" in shown.stdout  # counts read as a person reads them
