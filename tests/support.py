"""Helpers shared by tests (importable as `support`, since tests/ is on sys.path)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO

from click.testing import CliRunner, Result

from cli.main import cli
from crypto import EncryptionKey, IdentityKey
from protocol.descriptor import PublishedKey

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


DEV_ENV = {"SATCHEL_FEDERATION_DEV_LOOPBACK": "1"}
# Argon2id at its cheapest so tests run fast; production minimums are in spec/security.md.
FAST_ENVELOPES = {
    "SATCHEL_ENVELOPE_ARGON2_TIME_COST": "1",
    "SATCHEL_ENVELOPE_ARGON2_MEMORY_KIB": "64",
    "SATCHEL_ENVELOPE_MIN_ARGON2_TIME_COST": "1",
    "SATCHEL_ENVELOPE_MIN_ARGON2_MEMORY_KIB": "64",
}


# Ports handed out by free_port: below the kernel's ephemeral range (32768 and up on Linux), so that no
# connection's own local port can take one between the choice and the server binding it, seconds later; and,
# with the suite on several workers (pytest-xdist), each worker takes its own residue so two never choose alike.
_PORTS_LOW, _PORTS_HIGH = 20_000, 32_000
_handed_out: set[int] = set()


def free_port() -> int:
    import os
    import random
    import socket

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    if len(_handed_out) >= (_PORTS_HIGH - _PORTS_LOW) // workers // 2:
        _handed_out.clear()  # those of tests long over are free again; the bind below still checks
    while True:
        port = random.randrange(_PORTS_LOW + index, _PORTS_HIGH, workers)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # held by something else on the machine
        _handed_out.add(port)
        return port


class ServedNode:
    """`satchel serve --dev` as a real subprocess; stop() sends SIGTERM and checks the clean exit."""

    def __init__(self, home: Path, env: dict[str, str] | None = None, port: int | None = None) -> None:
        """``port``: listen there rather than on base_url's port (a proxy in between holds that one)."""
        import os
        import re
        import subprocess
        import sys

        from node.config import load_config

        self.home = home
        self.url = load_config(home, {}).node.base_url
        port = str(port) if port is not None else self.url.rsplit(":", 1)[1]
        satchel = str(Path(sys.executable).with_name("satchel"))
        self.proc = subprocess.Popen(
            [satchel, "serve", "--home", str(home), "--port", port, "--dev"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        assert re.search(r"listening on http://127\.0\.0\.1:\d+", line), line + self.proc.stderr.read(2000)
        # Read both pipes for as long as the server runs, as a service manager's log reader does: a full
        # pipe (64 KiB, some 600 logged refusals) would block the server's next log line, and its event
        # loop with it.
        self._err: list[str] = []
        self._readers = [threading.Thread(target=_drain, args=(pipe, into), daemon=True)
                         for pipe, into in ((self.proc.stdout, []), (self.proc.stderr, self._err))]  # fmt: skip
        for reader in self._readers:
            reader.start()

    def log(self) -> str:
        """What the server has written to stderr so far (its log)."""
        return "".join(self._err)

    def _wait(self) -> str:
        self.proc.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=30)
        return "".join(self._err)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-whatever, as in a power cut."""
        self.proc.kill()
        self._wait()

    def stop(self) -> str:
        """SIGTERM, a clean exit checked; returns what the server wrote to stderr."""
        import signal

        if self.proc.returncode is not None:
            return ""  # already stopped
        self.proc.send_signal(signal.SIGTERM)
        err = self._wait()
        assert self.proc.returncode == 0, err[-3000:]
        return err


def _drain(pipe: IO[str], into: list[str]) -> None:
    for line in pipe:
        into.append(line)


@dataclass
class District:
    home: Path
    domain: str
    url: str
    env: dict[str, str]
    served: ServedNode | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, ok: bool = True):
        return run_cli(self.home, *args, ok=ok, env=self.env)

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """`satchel ARGS` as its own process, left running: for a command that blocks while the test acts."""
        import os
        import sys

        return subprocess.Popen(
            [str(Path(sys.executable).with_name("satchel")), *args, "--home", str(self.home)],
            env={**os.environ, **self.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def start(self, port: int | None = None) -> None:
        self.served = ServedNode(self.home, env=self.env, port=port)

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()
            self.served = None

    def kill(self) -> None:
        if self.served is not None:
            self.served.kill()
            self.served = None


def make_district(tmp: Path, domain: str, smtp_port: int | None = None) -> District:
    """A district's home with an admin (admin), a coordinator (coord) with the contact, transfers switched on
    and the sample roster; notifications go to the SMTP server on ``smtp_port``, if one is given."""
    from node.home import init_home

    from fixtures_oneroster import sample_bundle, write_bundle

    url = f"http://127.0.0.1:{free_port()}"
    home = tmp / domain
    init_home(home, node=node_fields(domain, url))
    env = {**DEV_ENV, **FAST_ENVELOPES}
    if smtp_port is not None:
        env |= {"SATCHEL_SMTP_HOST": "127.0.0.1", "SATCHEL_SMTP_PORT": str(smtp_port), "SATCHEL_SMTP_TLS": "none",
                "SATCHEL_SMTP_SENDER": f"satchel@{domain}"}  # fmt: skip
    d = District(home, domain, url, env)
    d.cli("users", "add", "admin", "--email", f"admin@{domain}", "--name", "Ada Admin", "--role", "admin")
    d.cli("users", "add", "coord", "--email", f"coord@{domain}", "--name", "Cory Coordinator", "--role",
          "coordinator", "--as", "admin")  # fmt: skip
    d.cli("contact", "set", "--as", "coord", "--name", "Cory Coordinator", "--title", "Registrar",
          "--email", f"coord@{domain}", "--phone", "+1 217-555-0100")  # fmt: skip
    d.cli("transfers", "enable", "--as", "coord")
    d.cli("roster", "import", str(write_bundle(tmp / f"roster-{domain}", sample_bundle())), "--as", "coord")
    return d


def load_script(path: Path, name: str) -> ModuleType:
    """A script of the repository that is not a package module (spec/tools, spec/vectors generators)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll ``condition`` (five times a second) until it holds; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.2)


def transfer_json(d: District, transfer_id: str) -> dict:
    """`satchel transfers show ID --json` at district ``d``."""
    import json

    return json.loads(d.cli("transfers", "show", transfer_id, "--json").stdout)


def published_key(key: IdentityKey | EncryptionKey, use: str) -> PublishedKey:
    """How a descriptor lists ``key`` (identity: Ed25519; encryption: the hybrid ML-KEM-768 + X25519 key)."""
    algorithm = "ed25519" if use == "identity" else "mlkem768-x25519"
    return PublishedKey(key_id=key.public_key.key_id, use=use, algorithm=algorithm, public_key=key.public_key.raw,
                        not_before="2026-01-01T00:00:00Z")  # fmt: skip


def peak_python_memory(call: Callable[[], object]) -> int:
    """The most memory Python objects took at once while ``call()`` ran, in bytes (tracemalloc: memory that
    SQLite or the OS hold, such as page caches, is not counted)."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
