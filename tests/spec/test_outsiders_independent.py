"""The outside implementations beside this file were written from spec/ alone, as another team would write them:
each imports nothing of Satchel's, only the standard library, the libraries Satchel itself depends on, and the
outsiders written before it that it builds on. Otherwise a test passing against them would prove the code agrees
with itself, not that the text is enough."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
OURS = {"crypto", "protocol", "node", "storage", "cli", "tests", "support", "conftest"}
# What each may import besides the standard library.
OUTSIDERS = {
    "outsider_envelope": {"cryptography"},
    "outsider_http": {"cryptography", "aiohttp"},
    "outsider_directory": {"cryptography", "nacl", "msgpack", "aiohttp", "outsider_http"},
    "outsider_node": {"cryptography", "nacl", "msgpack", "aiohttp", "outsider_envelope", "outsider_http"},
}


@pytest.mark.parametrize("name", sorted(OUTSIDERS))
def test_an_outsider_imports_only_the_standard_library_and_what_satchel_depends_on(name: str) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse((HERE / f"{name}.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would reach into our packages"
            imported.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "__import__"
    assert not imported & OURS, imported & OURS
    assert imported <= set(sys.stdlib_module_names) | OUTSIDERS[name] | {"__future__"}, imported


def test_every_outsider_is_held_to_it() -> None:
    assert {path.stem for path in HERE.glob("outsider_*.py")} == set(OUTSIDERS)
