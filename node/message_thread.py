"""What a coordinator writes into a thread with another district (a transfer's or a records request's): the
text's rules said in the coordinator's words, and the thread's limit with whom to call instead."""

from __future__ import annotations

from node.home import Node
from protocol import InvalidInput
from protocol.receipts import check_text
from protocol.threads import ThreadFull, check_room
from storage import peers


def checked_text(text: str, *, limit: int) -> str:
    """The message as it will be signed; refused (field ``TEXT``) when empty, too long or holding control
    characters other than line breaks and tabs."""
    text = text.replace("\r\n", "\n")  # a note pasted from a Windows file
    problem = None
    if not text.strip():
        problem = "the message is empty"
    elif len(text) > limit:
        problem = f"the message is {len(text):,} characters long"
    else:
        try:
            check_text(text, "the message", limit, required=True, error=InvalidInput)
        except InvalidInput as exc:
            problem = f"{exc.message} (line breaks and tabs are the only ones it may hold)"
    if problem:
        raise InvalidInput(problem, field="TEXT", hint=f"write what the other district should know, in at most "
                                                       f"{limit:,} characters (several messages for more)")  # fmt: skip
    return text


def coordinator_words(node: Node, domain: str) -> str | None:
    """The other district's transfer coordinator as its descriptor publishes them, for a person to call."""
    known = peers.get(node.db, domain)
    c = known.coordinator if known else None
    return f"{c['name']}, {c.get('phone') or c['email']}" if c else None


def check_own_room(node: Node, *, held: int, about: str, peer: str) -> None:
    """Refuse this node's coordinator one more message in a full thread, saying whom to call instead."""
    try:
        check_room(held, about=about)
    except ThreadFull as exc:
        contact = coordinator_words(node, peer)
        if contact:
            exc.hint = f"the thread takes no more messages; call {peer}'s transfer coordinator instead: {contact}"
        raise
