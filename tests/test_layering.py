"""Dependencies point one way: cli -> node -> storage/protocol/crypto; protocol and crypto do no I/O."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"node", "protocol", "crypto", "storage", "cli"}
FORBIDDEN = {
    "protocol": {"node", "storage", "cli"},
    "crypto": {"node", "storage", "cli"},
    "storage": {"node", "cli"},
    "node": {"cli"},
    "cli": set(),
}
# Modules that do I/O (network, files, databases, clocks, processes) are off limits to the sans-IO layers.
IO_MODULES = {
    "aiohttp", "asyncio", "socket", "ssl", "sqlite3", "sqlite_utils", "subprocess", "http", "urllib.request",
    "requests", "smtplib", "aiosmtpd", "shutil", "tempfile", "pathlib", "io", "os", "time", "threading",
    "multiprocessing", "select", "selectors", "signal", "random", "secrets", "datetime.now",
}  # fmt: skip
IO_ALLOWED = {
    # crypto may draw randomness: its public functions are where keys, nonces and codes are born.
    "crypto": {"os", "secrets"},
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_one_way(package: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", ["protocol", "crypto"])
def test_sans_io_layers_import_no_io(package: str) -> None:
    allowed = IO_ALLOWED.get(package, set())
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in _imports(path)
        if (name in IO_MODULES or name.split(".")[0] in IO_MODULES) and name.split(".")[0] not in allowed
    ]
    assert not bad, "\n".join(bad)


def test_protocol_and_crypto_use_only_each_others_public_names() -> None:
    bad = []
    for package, other in (("protocol", "crypto"), ("crypto", "protocol")):
        for path in _modules(package):
            for name in _imports(path):
                if name.startswith(f"{other}.") and name.split(".")[1].startswith("_"):
                    bad.append(f"{path.relative_to(ROOT)} imports private {name}")
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import sqlite3\nfrom node.app import create_app\n")
    assert _imports(sample) == ["sqlite3", "node.app"]
