"""Transfer codes at the node that holds the records: issue, list, revoke, and answer claims.

The node keeps a verifier key, never the code. A claim proves knowledge of the code (crypto claims), is
throttled per district, and seals the records in scope to the claimant as a transfer; the code is used up
when the destination reports the import, freed again when it goes back (rejects the transfer), and follows
the transfer's other endings (node.issued_codes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from crypto import check_transfer_code_proof, generate_code, transfer_code_credentials
from node import sending
from node.clock import iso, parse_iso
from node.home import Node
from node.issued_codes import STATUS_COLS, revoke_for_maker, save, status_of, utcnow
from node.manifest_builder import Selection
from node.operators import PERMISSIONS, TIMER, authorize, record
from protocol import InvalidInput, MalformedMessage, NotFound
from protocol.code_claim_states import (
    Claim,
    ClaimFailed,
    CodeActor,
    CodeEvent,
    CodeInUse,
    CodeNoStudents,
    CodeState,
    CodeStatus,
    CodeUnknown,
    Throttle,
    apply,
    due_events,
    new_code,
)
from protocol.json_strict import loads_object, take
from protocol.signed_document import unb64url
from protocol.transfer_code import TransferCode
from storage import students, transfers, users
from storage.database import write_transaction

THROTTLE = Throttle()


@dataclass(frozen=True, slots=True)
class IssuedCode:
    text: str
    code_id: str
    students: int
    expires_at: str


def _scope_students(node: Node, row: dict[str, str | None]) -> list[str]:
    """Currently enrolled students in the code's scope (checked again at claim time)."""
    if row["scope"] == "student":
        found = students.get(node.db, str(row["student_sis_id"]))
        return [found.record.sis_id] if found and found.record.enrollment_status == "active" else []
    listed = node.db.execute(
        "SELECT sis_id FROM students WHERE school_id = ? AND grade = ? AND enrollment_status = 'active'"
        " ORDER BY sis_id",
        [row["school_id"], row["grade"]],
    ).fetchall()
    return [r[0] for r in listed]


def create(
    node: Node, *, actor: str | None, student: str | None = None, grade: str | None = None,
    school: str | None = None, for_domain: str | None = None,
) -> IssuedCode:  # fmt: skip
    user = authorize(node, actor, "transfers.act")
    if (student is None) == (grade is None):
        raise InvalidInput("give --student, or --grade with --school", field="--student")
    if for_domain is not None and for_domain.strip().lower() in ("", node.config.node.domain):
        raise InvalidInput(
            f"--for names the district that may claim the code, not {for_domain!r}", field="--for",
            hint="give the receiving district's domain, or leave --for out for a code any district may claim",
        )  # fmt: skip
    school_id = school_name = None
    if grade is not None:
        if not school:
            raise InvalidInput("a code for a whole grade needs --school", field="--school")
        found = node.db.execute(
            "SELECT school_id, school_name FROM students WHERE school_id = ? OR school_name = ? COLLATE NOCASE"
            " LIMIT 1", [school, school],
        ).fetchone()  # fmt: skip
        if found is None:
            raise NotFound(f"no school {school!r} in the roster", field="--school")
        school_id, school_name = found
    scope = {"scope": "student" if student else "grade", "student_sis_id": student, "school_id": school_id,
             "grade": grade}  # fmt: skip
    if student is not None:
        students.require(node.db, student)
    enrolled = _scope_students(node, scope)
    if not enrolled and grade is not None:
        # A grade is matched as the roster writes it ("07", "KG"): say which ones the school has.
        grades = [r[0] for r in node.db.execute(
            "SELECT DISTINCT grade FROM students WHERE school_id = ? AND enrollment_status = 'active'"
            " AND grade IS NOT NULL ORDER BY grade", [school_id]).fetchall()]  # fmt: skip
        raise InvalidInput(
            f"no currently enrolled student is in grade {grade!r} of {school_name}", field="--grade",
            hint=f"give the grade as the roster writes it: {school_name} has {', '.join(grades)}" if grades
            else f"{school_name} has no enrolled student; only enrolled students' records can be shared",
        )  # fmt: skip
    if not enrolled:
        raise InvalidInput("no currently enrolled student is in this code's scope", field="--student",
                           hint="only enrolled students' records can be shared with a transfer code")  # fmt: skip
    code = generate_code()
    code_id, key = transfer_code_credentials(code, node.config.node.domain)
    now = utcnow()
    status = new_code(code_id=code_id.hex(), source_domain=node.config.node.domain, now=now,
                      bound_destination=for_domain)  # fmt: skip
    text = TransferCode(code=code, source_domain=node.config.node.domain).reveal()
    with write_transaction(node.db):
        node.db.execute(
            "INSERT INTO transfer_codes_issued (code_id, claim_key, display, scope, student_sis_id, grade, school_id,"
            " school_name, bound_destination, state, created_at, created_by, expires_at, status_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
            [status.code_id, key, f"…{text.split('@')[0][-4:]}", scope["scope"], student, grade, school_id,
             school_name, for_domain, status.state.value, iso(now), user.username, iso(status.expires)],
        )  # fmt: skip
        record(node, user.username, "code.create", student or f"{school_name}/{grade}",
               {"code_id": status.code_id[:8], "students": len(enrolled), "for": for_domain})  # fmt: skip
    return IssuedCode(text, status.code_id, len(enrolled), iso(status.expires))


