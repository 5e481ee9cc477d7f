"""A student's FERPA record of disclosures, with what a letter to a parent names: who disclosed (by name, not
only by username), who asked for the records when another district requested them, and what was sent.

34 CFR § 99.32 asks a district to record, for each disclosure, the parties who requested or received the
records and their legitimate interest. The sending node writes one row per student per transfer
(node.sending); this joins it with the operator's name and, for a release, the request it answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.home import Node
from node.request_answers import stored_request
from protocol.roster import StudentRecord
from storage import requests as request_store
from storage import students as student_store
from storage import transfers as transfer_store
from storage import users
from storage.students import FormerNumber

# What became of a disclosure, by the sending side's transfer state, in words for a parent. The record
# keeps every transfer sealed for the student (what left, or was set to leave, the district's hands); this
# says which of them the other district received and opened, and which never reached it.
_OUTCOMES = {
    "sealed": "sealed here, not delivered yet",
    "delivered": "delivered, not opened yet",
    "cancel_requested": "being withdrawn by this district",
    "accepted": "received and opened",
    "import_failed": "received and opened",
    "partially_imported": "received and opened",
    "imported": "received and opened",
    "rejected": "refused by the receiving district, never opened",
    "cancelled": "withdrawn by this district before it was opened",
    "expired": "expired before it was opened",
    "locked": "locked after wrong codes; never opened",
    "undeliverable": "never delivered",
}


# A receiving district may refuse records it has opened (it found them to be another child's, or cancelled their
# import): it read them, so the record must not say it never did.
_AFTER_OPENING = {"rejected": "received and opened, then refused by the receiving district"}


def outcome(transfer_state: str | None, opened: bool = False) -> str:
    """``opened``: the receiving district's signed receipt says it opened the records (accepted, imported or
    failed to import), whatever became of the transfer after."""
    if opened and transfer_state in _AFTER_OPENING:
        return _AFTER_OPENING[transfer_state]
    return _OUTCOMES.get(transfer_state or "", "unknown")


@dataclass(frozen=True, slots=True)
class Requester:
    name: str
    email: str
    phone: str
    domain: str
    request_id: str


@dataclass(frozen=True, slots=True)
class Disclosure:
    at: str
    to_domain: str
    to_name: str
    records: list[dict[str, str]]  # {"kind", "id", "title"}, demographics first
    disclosed_by: str  # the operator's username
    disclosed_by_name: str  # their full name, or the username when the operator was removed
    purpose: str
    transfer_id: str
    transfer_state: str | None
    requested_by: Requester | None  # when the records answered another district's request
    opened: bool = False  # the receiving district's receipt says it opened them (see outcome)
    sent_as: str = ""  # the student's SIS id when it was made: a former number, if the SIS renumbered them since

    def to_json(self) -> dict[str, Any]:
        r = self.requested_by
        return {
            "at": self.at, "to_domain": self.to_domain, "to_name": self.to_name, "records": self.records,
            "disclosed_by": self.disclosed_by, "disclosed_by_name": self.disclosed_by_name, "purpose": self.purpose,
            "transfer_id": self.transfer_id, "transfer_state": self.transfer_state, "opened": self.opened,
            "sent_as": self.sent_as,
            "outcome": outcome(self.transfer_state, self.opened),
            "requested_by": None if r is None else {"name": r.name, "email": r.email, "phone": r.phone,
                                                    "domain": r.domain, "request_id": r.request_id},
        }  # fmt: skip


def of_student(node: Node, sis_id: str) -> tuple[StudentRecord, list[FormerNumber], list[Disclosure]]:
    """The student, their former SIS numbers (oldest first) and their disclosures. Each disclosure says the
    number the student had when it was made: the other district holds the records under it."""
    student = student_store.require(node.db, sis_id).record
    formers = student_store.former_of(node.db, sis_id)
    found = []
    for row in transfer_store.disclosures(node.db, sis_id):
        user = users.get(node.db, row["disclosed_by"])
        sent_as = next((f.former_sis_id for f in formers if f.renumbered_at > row["at"]), student.sis_id)
        found.append(Disclosure(
            **row, disclosed_by_name=user.full_name if user else row["disclosed_by"],
            requested_by=_requester(node, row["transfer_id"]), sent_as=sent_as,
        ))  # fmt: skip
    return student, formers, found


def _requester(node: Node, transfer_id: str) -> Requester | None:
    row = request_store.released_in(node.db, transfer_id)
    if row is None:
        return None
    request = stored_request(row.signed_request)
    p = request.requester
    return Requester(name=p.name, email=p.email, phone=p.phone, domain=request.from_domain, request_id=row.request_id)
