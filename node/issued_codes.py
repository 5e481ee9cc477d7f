"""Transfer codes this node made, as stored: read one, save a transition with its effects, and follow the
transfer a claim started to its end (spec/codes.md §7.3).

Apart from :mod:`node.codes_flow` (which issues codes and answers claims) because the transfer engine calls
:func:`follow_transfer` on every change of a sending transfer, and the flow itself sends transfers.
"""

from __future__ import annotations

import json
from datetime import datetime

from node.clock import now_iso, parse_iso, utc_now
from node.home import Node
from node.notify import notify_coordinators
from protocol.code_claim_states import (
    CodeActor,
    CodeEvent,
    CodeState,
    CodeStatus,
    CodeTransition,
    EraseVerifier,
    NotifyCoordinators,
    apply,
)
from protocol.code_claim_states import follow_transfer as code_follows
from storage import audit

STATUS_COLS = "code_id, state, created_at, expires_at, bound_destination, claimed_by, transfer_id, failed_claims"

# What the coordinators are told: why (the transfer's ending) and what now (the code's new state).
_WHY = {
    "cancelled": "its transfer {transfer} was cancelled here and the receiving district confirmed it.",
    "cancel_requested": "its transfer {transfer} was being cancelled here when it expired.",
    "locked": "its transfer {transfer} was locked at the receiving district after too many wrong codes.",
    "expired": "its transfer {transfer} expired before it was accepted.",
    "undeliverable": "its transfer {transfer} could not be delivered.",
}
_NOW = {
    CodeState.REVOKED: "The code opens nothing any more. Make a new code if the records should still go (after "
    "a lock, call the receiving district's coordinator first).",
    CodeState.EXPIRED: "The code's 30 days are over as well: it opens nothing any more. Make a new code if the "
    "records should still go.",
    CodeState.ACTIVE: "The receiving district may enter the code again until {expires}, and gets the records in a "
    "new transfer.",
}


def utcnow() -> datetime:
    """Now, to the second: code times are stored to the second, and compared with what is stored."""
    return utc_now().replace(microsecond=0)


def status_of(node: Node, row: tuple) -> CodeStatus:
    code_id, state, created, expires, bound, claimed_by, transfer_id, failed = row
    return CodeStatus(
        code_id=code_id, source_domain=node.config.node.domain, state=CodeState(state),
        created=parse_iso(created), expires=parse_iso(expires), bound_destination=bound,
        claimed_by=claimed_by, transfer_id=transfer_id, failed_claims=failed,
    )  # fmt: skip


def save(node: Node, transition: CodeTransition, *, notify: bool = True, why: str = "") -> None:
    """Store the code's new status; forget its claim key once it can open nothing; tell the coordinators."""
    status = transition.status
    node.db.execute(
        "UPDATE transfer_codes_issued SET state = ?, claimed_by = ?, transfer_id = ?, failed_claims = ?,"
        " status_json = ? WHERE code_id = ?",
        [status.state.value, status.claimed_by, status.transfer_id, status.failed_claims,
         json.dumps({"state": status.state.value}), status.code_id],
    )  # fmt: skip
    for effect in transition.effects:
        if isinstance(effect, EraseVerifier):
            # A finished code's key is of no use to anyone here, and of some to whoever takes a backup.
            node.db.execute("UPDATE transfer_codes_issued SET claim_key = zeroblob(0) WHERE code_id = ?",
                            [status.code_id])  # fmt: skip
        elif isinstance(effect, NotifyCoordinators) and notify:
            # Named as `satchel codes list` shows it: its id's first 12 characters and the code's last ones.
            (ending,) = node.db.execute("SELECT display FROM transfer_codes_issued WHERE code_id = ?",
                                        [status.code_id]).fetchone()  # fmt: skip
            what = _TOPIC_WORDS.get(effect.topic, effect.topic.split(".")[-1]).format(by=status.claimed_by)
            subject = f"Transfer code {status.code_id[:12]} (ending {ending}) {what}"
            body = subject + ".\n\n" + (why + "\n\n" if why else "") + "See: satchel codes list\n"
            notify_coordinators(node, subject=subject, body=body)


# What became of a code this node made, in words (protocol.code_claim_states' topics).
_TOPIC_WORDS = {
    "code.claimed": "was entered by {by}: its records are sent to them",
    "code.released": "can be entered again: the transfer it started ended unopened or was undone",
    "code.used": "is used: its records were imported",
    "code.revoked": "is revoked",
    "code.expired": "expired unused",
    "code.locked": "is locked after too many failed tries to enter it",
}


def revoke_for_maker(node: Node, status: CodeStatus, maker: str, *, by: str, notify: bool = True) -> None:
    """Revoke the active code ``status`` because ``maker``, who made it, may no longer send records (disabled):
    a claim would be a disclosure in their name. ``by`` is who decided it (the admin who disabled them, or this
    node at a claim). Call inside a write transaction."""
    transition = apply(status, CodeEvent.REVOKE, actor=CodeActor.SOURCE_COORDINATOR, now=utcnow())
    save(node, transition, notify=notify, why=f"{maker}, who made it, may no longer send records.")
    audit.append(node.db, at=now_iso(), actor=by, action="code.revoke", subject=status.code_id[:8],
                 details={"reason": "maker_disabled", "maker": maker})  # fmt: skip


def revoke_made_by(node: Node, maker: str, *, by: str) -> list[str]:
    """Revoke every active code ``maker`` made (see :func:`revoke_for_maker`); the ids of those revoked. Call
    inside the write transaction that disables them."""
    rows = node.db.execute(
        f"SELECT {STATUS_COLS} FROM transfer_codes_issued WHERE created_by = ? AND state = 'active'"
        " ORDER BY created_at", [maker],
    ).fetchall()  # fmt: skip
    for row in rows:  # the admin who disables them is told here, not by a notice per code
        revoke_for_maker(node, status_of(node, row), maker, by=by, notify=False)
    return [row[0] for row in rows]


def follow_transfer(node: Node, transfer_id: str, state: str, *, previous: str, actor: str) -> None:
    """The sending side of ``transfer_id`` went from ``previous`` to ``state`` (``actor`` moved it, as the
    transfer's audit entry names them): move the code whose claim started it, if any, audited in their name.
    Call inside the write transaction that changed the transfer."""
    row = node.db.execute(
        f"SELECT {STATUS_COLS} FROM transfer_codes_issued WHERE transfer_id = ?", [transfer_id]
    ).fetchone()
    if row is None:
        return
    transitions = code_follows(status_of(node, row), transfer_id=transfer_id, transfer_state=state,
                               previous_state=previous, now=utcnow())  # fmt: skip
    if not transitions:
        return
    ending = "cancel_requested" if state == "expired" and previous == "cancel_requested" else state
    why = _WHY.get(ending, "")
    if why:
        why += " " + _NOW.get(transitions[-1].status.state, "")
    why = why.format(transfer=transfer_id, expires=row[3]).strip()
    for transition in transitions:
        save(node, transition, why=why)
        audit.append(node.db, at=now_iso(), actor=actor, action="code.follows_transfer",
                     subject=transition.status.code_id[:8],
                     details={"transfer": transfer_id, "state": transition.status.state.value})  # fmt: skip