def list_codes(node: Node) -> list[dict[str, object]]:
    rows = node.db.execute(
        "SELECT code_id, display, scope, student_sis_id, grade, school_name, bound_destination, state, claimed_by,"
        " transfer_id, failed_claims, created_at, expires_at FROM transfer_codes_issued ORDER BY created_at DESC"
    ).fetchall()
    keys = ("code_id", "ends_with", "scope", "student", "grade", "school", "for", "state", "claimed_by",
            "transfer_id", "failed_claims", "created_at", "expires_at")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


_FOUND = (
    f"SELECT {STATUS_COLS}, claim_key, scope, student_sis_id, grade, school_id, school_name, created_by"
    " FROM transfer_codes_issued"
)
MIN_PREFIX = 6  # `satchel codes list` shows 12 characters; fewer than 6 match codes by chance


def _find(node: Node, code_id: str) -> tuple[CodeStatus, bytes, dict[str, str | None]] | None:
    row = node.db.execute(f"{_FOUND} WHERE code_id = ?", [code_id]).fetchone()
    return None if row is None else _found(node, row)


def _find_by_prefix(node: Node, given: str) -> tuple[CodeStatus, bytes, dict[str, str | None]]:
    """The one code whose id starts with ``given``, as an operator types it from `satchel codes list`."""
    prefix = given.strip().lower()
    if not (MIN_PREFIX <= len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix)):
        raise InvalidInput(
            f"{given!r} is not a code id", field="CODE_ID",
            hint=f"give the CODE_ID `satchel codes list` shows (at least {MIN_PREFIX} of its characters)",
        )  # fmt: skip
    # substr, not LIKE: an id is compared character for character, with no wildcards.
    rows = node.db.execute(f"{_FOUND} WHERE substr(code_id, 1, ?) = ? LIMIT 2", [len(prefix), prefix]).fetchall()
    if not rows:
        raise NotFound(f"no transfer code {given}", field="CODE_ID", hint="see `satchel codes list`")
    if len(rows) > 1:
        raise InvalidInput(
            f"{given} is the start of more than one code's id", field="CODE_ID",
            hint="give more of the CODE_ID `satchel codes list` shows",
        )  # fmt: skip
    return _found(node, rows[0])


def _found(node: Node, row: tuple) -> tuple[CodeStatus, bytes, dict[str, str | None]]:
    scope = dict(zip(("scope", "student_sis_id", "grade", "school_id", "school_name", "created_by"), row[9:],
                     strict=True))  # fmt: skip
    return status_of(node, row[:8]), bytes(row[8]), scope


def revoke(node: Node, *, actor: str | None, code_id: str) -> None:
    user = authorize(node, actor, "transfers.act")
    with write_transaction(node.db):
        found = _find_by_prefix(node, code_id)
        status = found[0]
        if status.state is CodeState.CLAIMED:
            raise CodeInUse(
                f"transfer code {status.code_id[:12]} is claimed by {status.claimed_by}: its records are in "
                f"transfer {status.transfer_id}", state=status.state.value, event=CodeEvent.REVOKE.value,
                hint=_withdraw_hint(node, status),
            )  # fmt: skip
        transition = apply(status, CodeEvent.REVOKE, actor=CodeActor.SOURCE_COORDINATOR, now=utcnow())
        save(node, transition, notify=False)  # the coordinator who revokes it knows
        record(node, user.username, "code.revoke", transition.status.code_id[:8])


