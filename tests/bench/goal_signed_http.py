"""Goal 5: small signed requests a node handles per second, against an unsigned aiohttp handler.

Node A serves `POST /satchel/v1/ping` (`satchel serve --dev`; B is pinned there and A at B, as after
`satchel peers add URL --yes`). Every request is verified before the handler runs (RFC 9421 signature
over method, target URI, Content-Digest, Content-Type and Satchel-Origin; replay checked; body digest
checked) and its answer is signed. The baseline is tests/bench/plain_server.py: the same route in a bare
aiohttp app. All get request bytes from tests/bench/loadgen.py in a separate process, 8 keep-alive
connections on loopback, bounded in count and time; runs alternate between the servers.

* goal 5 (measured): requests signed in a session, as a serving node signs what it sends a peer
  (spec/request-signing.md §11): B opens the session with a real handshake (node keys both ways), then
  each request carries an HMAC-SHA256 signature and a sequence number; A checks the session it holds
  and its replay window, and signs the answer with the session's response key.
* 5b (informational): every request signed with B's Ed25519 node key, as a one-off `satchel` command
  signs: key looked up in A's key chain, nonce stored in the replay table, answer signed with Ed25519.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.common import ROOT, Extras, Row, log, ratio_row, run_process, stats
from tests.bench.nodes import make_district, pin

from support import free_port

PING = "/satchel/v1/ping"


def _load(
    url: str,
    sign_home: Path,
    count: int,
    seconds: float,
    *,
    distinct: int | None = None,
    session: bool = False,
) -> dict[str, object]:
    more = ["--distinct", str(distinct)] if distinct else []
    more += ["--session"] if session else []
    run = run_process(
        [sys.executable, "-m", "tests.bench.loadgen", url, "--count", str(count), "--seconds", str(seconds),
         "--sign-home", str(sign_home), *more], cwd=ROOT,
    ).check()  # fmt: skip
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if set(result["statuses"]) != {"200"}:
        raise RuntimeError(f"{url} answered {result['statuses']}")
    return result


def _plain_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_path = folder / "plain-serve.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.bench.plain_server", str(port)], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 30
    while b"listening on" not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the plain server did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


def run(folder: Path, *, runs: int, seconds: float, extras: Extras) -> list[Row]:
    log("  goal 5: two districts and a plain server")
    a = make_district(folder, "a.example.org", roster=False)
    b = make_district(folder, "b.example.org", roster=False)
    a.start()
    b.start()
    pin(a, b)
    b.stop()  # B only signs, from the load generator's process
    plain, plain_url = _plain_server(folder)
    signed_runs, session_runs, plain_runs = [], [], []
    try:
        for i in range(runs):
            log(f"  goal 5: run {i + 1}/{runs}")
            # The plain server keeps no replay store, so a pool of signed requests can be sent round and
            # round: the same bytes as the node gets, without signing 50,000 of them first.
            plain_runs.append(_load(plain_url + PING, b.home, int(25_000 * seconds), seconds, distinct=4_000))
            # A node refuses a sequence number or nonce twice: every request is distinct.
            session_runs.append(_load(a.url + PING, b.home, int(25_000 * seconds), seconds, session=True))
            signed_runs.append(_load(a.url + PING, b.home, int(5_000 * seconds), seconds))
        extras["goal5.server_a_peak_rss_kib"] = a.memory().get("VmHWM")
    finally:
        a.stop()
        plain.terminate()
        plain.wait(timeout=30)
    extras["goal5.plain"] = plain_runs
    extras["goal5.session"] = session_runs
    extras["goal5.signed"] = signed_runs
    base = stats([float(r["rate"]) for r in plain_runs])  # type: ignore[arg-type]
    got = stats([float(r["rate"]) for r in session_runs])  # type: ignore[arg-type]
    one_off = stats([float(r["rate"]) for r in signed_runs])  # type: ignore[arg-type]
    note = f"{len(signed_runs)} runs of {seconds:g} s each, 8 connections"
    return [
        ratio_row("5", "signed ping in a session, requests/s", baseline="unsigned aiohttp handler",
                  measured="HMAC verify + replay window + signed answer", base=base, got=got, unit="req/s",
                  at_least=0.6, note=note + "; session opened with a node-key handshake first"),
        ratio_row("5b", "signed ping, node key per request", baseline="unsigned aiohttp handler",
                  measured="Ed25519 verify + replay table + Ed25519 answer", base=base, got=one_off,
                  unit="req/s", at_least=0.6, info=True, note=note),
    ]  # fmt: skip
