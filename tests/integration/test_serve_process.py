"""`satchel serve` as a real subprocess on a free loopback port."""

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from protocol.descriptor import verify_descriptor
from storage.database import open_database

SATCHEL = str(Path(sys.executable).with_name("satchel"))


def _start(home: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [SATCHEL, "serve", "--home", str(home), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    assert match, (
        f"unexpected first line {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
    )
    return proc, match.group(1)


def test_serve_descriptor_and_clean_shutdown(make_home) -> None:
    home = make_home("a.example.org")
    proc, url = _start(home)
    try:
        with urllib.request.urlopen(url + "/.well-known/satchel", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("application/satchel-descriptor+json")
            body = response.read()
        with urllib.request.urlopen(url + "/satchel/v1/health", timeout=10) as response:
            assert b'"ok"' in response.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Stopped cleanly." in out

    verified = verify_descriptor(body, expected_domain="a.example.org")
    db = open_database(home / "satchel.db")
    identity = db.execute("SELECT key_id, public_key FROM node_keys WHERE use = 'identity'").fetchone()
    assert verified.signer.key_id == identity[0] and verified.signer.raw == identity[1]
    assert {k.use for k in verified.descriptor.keys} == {"identity", "encryption"}
    assert verified.descriptor.transfers_enabled is False


def test_sigint_also_stops_cleanly(make_home) -> None:
    proc, _ = _start(make_home("b.example.org"))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Stopped cleanly." in out


def test_a_port_already_taken_or_an_address_not_here_is_said_plainly(make_home) -> None:
    import socket

    home = make_home("a.example.org")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([SATCHEL, "serve", "--home", str(home), "--port", str(port)],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"Error: cannot listen on 127.0.0.1:{port}: another program already listens there" in done.stderr
    assert "is `satchel serve` already running for this home?" in done.stderr
    assert "(error code server.cannot_listen)" in done.stderr
    assert "internal error" not in done.stderr and "Unclosed" not in done.stderr  # its workers were stopped
    elsewhere = subprocess.run([SATCHEL, "serve", "--home", str(home), "--host", "203.0.113.9", "--port", "0"],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
    assert elsewhere.returncode == 2 and "this machine has no such address" in elsewhere.stderr
