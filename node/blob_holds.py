"""Deleting blobs nothing needs any more: no document uses them and no transfer still waits to import them.

Blobs are content-addressed, so one blob can back several documents and several received transfers; a
blob goes only when the last of them lets go of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from node.home import Node
from storage import received_blobs, records
from storage.database import write_transaction


def drop_unused(node: Node, sha256s: Iterable[str]) -> int:
    """Delete those of these blobs that nothing uses; returns how many went. Call after the change that
    let go of them has committed: a blob deleted for a change that then rolls back would be lost."""
    if node.db.conn.in_transaction:
        raise RuntimeError("drop_unused runs after the transaction that released the blobs")
    dropped = 0
    # Under the write lock: accepting renames its blobs into place and commits the transfer's hold on them
    # in one write transaction, so no blob gains a holder between the check and the delete.
    with write_transaction(node.db):
        for sha in sorted(set(sha256s)):
            if (
                records.documents_with_blob(node.db, sha) == 0
                and received_blobs.waiting_for(node.db, sha) == 0
            ):
                dropped += node.blobs.delete(sha)
    return dropped


def release_transfer(node: Node, transfer_id: str) -> int:
    """The transfer will import nothing more: forget what it held and delete the blobs only it held."""
    with write_transaction(node.db):
        held = received_blobs.of_transfer(node.db, transfer_id)
        received_blobs.forget(node.db, transfer_id)
    return drop_unused(node, held)
