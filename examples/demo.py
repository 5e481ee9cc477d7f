"""End-to-end demo on loopback: two districts set up their nodes and check each other's identity.

Run with `make demo`. Everything happens under ./demo-homes (removed first), with real `satchel`
processes on free loopback ports, and ends by stopping both nodes cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from node.peers import fetch_descriptor

ROOT = Path(__file__).resolve().parent
WORK = Path.cwd() / "demo-homes"
SATCHEL = str(Path(sys.executable).with_name("satchel"))
DATA = ROOT / "data"

DISTRICTS = {
    "a": dict(domain="springfield.k12.example", name="Springfield School District 186", state="IL",
              city="Springfield", zip="62701", nces_id="1737650", admin="ada", coordinator="jane",
              contact=("Jane Doe", "Registrar", "+1 217-555-0100")),
    "b": dict(domain="shelbyville.k12.example", name="Shelbyville Community Unit 4", state="IL",
              city="Shelbyville", zip="62565", nces_id="1736030", admin="sam", coordinator="bo",
              contact=("Bo Brown", "Transfer Coordinator", "+1 217-555-0199")),
}  # fmt: skip


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def satchel(home: Path, *args: str, quiet: bool = False) -> str:
    print("    $ satchel " + " ".join(a if " " not in a else repr(a) for a in args), flush=True)
    result = subprocess.run([SATCHEL, *args, "--home", str(home)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"demo failed: satchel {' '.join(args)}\n{result.stdout}{result.stderr}")
    for line in [] if quiet else result.stdout.rstrip().splitlines():
        print(f"      {line}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_up(key: str) -> tuple[Path, str]:
    d = DISTRICTS[key]
    home, url = WORK / d["domain"], f"http://127.0.0.1:{free_port()}"
    step(f"{d['name']}: IT creates the node")
    satchel(home, "init", "--domain", d["domain"], "--name", d["name"], "--state", d["state"],
            "--city", d["city"], "--zip", d["zip"], "--nces-id", d["nces_id"], "--url", url)  # fmt: skip
    admin, coord = d["admin"], d["coordinator"]
    name, title, phone = d["contact"]
    satchel(home, "users", "add", admin, "--email", f"{admin}@{d['domain']}", "--name", admin.title(),
            "--role", "admin")  # fmt: skip
    satchel(home, "users", "add", coord, "--email", f"{coord}@{d['domain']}", "--name", name,
            "--role", "coordinator", "--as", admin)  # fmt: skip
    satchel(home, "contact", "set", "--name", name, "--title", title, "--email", f"{coord}@{d['domain']}",
            "--phone", phone, "--as", coord)  # fmt: skip
    satchel(home, "transfers", "enable", "--as", coord)
    roster = DATA / f"roster-district-{key}"
    if roster.is_dir():
        satchel(home, "roster", "import", str(roster), "--as", coord)
        satchel(home, "students", "list", "--limit", "5")
    return home, url


def start(home: Path, url: str) -> subprocess.Popen[str]:
    port = url.rsplit(":", 1)[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [SATCHEL, "serve", "--home", str(home), "--port", port]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening on" not in line:
        sys.exit(f"demo failed: node at {home} did not start: {line!r}")
    print(f"    {line.strip()}", flush=True)
    return proc


async def check_each_other(pairs: list[tuple[str, Path, str]]) -> None:
    async with aiohttp.ClientSession() as session:
        for key, home, url in pairs:
            expected = json.loads(satchel(home, "info", "--json", quiet=True))
            other = next(k for k, _, _ in pairs if k != key)
            step(
                f"{DISTRICTS[other]['name']} fetches {DISTRICTS[key]['domain']}'s descriptor and verifies it"
            )
            seen = await fetch_descriptor(session, url, expected_domain=DISTRICTS[key]["domain"])
            printed = next(k["fingerprint"] for k in expected["keys"] if k["use"] == "identity")
            print(f"      signature verified; signed by {seen.signer.key_id}")
            print(f"      fingerprint {seen.signer.fingerprint} (read out by phone: {printed})")
            if seen.signer.fingerprint != printed or not re.fullmatch(r"[0-9A-Z-]{29}", printed):
                sys.exit("demo failed: fingerprints differ")
            c = seen.descriptor.coordinator
            print(
                f"      transfers {'on' if seen.descriptor.transfers_enabled else 'off'};"
                f" coordinator {c.name if c else '-'} {c.phone if c else ''}"
            )


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    homes = {key: set_up(key) for key in DISTRICTS}
    step("Both nodes start (satchel serve)")
    procs = {key: start(home, url) for key, (home, url) in homes.items()}
    try:
        asyncio.run(check_each_other([(key, home, url) for key, (home, url) in homes.items()]))
    finally:
        step("Both nodes shut down cleanly (SIGTERM)")
        for key, proc in procs.items():
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            print(
                f"    {DISTRICTS[key]['domain']}: {out.strip().splitlines()[-1] if out.strip() else ''}"
                f" (exit {proc.returncode})"
            )
            if proc.returncode != 0:
                sys.exit("demo failed: a node did not stop cleanly")
    step("Demo complete")


if __name__ == "__main__":
    main()
