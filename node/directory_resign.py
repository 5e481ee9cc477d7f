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

One walker at a time, across processes: the command and the serving node's timer would otherwise both take up
the same stopped walk, signing every entry twice and taking the write lock twice as often (only one's writes
stick). A walker holds the walk (``settings`` row ``directory.resign.walker``: a token of its own, its
process and until when) and renews the hold with every batch it writes; another leaves the walk to it, the
timer until its next minute, a command waiting (and showing how far the walk is) until the walk ends or the
hold is let go, runs out or is held by a process that is gone, when it goes on from where the walk stands.

Until the walk ends, the directory's listings vouch for its earlier identity keys that are not revoked (as
``sources`` under its own domain), so that entries the walk has not reached yet still verify for a client
that follows the new key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from crypto import IdentityKey, IdentityPublicKey
from node.clock import iso, now_iso, parse_iso, utc_now
from node.home import Node, load_keys
from node.operators import record
from node.progress import Progress
from protocol import SatchelError
from protocol.directory import read_entry, sign_entry
from storage import directory as store
from storage import settings
from storage.database import write_transaction
from storage.temp_files import process_running

log = logging.getLogger("satchel.directory")
STATE_KEY = "directory.resign"
# Entries signed, then written in one transaction: a fifth of a second of signing, a few ms of writing.
RESIGN_BATCH = 200
WALKER_KEY = "directory.resign.walker"
# A walker renews its hold with each batch, a fraction of a second apart; one that renewed nothing for this long
# stopped without letting go (a machine suspended, a process frozen), and another may go on with the walk.
HOLD_SECONDS = 60.0
# How often a command waiting for another process's walk looks at how far it is.
WAIT_SECONDS = 0.25


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


def _held_by_another(held: dict[str, Any] | None, token: str) -> bool:
    if held is None or held["token"] == token or parse_iso(held["until"]) <= utc_now():
        return False
    # A process that is gone let go of nothing; the home is local, so its process id says (outbox leases too).
    return held["pid"] == os.getpid() or process_running(held["pid"])


class _Walker:
    """One process's part in a walk: it takes the walk, signs a batch at a time while it holds it, and lets it
    go when it stops (the module's docstring)."""

    def __init__(self, node: Node, progress: Progress | None) -> None:
        self.node = node
        self.token = secrets.token_hex(8)
        self.progress = progress
        self.done = 0
        self.held = False  # whether it took the walk at some point (and may hold it still)

    def _hold(self) -> None:
        until = iso(utc_now() + timedelta(seconds=HOLD_SECONDS))
        settings.put(self.node.db, WALKER_KEY, {"token": self.token, "pid": os.getpid(), "until": until})
        self.held = True

    def _free(self) -> bool:
        return not _held_by_another(settings.get(self.node.db, WALKER_KEY), self.token)

    def take(self, *, wait: bool) -> bool:
        """Hold the walk, if one is under way; with ``wait``, for as long as another walker holds it."""
        node = self.node
        if node.config.node.role != "directory":
            return False
        waited = False
        while True:
            # Looked at outside a transaction first: a command waiting does not take the write lock to look.
            state = settings.get(node.db, STATE_KEY)
            if state is not None and self._free():
                with write_transaction(node.db):
                    state = settings.get(node.db, STATE_KEY)
                    if state is not None and self._free():
                        self._hold()
                        return True
            if state is None:
                if waited:  # the walker it waited for finished the walk
                    self.report(None)
                return False
            if not wait:
                return False
            self.report(state)
            waited = True
            time.sleep(WAIT_SECONDS)

    def next(self) -> _Batch | None:
        node = self.node
        state = settings.get(node.db, STATE_KEY)
        if state is None:
            return None
        own = node.config.node.domain
        page = store.own_approved_page(node.db, own, after=state["after"], limit=RESIGN_BATCH)
        return _Batch(state, node.current_keys().identity, page)

    def store(self, batch: _Batch, signed: list[tuple[str, bytes, bytes]], now: str) -> bool:
        """Write a batch and move the cursor on, or end the walk after the last page; False when this walker no
        longer holds the walk (it held it too long without a word, and another took it on). A batch of a walk
        that changed meanwhile (the key changed again) is dropped and the walk goes on as it now stands."""
        node = self.node
        own = node.config.node.domain
        with write_transaction(node.db):
            held = settings.get(node.db, WALKER_KEY)
            if held is None or held["token"] != self.token:
                return False
            state = settings.get(node.db, STATE_KEY)
            if state != batch.state:
                return True
            key = node.current_keys().identity.public_key
            if key != batch.key.public_key or key.key_id != state["key"]:
                # The key changed without start() (the end of the newest passed): from the first entry again.
                settings.put(node.db, STATE_KEY, state | {"key": key.key_id, "after": "", "count": 0})
                return True
            written = sum(store.replace_entry(node.db, domain, own, old=old, new=new, now=now)
                          for domain, old, new in signed)  # fmt: skip
            count = state["count"] + written
            if batch.page:
                state = state | {"after": batch.page[-1][0], "count": count}
                settings.put(node.db, STATE_KEY, state)
                self._hold()
            else:
                settings.delete(node.db, STATE_KEY)
                settings.delete(node.db, WALKER_KEY)
                if count:
                    record(node, state["by"], "directory.entries.resigned", key.key_id, {"count": count})
                state = None
        self.done += written
        self.report(state)
        return True

    def report(self, state: dict[str, Any] | None) -> None:
        """Tell ``progress`` how far the walk is: entries up to its cursor, of the directory's own approved."""
        if self.progress is None:
            return
        own = self.node.config.node.domain
        total = store.own_approved_count(self.node.db, own)
        self.progress(total if state is None else store.own_approved_count(self.node.db, own, upto=state["after"]),
                      total)  # fmt: skip

    def let_go(self) -> None:
        """Let another walker go on at once from where this one stopped (it failed, or was cancelled)."""
        if not self.held:
            return
        try:
            with write_transaction(self.node.db):
                held = settings.get(self.node.db, WALKER_KEY)
                if held is not None and held["token"] == self.token:
                    settings.delete(self.node.db, WALKER_KEY)
        except SatchelError as exc:  # the database busy: the hold runs out by itself
            log.warning("could not let go of the directory's re-signing: %s", exc.code)


def finish(node: Node, *, progress: Progress | None = None, wait: bool = True) -> int:
    """Complete a walk under way, if any (see the module's docstring); returns the entries this process signed
    again. With ``wait`` (a command), a walk another process holds is waited for, its progress shown; without,
    it is left to that process."""
    walker = _Walker(node, progress)
    try:
        while walker.take(wait=wait):
            while (batch := walker.next()) is not None:
                now = now_iso()
                if not walker.store(batch, _sign(batch, now), now):
                    break
    finally:
        walker.let_go()
    return walker.done


async def finish_off_loop(node: Node) -> int:
    """As :func:`finish` for the serving node's timer, which leaves a walk another process holds to it: the
    signing runs in a thread, so its event loop waits for no more than a batch's write."""
    walker = _Walker(node, None)
    try:
        if walker.take(wait=False):
            while (batch := walker.next()) is not None:
                now = now_iso()
                if not walker.store(batch, await asyncio.to_thread(_sign, batch, now), now):
                    break
    finally:
        walker.let_go()
    return walker.done