def _withdraw_hint(node: Node, status: CodeStatus) -> str:
    """How to withdraw a claimed code, by where its transfer stands (only a transfer not yet opened can be
    cancelled, spec/codes.md §7.3)."""
    tid, peer = status.transfer_id, status.claimed_by
    row = transfers.get(node.db, tid, local_domain=node.config.node.domain) if tid else None
    state = row.status.state.value if row is not None else ""
    if state in ("sealed", "delivered"):
        return f"cancel that transfer (`satchel cancel {tid}`); the code is revoked once {peer} confirms"
    if state == "cancel_requested":
        return (f"its transfer is being cancelled; the code is revoked once {peer} confirms "
                f"(`satchel transfers show {tid}`)")
    return (f"{peer} has opened the records (`satchel transfers show {tid}`): the code is used up when it imports "
            f"them, or freed if it rejects them; call its coordinator if it should not have them")


class _ClaimedMeanwhile(Exception):
    """Another claim of the same code committed while this one sealed (both ran on the serving node)."""


async def handle_claim(node: Node, *, caller: str, body: bytes) -> dict[str, object]:
    """Answer a claim from ``caller`` (already authenticated by its signature). The records are sealed off the
    event loop (sending.send_from_loop): a grade takes seconds, which other peers would otherwise wait."""
    what = "code claim"
    obj = loads_object(body, what=what)
    code_id = _b64(take(obj, "code_id", str, what=what), "code_id", (16, 16))
    nonce = _b64(take(obj, "nonce", str, what=what), "nonce", (16, 64))
    proof = _b64(take(obj, "proof", str, what=what), "proof", (32, 32))
    now = utcnow()
    failures = [parse_iso(r[0]) for r in node.db.execute(
        "SELECT at FROM claim_failures WHERE peer = ? ORDER BY at DESC LIMIT 100", [caller]).fetchall()]  # fmt: skip
    THROTTLE.decide(now=now, peer_failures=failures).raise_if_denied()
    found = _find(node, code_id.hex())
    if found is not None and not found[1]:
        # Used, revoked, expired or locked: its key was erased, so only the state can answer. The code id is
        # derived from the code, so whoever sends it knows the code (spec/codes.md §7.3).
        _refuse_claim(found[0], caller, now)
    if found is None or not check_transfer_code_proof(found[1], destination=caller, nonce=nonce, proof=proof):
        with write_transaction(node.db):
            node.db.execute("INSERT INTO claim_failures (peer, at) VALUES (?, ?)", [caller, iso(now)])
            if found is not None:
                transition = apply(found[0], ClaimFailed(destination=caller), actor=CodeActor.DESTINATION_NODE,
                                   now=now)  # fmt: skip
                save(node, transition)
                # Counted against the code, which locks after too many: the district that tried is named.
                record(node, caller, "code.claim_failed", found[0].code_id[:8],
                       {"state": transition.status.state.value, "failed_claims": transition.status.failed_claims})
        # One answer for "no such code" and "wrong proof": nothing tells a guesser which it was.
        raise CodeUnknown("no transfer code matches", field="code_id")
    status, _key, scope = found
    if status.state is CodeState.CLAIMED and status.claimed_by == caller and status.transfer_id:
        # Claimed again by the same district, with a fresh proof: its first answer may have been lost (or the
        # records had not arrived when it looked), so it gets the envelope's code again while that is kept.
        return _claimed_again(node, caller, status.code_id, status.transfer_id, scope)
    # Check every refusal (expired, used, wrong destination, ...) before sealing anything.
    _check_claim(status, caller, now)
    maker = _maker_who_may_send(node, status, scope, caller)
    enrolled = _scope_students(node, scope)
    if not enrolled:
        # The claimant proved it holds the code, so it may learn why nothing comes; "no code matches" would
        # send its coordinator to re-check a code that is right.
        where = node.config.node.name
        if scope["scope"] == "student":
            why = f"the student it was made for is no longer enrolled at {where}"
        else:
            why = f"grade {scope['grade']} of {scope['school_name']} has no enrolled student at {where} any more"
        raise CodeNoStudents(f"the transfer code is valid, but {why}")  # fmt: skip

    def claim(transfer_id: str) -> None:
        fresh = _find(node, status.code_id)
        assert fresh is not None
        if fresh[0].state is not CodeState.ACTIVE:
            raise _ClaimedMeanwhile  # this envelope is not kept (sending._unlinked_unless_kept)
        transition = apply(fresh[0], Claim(destination=caller, transfer_id=transfer_id),
                           actor=CodeActor.DESTINATION_NODE, now=now)  # fmt: skip
        save(node, transition)
        record(
            node,
            caller,
            "code.claim",
            status.code_id[:8],
            {"transfer": transfer_id, "students": len(enrolled)},
        )

    try:
        sent = await sending.send_from_loop(
            node, actor=maker, to=caller, selection=Selection(students=tuple(enrolled), all_records=True),
            note="records for a transfer code", kind="import", in_transaction=claim,
            purpose=f"a transfer code made here for the students' records was entered by {caller}",
        )  # fmt: skip
    except _ClaimedMeanwhile:
        # The same district asking twice at once gets the transfer the first claim made; another district is
        # refused as a claimed code refuses it.
        fresh = _find(node, status.code_id)
        assert fresh is not None
        current = fresh[0]
        if current.state is CodeState.CLAIMED and current.claimed_by == caller and current.transfer_id:
            return _claimed_again(node, caller, current.code_id, current.transfer_id, scope)
        _refuse_claim(current, caller, utcnow())
    return _answer(node, sent.transfer_id, scope, sent.code)


