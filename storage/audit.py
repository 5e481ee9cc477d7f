"""The hash-chained audit log.

Each entry's hash covers the previous entry's hash and the entry's own canonical JSON, so editing or
deleting any entry but the newest breaks the chain at that point; the newest entry's hash is also copied
to ``settings`` (``audit.head``) so that truncating the tail is detected too.

The chain has no secret: whoever can write the database can edit an entry and compute every hash after it
again (and the head), and the chain alone then verifies. A copy of the log kept where that person cannot
write (a backup) is the witness: :func:`verify_against` checks that this log extends the copy's unchanged.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage import settings
from storage.errors import AuditChainBroken

GENESIS = "0" * 64
_HEAD_KEY = "audit.head"
_NAMED = 10  # broken entries named in the error; the rest are counted
_COLUMNS = "seq, at, actor, action, subject, details, prev_hash, entry_hash"


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
    seq: int | None = None,
    limit: int | None = None,
) -> Iterator[AuditEntry]:
    where, args = [], []
    for column, value in (("subject", subject), ("actor", actor), ("seq", seq)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    sql = f"SELECT {_COLUMNS} FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    for r in db.execute(sql, args).fetchall():
        yield AuditEntry(r[0], r[1], r[2], r[3], r[4], _details(r[5]), r[6], r[7])


def _details(stored: str) -> Mapping[str, Any]:
    """An entry's details as stored: one edited into something else is shown as it stands, since it is what
    whoever investigates the broken chain needs to read."""
    try:
        details = json.loads(stored)
    except ValueError:
        return {"(not JSON)": stored}
    return details if isinstance(details, dict) else {"(not an object)": details}


@dataclass(frozen=True, slots=True)
class Break:
    """Where the chain does not hold: the entry, what is wrong with it, and the field it concerns."""

    seq: int
    problem: str
    field: str


def breaks(db: sqlite_utils.Database | sqlite3.Connection) -> list[Break]:
    """Every place the chain does not hold, in order. Checking goes on past a break (each entry against the
    hash the one before it holds), so that an edit found and left in place never hides a later one."""
    return _scan(db)[1]


def _scan(db: sqlite_utils.Database | sqlite3.Connection) -> tuple[int, list[Break]]:
    found: list[Break] = []
    prev, expected_seq, count = GENESIS, 1, 0
    for seq, at, actor, action, subject, details, prev_hash, entry_hash in db.execute(
        f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq"
    ):
        if seq != expected_seq:  # the entry after a gap cannot follow the one before it: the gap says it
            found.append(Break(expected_seq, f"audit entries {expected_seq}..{seq - 1} are missing", "seq"))
        elif prev_hash != prev:
            found.append(Break(seq, f"audit entry {seq} does not follow entry {seq - 1}", "prev_hash"))
        if _entry_hash(prev_hash, seq, at, actor, action, subject, details) != entry_hash:
            found.append(Break(seq, f"audit entry {seq} was modified", "entry_hash"))
        prev, expected_seq, count = entry_hash, seq + 1, count + 1
    row = db.execute("SELECT value FROM settings WHERE key = ?", [_HEAD_KEY]).fetchone()
    if row is not None:
        recorded = json.loads(row[0])
        last = expected_seq - 1
        if recorded["seq"] != last or recorded["hash"] != prev:
            found.append(Break(last + 1 if recorded["seq"] > last else last,
                               f"the audit log ends at entry {last} but entry {recorded['seq']} was recorded",
                               "seq"))  # fmt: skip
    elif count:
        found.append(Break(expected_seq - 1, "the audit head record is missing", "audit.head"))
    return count, found + _disclosures_unlike_log(db)


def disclosure_digest(
    *, to_domain: str, to_name: str, records: Any, disclosed_by: str, at: str, purpose: str
) -> str:
    """What a ``transfer.send`` entry keeps of each student's row of the record of disclosures (everything but
    the student's number, which follows a renumbering; the entry's key is the number as sent): a row edited
    since no longer gives it. 128 bits of SHA-256: a grade's entry holds 500 of them."""
    body = json.dumps([to_domain, to_name, records, disclosed_by, at, purpose], ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))  # fmt: skip
    return hashlib.sha256(f"satchel/v1/disclosure\n{body}".encode()).hexdigest()[:32]


