"""What a peer that does not advertise ``request.release_failed`` (spec/descriptor.md, Features) is sent instead
of the answers it cannot take (spec/requests.md §4, Peers of older versions).

A version from before ``release_failed`` refuses that kind (``request.invalid``), and its request machine has
no way back from ``released``: it refuses a second release (``request.mismatch``) and a rejection after a
release. Every version takes a ``message`` in every state. So from the news that a release failed on, each of the
releaser's answers about the request goes to such a peer as a message that says the answer in words, at the
answer's turn, by the same person at the same time: its coordinators learn that the records did not arrive,
and that they come again in the new transfer (which arrives in its inbox like any transfer) or not at all.
"""

from __future__ import annotations

from dataclasses import replace

from protocol.records_request import MAX_COMMENTS, RequestResponse, ResponseKind

# The releaser's answers whose news an older requester cannot take as an answer once its release failed.
_AFTER_A_FAILED_RELEASE = (ResponseKind.RELEASE_FAILED, ResponseKind.RELEASED, ResponseKind.REJECTED)
# Why the words come as a message, for the coordinators who read it there.
_WHY = ("\n\n(Sent as a message: the Satchel version of {domain} does not take this answer; it keeps showing "
        "the request released with the transfer that failed.)")  # fmt: skip


def needs_words(response: RequestResponse, *, answer_number: int) -> bool:
    """Whether ``response``, this node's ``answer_number``-th answer about its request, is one a peer without
    ``request.release_failed`` refuses: the news that a release failed, and any release or rejection after it
    (a releaser answers more than once only after a release failed)."""
    if response.kind is ResponseKind.RELEASE_FAILED:
        return True
    return response.kind in _AFTER_A_FAILED_RELEASE and answer_number > 1


def in_words(response: RequestResponse) -> RequestResponse:
    """``response`` as a message: the same request, districts, person and time; its meaning in ``comments``."""
    said = response.comments.strip()
    if response.kind is ResponseKind.RELEASE_FAILED:
        words = said  # already says which transfer ended, how, and what comes next
    elif response.kind is ResponseKind.RELEASED:
        words = (f"The records are released again, in a new transfer {response.transfer_id}: it arrives in your "
                 "inbox like any transfer, and our coordinator gives you its authentication code. Please "
                 "disregard the transfer that failed." + (f"\n\n{said}" if said else ""))  # fmt: skip
    else:
        words = f"The request is rejected after all: {said}"
    why = _WHY.format(domain=response.to_domain)
    if len(words) + len(why) > MAX_COMMENTS:
        words = words[: MAX_COMMENTS - len(why) - 1].rstrip() + "…"
    return replace(response, kind=ResponseKind.MESSAGE, comments=words + why, transfer_id=None)
