"""A mail server that takes connections and never answers (a firewall dropping the port, a hung relay) holds up
neither a coordinator's command nor the serving node's deliveries to other districts, and the notices it could
not take go once it is back, each once (node.outbox_worker, node.mailer)."""

from __future__ import annotations

import email
import json
import socket
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from support import free_port, make_district, transfer_json, wait_until


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content)
        self.messages.append((str(message["To"]), " ".join(str(message["Subject"]).split())))
        return "250 OK"


def test_a_hung_mail_server_holds_up_no_command_nor_delivery_and_loses_no_notice(tmp_path: Path) -> None:
    port = free_port()
    hung = socket.socket()
    hung.bind(("127.0.0.1", port))
    hung.listen(64)  # connections wait in the backlog: no greeting ever comes
    a, b = make_district(tmp_path, "a.example.org", port), make_district(tmp_path, "b.example.org", port)
    a.start()
    b.start()
    controller = None
    try:
        a.cli("peers", "add", b.url, "--yes", "--as", "coord")
        b.cli("peers", "add", a.url, "--yes", "--as", "coord")
        b.stop()  # so that only A's serving node can deliver the envelope, later
        began = time.monotonic()
        sent = json.loads(a.cli("send", "--to", b.domain, "--student", "100001", "--as", "coord", "--json").stdout)
        # It took a minute: the command sent the two coordinators' notices itself, 30 s of timeout each.
        assert time.monotonic() - began < 15
        tid = sent["transfer_id"]
        b.start()
        # A's serving node delivers the envelope though its notices hang on the mail server meanwhile.
        wait_until(lambda: transfer_json(a, tid)["state"] == "delivered", timeout=25)
        hung.close()
        mailbox = _Mailbox()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        controller.start()
        expected = sorted(
            [(f"{user}@a.example.org", f"Transfer {tid} to b.example.org is pending") for user in ("admin", "coord")]
            + [(f"{user}@b.example.org", f"New incoming transfer {tid} from a.example.org")
               for user in ("admin", "coord")]
        )  # fmt: skip
        wait_until(lambda: sorted(mailbox.messages) == expected, timeout=60)
        time.sleep(2)
        assert sorted(mailbox.messages) == expected  # each once
    finally:
        hung.close()
        a.stop()
        b.stop()
        if controller is not None:
            controller.stop()
