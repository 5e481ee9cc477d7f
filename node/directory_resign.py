"""A directory signs its own entries again after its identity key changes (spec/directory.md, "A directory's
key"), a batch at a time.

Signing an entry again takes about a millisecond; a state's 13,000 entries signed in the transaction of the
key change held the database's write lock for 17 s, past the busy timeout of every other writer (join
requests, the serving node), which failed meanwhile. So the key change only notes that a re-signing is due
(``settings`` row ``directory.resign``, in the same transaction), and the walk then goes through the
directory's own approved entries in domain order: each batch is read and signed outside any transaction,
then written in a short one of its own that also moves the walk's cursor on. An entry that changed since it
was read (approved again, updated, rejected) is left as it now is: whatever wrote it signed it with the
current key. A walk stopped mid-way (a crash, a killed command) leaves every entry signed by the old key or
the new one, each valid, and is taken up where it stopped by the serving node (at start and every minute)
or by the next `satchel keys rotate|revoke`; a new key change starts it again from the first entry.

Until the walk ends, the directory's listings vouch for its earlier identity keys that are not revoked (as
``sources`` under its own domain), so that entries the walk has not reached yet still verify for a client
that follows the new key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from crypto import IdentityKey, IdentityPublicKey
from node.clock import now_iso
from node.home import Node, load_keys
from node.operators import record
from protocol import SatchelError
from protocol.directory import read_entry, sign_entry
from storage import directory as store
from storage import settings
from storage.database import write_transaction

log = logging.getLogger("satchel.directory")
STATE_KEY = "directory.resign"
# Entries signed, then written in one transaction: a fifth of a second of signing, a few ms of writing.
RESIGN_BATCH = 200


def start(node: Node, *, actor: str) -> None:
    """Note that the directory's own entries are to be signed again by its identity key now; call inside the
    transaction that changes the keys (load_keys reads it). A walk under way for another key starts again from
    the first entry; one for that key goes on (an earlier key revoked meanwhile)."""
    if node.config.node.role != "directory":
        return
    key = load_keys(node.config, node.db).identity.public_key.key_id
    state = settings.get(node.db, STATE_KEY)
    if state is None or state["key"] != key:
        settings.put(node.db, STATE_KEY, {"key": key, "after": "", "count": 0, "by": actor})


def pending(node: Node) -> bool:
    return node.config.node.role == "directory" and settings.get(node.db, STATE_KEY) is not None


def vouched_keys(node: Node) -> list[IdentityPublicKey]:
    """While a walk is under way, the directory's earlier identity keys that are not revoked: its entries the
    walk has not reached are signed by one of them. None otherwise."""
    if not pending(node):
        return []
    current = node.current_keys().identity.public_key.key_id
    rows = node.db.execute(
        "SELECT public_key FROM node_keys WHERE use = 'identity' AND status != 'revoked' AND key_id != ?"
        " ORDER BY created_at, key_id",
        [current],
    ).fetchall()
    return [IdentityPublicKey(bytes(row[0])) for row in rows]


@dataclass(frozen=True, slots=True)
class _Batch:
    state: dict[str, Any]
    key: IdentityKey
    page: list[tuple[str, bytes]]


def _next(node: Node) -> _Batch | None:
    state = settings.get(node.db, STATE_KEY) if node.config.node.role == "directory" else None
    if state is None:
        return None
    page = store.own_approved_page(node.db, node.config.node.domain, after=state["after"], limit=RESIGN_BATCH)
    return _Batch(state, node.current_keys().identity, page)


def _sign(batch: _Batch, now: str) -> list[tuple[str, bytes, bytes]]:
    """(domain, entry as read, entry signed again) of the entries of the batch another key signed."""
    signed = []
    for domain, raw in batch.page:
        try:
            entry, signer = read_entry(raw)
        except SatchelError as exc:  # damaged on disk: the rest are still signed again, and the walk ends
            log.warning("directory entry of %s cannot be read to sign it again: %s", domain, exc.code)
            continue
        if signer != batch.key.public_key:
            signed.append((domain, raw, sign_entry(replace(entry, issued_at=now), batch.key)))
    return signed


def _store(node: Node, batch: _Batch, signed: list[tuple[str, bytes, bytes]], now: str) -> int | None:
    """Write a batch and move the cursor on, or end the walk after the last page; returns the entries written,
    or None when the walk changed meanwhile (another process took it on, or the key changed again)."""
    own = node.config.node.domain
    with write_transaction(node.db):
        state = settings.get(node.db, STATE_KEY)
        if state != batch.state:
            return None
        key = node.current_keys().identity.public_key
        if key != batch.key.public_key or key.key_id != state["key"]:
            # The key changed without start() (the end of the newest passed): from the first entry again.
            settings.put(node.db, STATE_KEY, state | {"key": key.key_id, "after": "", "count": 0})
            return None
        written = sum(store.replace_entry(node.db, domain, own, old=old, new=new, now=now)
                      for domain, old, new in signed)  # fmt: skip
        count = state["count"] + written
        if batch.page:
            settings.put(node.db, STATE_KEY, state | {"after": batch.page[-1][0], "count": count})
        else:
            settings.delete(node.db, STATE_KEY)
            if count:
                record(node, state["by"], "directory.entries.resigned", key.key_id, {"count": count})
    return written


def _batches(node: Node) -> Iterator[_Batch]:
    while (batch := _next(node)) is not None:
        yield batch


def finish(node: Node) -> int:
    """Complete a walk under way, if any (see the module's docstring); returns the entries signed again."""
    done = 0
    for batch in _batches(node):
        now = now_iso()
        done += _store(node, batch, _sign(batch, now), now) or 0
    return done


async def finish_off_loop(node: Node) -> int:
    """As :func:`finish`, for the serving node: the signing runs in a thread, so its event loop waits for no
    more than a batch's write."""
    done = 0
    for batch in _batches(node):
        now = now_iso()
        done += _store(node, batch, await asyncio.to_thread(_sign, batch, now), now) or 0
    return done
