"""How a background pass (outbox, expiry, mirror sync...) that failed is written to the node's log."""

from __future__ import annotations

import logging

from storage.errors import as_storage_error


def log_failed_pass(log: logging.Logger, name: str, exc: Exception) -> None:
    """A full disk or a home this process may not use is one line an operator can act on; anything else is
    a bug, logged with its traceback.
    Either way the pass runs again on time."""
    known = as_storage_error(exc)
    if known is not None:
        log.error("%s pass failed: %s; %s", name, known.message, known.hint)
    else:
        log.error("%s pass failed; will try again", name, exc_info=exc)
