"""District settings that change at run time: the coordinator contact and the transfers switch."""

from __future__ import annotations

import re

from node.directory_client import queue_directory_updates
from node.district_state import CONTACT_KEY, TRANSFERS_KEY, transfers_enabled
from node.home import Node
from node.operators import authorize, record
from protocol import InvalidInput
from protocol.descriptor import Contact
from protocol.roster import CONTROL_CHARACTERS
from storage import settings
from storage.database import write_transaction

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The contact is published in the node's signed descriptor, which peers refuse above 256 KiB: a field of
# 120,000 characters made the node one nobody could refresh. These bounds fit any person and any address.
MAX_NAME, MAX_EMAIL = 200, 254


def set_contact(node: Node, *, actor: str | None, name: str, title: str, email: str, phone: str) -> Contact:
    if not name.strip():
        raise InvalidInput("the contact name must not be empty", field="--name",
                           hint='give the coordinator\'s name, e.g. --name "Jane Doe"')  # fmt: skip
    for option, value, limit in (("--name", name, MAX_NAME), ("--title", title, MAX_NAME),
                                 ("--email", email, MAX_EMAIL)):  # fmt: skip
        if len(value.strip()) > limit:
            raise InvalidInput(f"{option} is longer than {limit} characters", field=option,
                               hint="shorten it: it is shown to other districts' coordinators")  # fmt: skip
    for option, value in (("--name", name), ("--title", title), ("--email", email), ("--phone", phone)):
        if CONTROL_CHARACTERS.search(value.strip()):
            raise InvalidInput(f"{option} contains a control character or line break", field=option,
                               hint="type it again as plain text: it is shown to other districts")  # fmt: skip
    if not _EMAIL.match(email.strip()):
        raise InvalidInput(f"{email[:80]!r} is not an e-mail address", field="--email",
                           hint="give the address peers write to, e.g. --email registrar@district.example")  # fmt: skip
    if phone and not re.fullmatch(r"[0-9+().\- x]{7,32}", phone.strip()):
        raise InvalidInput(f"{phone!r} is not a phone number", field="--phone", hint="e.g. +1 217-555-0100")
    new = Contact(name=name.strip(), title=title.strip(), email=email.strip(), phone=phone.strip())
    with write_transaction(node.db):
        user = authorize(node, actor, "settings.manage")
        settings.put(node.db, CONTACT_KEY, new.to_json())
        record(node, user.username, "contact.set", "", new.to_json())
        queue_directory_updates(node)
    return new


def set_transfers(node: Node, *, actor: str | None, enabled: bool) -> bool:
    """Returns whether the setting changed."""
    with write_transaction(node.db):
        user = authorize(node, actor, "settings.manage")
        if transfers_enabled(node) == enabled:
            return False
        settings.put(node.db, TRANSFERS_KEY, enabled)
        record(node, user.username, "transfers.enable" if enabled else "transfers.disable")
        queue_directory_updates(node)
    return True
