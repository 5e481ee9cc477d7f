"""How background work that failed (a pass of the outbox, expiry, mirror sync...; one outbox job) is written
to the node's log."""

from __future__ import annotations

import logging

from storage.errors import as_storage_error


def log_failure(log: logging.Logger, what: str, exc: Exception) -> None:
    """A full disk or a home this process may not use is one line an operator can act on; anything else is a
    bug, logged with its traceback. Either way the work is tried again."""
    known = as_storage_error(exc)
    if known is not None:
        log.error("%s failed: %s; %s", what, known.message, known.hint)
    else:
        log.error("%s failed; will try again", what, exc_info=exc)
