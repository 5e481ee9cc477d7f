"""File work the transfer machine asks for, done after the transaction that decided it has committed."""

from __future__ import annotations

import logging
from pathlib import Path

from node.blob_holds import release_transfer
from node.home import Node
from protocol.transfer_states import Action
from storage.transfers import TransferRow

log = logging.getLogger("satchel.transfers")


def carry_out(node: Node, row: TransferRow, action: Action) -> None:
    if action is Action.DELETE_SEALED_ENVELOPE and row.envelope_path:
        Path(row.envelope_path).unlink(missing_ok=True)
    elif action is Action.DISCARD_STAGING:
        # What the code opened lives in the blob store, held by the transfer until imported.
        release_transfer(node, row.transfer_id)
        if row.staging_path:  # opened by an older version into one staging file
            Path(row.staging_path).unlink(missing_ok=True)
    elif action in (
        Action.RUN_IMPORT,
        Action.STOP_IMPORT,
        Action.COMMIT_STAGING,
        Action.STORE_SEALED_ENVELOPE,
    ):
        pass  # done by the caller before its commit (receiving, accepting) or by the import job
    else:
        log.warning("transfer %s: no file work for %s", row.transfer_id, action)
