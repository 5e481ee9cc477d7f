"""Records requests as each side stores them: the signed request, the signed answer, the flags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from protocol import NotFound
from storage.rows import insert_row, update_rows


@dataclass(frozen=True, slots=True)
class RequestRow:
    request_id: str
    side: str
    state: str
    peer: str
    student_sis_id: str | None
    signed_request: bytes
    signed_response: bytes | None
    opened_on: str
    transfer_id: str | None
    overdue_flagged: bool
    working_days: int
    created_by: str | None
    created_at: str
    updated_at: str
    reminded_on: str | None  # the local day an overdue request was last told to the coordinators
    answers_sent: int  # answers this node signed about it (its outbox jobs are numbered by them)
    failed_on: str | None  # the local day its release failed, while it is release_failed


_COLS = (
    "request_id, side, state, peer, student_sis_id, signed_request, signed_response, opened_on, transfer_id,"
    " overdue_flagged, working_days, created_by, created_at, updated_at, reminded_on, answers_sent,"
    " failed_on"
)


def _row(row: tuple) -> RequestRow:
    values = list(row)
    values[5] = bytes(values[5])
    values[6] = bytes(values[6]) if values[6] is not None else None
    values[9] = bool(values[9])
    return RequestRow(*values)


def get(db: sqlite_utils.Database, request_id: str) -> RequestRow | None:
    row = db.execute(f"SELECT {_COLS} FROM records_requests WHERE request_id = ?", [request_id]).fetchone()
    return _row(row) if row else None


def require(db: sqlite_utils.Database, request_id: str) -> RequestRow:
    found = get(db, request_id)
    if found is None:
        raise NotFound(f"no records request {request_id}", field="ID", hint="see `satchel requests list`")
    return found


def insert(db: sqlite_utils.Database, **values: Any) -> None:
    insert_row(db, "records_requests", values)


def update(db: sqlite_utils.Database, request_id: str, **changes: Any) -> None:
    update_rows(db, "records_requests", changes, {"request_id": request_id})


def replace_signed(db: sqlite_utils.Database, request_id: str, *, old: bytes, new: bytes) -> None:
    """Keep ``new``, this node's request or answer signed again (node.own_signatures), in place of ``old``."""
    for column in ("signed_request", "signed_response"):
        db.execute(
            f"UPDATE records_requests SET {column} = ? WHERE request_id = ? AND {column} = ?", [new, request_id, old]
        )


def list_rows(
    db: sqlite_utils.Database, *, side: str | None = None, state: str | tuple[str, ...] | None = None
) -> list[RequestRow]:
    """Newest first; ``state`` one state or several."""
    where: list[str] = []
    args: list[str] = []
    if side:
        where.append("side = ?")
        args.append(side)
    if state:
        states = (state,) if isinstance(state, str) else state
        where.append(f"state IN ({','.join('?' * len(states))})")
        args.extend(states)
    sql = f"SELECT {_COLS} FROM records_requests" + (" WHERE " + " AND ".join(where) if where else "")
    return [_row(r) for r in db.execute(sql + " ORDER BY created_at DESC", args).fetchall()]


def released_in(db: sqlite_utils.Database, transfer_id: str) -> RequestRow | None:
    """The request another district sent this one that the transfer ``transfer_id`` answered, if any: the
    transfer names it, so a release that failed still does once the request was released again."""
    row = db.execute(
        f"SELECT {_COLS} FROM records_requests WHERE side = 'releaser' AND request_id ="
        " (SELECT request_id FROM transfers WHERE transfer_id = ? AND side = 'sender')",
        [transfer_id],
    ).fetchone()
    return _row(row) if row else None
