"""Fixtures for whole-node tests: a real SMTP server and two districts serving on loopback."""

from __future__ import annotations

import email
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from test_federation import _cli, federation  # noqa: F401  (federation: a directory and two districts)

from support import District, ServedNode, free_port, make_district


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


NATIONAL = "national.example.gov"


class National(tuple):
    """(home, url) of the national directory, plus its served node so that a test can stop it."""

    served: ServedNode


@pytest.fixture
def national(tmp_path: Path) -> Iterator[National]:
    """A national directory, serving, mirroring nothing yet; its operator is `nat`."""
    home = tmp_path / NATIONAL
    _cli(home, "directory", "init", "--domain", NATIONAL, "--name", "National", "--state", "DC", "--city",
         "Washington", "--zip", "20001", "--url", f"http://127.0.0.1:{free_port()}")  # fmt: skip
    _cli(home, "users", "add", "nat", "--email", "nat@example.gov", "--name", "Nat", "--role", "admin")
    served = ServedNode(home)
    result = National((home, served.url))
    result.served = served
    try:
        yield result
    finally:
        served.stop()


__all__ = ["District", "Mailbox", "make_district", "os"]
