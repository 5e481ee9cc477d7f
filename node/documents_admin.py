"""Fixing mistakes with documents: provenance checks, moving, deleting and purging, replacing versions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node.blob_holds import drop_unused
from node.clock import now_iso
from node.home import Node
from node.import_preview import verified_manifest
from node.operators import authorize, record
from node.purged_content import PURGED, Purge, erase_old_pages, erase_purged, purge_of, unstage
from node.record_fixes import audit_move
from node.records import add_document, not_active, replaceable
from protocol import InvalidInput, SatchelError
from storage import imports, peers, records, students
from storage import transfers as store
from storage.database import write_transaction
from storage.records import Document


class ProvenanceBroken(SatchelError):
    """A received document no longer matches what its sender signed."""

    code = "document.provenance_broken"
    default_hint = (
        "the stored copy differs from the sender's signed manifest; ask the sender to send it again"
    )


class ActiveCopy(SatchelError):
    """A deleted document's record was imported again since, and that copy is active: restoring would hold it twice."""

    code = "document.active_copy"
    default_hint = (
        "keep the active copy; to keep the deleted one instead, delete the active copy first, then restore"
    )


@dataclass(frozen=True, slots=True)
class Provenance:
    document: Document
    sender: str | None
    transfer_id: str | None
    signed_at: int | None
    verified: bool
    # When purges here erased other records from the manifest: then its signature was verified before that,
    # not now (node.purged_content). (time of the last erasure, how many records)
    erased: tuple[str, int] | None = None
    # The sender's key that verified the manifest at acceptance, which it is verified against still, and
    # when that was; what became of that key here since: "active", "revoked" or "forgotten" (a re-pin).
    signer: SignerNow | None = None


@dataclass(frozen=True, slots=True)
class SignerNow:
    key_id: str
    accepted_at: str | None
    status: str


def verify(node: Node, doc_id: str) -> Provenance:
    """Re-check a document: its bytes against their hash, and a received one against the sender's signature."""
    doc = records.get_document(node.db, doc_id)
    if doc.status == "purged":
        raise not_active(doc, field="ID", doing="verify")
    node.blobs.verify(doc.sha256)
    origin = doc.origin
    if origin.get("kind") != "import":
        return Provenance(doc, None, None, None, True)
    row = store.require(node.db, str(origin["envelope"]), local_domain=node.config.node.domain)
    manifest = verified_manifest(node, row)
    entry = next((r for r in manifest.documents() if r.record_id == origin.get("record_id")), None)
    if entry is None or (entry.sha256 or b"").hex() != doc.sha256 or entry.length != doc.length:
        raise ProvenanceBroken(
            f"document {doc_id} is not the one {manifest.sender_domain} signed", field="ID"
        )
    redaction = store.manifest_redaction(node.db, row.transfer_id)
    erased = (str(redaction["at"]), len(redaction["records"])) if redaction else None
    verified_with = redaction.get("verified_with") if redaction else None
    key_id = str(verified_with or manifest.sender_key_id)
    return Provenance(doc, manifest.sender_domain, row.transfer_id, manifest.created, True, erased,
                      _signer_now(node, row.peer, row.transfer_id, key_id))  # fmt: skip


def _signer_now(node: Node, peer: str, transfer_id: str, key_id: str) -> SignerNow:
    """A signature valid when the transfer was accepted stays valid (spec/envelope.md §5.3); whether its key was
    revoked or forgotten here since is said beside it."""
    key = peers.key_by_id(node.db, key_id, domain=peer)
    status = "forgotten" if key is None else "revoked" if key.status == "revoked" else "active"
    return SignerNow(key_id, store.accepted_at(node.db, transfer_id), status)


def move(node: Node, *, actor: str | None, doc_id: str, to: str) -> Document:
    with write_transaction(node.db):
        user = authorize(node, actor, "records.write")
        doc = records.get_document(node.db, doc_id)
        students.require(node.db, to)
        if doc.status != "active":
            raise not_active(doc, field="ID", doing="move")
        audit_move(node, user.username, action="document.move", label=f"document {doc_id}",
                   details={"doc_id": doc_id}, current=doc.student_sis_id, to=to)  # fmt: skip
        records.update_document(node.db, doc_id, student_sis_id=to)
    return records.get_document(node.db, doc_id)


