"""Regenerate the tables of spec/errors.md from the error classes, keeping the meanings written by hand.

Run `.venv/bin/python spec/tools/errors_table.py` after adding an error class; a new code takes its
meaning from the class docstring until someone writes a better one in the file. tests/test_error_catalog.py
checks that the file and the code agree.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from node.http_errors import HTTP_LAYER_CODES, status_for  # noqa: E402
from protocol import all_error_classes  # noqa: E402

SPEC = ROOT / "spec" / "errors.md"
ROW = re.compile(r"^\| `([a-z0-9_.]+)` \| [^|]* \| (.*?) \| (.*?) \|$")
HTTP_LAYER_MEANINGS = {
    "http.not_found": "No such endpoint.",
    "http.method_not_allowed": "The endpoint exists but not with this method.",
    "http.bad_request": "The HTTP request itself is malformed.",
}


def main() -> int:
    for package in ("protocol", "crypto", "storage", "node", "cli"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            importlib.import_module(info.name)
    text = SPEC.read_text(encoding="utf-8")
    written = {m.group(1): (m.group(2), m.group(3)) for line in text.splitlines() if (m := ROW.match(line))}
    rows: dict[str, tuple[int | None, str, str]] = {}
    for cls in all_error_classes():
        if cls.code in rows or cls.__module__.split(".")[0] not in {
            "protocol",
            "crypto",
            "storage",
            "node",
            "cli",
        }:
            continue
        own_doc = cls.__dict__.get("__doc__")
        meaning, hint = written.get(cls.code, ("", ""))
        meaning = meaning or (own_doc.strip().splitlines()[0] if own_doc else "")
        hint = hint or (cls.default_hint or "")
        rows[cls.code] = (status_for(cls.code), meaning.replace("|", "\\|"), hint.replace("|", "\\|"))
    for code, status in HTTP_LAYER_CODES.items():
        rows[code] = (status, written.get(code, (HTTP_LAYER_MEANINGS[code], ""))[0], "")
    missing = [code for code, (_, meaning, _) in rows.items() if not meaning]
    head = text.split("\n## ", 1)[0].rstrip()
    out = [head, ""]
    groups: dict[str, list[str]] = {}
    for code in sorted(rows):
        groups.setdefault(code.split(".")[0] if "." in code else "general", []).append(code)
    for group, codes in groups.items():
        out += [f"## {group}", "", "| code | HTTP | meaning | hint |", "| --- | --- | --- | --- |"]
        out += [f"| `{c}` | {rows[c][0]} | {rows[c][1]} | {rows[c][2]} |" for c in codes]
        out.append("")
    SPEC.write_text("\n".join(out), encoding="utf-8")
    if missing:
        print("codes without a meaning (write one in spec/errors.md):", ", ".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
