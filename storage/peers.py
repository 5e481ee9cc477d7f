"""Other nodes this node knows: their verified descriptors and keys (the key chain's local cache)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

import sqlite_utils

from protocol.descriptor import Descriptor


@dataclass(frozen=True, slots=True)
class Peer:
    domain: str
    base_url: str
    name: str
    role: str
    state: str
    city: str
    zip: str
    nces_id: str
    transfers_enabled: bool
    coordinator: dict | None
    descriptor: bytes
    trust: str
    trusted_via: str
    pinned_by: str | None
    fetched_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class PeerKey:
    key_id: str
    domain: str
    use: str
    algorithm: str
    public_key: bytes
    not_before: str
    not_after: str | None
    status: str

    def valid_at(self, moment: str) -> bool:
        """Whether the key may sign something made at ``moment`` (ISO times compare as strings)."""
        return (
            self.status == "active"
            and self.not_before <= moment
            and (self.not_after is None or moment < self.not_after)
        )


_PEER_COLS = (
    "domain, base_url, name, role, state, city, zip, nces_id, transfers_enabled, coordinator, descriptor,"
    " trust, trusted_via, pinned_by, fetched_at, updated_at"
)
_KEY_COLS = "key_id, domain, use, algorithm, public_key, not_before, not_after, status"


def _peer(row: tuple) -> Peer:
    values = list(row)
    values[8] = bool(values[8])
    values[9] = json.loads(values[9]) if values[9] else None
    values[10] = bytes(values[10])
    return Peer(*values)


def get(db: sqlite_utils.Database, domain: str) -> Peer | None:
    row = db.execute(f"SELECT {_PEER_COLS} FROM peers WHERE domain = ?", [domain]).fetchone()
    return _peer(row) if row else None


def list_all(db: sqlite_utils.Database) -> list[Peer]:
    return [_peer(r) for r in db.execute(f"SELECT {_PEER_COLS} FROM peers ORDER BY domain").fetchall()]


def _key(row: tuple) -> PeerKey:
    key_id, domain, use, algorithm, public_key, not_before, not_after, status = row
    return PeerKey(key_id, domain, use, algorithm, bytes(public_key), not_before, not_after, status)


def keys(db: sqlite_utils.Database, domain: str) -> list[PeerKey]:
    rows = db.execute(f"SELECT {_KEY_COLS} FROM peer_keys WHERE domain = ? ORDER BY not_before", [domain])
    return [_key(r) for r in rows.fetchall()]


def key_by_id(db: sqlite_utils.Database, key_id: str, *, domain: str | None = None) -> PeerKey | None:
    """The identity or encryption key ``key_id`` of ``domain``, or of whichever one domain holds it: a key id
    held by two domains names neither (rows stored before identity keys had to be vouched for)."""
    if domain is not None:
        row = db.execute(f"SELECT {_KEY_COLS} FROM peer_keys WHERE key_id = ? AND domain = ?",
                         [key_id, domain]).fetchone()  # fmt: skip
        return _key(row) if row else None
    rows = db.execute(f"SELECT {_KEY_COLS} FROM peer_keys WHERE key_id = ? LIMIT 2", [key_id]).fetchall()
    return _key(rows[0]) if len(rows) == 1 else None


def store(
    db: sqlite_utils.Database,
    descriptor: Descriptor,
    signed: bytes,
    *,
    trust: str,
    trusted_via: str,
    pinned_by: str | None,
    now: str,
    vouched: Collection[str] = (),
) -> None:
    """Insert or refresh a peer from a verified descriptor; keys are added, never silently dropped. Of its
    identity keys, only those in ``vouched`` (protocol.key_chain.vouched_identity_keys) are the domain's."""
    existing = get(db, descriptor.domain)
    if existing is not None and _rank(existing.trust) > _rank(trust):
        trust, trusted_via, pinned_by = existing.trust, existing.trusted_via, existing.pinned_by
    coordinator = json.dumps(descriptor.coordinator.to_json()) if descriptor.coordinator else None
    db.execute(
        f"INSERT INTO peers ({_PEER_COLS}) VALUES ({','.join('?' * 16)}) ON CONFLICT (domain) DO UPDATE SET"
        " base_url = excluded.base_url, name = excluded.name, role = excluded.role, state = excluded.state,"
        " city = excluded.city, zip = excluded.zip, nces_id = excluded.nces_id,"
        " transfers_enabled = excluded.transfers_enabled, coordinator = excluded.coordinator,"
        " descriptor = excluded.descriptor, trust = excluded.trust, trusted_via = excluded.trusted_via,"
        " pinned_by = excluded.pinned_by, fetched_at = excluded.fetched_at, updated_at = excluded.updated_at",
        [
            descriptor.domain, descriptor.base_url, descriptor.name, descriptor.role, descriptor.state,
            descriptor.city, descriptor.zip, descriptor.nces_id, int(descriptor.transfers_enabled),
            coordinator, signed, trust, trusted_via, pinned_by, now, now,
        ],
    )  # fmt: skip
    for key in descriptor.keys:
        if key.use == "identity" and key.key_id not in vouched:
            continue
        db.execute(
            "INSERT INTO peer_keys (key_id, domain, use, algorithm, public_key, not_before, not_after, status,"
            " first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?) ON CONFLICT (key_id, domain) DO UPDATE SET"
            " not_after = excluded.not_after",
            [key.key_id, descriptor.domain, key.use, key.algorithm, key.public_key, key.not_before,
             key.not_after, now],
        )  # fmt: skip
    for key_id in descriptor.revoked_keys:
        db.execute(
            "UPDATE peer_keys SET status = 'revoked' WHERE domain = ? AND key_id = ?",
            [descriptor.domain, key_id],
        )


def revoke_key(db: sqlite_utils.Database, domain: str, key_id: str) -> None:
    db.execute("UPDATE peer_keys SET status = 'revoked' WHERE domain = ? AND key_id = ?", [domain, key_id])


def forget_identity_keys(db: sqlite_utils.Database, domain: str) -> None:
    """Before re-pinning after a confirmed key change: the old chain no longer vouches for anything."""
    db.execute("DELETE FROM peer_keys WHERE domain = ?", [domain])


def _rank(trust: str) -> int:
    return {"web": 0, "directory": 1, "pinned": 2}[trust]
