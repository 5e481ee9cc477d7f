"""Reviewing an import's matches many at a time: the students still to review, each beside its candidates (for
`satchel import review --walk`), and a coordinator's decisions from a file (`satchel import decide --csv`).

Each decision is recorded as `satchel import match` records it (node.import_preview.record_decision): the same
audit entry, the same warnings. A decision is one transaction; a file's decisions are all recorded in one, after
every row was checked, or none is.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from node.home import Node
from node.import_log import spreadsheet_cell
from node.import_preview import (
    Decided,
    incoming,
    open_for_review,
    record_decision,
    sharing,
    verified_manifest,
)
from node.operator_files import outside_home, private_file
from node.operators import authorize
from protocol import InvalidInput, NotFound
from protocol.csv_rows import RowError
from protocol.review_decisions import (
    DECISION_COLUMN,
    STUDENT_COLUMN,
    Decision,
    ImportDecisionsInvalid,
    Kind,
    same_proposal,
)
from protocol.review_decisions import parse_decisions as parse_decisions
from storage import imports, transfers
from storage import students as student_store
from storage.database import write_transaction
from storage.imports import ImportStudent
from storage.students import FormerNumber

# A decisions file holds a row per incoming student (a transfer's manifest is at most 8 MiB), with the candidates
# described beside each: far below this. A bigger file is not one `import review --csv` wrote, and is refused
# before it is read rather than held whole in memory.
MAX_DECISIONS_BYTES = 64 << 20

# Why a student is in the review queue, in the order the walk goes through them.
WHY_UNCERTAIN, WHY_LATER, WHY_MATCHED, WHY_NEW = "uncertain", "set aside for later", "matched", "new"
_ORDER = (WHY_UNCERTAIN, WHY_LATER, WHY_MATCHED, WHY_NEW)


@dataclass(frozen=True, slots=True)
class Person:
    """One side of the comparison a coordinator reads: the incoming student, or a candidate here."""

    sis_id: str
    given_name: str
    family_name: str
    birth_date: str
    state_id: str
    grade: str
    school: str
    score: int | None = None  # a candidate's match score
    inactive_since: str | None = None  # a candidate marked inactive here (left the district)
    missing: bool = False  # a candidate no longer held here (removed since the preview)


@dataclass(frozen=True, slots=True)
class ReviewItem:
    student: ImportStudent
    why: str
    incoming: Person
    candidates: tuple[Person, ...]  # the proposed match first, then the others by score

    @property
    def proposal(self) -> tuple[str, str | None] | None:
        return confirmed(self.student)


def confirmed(student: ImportStudent) -> tuple[str, str | None] | None:
    """What `confirm` records for ``student``: ('link', the proposed student), ('new', None) for a student matched
    to no one, or None when there is nothing to confirm (an uncertain student with no proposal)."""
    if student.proposed_sis_id:
        return "link", student.proposed_sis_id
    if student.match_status == "new":
        return "new", None
    return None


def _why(s: ImportStudent) -> str | None:
    if s.result == "imported":
        return None
    if s.decision == "later":
        return WHY_LATER
    if s.reviewed:
        return None
    return {"uncertain": WHY_UNCERTAIN, "matched": WHY_MATCHED, "new": WHY_NEW}.get(s.match_status)


def queue(node: Node, transfer_id: str, *, everyone: bool = False) -> list[ReviewItem]:
    """The students to review, in order: uncertain ones no person decided for, then those set aside for later;
    with ``everyone``, also those matched, then those new, that no person reviewed. Imported ones never."""
    found = open_for_review(node, transfer_id)
    rows = imports.students(node.db, found.import_id)
    kept = _ORDER if everyone else _ORDER[:2]
    wanted = [(why, s) for s in rows if (why := _why(s)) is not None and why in kept]
    if not wanted:
        return []
    row = transfers.require(node.db, found.transfer_id, local_domain=node.config.node.domain)
    manifest = verified_manifest(node, row)
    sent = {m.sis_id: m for m in manifest.students}
    local_ids = {sis_id for _, s in wanted for sis_id in _candidate_ids(s)}
    local = student_store.by_sis_ids(node.db, sorted(local_ids))
    inactive = student_store.inactive_since(node.db, local_ids)
    items = []
    for why, s in sorted(wanted, key=lambda pair: (_ORDER.index(pair[0]), pair[1].position)):
        m = sent[s.sender_sis_id]
        seen = incoming(m)
        person = Person(m.sis_id, m.given_name, m.family_name, m.birth_date or "", m.state_id or "",
                        seen.grade or m.grade or "", m.school or "")  # fmt: skip
        scores = {str(c[0]): int(c[1]) for c in s.candidates}
        candidates = []
        for sis_id in _candidate_ids(s):
            held = local.get(sis_id)
            score = scores.get(sis_id, s.score if sis_id == s.proposed_sis_id else None)
            if held is None:
                candidates.append(Person(sis_id, "", "", "", "", "", "", score, missing=True))
                continue
            r = held
            candidates.append(Person(sis_id, r.given_name, r.family_name, r.birth_date or "", r.state_id,
                                     r.grade or "", r.school_name, score, inactive.get(sis_id)))  # fmt: skip
        items.append(ReviewItem(s, why, person, tuple(candidates)))
    return items


def _candidate_ids(s: ImportStudent) -> list[str]:
    ids = [s.proposed_sis_id] if s.proposed_sis_id else []
    return ids + [str(c[0]) for c in s.candidates if str(c[0]) not in ids]


@dataclass(frozen=True, slots=True)
class Recorded:
    """A decision recorded: what it was, and a former SIS number typed for the student linked to, if one was."""

    decided: Decided
    kind: Kind
    former: FormerNumber | None = None
    line: int | None = None  # in a decisions file


def current_number(node: Node, sis_id: str) -> tuple[str, FormerNumber | None]:
    """The SIS id of the student ``sis_id`` names here: a former number (the SIS renumbered them) is followed to
    the current one, and said (the coordinator typed a number from an older list); an unknown one is refused."""
    stored, was = student_store.resolve(node.db, sis_id)
    return stored.record.sis_id, was


def _proposal_changed(student: str, then: str | None, now: str | None) -> str:
    return (f"the proposal for student {student} changed since it was shown ({then or 'a new student'} then, "
            f"{now or 'a new student'} now: the preview was run again); write the SIS id you mean, new or later")


def decide_one(
    node: Node, *, actor: str | None, transfer_id: str, sender_sis_id: str, kind: Kind, sis_id: str | None = None,
    shown: ImportStudent | None = None,
) -> Recorded:  # fmt: skip
    """One decision of the walk, in its own transaction: ``confirm`` records the proposal. Refused when the
    student is no longer as ``shown`` to the person: decided by someone else since, or (for ``confirm``) another
    proposal (the preview was run again since)."""
    user = authorize(node, actor, "transfers.act")
    with write_transaction(node.db):
        found = open_for_review(node, transfer_id)
        rows = imports.students(node.db, found.import_id)
        student = next((s for s in rows if s.sender_sis_id == sender_sis_id), None)
        if student is None:
            raise NotFound(f"no incoming student {sender_sis_id} in this import", field="STUDENT",
                           hint="see `satchel import review ID`")  # fmt: skip
        if shown is not None and _decision_of(shown) != _decision_of(student):
            # Another coordinator (a decisions file, `import match`, a walk of their own) decided since this one
            # was shown: the person answering has not seen that, and would undo it unknowingly.
            action, target = student.target
            raise InvalidInput(f"student {sender_sis_id} was decided meanwhile by {student.reviewed_by or 'someone'}: "
                               f"{action}" + (f" to {target}" if target else ""), field="STUDENT",
                               hint=f"skip them (s); to change it, `satchel import match {transfer_id} "
                               f"{sender_sis_id} --to|--new|--later`")  # fmt: skip
        if kind == "confirm" and shown is not None and shown.proposed_sis_id != student.proposed_sis_id:
            raise InvalidInput(_proposal_changed(sender_sis_id, shown.proposed_sis_id, student.proposed_sis_id),
                               field=DECISION_COLUMN, hint="choose a candidate by number or type a SIS id; or quit "
                               "and walk again to see the new proposal")  # fmt: skip
        decision, link_to, former = _resolved(node, student, kind, sis_id)
        decided = record_decision(node, user.username, found, rows, sender_sis_id, decision, link_to)
    return Recorded(decided, kind, former)


def _decision_of(s: ImportStudent) -> tuple[str | None, ...]:
    return s.decision, s.decided_sis_id, s.reviewed_by, s.reviewed_at


def _resolved(
    node: Node, student: ImportStudent, kind: Kind, sis_id: str | None
) -> tuple[str, str | None, FormerNumber | None]:
    """(decision, local SIS id, former number typed) for what a person chose."""
    if kind == "confirm":
        if (proposal := confirmed(student)) is not None:
            return (*proposal, None)
        raise InvalidInput(f"student {student.sender_sis_id} has no proposed match to confirm", field=DECISION_COLUMN,
                           hint="link them to a student here (their SIS id), or choose new or later")  # fmt: skip
    if kind == "link":
        if sis_id is None:
            raise InvalidInput("a link needs the SIS id of a student here", field=DECISION_COLUMN)
        current, former = current_number(node, sis_id)
        return "link", current, former
    return kind, None, None


@dataclass(frozen=True, slots=True)
class Bulk:
    recorded: tuple[Recorded, ...]
    # After them all: (incoming student, local student, the other incoming students linked or imported there,
    # those of them imported).
    shared: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...]


def decide_file(node: Node, *, actor: str | None, transfer_id: str, path: Path) -> Bulk:
    """Record the decisions of a filled-in review file: every row is checked first (format, student, SIS id,
    state); any bad row and nothing is recorded (ImportDecisionsInvalid lists them); else all in one
    transaction."""
    user = authorize(node, actor, "transfers.act")
    data = _read_bounded(path)
    # Read as the import stands now; checked again against it in the transaction below.
    students = imports.require(node.db, transfer_id).students_total
    decisions = parse_decisions(data, file=path.name, students=students)
    with write_transaction(node.db):
        found = open_for_review(node, transfer_id)
        rows = imports.students(node.db, found.import_id)
        checked = _check(node, path.name, rows, decisions)
        recorded = []
        for d, (decision, link_to, former) in zip(decisions, checked, strict=True):
            decided = record_decision(node, user.username, found, rows, d.student, decision, link_to)
            recorded.append(Recorded(decided, d.kind, former, d.line))
        # Said once all are recorded: a later row of the file may have undone what an earlier one's would say.
        shared = []
        told: set[frozenset[str]] = set()  # two rows linking to one student: one warning
        for r in recorded:
            link_to = r.decided.student.target[1] if r.decided.student.decision == "link" else None
            others, imported = sharing(node, rows, r.decided.student.sender_sis_id, link_to)
            group = frozenset((r.decided.student.sender_sis_id, *others))
            if link_to and others and group not in told:
                told.add(group)
                shared.append((r.decided.student.sender_sis_id, link_to, others, imported))
    return Bulk(tuple(recorded), tuple(shared))


def _read_bounded(path: Path) -> bytes:
    """The bytes of a decisions file, refused unread beyond MAX_DECISIONS_BYTES (and a file that grows, or a
    device that never ends, refused once that much is read)."""
    hint = "give the file `satchel import review ID --csv FILE` wrote"
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = b"" if size > MAX_DECISIONS_BYTES else handle.read(MAX_DECISIONS_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field="--csv", hint=hint) from None
    if size > MAX_DECISIONS_BYTES or len(data) > MAX_DECISIONS_BYTES:
        raise InvalidInput(f"{path} is larger than {MAX_DECISIONS_BYTES >> 20} MiB: it is not a review file",
                           field="--csv", hint=hint)  # fmt: skip
    return data


def _check(
    node: Node, file: str, rows: list[ImportStudent], decisions: list[Decision]
) -> list[tuple[str, str | None, FormerNumber | None]]:
    by_id = {s.sender_sis_id: s for s in rows}
    wanted = {d.sis_id for d in decisions if d.sis_id is not None}
    held = student_store.present(node.db, wanted) if wanted else set()
    former = student_store.former(node.db, wanted - held)
    errors: list[RowError] = []
    out: list[tuple[str, str | None, FormerNumber | None]] = []
    for d in decisions:
        student = by_id.get(d.student)
        problem: tuple[str, str] | None = None
        if student is None:
            problem = STUDENT_COLUMN, f"no incoming student {d.student} in this import"
        elif student.result == "imported":
            problem = STUDENT_COLUMN, (f"student {d.student} is already imported; move their records with "
                                       "`satchel documents move`")  # fmt: skip
        elif d.kind == "confirm" and confirmed(student) is None:
            problem = DECISION_COLUMN, f"student {d.student} has no proposed match to confirm"
        elif d.kind == "confirm" and d.proposed is not None and not same_proposal(d.proposed, student.proposed_sis_id):
            problem = DECISION_COLUMN, _proposal_changed(d.student, d.proposed, student.proposed_sis_id)
        elif d.sis_id is not None and d.sis_id not in held and d.sis_id not in former:
            problem = DECISION_COLUMN, (f"no student with SIS id {d.sis_id} here (find it with `satchel students "
                                        "search`); or write confirm, new or later")  # fmt: skip
        if problem is not None:
            errors.append(RowError(file=file, line=d.line, field=problem[0], message=problem[1]))
            continue
        assert student is not None
        if d.kind == "link" and d.sis_id is not None:
            was = former.get(d.sis_id)
            out.append(("link", was.current_sis_id if was else d.sis_id, was))
        elif d.kind == "confirm" and (proposal := confirmed(student)) is not None:
            out.append((*proposal, None))
        else:
            out.append((d.kind, None, None))
    if errors:
        raise ImportDecisionsInvalid(f"{len(errors)} row(s) of {file} do not fit this import; nothing was recorded",
                                     tuple(errors))  # fmt: skip
    return out


REVIEW_COLUMNS = (
    STUDENT_COLUMN, "Name", "Born", "State id", "Grade", "School", "Match", "Score", "Proposed", "Import as",
    "Reviewed by", "Candidates", "Why", DECISION_COLUMN,
)  # fmt: skip


def _describe(c: Person) -> str:
    if c.missing:
        return f"{c.sis_id} (no longer here)"
    facts = [f"{c.family_name}, {c.given_name}", c.birth_date or "born ?", f"grade {c.grade or '?'}",
             c.school or "no school", f"state id {c.state_id or '-'}"]  # fmt: skip
    if c.score is not None:
        facts.append(f"score {c.score}")
    if c.inactive_since:
        facts.append(f"inactive since {c.inactive_since[:10]}")
    return f"{c.sis_id} ({'; '.join(facts)})"


def write_csv(node: Node, transfer_id: str, path: Path, *, everyone: bool) -> int:
    """Write the review queue (see :func:`queue`) with an empty DECISION column to ``path``, outside the node's
    home, readable by its owner only; it replaces a file there. Returns how many students it lists."""
    target = outside_home(node, path, option="--csv", example="~/review.csv")
    items = queue(node, transfer_id, everyone=everyone)
    with private_file(target, option="--csv", exclusive=False, text=True) as handle:
        writer = csv.writer(handle)
        writer.writerow(REVIEW_COLUMNS)
        for item in items:
            s, p = item.student, item.incoming
            action, local = s.target
            row = (s.sender_sis_id, f"{p.family_name}, {p.given_name}", p.birth_date, p.state_id, p.grade, p.school,
                   item.why, "" if s.score is None else s.score, s.proposed_sis_id or "",
                   f"{action} {local}" if local else action, s.reviewed_by or "",
                   "; ".join(_describe(c) for c in item.candidates), "; ".join(s.reasons), "")  # fmt: skip
            writer.writerow([spreadsheet_cell(v) for v in row])
    return len(items)
