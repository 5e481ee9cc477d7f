"""Building and signing this node's own descriptor."""

from __future__ import annotations

import json

from node import district_state as district
from node.clock import now_iso
from node.home import Node
from protocol.descriptor import Descriptor, Endorsement, PublishedKey, sign_descriptor
from protocol.signed_document import unb64url


def published_keys(node: Node) -> tuple[PublishedKey, ...]:
    """Every key not revoked, so peers can verify old receipts and follow rotations."""
    rows = node.db.execute(
        "SELECT key_id, use, algorithm, public_key, not_before, not_after, endorsement FROM node_keys"
        " WHERE status != 'revoked' ORDER BY use, not_before"
    ).fetchall()
    return tuple(
        PublishedKey(
            key_id=r[0], use=r[1], algorithm=r[2], public_key=bytes(r[3]), not_before=r[4], not_after=r[5],
            endorsement=_endorsement(r[6]),
        )
        for r in rows
    )  # fmt: skip


def _endorsement(text: str | None) -> Endorsement | None:
    if not text:
        return None
    data = json.loads(text)
    return Endorsement(key_id=data["key_id"], signature=unb64url(data["signature"], field="endorsement"))


def revoked_keys(node: Node) -> tuple[str, ...]:
    rows = node.db.execute("SELECT key_id FROM node_keys WHERE status = 'revoked' ORDER BY key_id").fetchall()
    return tuple(r[0] for r in rows)


def build_descriptor(node: Node, *, issued_at: str | None = None) -> Descriptor:
    cfg = node.config.node
    return Descriptor(
        role=cfg.role,
        domain=cfg.domain,
        name=cfg.name,
        state=cfg.state,
        city=cfg.city,
        zip=cfg.zip,
        nces_id=cfg.nces_id,
        base_url=cfg.base_url,
        transfers_enabled=district.transfers_enabled(node),
        coordinator=district.contact(node),
        keys=published_keys(node),
        revoked_keys=revoked_keys(node),
        issued_at=issued_at or now_iso(),
    )


def signed_descriptor(node: Node) -> bytes:
    return sign_descriptor(build_descriptor(node), node.current_keys().identity)
