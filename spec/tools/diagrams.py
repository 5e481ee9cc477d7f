"""Regenerate the state diagrams and transition tables in the spec from the machines' TRANSITIONS tables.

Run `.venv/bin/python spec/tools/diagrams.py` after changing a table; `--check` exits 1 if a spec file is
out of date (tests/spec/test_diagrams.py does the same). Only the text between
``<!-- BEGIN GENERATED name -->`` and ``<!-- END GENERATED name -->`` is rewritten.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from protocol import code_claim_states, request_states, transfer_states  # noqa: E402


@dataclass(frozen=True)
class Machine:
    initial: str
    states: Sequence[str]
    rows: Sequence[tuple[str, str, str, str, str]]  # state, event, next state, actor, note


def _transfer(side: transfer_states.Side) -> Machine:
    derived = {transfer_states.TransferEvent.LOCK_OUT: "the wrong code that reaches the limit"}
    rows = [
        (s.value, e.value, t.value, a.value, derived.get(e, ""))
        for s, e, t, a in transfer_states.transitions(side)
    ]
    states = (
        transfer_states.SenderState if side is transfer_states.Side.SENDER else transfer_states.ReceiverState
    )
    return Machine(transfer_states.INITIAL[side].value, [s.value for s in states], rows)


def _request() -> Machine:
    sides = request_states.SIDE_EVENTS
    rows = []
    for (state, event), target in request_states.TRANSITIONS.items():
        at = [side.value for side in request_states.RequestSide if event in sides[side]]
        note = "at the " + " and the ".join(at)
        rows.append((state.value, event.value, target.value, request_states.ACTORS[event].value, note))
    return Machine("absent", [s.value for s in request_states.RequestState], rows)


def _code() -> Machine:
    derived = {
        code_claim_states.CodeEvent.LOCK_OUT: "the failed claim that reaches the limit",
        code_claim_states.CodeEvent.WITHDRAW: "its transfer was cancelled (confirmed) or locked",
        code_claim_states.CodeEvent.LAPSE: "its transfer expired or was undeliverable",
    }
    rows = [
        (s.value, e.value, t.value, code_claim_states.ACTORS[e].value, derived.get(e, ""))
        for (s, e), t in code_claim_states.TRANSITIONS.items()
    ]
    return Machine("active", [s.value for s in code_claim_states.CodeState], rows)


def mermaid(machine: Machine) -> str:
    """A stateDiagram-v2; self-loops (redeliveries, late receipts, messages) are left to the table."""
    edges: dict[tuple[str, str], list[str]] = {}
    for state, event, target, _, _ in machine.rows:
        if state != target:
            edges.setdefault((state, target), []).append(event)
    leaving = {state for state, _ in edges}
    reached = {machine.initial} | {target for _, target in edges}
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {machine.initial}"]
    lines += [f"    {a} --> {b}: {', '.join(events)}" for (a, b), events in edges.items()]
    lines += [f"    {s} --> [*]" for s in machine.states if s in reached and s not in leaving]
    lines.append("```")
    return "\n".join(lines)


def table(machine: Machine) -> str:
    order = {state: i for i, state in enumerate(machine.states)}
    rows = sorted(machine.rows, key=lambda r: (order[r[0]], r[0] == r[2], r[1]))
    lines = ["| state | event | next state | caused by | note |", "| --- | --- | --- | --- | --- |"]
    for state, event, target, actor, note in rows:
        shown = "(stays)" if target == state else f"`{target}`"
        lines.append(f"| `{state}` | `{event}` | {shown} | {actor.replace('_', ' ')} | {note} |")
    return "\n".join(lines)


def blocks() -> dict[Path, dict[str, str]]:
    sender = _transfer(transfer_states.Side.SENDER)
    receiver = _transfer(transfer_states.Side.RECEIVER)
    request, code = _request(), _code()
    return {
        ROOT / "spec" / "transfer.md": {
            "transfer-sender-diagram": mermaid(sender),
            "transfer-sender-table": table(sender),
            "transfer-receiver-diagram": mermaid(receiver),
            "transfer-receiver-table": table(receiver),
        },
        ROOT / "spec" / "requests.md": {"request-diagram": mermaid(request), "request-table": table(request)},
        ROOT / "spec" / "codes.md": {"code-diagram": mermaid(code), "code-table": table(code)},
    }


def render(text: str, generated: dict[str, str]) -> str:
    """``text`` with each named block replaced; a missing marker is an error, not a silent skip."""
    for name, body in generated.items():
        marker = re.escape(name)
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED {marker}\b[^>]*-->\n)(?:.*?\n)?(<!-- END GENERATED {marker} -->)",
            re.DOTALL,
        )
        if not pattern.search(text):
            raise SystemExit(f"no BEGIN/END GENERATED {name} markers")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text, count=1)
    return text


def stale_files(files: Iterable[tuple[Path, dict[str, str]]]) -> list[Path]:
    return [
        path
        for path, generated in files
        if render(path.read_text("utf-8"), generated) != path.read_text("utf-8")
    ]


def main(argv: Sequence[str]) -> int:
    targets = blocks()
    if "--check" in argv:
        stale = stale_files(targets.items())
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run spec/tools/diagrams.py", file=sys.stderr)
        return 1 if stale else 0
    for path, generated in targets.items():
        text = path.read_text("utf-8")
        new = render(text, generated)
        if new != text:
            path.write_text(new, "utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
