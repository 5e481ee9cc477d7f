"""How far a message thread between two districts' coordinators may grow (a transfer's or a request's).

A thread is people writing to people, a few messages a case. A peer that wrote without end would fill the
other district's disk and its coordinators' mailboxes, and one that is vetted in the directory is still not
trusted that far. So each side holds one thread to ``MAX_THREAD_MESSAGES``, counting both directions: its own
coordinator's message past the limit is refused before it is signed, and a peer's is refused on arrival with
``thread.full``, for good (spec/transfer.md §8, spec/requests.md §4). A message delivered again that is
already kept is not a new one and is never refused.
"""

from __future__ import annotations

from protocol.errors import SatchelError

MAX_THREAD_MESSAGES = 500


class ThreadFull(SatchelError):
    """The thread already holds the most messages one thread may hold (500, both directions)."""

    code = "thread.full"
    default_hint = (
        "the thread takes no more messages; phone or e-mail the other district's coordinator instead "
        "(`satchel peers show DOMAIN` gives their contact)"
    )


def check_room(held: int, *, about: str) -> None:
    """Refuse one more message in a thread that holds ``held`` already; ``about`` names the thread."""
    if held >= MAX_THREAD_MESSAGES:
        raise ThreadFull(
            f"the thread about {about} already holds {held:,} messages, the most one thread may hold",
            field="thread",
        )
