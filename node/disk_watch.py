"""Warn the people running a node before its disk is too full to take transfers.

Once free space on the home's disk falls under ``storage.reserve_mib`` the node refuses incoming envelopes,
``send`` and ``accept`` (node.receiving, storage.free_space); senders keep retrying, so nothing is lost,
but transfers stall. The serving node looks every ten minutes: with less than WARN_MARGIN left above the
reserve it logs a warning and notifies coordinators and admins (inbox and e-mail), at most once a day
while the disk stays low, and again after it has recovered and runs low once more.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta

from node.clock import iso, parse_iso, utc_now
from node.home import Node
from node.notify import notify_coordinators
from storage import settings
from storage.database import write_transaction
from storage.free_space import size_text

log = logging.getLogger("satchel.disk")
WARN_MARGIN = 1 << 30  # warn while less than this is left before the reserve is reached
REPEAT = timedelta(days=1)
_WARNED_KEY = "storage.disk_low_warned_at"


def warning_due(free: int, reserve: int, warned_at: datetime | None, now: datetime) -> bool:
    """Whether to notify now: the disk is low, and nobody was told in the last day."""
    return free < reserve + WARN_MARGIN and (warned_at is None or now - warned_at >= REPEAT)


def watch_disk(node: Node) -> bool:
    """One look at the home's disk; True when it notified."""
    free = shutil.disk_usage(node.config.home).free
    reserve = node.config.storage.reserve_bytes
    recorded = settings.get(node.db, _WARNED_KEY)
    warned_at = parse_iso(recorded) if recorded else None
    now = utc_now()
    if free >= reserve + WARN_MARGIN:
        if recorded:  # recovered: the next time it runs low is news again
            with write_transaction(node.db):
                settings.put(node.db, _WARNED_KEY, None)
        return False
    log.warning("disk space low: %s free on the disk of %s; transfers stop below %s (storage.reserve_mib)",
                size_text(free), node.config.home, size_text(reserve))  # fmt: skip
    if not warning_due(free, reserve, warned_at, now):
        return False
    domain = node.config.node.domain
    with write_transaction(node.db):
        notify_coordinators(
            node, subject=f"Satchel: disk space low on {domain}",
            body=f"The disk that holds the Satchel home of {domain} has {size_text(free)} free. Below "
                 f"{size_text(reserve)} (storage.reserve_mib) the node refuses incoming transfers, sending and "
                 "accepting; other districts' nodes keep retrying, so nothing is lost, but transfers wait. "
                 "Ask the node's IT staff to free space on that disk or move the home to a larger one.",
        )  # fmt: skip
        settings.put(node.db, _WARNED_KEY, iso(now))
    return True