def _claimed_again(
    node: Node, caller: str, code_id: str, transfer_id: str, scope: dict[str, str | None]
) -> dict[str, object]:
    """The answer to a district claiming again a code it claimed: the same transfer, and its envelope's code
    while that is kept. That code opens the students' records, so giving it again is audited as the first claim
    is."""
    with write_transaction(node.db):
        code = transfers.get_code(node.db, transfer_id)
        record(node, caller, "code.claim_repeated", code_id[:8],
               {"transfer": transfer_id, "code_given": code is not None})  # fmt: skip
    return _answer(node, transfer_id, scope, code)


def _check_claim(status: CodeStatus, caller: str, now: datetime) -> None:
    """Raise the refusal a claim by ``caller`` would meet now (the transfer id is not yet known)."""
    apply(status, Claim(destination=caller, transfer_id="0" * 26), actor=CodeActor.DESTINATION_NODE, now=now)


def _refuse_claim(status: CodeStatus, caller: str, now: datetime) -> NoReturn:
    """For a code that can no longer be claimed (its state says why)."""
    _check_claim(status, caller, now)
    raise CodeUnknown("no transfer code matches", field="code_id")  # not reached: every such state refuses


def _answer(
    node: Node, transfer_id: str, scope: dict[str, str | None], code: str | None
) -> dict[str, object]:
    school = scope.get("school_name")
    if scope["scope"] == "student":
        # A code for one student names no school when it is made; the claimant is still owed the school the
        # records come from (spec/codes.md §7.2), which is the student's.
        found = students.get(node.db, str(scope["student_sis_id"]))
        school = found.record.school_name if found is not None else None
    answer: dict[str, object] = {"transfer_id": transfer_id, "district": node.config.node.name,
                                 "school": school or "", "scope": scope["scope"]}  # fmt: skip
    if code is not None:
        # The claimant proved it holds the transfer code; over this signed, encrypted channel it gets the
        # envelope's code so it can open the records without a second phone call.
        answer["envelope_code"] = code
    return answer


def _maker_who_may_send(node: Node, status: CodeStatus, scope: dict[str, str | None], caller: str) -> str:
    """The operator who made the code: a claim is their disclosure, made when the destination enters it, so the
    record of disclosures, the transfer and the audit log name them. One who may no longer send records
    (disabled since) cannot have the node disclose for them: the code is revoked here and the claim refused as
    for any revoked code, so the destination asks for a new one."""
    maker = str(scope["created_by"])
    user = users.get(node.db, maker)
    if user is not None and user.active and user.role in PERMISSIONS["transfers.act"]:
        return maker
    with write_transaction(node.db):
        fresh = _find(node, status.code_id)
        assert fresh is not None  # codes are never deleted
        if fresh[0].state is CodeState.ACTIVE:
            revoke_for_maker(node, fresh[0], maker, by=node.config.node.domain)
    current = _find(node, status.code_id)
    assert current is not None
    _refuse_claim(current[0], caller, utcnow())


def _b64(text: str, field: str, lengths: tuple[int, int]) -> bytes:
    """A claim's value, refused as malformed before any code is looked up: a body that is not a claim tells
    nothing about codes and is no failed guess (spec/codes.md §7.5)."""
    raw = unb64url(text, field=field)
    low, high = lengths
    if not low <= len(raw) <= high:
        size = f"{low}" if low == high else f"{low} to {high}"
        raise MalformedMessage(f"{field} must be {size} bytes in base64url, not {len(raw)}", field=field)
    return raw


def expire_codes(node: Node) -> int:
    count = 0
    now = utcnow()
    for row in node.db.execute(
        f"SELECT {STATUS_COLS} FROM transfer_codes_issued WHERE state = 'active'"
    ).fetchall():
        status = status_of(node, row)
        for event in due_events(status, now=now):
            with write_transaction(node.db):
                save(node, apply(status, event, actor=CodeActor.TIMER, now=now), notify=False)
                record(node, TIMER, "code.expire", status.code_id[:8])
            count += 1
    return count
