"""What a purge erases besides the record's own row (MISSION.md, fixing mistakes: purged for good, the audit
trail of the purge stays).

A received record's content is also in the sender's signed manifest, kept at acceptance for provenance and
for the import log: a case's notes, a result's scores, a document's title and file name. A purge erases the
record from every manifest received from that sender that holds it, but one whose transfer may still import
it (a redo accepted and not imported yet, which brings it again: spec/transfer.md §6). The bytes then no
longer match the sender's signature, so the row says which records were erased and which of the sender's
keys verified the manifest just before; the rest of the manifest (the other records' SHA-256, the students)
still proves what the sender sent.

Old copies of pages stay in the database's write-ahead log after a commit; :func:`erase_old_pages` writes the
log into the database (where SQLite's secure_delete has zeroed what was deleted) and empties it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

from node.home import Node
from node.import_preview import verified_manifest
from protocol import SatchelError
from protocol.manifest import Manifest, ManifestRecord, encode_manifest, parse_manifest
from storage import imports, manifest_checks, received_blobs
from storage import transfers as store
from storage.database import checkpoint_truncate
from storage.transfers import TransferRow

PURGED = "(purged)"


def erase_from_manifests(node: Node, origin: Mapping[str, Any], *, now: str) -> dict[str, str]:
    """Inside the purge's transaction: erase the record ``origin`` names (a received record's origin) from the
    stored manifests of its sender. Returns {transfer id: SHA-256 of its manifest now} of those it changed,
    for the purge's audit entry."""
    if origin.get("kind") != "import":
        return {}  # the district's own record: no other district's manifest holds it here
    sender, record_id = str(origin["sender"]), str(origin["record_id"])
    changed = {}
    for transfer_id in store.manifests_naming(node.db, sender, record_id):
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        redaction = store.manifest_redaction(node.db, transfer_id)
        manifest, verified_with = _read(node, row, redaction)
        target = next((r for r in manifest.records if r.record_id == record_id), None)
        if target is None or _may_still_import(node, row, target):
            continue
        erased = dataclasses.replace(manifest, records=tuple(
            _erased(r) if r.record_id == record_id else r for r in manifest.records))  # fmt: skip
        data = encode_manifest(erased)
        parse_manifest(data)  # every check, once: later reads parse these bytes without them
        manifest_checks.remember(node.db, data, now=now)
        digest = hashlib.sha256(data).hexdigest()
        store.redact_manifest(node.db, transfer_id, data, {
            "records": sorted({*(redaction or {}).get("records", ()), record_id}), "at": now,
            "verified_with": verified_with, "sha256": digest,
        })  # fmt: skip
        changed[transfer_id] = digest
    return changed


def _read(node: Node, row: TransferRow, redaction: Mapping[str, Any] | None) -> tuple[Manifest, str | None]:
    """The stored manifest and the sender's key that verified it (None: none could)."""
    if redaction is not None:
        return verified_manifest(node, row), redaction.get("verified_with")
    try:
        manifest = verified_manifest(node, row)
        return manifest, manifest.sender_key_id
    except SatchelError:
        # No key of the sender verifies it any more (say all were revoked): erasing comes before provenance.
        stored = store.manifest_of(node.db, row.transfer_id)
        assert stored is not None
        return parse_manifest(stored[0]), None


def _may_still_import(node: Node, row: TransferRow, record: ManifestRecord) -> bool:
    """Whether the transfer can still import ``record``: its student is not imported from it yet."""
    if row.status.state not in received_blobs.WAITING_STATES:
        return False
    found = imports.get(node.db, row.transfer_id)
    if found is None:
        return True
    student = next((s for s in imports.students(node.db, found.import_id)
                    if s.sender_sis_id == record.student_sis_id), None)  # fmt: skip
    return student is None or student.result != "imported"


def _erased(record: ManifestRecord) -> ManifestRecord:
    """The record with its ids kept (the audit log names them) and its content gone. A document keeps its
    length and SHA-256, which say nothing of the bytes once they are deleted and which its purged row keeps."""
    if record.kind != "document":
        return dataclasses.replace(record, metadata={})
    return dataclasses.replace(record, metadata={}, title=PURGED, media_type="application/octet-stream",
                               document_type=None)  # fmt: skip


def audit_details(erased: dict[str, str]) -> dict[str, dict[str, str]]:
    """For the purge's audit entry: the manifests it changed, each with the SHA-256 it now has."""
    return {"erased_from_manifests": erased} if erased else {}


def erase_old_pages(node: Node) -> bool:
    """After the purge commits: False when a reader kept the log from being emptied (a later checkpoint does)."""
    return checkpoint_truncate(node.db)