def _disclosures_unlike_log(db: sqlite_utils.Database | sqlite3.Connection) -> list[Break]:
    """Where the record of disclosures (an ordinary table) disagrees with the audit entries that sent each
    transfer (``transfer.send``, in the chain): a row deleted to hide a disclosure from a parent, one made up, or
    one edited (another district, student, operator or, where the entry keeps each row's digest, other records,
    reason or date). Entries from before the digests still give the district, the students, the operator and
    how many records went."""
    sent = _sent_as_of_now(db)
    found: list[Break] = []
    current: str | None = None
    rows: list[tuple[Any, ...]] = []
    for row in db.execute(
        "SELECT transfer_id, student_sis_id, to_domain, to_name, records, disclosed_by, at, purpose"
        " FROM disclosures ORDER BY transfer_id, student_sis_id"
    ):
        if row[0] != current:
            if current is not None:
                found += _compare(current, rows, sent.pop(current, False))
            current, rows = row[0], []
        rows.append(row)
    if current is not None:
        found += _compare(current, rows, sent.pop(current, False))
    for transfer_id, entry in sent.items():
        found += _compare(transfer_id, [], entry)
    return sorted(found, key=lambda b: (b.seq == 0, b.seq))


@dataclass(frozen=True, slots=True)
class _Sent:
    """A ``transfer.send`` entry: its seq, operator and details, and each student it names as now numbered."""

    seq: int
    actor: str
    details: Mapping[str, Any]
    as_sent: dict[str, str]  # the student's number now -> as the entry names them


def _sent_as_of_now(db: sqlite_utils.Database | sqlite3.Connection) -> dict[str, _Sent | None]:
    """Every transfer a ``transfer.send`` entry names (None: its entry was edited out of shape, which the chain
    names already), its students followed through the ``student.renumbered`` entries after it. Read newest
    first, so that a number the SIS gave back to another child after a renumbering is that child's only after
    it."""
    sent: dict[str, _Sent | None] = {}
    now_of: dict[str, str] = {}  # a number as it was at the entry read -> the same student's number now
    for seq, actor, action, subject, stored in db.execute(
        "SELECT seq, actor, action, subject, details FROM audit_log"
        " WHERE action IN ('transfer.send', 'student.renumbered') ORDER BY seq DESC"
    ):
        details = _details(stored)
        if action == "student.renumbered":
            old, new = details.get("from"), details.get("to")
            if isinstance(old, str) and isinstance(new, str):
                now_of[old] = now_of.pop(new, new)
            continue
        students = details.get("students")
        if not isinstance(students, list) or not all(isinstance(s, str) for s in students):
            sent.setdefault(subject, None)
            continue
        sent.setdefault(subject, _Sent(seq, actor, details, {now_of.get(str(s), str(s)): str(s) for s in students}))
    return sent


