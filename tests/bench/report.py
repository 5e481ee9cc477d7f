"""The results table (plain text for the terminal, Markdown for the README) and the JSON file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.common import Row

HEADERS = ("goal", "what", "baseline", "baseline value", "measured", "measured value", "unit", "ratio",
           "target", "met?")  # fmt: skip


def _verdict(row: Row) -> str:
    if row.info:
        return "info"
    if row.met is None:
        return "skipped"
    return "yes" if row.met else "NO"


def _cells(row: Row) -> tuple[str, ...]:
    digits = 2 if row.unit in ("s", "exponent") else 0 if row.unit in ("req/s", "rows/s") else 1
    return (
        row.goal, row.title, row.baseline, row.baseline_stats.text(digits) if row.baseline_stats else "-",
        row.measured, row.measured_stats.text(digits) if row.measured_stats else "-", row.unit,
        "-" if row.ratio is None else f"{row.ratio:.2f}", row.target, _verdict(row),
    )  # fmt: skip


def text_table(rows: Sequence[Row]) -> str:
    table = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    out = []
    for n, line in enumerate(table):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"  {r.goal}: {r.note}" for r in rows if r.note]
    return "\n".join(out + (["", "notes:", *notes] if notes else []))


def markdown_table(rows: Sequence[Row]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(r)) + " |" for r in rows]
    return "\n".join(out)


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


def write_json(path: Path, rows: Sequence[Row], extras: dict[str, Any], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "meta": {**meta, "machine": machine()},
        "goals": [r.to_json() for r in rows],
        "extras": extras,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
