"""What a purge erases besides the record's own row (MISSION.md, fixing mistakes: purged for good, the audit
trail of the purge stays).

A received record's content is also in the sender's signed manifest, kept at acceptance for provenance and
for the import log: a case's notes, a result's scores, a document's title and file name. A purge erases the
record from every manifest received from that sender that holds it, whatever its transfer's state: a
transfer that was here before the purge and had not imported the record yet (accepted, or partly imported
with the record's student skipped or set aside) will not import it, or the purge would be undone by the next
`import run`; an envelope held unopened then, or sealed before the purge and delivered after, has the record
erased when it is accepted (storage.purges keeps which). Only what the sender seals after the purge (a redo,
spec/transfer.md §6) brings the record again;
should that transfer be rejected before importing it, the record is erased from it then. The bytes then no
longer match the sender's signature, so the row says which records were erased and which of the sender's
keys verified the manifest just before; the rest of the manifest (the other records' SHA-256, the students)
still proves what the sender sent.

Every purge is remembered (ids, who, when: storage.purges), so that the district's nightly assessments CSV
does not add a purged result back either (node.assessment_import).

Old copies of pages stay in the database's write-ahead log after a commit; :func:`erase_old_pages` writes the
log into the database (where SQLite's secure_delete has zeroed what was deleted) and empties it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node import legacy_staging
from node.clock import parse_iso
from node.envelope_policy import open_policy
from node.home import Node
from node.import_preview import verified_manifest
from protocol import SatchelError
from protocol.manifest import Manifest, ManifestRecord, encode_manifest, parse_manifest
from storage import imports, manifest_checks, purges, received_blobs
from storage import transfers as store
from storage.database import checkpoint_truncate
from storage.transfers import TransferRow

PURGED = "(purged)"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Purge:
    """What a purge did beyond the record's own row, for the admin who ran it."""

    student_sis_id: str
    sender: str | None = None  # the district it came from (None: the district's own)
    # Transfers held here that had not imported it yet: they now never will (a redo sent after the purge does)
    not_imported_from: tuple[str, ...] = ()
    # Envelopes of the sender waiting for their code: should one hold it, it is erased as it is accepted
    unopened: tuple[str, ...] = ()
    # This node's own transfers sealed with it and not delivered yet: an envelope cannot be changed, so they still
    # carry it to their receiver unless cancelled
    undelivered: tuple[str, ...] = ()

    def told(self) -> str:
        """What the admin is told of the transfers above; empty when there are none."""
        said = []
        if self.not_imported_from:
            said.append(f"Transfer(s) {', '.join(self.not_imported_from)} from {self.sender}, here since before the "
                        f"purge, will not import it.")  # fmt: skip
        if self.unopened:
            said.append(f"Transfer(s) {', '.join(self.unopened)} from {self.sender}, waiting for a code, will not "
                        f"import it should they hold it.")  # fmt: skip
        if said:
            said.append(f"If it belongs to another student, ask {self.sender} to send it again.")
        if self.undelivered:
            first = self.undelivered[0]
            said.append(f"Transfer(s) {', '.join(self.undelivered)}, sealed with it before the purge and not "
                        f"delivered yet, still carry it in their envelopes, which cannot be changed: if it must not "
                        f"reach the other district, cancel them (`satchel cancel {first}`) and send the other records "
                        f"again.")  # fmt: skip
        return " ".join(said)


def purge_of(student_sis_id: str, origin: Mapping[str, Any], details: Mapping[str, Any]) -> Purge:
    """The :class:`Purge` of a record from ``origin``, ``details`` being what :func:`erase_purged` returned."""
    sender = str(origin["sender"]) if origin.get("kind") == "import" else None
    return Purge(student_sis_id, sender, tuple(details.get("not_to_be_imported_from", ())),
                 tuple(details.get("erased_when_opened_from", ())),
                 tuple(details.get("still_in_undelivered", ())))  # fmt: skip