def _compare(transfer_id: str, rows: list[tuple[Any, ...]], entry: _Sent | bool | None) -> list[Break]:
    """What is wrong with ``rows``, the record of disclosures of one transfer, against its entry (False: there
    is none; None: it was edited out of shape, which the chain names already)."""
    if entry is False:
        return [Break(0, f"the record of disclosures names transfer {transfer_id}, which no audit entry says was "
                         "sent", "disclosures")]  # fmt: skip
    if not isinstance(entry, _Sent):
        return []
    seq, details = entry.seq, entry.details
    found = []
    if len(rows) != len(entry.as_sent):
        found.append(Break(seq, f"the record of disclosures holds {len(rows)} of the {len(entry.as_sent)} students "
                                f"audit entry {seq} says transfer {transfer_id} disclosed", "disclosures"))  # fmt: skip
    said = f"audit entry {seq} says"
    digests = details.get("disclosed") if isinstance(details.get("disclosed"), dict) else None
    listed = 0
    for _, student, to_domain, to_name, records_json, by, at, purpose in rows:
        as_sent = entry.as_sent.get(student)
        if as_sent is None:
            found.append(Break(seq, f"the record of disclosures names student {student} for transfer {transfer_id}, "
                                    f"which {said} it did not disclose", "disclosures"))  # fmt: skip
            continue
        if to_domain != details.get("to"):
            found.append(Break(seq, f"the record of disclosures says transfer {transfer_id} went to {to_domain} "
                                    f"(student {student}); {said} to {details.get('to')}", "disclosures"))  # fmt: skip
        if "to_name" in details and to_name != details["to_name"]:
            found.append(Break(seq, f"the record of disclosures names the district transfer {transfer_id} went to "
                                    f"{to_name!r} (student {student}); {said} {details['to_name']!r}",
                               "disclosures"))  # fmt: skip
        if by != entry.actor:
            found.append(Break(seq, f"the record of disclosures says {by} disclosed student {student} by transfer "
                                    f"{transfer_id}; {said} {entry.actor} did", "disclosures"))  # fmt: skip
        try:
            records = json.loads(records_json)
        except ValueError:
            records = None
        if isinstance(records, list):
            listed += sum(1 for r in records if not (isinstance(r, dict) and r.get("kind") == "demographics"))
        if digests is not None and digests.get(as_sent) != disclosure_digest(
            to_domain=to_domain, to_name=to_name, records=records, disclosed_by=by, at=at, purpose=purpose
        ):
            found.append(Break(seq, f"the disclosure of student {student} by transfer {transfer_id} (its records, "
                                    f"reason or date) is not the one {said} was made", "disclosures"))  # fmt: skip
    if digests is None and isinstance(details.get("records"), int) and len(rows) == len(entry.as_sent) and (
        listed != details["records"]
    ):
        found.append(Break(seq, f"the record of disclosures lists {listed} records for transfer {transfer_id}; {said} "
                                f"it disclosed {details['records']}", "disclosures"))  # fmt: skip
    return found


def _broken(found: list[Break]) -> AuditChainBroken:
    named = "; ".join(b.problem for b in found[:_NAMED])
    more = f"; and {len(found) - _NAMED} more" if len(found) > _NAMED else ""
    seq = next((b.seq for b in found if b.seq), None)
    if seq is None:  # only disclosures no entry names: the backup's record of them is the one to compare with
        where = "compare the record of disclosures with a backup's (`satchel disclosures STUDENT --home BACKUP`)"
    else:
        where = (f"read each entry named as it now stands (`satchel audit --seq {seq}`) and the same entry in a "
                 f"backup taken before (`satchel audit --seq {seq} --home BACKUP`)")
    return AuditChainBroken(f"{named}{more}", field=found[0].field,
                            hint=f"{where}; keep this database as evidence, and find out who could write to it")


def verify_chain(db: sqlite_utils.Database) -> int:
    """Recompute every hash; return the number of entries, or raise AuditChainBroken naming every break."""
    count, found = _scan(db)
    if found:
        raise _broken(found)
    return count


def verify_against(db: sqlite_utils.Database, backup: sqlite_utils.Database | sqlite3.Connection) -> int:
    """Check that this log holds every entry of ``backup``'s (a copy taken before, kept elsewhere) unchanged:
    the witness for a log rewritten with its hashes computed again. The backup's number of entries."""
    verify_chain(db)
    backup_count, backup_found = _scan(backup)
    if backup_found:
        raise AuditChainBroken(
            "the backup's own audit log does not verify: " + "; ".join(b.problem for b in backup_found[:_NAMED]),
            field="--against", hint="compare with an older backup, or check this one with `satchel check --home`",
        )  # fmt: skip
    theirs = backup.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq")
    ours = db.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq")
    last_ours = 0
    for seq, digest in theirs:
        mine = ours.fetchone()
        if mine is None:
            raise AuditChainBroken(
                f"the backup's audit log goes on to entry {backup_count}; this one ends at entry {last_ours}: entries "
                "were removed since the backup", field="--against",
                hint=f"read the entries after {last_ours} in the backup (`satchel audit --home BACKUP`); keep this "
                     "database as evidence, and find out who could write to it",
            )  # fmt: skip
        last_ours = mine[0]
        if mine[1] != digest:
            raise _broken([Break(seq, f"audit entry {seq} differs from the backup's: the log was changed since the "
                                      "backup and its hashes computed again", "--against")])  # fmt: skip
    return backup_count
