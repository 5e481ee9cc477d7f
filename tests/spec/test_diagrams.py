"""The state diagrams and transition tables in spec/ are generated from the machines' tables and up to date."""

from pathlib import Path
from types import ModuleType

import pytest

from protocol import code_claim_states, request_states, transfer_states

from support import load_script

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    return load_script(ROOT / "spec" / "tools" / "diagrams.py", "satchel_spec_diagrams")


diagrams = _load()


def test_committed_spec_is_up_to_date() -> None:
    stale = diagrams.stale_files(diagrams.blocks().items())
    assert stale == [], f"run .venv/bin/python spec/tools/diagrams.py to regenerate {stale}"
    assert diagrams.main(["--check"]) == 0


@pytest.mark.parametrize(
    ("machine", "table"),
    [
        (diagrams._transfer(transfer_states.Side.SENDER), transfer_states.SENDER_TRANSITIONS),
        (diagrams._transfer(transfer_states.Side.RECEIVER), transfer_states.RECEIVER_TRANSITIONS),
        (diagrams._request(), request_states.TRANSITIONS),
        (diagrams._code(), code_claim_states.TRANSITIONS),
    ],
    ids=["sender", "receiver", "request", "code"],
)
def test_every_transition_is_drawn_or_tabled(machine: object, table: dict) -> None:
    chart, rows = diagrams.mermaid(machine), diagrams.table(machine)
    assert chart.startswith("```mermaid\nstateDiagram-v2\n")
    for (state, event), target in table.items():
        if state != target:
            edge = next(
                line for line in chart.splitlines() if line.strip().startswith(f"{state} --> {target}:")
            )
            assert event.value in edge.split(":", 1)[1].split(", ") or f" {event.value}" in edge
        shown = "(stays)" if state == target else f"`{target}`"
        assert f"| `{state}` | `{event}` | {shown} |" in rows
    assert len(rows.splitlines()) == len(table) + 2


def test_render_replaces_only_between_markers_and_needs_them() -> None:
    text = "head\n<!-- BEGIN GENERATED x (tool) -->\nold\nlines\n<!-- END GENERATED x -->\ntail\n"
    assert diagrams.render(text, {"x": "new"}) == (
        "head\n<!-- BEGIN GENERATED x (tool) -->\nnew\n<!-- END GENERATED x -->\ntail\n"
    )
    empty = "<!-- BEGIN GENERATED x -->\n<!-- END GENERATED x -->"
    assert diagrams.render(empty, {"x": "new"}) == "<!-- BEGIN GENERATED x -->\nnew\n<!-- END GENERATED x -->"
    assert diagrams.render(diagrams.render(text, {"x": "new"}), {"x": "new"}) == diagrams.render(
        text, {"x": "new"}
    )
    with pytest.raises(SystemExit):
        diagrams.render("no markers", {"x": "new"})
