"""Transfers as each side stores them: the state machine's status, the timeline, codes, disclosures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from protocol import NotFound
from protocol.transfer_states import ReceiverState, SenderState, Side, TransferStatus
from storage.rows import insert_row, update_rows


@dataclass(frozen=True, slots=True)
class TransferRow:
    status: TransferStatus
    kind: str
    created_at: str
    updated_at: str
    created_by: str | None
    note: str
    owner: str | None
    students: int
    documents: int
    records: int
    envelope_path: str | None
    envelope_length: int | None
    staging_path: str | None
    request_id: str | None

    @property
    def transfer_id(self) -> str:
        return self.status.transfer_id

    @property
    def peer(self) -> str:
        return self.status.peer_domain

    @property
    def state(self) -> str:
        return self.status.state.value

    @property
    def contents_known(self) -> bool:
        """Whether ``students``, ``records`` and ``documents`` say what the transfer holds: always at the sender;
        at the receiver once its code opened the envelope (every transfer carries a student, so 0 is "sealed")."""
        return self.status.side is Side.SENDER or self.students > 0


_COLS = (
    "transfer_id, side, state, peer, expires_at, envelope_digest, wrong_codes, max_wrong_codes, receipts_issued,"
    " kind, created_at, updated_at, created_by, note, owner, students, documents, records, envelope_path,"
    " envelope_length, staging_path, request_id"
)


def _row(row: tuple, local_domain: str) -> TransferRow:
    (transfer_id, side, state, peer, expires_at, digest, wrong, max_wrong, issued, *rest) = row
    side_enum = Side(side)
    status = TransferStatus(
        side=side_enum,
        state=(SenderState if side_enum is Side.SENDER else ReceiverState)(state),
        transfer_id=transfer_id,
        local_domain=local_domain,
        peer_domain=peer,
        expires=datetime.fromisoformat(expires_at.replace("Z", "+00:00")) if expires_at else None,
        envelope_digest=bytes(digest) if digest is not None else None,
        wrong_codes=wrong,
        max_wrong_codes=max_wrong,
        receipts_issued=issued,
    )
    return TransferRow(status, *rest)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def waiting_from_unlisted(db: sqlite_utils.Database) -> int:
    """Bytes of sealed envelopes waiting for a code here from districts known only from their own web site."""
    return int(db.execute(
        "SELECT coalesce(sum(t.envelope_length), 0) FROM transfers t JOIN peers p ON p.domain = t.peer"
        " WHERE t.side = 'receiver' AND t.state = 'received' AND p.trust = 'web'"
    ).fetchone()[0])  # fmt: skip


def get(db: sqlite_utils.Database, transfer_id: str, *, local_domain: str) -> TransferRow | None:
    row = db.execute(f"SELECT {_COLS} FROM transfers WHERE transfer_id = ?", [transfer_id]).fetchone()
    return _row(row, local_domain) if row else None


def require(db: sqlite_utils.Database, transfer_id: str, *, local_domain: str) -> TransferRow:
    row = get(db, transfer_id, local_domain=local_domain)
    if row is None:
        raise NotFound(f"no transfer {transfer_id}", field="ID", hint="see `satchel transfers list`")
    return row


def insert(db: sqlite_utils.Database, status: TransferStatus, *, now: str, **extra: Any) -> None:
    values = {
        "transfer_id": status.transfer_id, "side": status.side.value, "state": status.state.value,
        "peer": status.peer_domain, "expires_at": _iso(status.expires), "envelope_digest": status.envelope_digest,
        "wrong_codes": status.wrong_codes, "max_wrong_codes": status.max_wrong_codes,
        "receipts_issued": status.receipts_issued, "created_at": now, "updated_at": now, **extra,
    }  # fmt: skip
    insert_row(db, "transfers", values)


def save_status(db: sqlite_utils.Database, status: TransferStatus, *, now: str, **extra: Any) -> None:
    values = {
        "state": status.state.value, "expires_at": _iso(status.expires), "envelope_digest": status.envelope_digest,
        "wrong_codes": status.wrong_codes, "receipts_issued": status.receipts_issued, "updated_at": now, **extra,
    }  # fmt: skip
    update_rows(db, "transfers", values, {"transfer_id": status.transfer_id})


def save_manifest(
    db: sqlite_utils.Database, transfer_id: str, manifest: bytes, signature: bytes, *, signer: tuple[str, bytes]
) -> None:  # fmt: skip
    """The sender's signed manifest, kept for provenance with ``signer`` (key id, public key), the sender's
    identity key that verified it. Its own table: a grade's is megabytes, which the transfer's row (updated at
    every step) would otherwise rewrite each time."""
    db.execute(
        "INSERT INTO transfer_manifests (transfer_id, manifest, signature, signer_key_id, signer_public_key)"
        " VALUES (?, ?, ?, ?, ?)",
        [transfer_id, manifest, signature, *signer],
    )


def manifest_signer(db: sqlite_utils.Database, transfer_id: str) -> tuple[str, bytes] | None:
    """(key id, public key) of the sender's identity key that verified the stored manifest when the transfer was
    accepted; None for a transfer accepted before Satchel kept it, until :func:`record_manifest_signer`."""
    row = db.execute(
        "SELECT signer_key_id, signer_public_key FROM transfer_manifests WHERE transfer_id = ?", [transfer_id]
    ).fetchone()
    return (str(row[0]), bytes(row[1])) if row and row[0] is not None and row[1] is not None else None


def record_manifest_signer(
    db: sqlite_utils.Database, transfer_id: str, key_id: str, public_key: bytes
) -> None:
    """The key that verified a manifest stored without one (see :func:`manifest_signer`); a recorded one stays."""
    db.execute(
        "UPDATE transfer_manifests SET signer_key_id = ?, signer_public_key = ?"
        " WHERE transfer_id = ? AND signer_key_id IS NULL",
        [key_id, public_key, transfer_id],
    )


def accepted_at(db: sqlite_utils.Database, transfer_id: str) -> str | None:
    """When this node accepted the transfer (its first `state.accepted` event), or None."""
    row = db.execute(
        "SELECT min(at) FROM transfer_events WHERE transfer_id = ? AND kind = 'state.accepted'", [transfer_id]
    ).fetchone()
    return row[0] if row else None


def keep_outgoing_manifest(db: sqlite_utils.Database, transfer_id: str, manifest: bytes) -> None:
    """The sender's manifest of a transfer it sealed, kept while it is not delivered: what it seals again from
    once the key that signed it is revoked (the envelope is encrypted to the receiver)."""
    db.execute("INSERT INTO outgoing_manifests (transfer_id, manifest) VALUES (?, ?)", [transfer_id, manifest])


def outgoing_manifest(db: sqlite_utils.Database, transfer_id: str) -> bytes | None:
    row = db.execute("SELECT manifest FROM outgoing_manifests WHERE transfer_id = ?", [transfer_id]).fetchone()
    return bytes(row[0]) if row else None


def drop_outgoing_manifest(db: sqlite_utils.Database, transfer_id: str) -> None:
    db.execute("DELETE FROM outgoing_manifests WHERE transfer_id = ?", [transfer_id])


def outgoing_manifests_holding(db: sqlite_utils.Database, text: str) -> list[tuple[str, bytes]]:
    """(transfer id, manifest) of the kept manifests whose bytes hold the UTF-8 bytes of ``text`` (msgpack writes
    a string as its bytes), for the caller to parse: a short record id (a district's own assessment result
    ids, "17") is found inside dates, scores and other ids too."""
    query = "SELECT transfer_id, manifest FROM outgoing_manifests WHERE instr(manifest, CAST(? AS BLOB)) > 0"
    return [(row[0], bytes(row[1])) for row in db.execute(query, [text.encode()]).fetchall()]


def manifest_of(db: sqlite_utils.Database, transfer_id: str) -> tuple[bytes, bytes] | None:
    """(manifest bytes, signature) as stored at acceptance, or None before it. Once a purge erased records
    from the bytes (:func:`manifest_redaction` says so), the signature is the one over the bytes as received."""
    row = db.execute(
        "SELECT manifest, signature FROM transfer_manifests WHERE transfer_id = ?", [transfer_id]
    ).fetchone()
    return (bytes(row[0]), bytes(row[1])) if row else None


def manifest_redaction(db: sqlite_utils.Database, transfer_id: str) -> dict[str, Any] | None:
    """What purges erased from the stored manifest: {"records": [record ids], "at": time of the last,
    "verified_with": the sender's key that verified it before the first}; None while it is as signed."""
    row = db.execute("SELECT redacted FROM transfer_manifests WHERE transfer_id = ?", [transfer_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def manifests_naming(db: sqlite_utils.Database, peer: str, text: str) -> list[str]:
    """Ids of the transfers received from ``peer`` whose stored manifest holds the UTF-8 bytes of ``text``
    (a record id: msgpack writes a string as its bytes), for the caller to parse."""
    rows = db.execute(
        "SELECT m.transfer_id FROM transfer_manifests m JOIN transfers t ON t.transfer_id = m.transfer_id"
        " WHERE t.side = 'receiver' AND t.peer = ? AND instr(m.manifest, CAST(? AS BLOB)) > 0",
        [peer, text.encode()],
    )
    return [transfer_id for (transfer_id,) in rows.fetchall()]


def unopened_from(db: sqlite_utils.Database, peer: str) -> list[str]:
    """Ids of the transfers from ``peer`` whose sealed envelope is held here, not opened yet."""
    rows = db.execute(
        "SELECT transfer_id FROM transfers WHERE side = 'receiver' AND peer = ? AND state = 'received'",
        [peer],
    )
    return [transfer_id for (transfer_id,) in rows.fetchall()]


def redact_manifest(db: sqlite_utils.Database, transfer_id: str, manifest: bytes, redaction: dict[str, Any]) -> None:
    """Store ``manifest`` (the stored one with records erased) in place of the stored bytes."""
    db.execute(
        "UPDATE transfer_manifests SET manifest = ?, redacted = ? WHERE transfer_id = ?",
        [manifest, json.dumps(redaction, sort_keys=True), transfer_id],
    )


def list_rows(
    db: sqlite_utils.Database, *, local_domain: str, side: str | None = None, state: str | None = None
) -> list[TransferRow]:
    where, args = [], []
    if side:
        where.append("side = ?")
        args.append(side)
    if state:
        where.append("state = ?")
        args.append(state)
    sql = f"SELECT {_COLS} FROM transfers" + (" WHERE " + " AND ".join(where) if where else "")
    return [_row(r, local_domain) for r in db.execute(sql + " ORDER BY created_at DESC", args).fetchall()]


def add_event(
    db: sqlite_utils.Database,
    transfer_id: str,
    *,
    at: str,
    direction: str,
    kind: str,
    actor: str,
    detail: dict[str, Any] | None = None,
    receipt: bytes | None = None,
    receipt_id: str | None = None,
) -> bool:
    """Append to the timeline; a receipt already recorded (same id) is not added twice. Returns whether added."""
    if receipt_id is not None and receipt_bytes(db, transfer_id, receipt_id) is not None:
        return False
    seq = db.execute(
        "SELECT COALESCE(max(seq), 0) + 1 FROM transfer_events WHERE transfer_id = ?", [transfer_id]
    ).fetchone()[0]
    db.execute(
        "INSERT INTO transfer_events (transfer_id, seq, at, direction, kind, actor, detail, receipt, receipt_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [transfer_id, seq, at, direction, kind, actor, json.dumps(detail or {}), receipt, receipt_id],
    )
    return True


def receipt_bytes(db: sqlite_utils.Database, transfer_id: str, receipt_id: str) -> bytes | None:
    """The signed bytes of a receipt recorded in the timeline (sent or received), by its id."""
    row = db.execute(
        "SELECT receipt FROM transfer_events WHERE transfer_id = ? AND receipt_id = ?", [transfer_id, receipt_id]
    ).fetchone()
    return bytes(row[0]) if row else None


def replace_sent_receipt(db: sqlite_utils.Database, transfer_id: str, *, old: bytes, new: bytes) -> None:
    """Keep ``new``, this node's receipt signed again (node.own_signatures), in place of ``old`` in the timeline."""
    db.execute(
        "UPDATE transfer_events SET receipt = ? WHERE transfer_id = ? AND direction = 'sent' AND receipt = ?",
        [new, transfer_id, old],
    )


def message_count(db: sqlite_utils.Database, transfer_id: str) -> int:
    """How many messages the transfer's thread holds, both directions."""
    row = db.execute(
        "SELECT count(*) FROM transfer_events WHERE transfer_id = ? AND kind = 'message' AND direction != 'local'",
        [transfer_id],
    ).fetchone()
    return int(row[0])


def events(db: sqlite_utils.Database, transfer_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT seq, at, direction, kind, actor, detail, receipt IS NOT NULL, receipt_id FROM transfer_events"
        " WHERE transfer_id = ? ORDER BY seq",
        [transfer_id],
    ).fetchall()
    keys = ("seq", "at", "direction", "kind", "actor", "detail", "signed", "receipt_id")
    return [dict(zip(keys, (*r[:5], json.loads(r[5]), bool(r[6]), r[7]), strict=True)) for r in rows]


def stored_receipt(
    db: sqlite_utils.Database, transfer_id: str, kind: str, direction: str = "sent"
) -> bytes | None:
    row = db.execute(
        "SELECT receipt FROM transfer_events WHERE transfer_id = ? AND kind = ? AND direction = ?"
        " AND receipt IS NOT NULL ORDER BY seq DESC LIMIT 1",
        [transfer_id, kind, direction],
    ).fetchone()
    return bytes(row[0]) if row else None


def set_code(db: sqlite_utils.Database, transfer_id: str, code: str, now: str) -> None:
    db.execute(
        "INSERT INTO transfer_codes (transfer_id, code, created_at) VALUES (?, ?, ?)",
        [transfer_id, code, now],
    )


def get_code(db: sqlite_utils.Database, transfer_id: str) -> str | None:
    row = db.execute("SELECT code FROM transfer_codes WHERE transfer_id = ?", [transfer_id]).fetchone()
    return row[0] if row else None


def erase_code(db: sqlite_utils.Database, transfer_id: str) -> None:
    db.execute("DELETE FROM transfer_codes WHERE transfer_id = ?", [transfer_id])


def add_students(db: sqlite_utils.Database, transfer_id: str, sis_ids: list[str]) -> None:
    db.conn.executemany(
        "INSERT OR IGNORE INTO transfer_students (transfer_id, sis_id) VALUES (?, ?)",
        [(transfer_id, s) for s in sis_ids],
    )


def add_disclosure(
    db: sqlite_utils.Database,
    *,
    disclosure_id: str,
    student_sis_id: str,
    transfer_id: str,
    to_domain: str,
    to_name: str,
    records: list[dict[str, str]],
    disclosed_by: str,
    at: str,
    purpose: str,
) -> None:
    db.execute(
        "INSERT INTO disclosures (disclosure_id, student_sis_id, transfer_id, to_domain, to_name, records,"
        " disclosed_by, at, purpose) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [disclosure_id, student_sis_id, transfer_id, to_domain, to_name, json.dumps(records), disclosed_by, at,
         purpose],
    )  # fmt: skip


def opened_by_receiver(db: sqlite_utils.Database, transfer_id: str) -> bool:
    """Whether the receiving district's signed receipt that it opened the records (accepted, imported or failed to
    import them) is in the transfer's timeline: received from it at the sender, sent by this node at the
    receiver."""
    return db.execute(
        "SELECT EXISTS (SELECT 1 FROM transfer_events WHERE transfer_id = ? AND direction IN ('sent', 'received')"
        " AND kind IN ('accepted', 'imported', 'partially_imported', 'failed'))", [transfer_id],
    ).fetchone()[0] == 1  # fmt: skip


def disclosures(db: sqlite_utils.Database, student_sis_id: str) -> list[dict[str, Any]]:
    """The student's disclosures, oldest first; ``opened``: the receiver's signed receipt that it opened the
    records (accepted, imported or failed to import them) is in the transfer's timeline, however it ended."""
    rows = db.execute(
        "SELECT d.at, d.to_domain, d.to_name, d.records, d.disclosed_by, d.purpose, d.transfer_id, t.state,"
        " EXISTS (SELECT 1 FROM transfer_events e WHERE e.transfer_id = d.transfer_id AND e.direction = 'received'"
        "  AND e.kind IN ('accepted', 'imported', 'failed'))"
        " FROM disclosures d LEFT JOIN transfers t ON t.transfer_id = d.transfer_id"
        " WHERE d.student_sis_id = ? ORDER BY d.at",
        [student_sis_id],
    ).fetchall()
    keys = ("at", "to_domain", "to_name", "records", "disclosed_by", "purpose", "transfer_id", "transfer_state")
    return [dict(zip(keys, (*r[:3], json.loads(r[3]), *r[4:8]), strict=True)) | {"opened": bool(r[8])} for r in rows]
