"""The hash-chained audit log.

Each entry's hash covers the previous entry's hash and the entry's own canonical JSON, so editing or
deleting any entry but the newest breaks the chain at that point; the newest entry's hash is also copied
to ``settings`` (``audit.head``) so that truncating the tail is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage import settings
from storage.errors import AuditChainBroken

GENESIS = "0" * 64
_HEAD_KEY = "audit.head"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]
    prev_hash: str
    entry_hash: str


def _entry_hash(
    prev_hash: str, seq: int, at: str, actor: str, action: str, subject: str, details: str
) -> str:
    body = json.dumps([seq, at, actor, action, subject, details], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"satchel/v1/audit\n{prev_hash}\n{body}".encode()).hexdigest()


def append(
    db: sqlite_utils.Database,
    *,
    at: str,
    actor: str,
    action: str,
    subject: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. Call inside the transaction of the change it records."""
    row = db.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    details_json = json.dumps(dict(details or {}), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    entry_hash = _entry_hash(prev, seq, at, actor, action, subject, details_json)
    db.execute(
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, entry_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [seq, at, actor, action, subject, details_json, prev, entry_hash],
    )
    settings.put(db, _HEAD_KEY, {"seq": seq, "hash": entry_hash})
    return AuditEntry(seq, at, actor, action, subject, json.loads(details_json), prev, entry_hash)


def append_many(
    db: sqlite_utils.Database,
    *,
    at: str,
    actor: str,
    action: str,
    items: Iterable[tuple[str, Mapping[str, Any]]],
) -> None:
    """Append one entry per (subject, details), in order: the chain as :func:`append` makes it, with the
    head read and written once. Call inside the transaction of the change they record."""
    row = db.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0], row[1]) if row else (0, GENESIS)
    values = []
    for subject, details in items:
        seq += 1
        details_json = json.dumps(dict(details), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        entry_hash = _entry_hash(prev, seq, at, actor, action, subject, details_json)
        values.append((seq, at, actor, action, subject, details_json, prev, entry_hash))
        prev = entry_hash
    if not values:
        return
    db.conn.executemany(
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, entry_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )
    settings.put(db, _HEAD_KEY, {"seq": seq, "hash": prev})


def entries(
    db: sqlite_utils.Database,
    *,
    subject: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> Iterator[AuditEntry]:
    where, args = [], []
    if subject is not None:
        where.append("subject = ?")
        args.append(subject)
    if actor is not None:
        where.append("actor = ?")
        args.append(actor)
    sql = "SELECT seq, at, actor, action, subject, details, prev_hash, entry_hash FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    for r in db.execute(sql, args).fetchall():
        yield AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7])


def verify_chain(db: sqlite_utils.Database) -> int:
    """Recompute every hash; return the number of entries, or raise AuditChainBroken at the first break."""
    prev, expected_seq, count = GENESIS, 1, 0
    cursor = db.execute(
        "SELECT seq, at, actor, action, subject, details, prev_hash, entry_hash FROM audit_log ORDER BY seq"
    )
    for seq, at, actor, action, subject, details, prev_hash, entry_hash in cursor:
        if seq != expected_seq:
            raise AuditChainBroken(f"audit entries {expected_seq}..{seq - 1} are missing", field="seq")
        if prev_hash != prev:
            raise AuditChainBroken(f"audit entry {seq} does not follow entry {seq - 1}", field="prev_hash")
        if _entry_hash(prev, seq, at, actor, action, subject, details) != entry_hash:
            raise AuditChainBroken(f"audit entry {seq} was modified", field="entry_hash")
        prev, expected_seq, count = entry_hash, seq + 1, count + 1
    recorded = settings.get(db, _HEAD_KEY)
    if recorded is not None:
        if recorded["seq"] != count or recorded["hash"] != prev:
            raise AuditChainBroken(
                f"the audit log ends at entry {count} but entry {recorded['seq']} was recorded", field="seq"
            )
    elif count:
        raise AuditChainBroken("the audit head record is missing", field="audit.head")
    return count
