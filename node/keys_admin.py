"""`satchel keys rotate|revoke`: new keys published beside the old, endorsed by them; revocations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from crypto import EncryptionKey, IdentityKey, peek_unverified_sender
from node import directory_resign
from node.clock import iso, now_iso, utc_now
from node.directory_client import queue_directory_updates
from node.home import Node, load_keys
from node.operators import authorize, record
from node.progress import Progress
from node.transfer_files import envelope_file
from protocol import Conflict, InvalidInput, NotFound, SatchelError
from protocol.descriptor import PublishedKey
from protocol.key_chain import endorse
from protocol.signed_document import b64url
from storage import transfers as store
from storage.database import write_transaction
from storage.durable_files import create_synced

DEFAULT_OVERLAP_DAYS = 7
# At least a day, so that what the old key signed just before still verifies everywhere (rotation without
# an outage; a compromised key is revoked instead); at most a year, past which the old key is simply kept.
MIN_OVERLAP_DAYS, MAX_OVERLAP_DAYS = 1, 365


def rotate(
    node: Node,
    *,
    actor: str | None,
    use: str,
    overlap_days: int = DEFAULT_OVERLAP_DAYS,
    progress: Progress | None = None,
) -> str:
    """Create a new key for ``use``; the current one stays valid for ``overlap_days``. Returns the new id. On a
    directory, ``progress`` is told how far the signing of its entries again is (node.directory_resign)."""
    user = authorize(node, actor, "keys.manage")
    if not MIN_OVERLAP_DAYS <= overlap_days <= MAX_OVERLAP_DAYS:
        raise InvalidInput(
            f"--overlap-days must be {MIN_OVERLAP_DAYS} to {MAX_OVERLAP_DAYS}, not {overlap_days}",
            field="--overlap-days",
            hint=f"the old key stays valid that many days beside the new one (default {DEFAULT_OVERLAP_DAYS}); "
            "to stop a compromised key at once, use `satchel keys revoke`",
        )
    now = utc_now()
    new: IdentityKey | EncryptionKey = (
        IdentityKey.generate() if use == "identity" else EncryptionKey.generate()
    )
    public = new.public_key
    key_file = f"{use}-{public.key_id}.key"
    # On disk before the commit that lists it: peers seal envelopes to a new encryption key as soon as it is
    # published, and only this file can open them.
    create_synced(node.config.keys_dir / key_file, new.export_secret().encode("ascii"))
    endorsement = None
    if use == "identity":
        published = PublishedKey(key_id=public.key_id, use=use, algorithm=public.algorithm,
                                 public_key=public.raw, not_before=iso(now))  # fmt: skip
        made = endorse(node.config.node.domain, published, node.current_keys().identity)
        endorsement = json.dumps({"key_id": made.key_id, "signature": b64url(made.signature)})
    with write_transaction(node.db):
        node.db.execute(
            "UPDATE node_keys SET not_after = ? WHERE use = ? AND status = 'active'"
            " AND (not_after IS NULL OR not_after > ?)",
            [iso(now + timedelta(days=overlap_days)), use, iso(now + timedelta(days=overlap_days))],
        )
        node.db.execute(
            "INSERT INTO node_keys (key_id, use, algorithm, public_key, key_file, not_before, created_at,"
            " endorsement) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [public.key_id, use, public.algorithm, public.raw, key_file, iso(now), iso(now), endorsement],
        )
        record(node, user.username, f"keys.rotate.{use}", public.key_id, {"overlap_days": overlap_days})
        if use == "identity":
            directory_resign.start(node, actor=user.username)
        queue_directory_updates(node)
    node.keys = load_keys(node.config, node.db, expired_ok=node.expired_keys_ok)
    directory_resign.finish(node, progress=progress)  # after the commit, a batch to a transaction
    return public.key_id


@dataclass(frozen=True, slots=True)
class Stranded:
    """An outgoing transfer not delivered yet whose envelope the revoked key signed: its receiver would refuse
    it. ``resealed``: it is sealed again with the current key before it goes (node.envelope_reseal), since this
    node kept its manifest and code; otherwise (sealed by a version that kept no manifest) it is to be cancelled
    and sent again."""

    transfer_id: str
    peer: str
    resealed: bool = False


@dataclass(frozen=True, slots=True)
class Revoked:
    key_id: str
    use: str
    # The key left to sign or seal, when it was to end and so no longer does (with when it was to end).
    kept: str | None = None
    kept_was_to_end: str | None = None
    stranded: tuple[Stranded, ...] = ()


def revoke(node: Node, *, actor: str | None, key_id: str, progress: Progress | None = None) -> Revoked:
    """Revoke one of this node's keys; what it sealed or signed that other districts already verified stays
    good (spec/descriptor.md, Revoking a key). ``progress`` as for :func:`rotate`."""
    with write_transaction(node.db):
        user = authorize(node, actor, "keys.manage")
        row = node.db.execute("SELECT use, status FROM node_keys WHERE key_id = ?", [key_id]).fetchone()
        if row is None:
            raise NotFound(f"this node has no key {key_id}", field="KEYID", hint="see `satchel keys list`")
        use, status = row
        if status == "revoked":
            return Revoked(key_id, use)
        now = now_iso()
        remaining = node.db.execute(
            "SELECT key_id, not_after FROM node_keys WHERE use = ? AND status = 'active' AND key_id != ?"
            " AND not_before <= ? AND (not_after IS NULL OR not_after > ?) ORDER BY not_before DESC, created_at DESC",
            [use, key_id, now, now],
        ).fetchall()
        if not remaining:
            raise Conflict(
                f"{key_id} is the node's only valid {use} key", field="KEYID",
                hint=f"rotate first with `satchel keys rotate --{use}`, then revoke the old key",
            )  # fmt: skip
        kept, was_to_end = None, None
        if all(until is not None for _, until in remaining):
            # The key revoked is the one a rotation made (the rotation gave every older key an end): revoking it
            # undoes the rotation, and the key before it, which every peer still trusts, is the node's key
            # again with no end. Left to end, it would leave the node with no key at all (home.keys_expired);
            # refusing instead would have the operator rotate once more, to a key endorsed by the very key
            # being revoked, which a peer that never saw that key cannot follow without a phone call.
            kept, was_to_end = remaining[0]
            node.db.execute("UPDATE node_keys SET not_after = NULL WHERE key_id = ?", [kept])
        node.db.execute("UPDATE node_keys SET status = 'revoked', not_after = ? WHERE key_id = ?", [now, key_id])
        stranded = _signed_and_undelivered(node, key_id) if use == "identity" else ()
        details: dict[str, object] = {"use": use}
        if kept is not None:
            details |= {"kept": kept, "kept_was_to_end": was_to_end}
        if stranded:
            details["undelivered_transfers"] = [s.transfer_id for s in stranded]
        record(node, user.username, "keys.revoke", key_id, details)
        if use == "identity":
            directory_resign.start(node, actor=user.username)
        queue_directory_updates(node)
    node.keys = load_keys(node.config, node.db)
    directory_resign.finish(node, progress=progress)
    return Revoked(key_id, use, kept, was_to_end, stranded)


def _signed_and_undelivered(node: Node, key_id: str) -> tuple[Stranded, ...]:
    """Outgoing transfers still sealed (not delivered) whose envelope ``key_id`` signed. Their receivers refuse
    them once they learn of the revocation, which the delivery itself, signed with the new key, teaches them;
    envelopes already delivered were verified there and still open."""
    found = []
    for row in store.list_rows(node.db, local_domain=node.config.node.domain, side="sender", state="sealed"):
        envelope = envelope_file(node, row)
        if envelope is None:
            continue
        try:
            with envelope.open("rb") as handle:
                _, signer = peek_unverified_sender(handle.read(4096))
        except (OSError, SatchelError):
            continue  # a missing or damaged sealed envelope fails its delivery on its own, and says why
        if signer == key_id:
            tid = row.transfer_id
            kept = store.outgoing_manifest(node.db, tid) is not None and store.get_code(node.db, tid) is not None
            found.append(Stranded(tid, row.peer, kept))
    return tuple(found)
