"""Fixtures for whole-node tests: a real SMTP server and two districts serving on loopback."""

from __future__ import annotations

import email
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from node.home import init_home

from fixtures_oneroster import sample_bundle, write_bundle
from support import DEV_ENV, FAST_ENVELOPES, ServedNode, free_port, node_fields, run_cli


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[str]:
        return [str(m["Subject"]) for m in self.messages if address in str(m["To"])]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


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

    def start(self) -> None:
        self.served = ServedNode(self.home, env=self.env)

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()
            self.served = None

    def kill(self) -> None:
        if self.served is not None:
            self.served.kill()
            self.served = None


def make_district(tmp: Path, domain: str, smtp_port: int) -> District:
    url = f"http://127.0.0.1:{free_port()}"
    home = tmp / domain
    init_home(home, node=node_fields(domain, url))
    env = {**DEV_ENV, **FAST_ENVELOPES, "SATCHEL_SMTP_HOST": "127.0.0.1", "SATCHEL_SMTP_PORT": str(smtp_port),
           "SATCHEL_SMTP_TLS": "none", "SATCHEL_SMTP_SENDER": f"satchel@{domain}"}  # fmt: skip
    d = District(home, domain, url, env)
    d.cli("users", "add", "admin", "--email", f"admin@{domain}", "--name", "Ada Admin", "--role", "admin")
    d.cli("users", "add", "coord", "--email", f"coord@{domain}", "--name", "Cory Coordinator", "--role",
          "coordinator", "--as", "admin")  # fmt: skip
    d.cli("contact", "set", "--as", "coord", "--name", "Cory Coordinator", "--title", "Registrar",
          "--email", f"coord@{domain}", "--phone", "+1 217-555-0100")  # fmt: skip
    d.cli("transfers", "enable", "--as", "coord")
    d.cli("roster", "import", str(write_bundle(tmp / f"roster-{domain}", sample_bundle())), "--as", "coord")
    return d


@pytest.fixture
def pair(tmp_path: Path, smtp) -> Iterator[tuple[District, District, object]]:
    """Districts A and B, serving, each having pinned the other; and the SMTP mailbox."""
    mailbox, port = smtp
    a, b = make_district(tmp_path, "a.example.org", port), make_district(tmp_path, "b.example.org", port)
    a.start()
    b.start()
    try:
        a.cli("peers", "add", b.url, "--yes", "--as", "coord")
        b.cli("peers", "add", a.url, "--yes", "--as", "coord")
        yield a, b, mailbox
    finally:
        a.stop()
        b.stop()


__all__ = ["District", "Mailbox", "make_district", "os"]
