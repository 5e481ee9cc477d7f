"""Transfers accepted before documents opened straight into the blob store (their bytes wait in one staging
file, ``transfers.staging_path``): moved into the blob store once, they import like any other."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO

from node.home import Node
from node.transfer_files import staging_file
from protocol import InvalidInput
from protocol.manifest import Manifest
from storage import received_blobs
from storage import transfers as store
from storage.blobs import CHUNK
from storage.database import write_transaction
from storage.rows import update_rows
from storage.transfers import TransferRow


def _pieces(handle: BinaryIO, length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        chunk = handle.read(min(CHUNK, left))
        if not chunk:
            raise InvalidInput("the staging file is shorter than the manifest says", field="staging")
        left -= len(chunk)
        yield chunk


def adopt(node: Node, row: TransferRow, manifest: Manifest) -> None:
    """Store the staged documents as blobs held by the transfer, then drop the staging file."""
    path = staging_file(node, row)
    if path is None:
        return
    with ExitStack() as staged_blobs, path.open("rb") as handle:
        staged = [
            # Hash-checked again: these bytes were never checked by the blob store.
            (doc.record_id, staged_blobs.enter_context(node.blobs.stage_chunks(
                _pieces(handle, doc.length or 0), expect_sha256=(doc.sha256 or b"").hex()
            )))
            for doc in manifest.documents()
        ]  # fmt: skip
        # Renamed into place in the transaction that holds them (see storage.blobs): no deletion of an
        # unused blob with the same bytes can come between.
        with write_transaction(node.db):
            # Not those a purge erased from the transfer (node.purged_content): it will not import them.
            erased = set((store.manifest_redaction(node.db, row.transfer_id) or {}).get("records", ()))
            held = [(record_id, blob.publish().sha256) for record_id, blob in staged
                    if record_id not in erased]  # fmt: skip
            received_blobs.remember(node.db, row.transfer_id, held)
            update_rows(node.db, "transfers", {"staging_path": None}, {"transfer_id": row.transfer_id})
    path.unlink(missing_ok=True)
