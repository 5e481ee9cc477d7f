"""Helpers shared by tests (importable as `support`, since tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import cli

DISTRICTS = {
    "a.example.org": {"name": "Springfield District A", "state": "IL", "city": "Springfield", "zip": "62701"},
    "b.example.org": {"name": "Shelbyville District B", "state": "IL", "city": "Shelbyville", "zip": "62565"},
}


def node_fields(domain: str, url: str = "http://127.0.0.1:8440") -> dict[str, str]:
    base = DISTRICTS.get(
        domain, {"name": f"District {domain}", "state": "IL", "city": "Capital", "zip": "62700"}
    )
    return {**base, "domain": domain, "base_url": url, "nces_id": ""}


def run_cli(home: Path, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> Result:
    """Run `satchel` in-process via CliRunner against ``home``; assert success unless ok=False."""
    result = CliRunner().invoke(
        cli,
        [*args, "--home", str(home)] if "--home" not in args else list(args),
        env=env,
        catch_exceptions=False,
    )
    if ok:
        assert result.exit_code == 0, f"satchel {' '.join(args)} failed:\n{result.output}\n{result.stderr}"
    return result
