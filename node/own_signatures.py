"""This node's own signed documents that have yet to leave it, signed again once the key that signed them is
revoked (spec/descriptor.md, Revoking a key).

A receipt, a message, a records request or an answer is signed when it is made, kept as signed and queued; a
receipt or an answer a peer asks for again is sent as kept. Every peer that has learned of a revocation refuses
what the revoked key signs (receipt.wrong_signer, request.wrong_signer: for good), so whatever of these was
still queued, or is asked for again, would never be taken. Before it is sent it is signed again by the node's
current identity key, its payload unchanged, and the new bytes replace the old where they are kept: what is
sent is what was signed and what is kept. A receiver knows a document again by its payload, so one that had
arrived under the old key is not taken twice (spec/transfer.md §5.3 step 6, spec/requests.md §4 step 7).
"""

from __future__ import annotations

from collections.abc import Callable

from node.home import Node
from protocol.signed_document import sign_again, verify_document
from storage import outbox
from storage.database import write_transaction
from storage.outbox import Job


def revoked_here(node: Node, key_id: str) -> bool:
    """Whether ``key_id`` is an identity key of this node's that it has revoked."""
    row = node.db.execute(
        "SELECT 1 FROM node_keys WHERE key_id = ? AND use = 'identity' AND status = 'revoked'", [key_id]
    ).fetchone()
    return row is not None


def signed_now(node: Node, signed: bytes, *, purpose: str) -> bytes:
    """``signed``, or its payload signed by the current identity key when the key that signed it is revoked here.
    Ed25519 signatures are deterministic: asked again, the same bytes."""
    if not revoked_here(node, verify_document(signed, purpose=purpose).signer.key_id):
        return signed
    return sign_again(signed, purpose=purpose, key=node.current_keys().identity)


class JobWithdrawn(Exception):
    """The outbox job was withdrawn (cancelled) while its payload was being signed again: nothing is sent, and its
    row is left as the withdrawal made it."""


def job_payload_now(node: Node, job: Job, *, purpose: str, keep: Callable[[bytes, bytes], None]) -> bytes:
    """The bytes ``job`` (leased by this deliverer) is to send now: its payload, signed again when this node revoked
    the key that signed it. The job, and each copy ``keep(old, new)`` replaces, hold the new bytes before they
    are sent."""
    fresh = signed_now(node, job.payload, purpose=purpose)
    if fresh == job.payload:
        return fresh
    with write_transaction(node.db):
        if not outbox.replace_payload(node.db, job.job_id, old=job.payload, new=fresh):
            raise JobWithdrawn(f"outbox job {job.job_id} was withdrawn while being signed again; not sent")
        keep(job.payload, fresh)
    return fresh
