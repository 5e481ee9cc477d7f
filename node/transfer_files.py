"""File work the transfer machine asks for, done after the transaction that decided it has committed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from node.blob_holds import release_transfer
from node.home import Node
from protocol import SatchelError
from protocol.transfer_states import Action
from storage.blobs import CHUNK
from storage.home_files import envelope_under
from storage.transfers import TransferRow

log = logging.getLogger("satchel.transfers")


class SealedEnvelopeMissing(SatchelError):
    """A transfer's sealed envelope is gone from this node's disk while the transfer still needs it."""

    code = "transfer.envelope_missing"
    default_hint = "restore the home's envelopes from a backup (`satchel check` lists what is missing)"


def pieces(path: Path, *, start: int = 0, length: int | None = None) -> Iterator[bytes]:
    """The bytes of ``path`` from ``start``, ``length`` of them (or to its end), a chunk at a time; it stops
    early where the file ends, which the caller counts."""
    with path.open("rb") as handle:
        handle.seek(start)
        left = length
        while left is None or left > 0:
            piece = handle.read(CHUNK if left is None else min(CHUNK, left))
            if not piece:
                return
            if left is not None:
                left -= len(piece)
            yield piece


def envelope_file(node: Node, row: TransferRow) -> Path | None:
    """Where the transfer's sealed envelope is in this home, wherever the home was when it was written."""
    return envelope_under(node.config.home, row.envelope_path) if row.envelope_path else None


def staging_file(node: Node, row: TransferRow) -> Path | None:
    """Where an older version's staging file for the transfer is in this home (see :func:`envelope_file`)."""
    return node.config.staging_dir / Path(row.staging_path).name if row.staging_path else None


def carry_out(node: Node, row: TransferRow, action: Action) -> None:
    envelope, staging = envelope_file(node, row), staging_file(node, row)
    if action is Action.DELETE_SEALED_ENVELOPE and envelope:
        envelope.unlink(missing_ok=True)
    elif action is Action.DISCARD_STAGING:
        # What the code opened lives in the blob store, held by the transfer until imported.
        release_transfer(node, row.transfer_id)
        if staging:  # opened by an older version into one staging file
            staging.unlink(missing_ok=True)
    elif action in (
        Action.RUN_IMPORT,
        Action.STOP_IMPORT,
        Action.COMMIT_STAGING,
        Action.STORE_SEALED_ENVELOPE,
    ):
        pass  # done by the caller before its commit (receiving, accepting) or by the import job
    else:
        log.warning("transfer %s: no file work for %s", row.transfer_id, action)
