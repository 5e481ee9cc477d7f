"""Reading the district's run-time settings (writing them is node.district's job)."""

from __future__ import annotations

from node.home import Node
from protocol.descriptor import Contact
from storage import settings

CONTACT_KEY = "district.contact"
TRANSFERS_KEY = "district.transfers_enabled"


def contact(node: Node) -> Contact | None:
    value = settings.get(node.db, CONTACT_KEY)
    return Contact(**value) if value else None


def transfers_enabled(node: Node) -> bool:
    return bool(settings.get(node.db, TRANSFERS_KEY, False))