def erase_purged(
    node: Node, origin: Mapping[str, Any], *, kind: str, local_id: str, student_sis_id: str, by: str, now: str
) -> dict[str, Any]:
    """Inside the purge's transaction: remember the purge, and erase a received record (``origin`` says where
    it came from) from every manifest of its sender stored here, whatever the state of its transfer, and from
    envelopes held unopened when they are accepted. Returns what to add to the purge's audit entry."""
    # This node's own manifests kept to seal undelivered envelopes again (node.envelope_reseal) hold the record's
    # content in the clear, under this node's id for it: they go, and those transfers can no longer be sealed again.
    in_flight = []
    for transfer_id, kept in store.outgoing_manifests_holding(node.db, local_id):
        if any(r.record_id == local_id for r in parse_manifest(kept).records):
            store.drop_outgoing_manifest(node.db, transfer_id)
            in_flight.append(transfer_id)
    # Their envelopes still hold it and go as they are: the admin is told, to cancel them if it must not go.
    undelivered: dict[str, Any] = {"still_in_undelivered": sorted(in_flight)} if in_flight else {}
    if origin.get("kind") != "import":
        purges.remember(node.db, purges.OWN, local_id, kind=kind, student_sis_id=student_sis_id, at=now,
                        by=by)  # fmt: skip
        return undelivered
    sender, record_id = str(origin["sender"]), str(origin["record_id"])
    purges.remember(node.db, sender, record_id, kind=kind, student_sis_id=student_sis_id, at=now, by=by)
    erased: dict[str, str] = {}
    withheld = []  # transfers that could still have imported it: they now will not
    for transfer_id in store.manifests_naming(node.db, sender, record_id):
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        could_import = _could_still_import(node, row, record_id)
        digest = _erase(node, row, [record_id], now=now)
        if digest is not None:
            erased[transfer_id] = digest
            if could_import:
                withheld.append(transfer_id)
    unopened = store.unopened_from(node.db, sender)
    purges.remember_unopened(node.db, unopened, record_id)
    details: dict[str, Any] = {"erased_from_manifests": erased} if erased else {}
    details |= undelivered
    if withheld:
        details["not_to_be_imported_from"] = sorted(withheld)
    if unopened:
        details["erased_when_opened_from"] = sorted(unopened)
    return details


def unstage(node: Node, details: Mapping[str, Any]) -> None:
    """After the purge's commit (``details`` being what :func:`erase_purged` returned): a transfer accepted by an
    older version keeps its documents back to back in one staging file until it is imported (node.legacy_staging),
    which may be never; the documents it still holds move into the blob store now, and the file, with the purged
    document's bytes in it, goes."""
    for transfer_id in details.get("erased_from_manifests", {}):
        row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
        if not row.staging_path:
            continue
        try:
            legacy_staging.adopt(node, row, verified_manifest(node, row))
        except SatchelError as error:
            # The purge stands; the transfer's import would meet the same error, and the file waits for it.
            log.warning("the staging file of transfer %s still holds a purged document: %s (%s)", transfer_id,
                        error.message, error.code)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ErasedAtAcceptance:
    record_ids: tuple[str, ...] = ()  # the sender's ids of the records erased: the coordinator is told
    document_sha256: tuple[str, ...] = ()  # their documents' bytes, for the caller to drop after commit


def erase_at_acceptance(node: Node, row: TransferRow, manifest: Manifest, *, now: str) -> ErasedAtAcceptance:
    """Inside the transaction that accepts ``row``, once ``manifest`` (which opening it verified) is stored:
    erase what was purged while its envelope was held unopened, or before it was sealed."""
    record_ids = purges.unopened(node.db, row.transfer_id)
    record_ids += sealed_before_their_purge(node, row.peer, manifest)
    erased = [r for r in manifest.records if r.record_id in record_ids]
    if not erased:
        return ErasedAtAcceptance()
    _erase(node, row, record_ids, now=now, opened=manifest)
    return ErasedAtAcceptance(tuple(r.record_id for r in erased),
                              tuple((r.sha256 or b"").hex() for r in erased if r.kind == "document"))  # fmt: skip


