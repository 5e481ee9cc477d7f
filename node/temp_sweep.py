"""Removing what writers killed mid-way left behind: temp blobs, half-sealed or half-received envelopes, and
the scratch files of a roster import."""

from __future__ import annotations

import logging

from node.home import Node
from node.receiving import RECEIVING
from node.sending import SEALING
from storage.blobs import INCOMING
from storage.spill_map import SPILL
from storage.temp_files import DEFAULT_MIN_AGE, sweep

log = logging.getLogger("satchel.temp_sweep")


def sweep_orphans(node: Node, *, now: float | None = None, min_age: float = DEFAULT_MIN_AGE) -> int:
    """Remove the temp files of writers no longer running (see storage.temp_files); returns how many went."""
    envelopes = node.config.envelopes_dir
    removed = (
        sweep(node.blobs.tmp_dir, INCOMING, now=now, min_age=min_age)
        + sweep(node.blobs.tmp_dir, SPILL, now=now, min_age=min_age)
        + sweep(envelopes / "out", SEALING, now=now, min_age=min_age)
        + sweep(envelopes / "in", RECEIVING, now=now, min_age=min_age)
    )
    if removed:
        log.info("removed %d temp file(s) left by writers that stopped mid-way", removed)
    return removed