def delete(node: Node, *, actor: str | None, doc_id: str) -> Document:
    with write_transaction(node.db):
        user = authorize(node, actor, "records.write")
        doc = records.get_document(node.db, doc_id)
        if doc.status == "deleted":
            raise InvalidInput(f"document {doc_id} is already deleted", field="ID",
                               hint=f"an admin can restore it (`satchel documents restore {doc_id}`) or erase it for "
                                    f"good (`satchel purge {doc_id}`)")  # fmt: skip
        if doc.status != "active":
            raise not_active(doc, field="ID", doing="delete")
        records.update_document(node.db, doc_id, status="deleted")
        record(node, user.username, "document.delete", doc.student_sis_id, {"doc_id": doc_id})
    return records.get_document(node.db, doc_id)


def restore(node: Node, *, actor: str | None, doc_id: str) -> Document:
    """Undo a delete: the document is active again, where it was (its content was kept until a purge)."""
    with write_transaction(node.db):
        user = authorize(node, actor, "records.recover")
        doc = records.get_document(node.db, doc_id)
        if doc.status == "purged":
            raise InvalidInput(f"document {doc_id} was purged: its content is gone for good", field="ID",
                               hint="add the document again from a copy with `satchel documents add`")  # fmt: skip
        if doc.status != "deleted":
            raise InvalidInput(f"document {doc_id} is {doc.status}, not deleted: there is nothing to restore",
                               field="ID")  # fmt: skip
        students.require(node.db, doc.student_sis_id)
        _hold_again(node, doc)
        records.update_document(node.db, doc_id, status="active")
        record(node, user.username, "document.restore", doc.student_sis_id, {"doc_id": doc_id})
    return records.get_document(node.db, doc_id)


def _hold_again(node: Node, doc: Document) -> None:
    """Inside restore's transaction, for a received document. Its record counted as gone while it was deleted,
    so a redo may have imported it again (storage.imports.imported_among): with that copy active, a restore
    would hold the sender's record twice. Otherwise this document becomes the copy here again, or the next
    redo would bring the record back beside it."""
    origin = doc.origin
    if origin.get("kind") != "import":
        return
    sender, record_id = str(origin["sender"]), str(origin["record_id"])
    held = imports.imported_among(node.db, sender, [record_id]).get(record_id)
    if held is not None and held[1] == doc.doc_id:
        return
    if held is not None and held[2]:
        other = records.get_document(node.db, held[1])
        raise ActiveCopy(
            f"document {doc.doc_id} cannot be restored: {sender} sent its record again since, and it is held here "
            f"as document {other.doc_id} (student {other.student_sis_id})", field="ID",
            hint=f"keep {other.doc_id}; to keep {doc.doc_id} instead, delete the other first with `satchel documents "
            f"delete {other.doc_id}`, then restore {doc.doc_id}",
        )  # fmt: skip
    found = imports.get(node.db, str(origin["envelope"]))
    if found is not None:
        imports.hold_again(node.db, (sender, record_id, "document", doc.doc_id, found.import_id, found.transfer_id,
                                     doc.student_sis_id))  # fmt: skip


def purge(node: Node, *, actor: str | None, doc_id: str) -> tuple[Document, Purge]:
    """Erase the content for good: the bytes go (unless another document shares them), the audit entry stays."""
    with write_transaction(node.db):
        user = authorize(node, actor, "records.recover")
        doc = records.get_document(node.db, doc_id)
        if doc.status == "purged":
            raise InvalidInput(f"document {doc_id} was already purged", field="ID",
                               hint="nothing is left to erase; `satchel audit` shows who purged it and when")
        # The kind of document goes too: kept on the student it was purged from, it would still say (say) that
        # this child has an IEP.
        records.update_document(node.db, doc_id, status="purged", title=PURGED, filename=PURGED, doc_type="other",
                                media_type="application/octet-stream")  # fmt: skip
        now = now_iso()
        erased = erase_purged(node, doc.origin, kind="document", local_id=doc_id, student_sis_id=doc.student_sis_id,
                              by=user.username, now=now)  # fmt: skip
        record(node, user.username, "document.purge", doc.student_sis_id,
               {"doc_id": doc_id, "sha256": doc.sha256, "at": now, **erased})  # fmt: skip
    unstage(node, erased)
    drop_unused(node, [doc.sha256])  # unless another document uses them
    erase_old_pages(node)
    return records.get_document(node.db, doc_id), purge_of(doc.student_sis_id, doc.origin, erased)


def replace(node: Node, *, actor: str | None, doc_id: str, path: Path, title: str | None) -> Document:
    """A corrected version of a document; sending it tells the receiver it replaces the one sent before."""
    old = replaceable(node, doc_id)  # before the file is copied; checked again as the new version is added
    new = add_document(node, actor=actor, student_sis_id=old.student_sis_id, path=path, doc_type=old.doc_type,
                       title=title or old.title, replaces=doc_id)  # fmt: skip
    return records.get_document(node.db, new.doc_id)