def sealed_before_their_purge(node: Node, sender: str, manifest: Manifest) -> list[str]:
    """The records of ``manifest`` purged here after the sender sealed it: it carries them as they were before the
    purge, as an envelope held here unopened then does, though it was not here yet (arriving at that moment, or
    waiting at its sender for this node to be reachable). A redo is sealed after the purge. The sender's clock is
    trusted to within the skew an envelope's creation time is allowed: sealed closer to the purge than that, the
    envelope is taken as a redo (as every envelope arriving after the purge was before), for a redo erased by
    mistake would have to be sent a third time."""
    skew = open_policy(node.config).clock_skew
    purged = purges.among(node.db, sender, [r.record_id for r in manifest.records])
    return [record_id for record_id, was in purged.items()
            if parse_iso(was.purged_at).timestamp() - skew > manifest.created]  # fmt: skip


def erase_before_rejecting(node: Node, row: TransferRow, *, now: str) -> bool:
    """Inside the transaction that rejects ``row``: it will import nothing, so records purged here that it
    brought again (a redo that arrived after the purge) are erased from its manifest, unless an imported copy
    of them is held here (then their content is here anyway). True when something was erased."""
    purges.unopened(node.db, row.transfer_id)  # an envelope rejected unopened: nothing to erase at acceptance
    stored = store.manifest_of(node.db, row.transfer_id)
    if stored is None:
        return False
    manifest, _ = _read(node, row, store.manifest_redaction(node.db, row.transfer_id))
    ids = [r.record_id for r in manifest.records]
    purged = purges.among(node.db, row.peer, ids)
    held = imports.imported_among(node.db, row.peer, list(purged))
    gone = [record_id for record_id in purged if not held.get(record_id, ("", "", False))[2]]
    # Its bytes held for the import go with the rest when the rejection releases the transfer.
    return bool(gone) and _erase(node, row, gone, now=now, let_go=False) is not None


def _erase(
    node: Node, row: TransferRow, record_ids: list[str], *, now: str, opened: Manifest | None = None,
    let_go: bool = True,
) -> str | None:  # fmt: skip
    """Erase ``record_ids`` from the transfer's stored manifest and let go of their documents' bytes; returns
    the SHA-256 of the manifest now, or None when it held none of them still unerased. ``opened``: the manifest
    as stored, verified a moment ago by opening its envelope."""
    redaction = store.manifest_redaction(node.db, row.transfer_id)
    manifest, verified_with = (opened, opened.sender_key_id) if opened else _read(node, row, redaction)
    done = set((redaction or {}).get("records", ()))
    wanted = {r.record_id for r in manifest.records if r.record_id in record_ids and r.record_id not in done}
    if not wanted:
        return None
    erased = dataclasses.replace(manifest, records=tuple(
        _erased(r) if r.record_id in wanted else r for r in manifest.records))  # fmt: skip
    data = encode_manifest(erased)
    parse_manifest(data)  # every check, once: later reads parse these bytes without them
    manifest_checks.remember(node.db, data, now=now)
    digest = hashlib.sha256(data).hexdigest()
    store.redact_manifest(node.db, row.transfer_id, data, {
        "records": sorted(done | wanted), "at": now, "verified_with": verified_with, "sha256": digest,
    })  # fmt: skip
    if let_go:
        received_blobs.forget_records(node.db, row.transfer_id, sorted(wanted))
    return digest


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


def _could_still_import(node: Node, row: TransferRow, record_id: str) -> bool:
    """Whether, but for the purge, the transfer could still import the record: it waits to import, and the
    student the record is on in it is not imported from it yet."""
    if row.status.state not in received_blobs.WAITING_STATES:
        return False
    found = imports.get(node.db, row.transfer_id)
    if found is None:
        return True
    manifest, _ = _read(node, row, store.manifest_redaction(node.db, row.transfer_id))
    record = next((r for r in manifest.records if r.record_id == record_id), None)
    if record is None:
        return False
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


def erase_old_pages(node: Node) -> bool:
    """After the purge commits: False when a reader kept the log from being emptied (a later checkpoint does)."""
    return checkpoint_truncate(node.db)
