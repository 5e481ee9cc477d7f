"""Which stored manifests' bytes have passed ``protocol.manifest.parse_manifest`` with every check.

A transfer keeps its signed manifest for provenance, and every later command (preview, import, documents
verify) verifies the signature again before believing it. Verifying costs little; re-checking the structure
of a grade's 3 MB manifest costs a third of an import. Parsing is a pure function of the bytes, so once
the exact bytes (named by their SHA-256) have passed, they are parsed with
``protocol.manifest.parse_checked_manifest`` instead. Only bytes a full parse accepted are ever entered.
"""

from __future__ import annotations

import hashlib

import sqlite_utils


def _name(manifest: bytes) -> str:
    return hashlib.sha256(manifest).hexdigest()


def remember(db: sqlite_utils.Database, manifest: bytes, *, now: str) -> None:
    """These bytes passed a full ``parse_manifest``; call only after it returned."""
    db.execute(
        "INSERT OR IGNORE INTO checked_manifests (sha256, checked_at) VALUES (?, ?)", [_name(manifest), now]
    )


def passed(db: sqlite_utils.Database, manifest: bytes) -> bool:
    row = db.execute("SELECT 1 FROM checked_manifests WHERE sha256 = ?", [_name(manifest)]).fetchone()
    return row is not None
