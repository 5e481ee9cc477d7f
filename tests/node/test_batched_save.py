"""Saving in batches: each batch in its own transaction, with the bulk page cache for the whole run."""

from __future__ import annotations

from typing import Any

from node.batched_save import save_in_batches
from storage.database import BULK_CACHE_KIB


def test_every_batch_is_saved_with_the_bulk_cache_and_the_cache_is_given_back(node: Any) -> None:
    before = node.db.execute("PRAGMA cache_size").fetchone()[0]
    seen = []

    def save(batch: list[int]) -> dict[str, int]:
        seen.append((batch, node.db.execute("PRAGMA cache_size").fetchone()[0], node.db.conn.in_transaction))
        return {"inserted": len(batch)}

    totals = save_in_batches(node, [1, 2, 3], size=2, save=save, total=3, progress=None, actor="coord",
                             action="test.save", subject="x", started={}, skipped=0,
                             finished=lambda totals: dict(totals))  # fmt: skip
    assert seen == [([1, 2], -BULK_CACHE_KIB, True), ([3], -BULK_CACHE_KIB, True)]
    assert totals["inserted"] == 3 and node.db.execute("PRAGMA cache_size").fetchone()[0] == before
