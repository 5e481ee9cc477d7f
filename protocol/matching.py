"""Finding the local student an incoming student is: matched, uncertain or new, with reasons.

Rules
=====

Records from another district must land on the right local student exactly once, and a person reviews
anything the rules are not sure of (as in the vendor's "matched / new / uncertain" review). Per student:

1. **Receiving SIS id.** If the sender supplied our SIS id for the student and it exists, that student is
   the answer: ``matched``, or ``uncertain`` when the given name, family name or birth date *differs*
   (a typo, nickname or swapped day/month is not a difference), or when the state id belongs to another
   local student. An id we do not know is noted and the search goes on.
2. **State id.** One local student with the incoming state id: the same, ``matched`` or ``uncertain``.
   Several: ``uncertain``, listing them.
3. **Scored comparison** against the blocking candidates (below). Each field scores points
   (:data:`GIVEN_POINTS` and friends); the best candidate is ``matched`` only if it reaches
   :data:`MATCH_THRESHOLD`, leads the runner-up by :data:`MARGIN`, its given name does not *differ*, no
   twin of it (same family name and birth date) is among the candidates unless its given name agrees
   exactly or as a nickname, and the state ids do not disagree. Otherwise it is ``uncertain`` from
   :data:`POSSIBLE_THRESHOLD` up, and ``new`` below. Candidates from :data:`CANDIDATE_FLOOR` up are listed
   for the reviewer whatever the status.
4. **The batch.** The same student twice in one transfer (:func:`find_incoming_duplicates`), or two
   incoming students matched to one local student, make the later entries ``uncertain``
   (:func:`apply_batch_rules`): one local student receives records once.
5. **Inactive students** (left the district, or inactive in the roster) stay candidates: a child returning
   to the district is common, and creating them again would split their records. But an import never
   links one without a person (:func:`flag_inactive`): a proposal of an inactive student is ``uncertain``,
   its first reason saying since when the student is inactive, so the coordinator checks this is the same
   child returning and confirms the link, or creates the child new. Rules 1-4 do not look at the status,
   so the proposal, score and candidates are what they would be for an active student. (The releasing side
   of a records request matches without this rule: a child asked for has usually left.)

Points (the tables in :mod:`protocol.match_score`): exact given name, family name and birth date are
worth 30 each, sex and grade 4, middle name 6. The thresholds follow from them, and from the generated
rosters with planted difficulties in tests/node, which check every case:

* :data:`MATCH_THRESHOLD` 80: two exact core fields and a third with one known slip reach it (a name
  typo 22, a nickname or hyphenated surname 25, day and month swapped 22: 82 and more). Weaker evidence
  in the third field (names that only sound alike, a birth date one digit off: 10) reaches 78 with sex
  and grade, so it also needs the middle name: in a large district a same-named child born a digit
  away, or with a sound-alike surname, is as likely as a slip. A birth date (-25) or a family name
  (-15) that differs outright never matches.
* :data:`POSSIBLE_THRESHOLD` 55: above a twin (given name differs: 30 + 30 - 20 + 4 + 4 + a shared
  middle name 6 = 54), so an unknown twin of a local student is ``new``; a family name change (59) is
  ``uncertain``.
* :data:`MARGIN` 10: more than the gap between an exact name and a typo of it (8), so two local records
  of one child, or twins named Aiden and Ayden, leave the choice to a person.

Blocking keys
=============

:func:`blocking_keys` gives the keys a student is indexed under and searched by. Name codes are the
phonetic keys (:mod:`protocol.name_similarity`) of the given name, the family name, each part of a
compound family name, the preferred name, plus ``=<formal name>`` for each nickname group of the given
and preferred names. Birth dates are written year + the smaller of month/day + the larger, so a date
with day and month swapped has the same form. With ``D`` that form, ``Y`` the year and ``MD`` the
month/day part:

* ``n:<name code>|D`` for every name code: survives a typo in any *other* name, swapped given and family
  names (codes share one namespace), a nickname, a hyphenated or maternal surname.
* ``p:<code pair>|Y`` with the sorted codes of the first given and first family name: survives a typo in
  the month or day. ``q:<code pair>|MD``: survives a typo in the year. (``p:<pair>|-`` without a date.)

So a student with one field mistyped still shares a key with the true record, and every key holds a
name and most of a date: at a million students a key holds a handful of rows, never a whole grade.
State ids are not keys: the students table indexes them and :func:`decide` looks them up first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from protocol.errors import InvalidInput
from protocol.match_score import (
    BIRTH_POINTS,
    FAMILY_POINTS,
    GIVEN_POINTS,
    GRADE_POINTS,
    MIDDLE_POINTS,
    SEX_POINTS,
    STATE_ID_POINTS,
    SWAP_PENALTY,
    FieldComparison,
    MatchScore,
    Person,
    _compare,
    score,
)

# Cached comparisons that tests/bench/match_scale.py clears between runs (as matching._given_field etc.).
from protocol.match_score import _birth_field as _birth_field
from protocol.match_score import _family_field as _family_field
from protocol.match_score import _given_field as _given_field
from protocol.match_score import _middle_field as _middle_field
from protocol.match_score import _small_fields as _small_fields
from protocol.name_similarity import DIFFERS, name_info, phonetic_key
from protocol.roster import GRADE_CODES, MAX_ID_LENGTH, SEX_CODES, StudentRecord, check_text, parse_iso_date

__all__ = [
    "BIRTH_POINTS", "CANDIDATE_FLOOR", "FAMILY_POINTS", "GIVEN_POINTS", "GRADE_POINTS", "MARGIN", "MATCHED",
    "MATCH_THRESHOLD", "MAX_LISTED", "MIDDLE_POINTS", "NEW", "POSSIBLE_THRESHOLD", "SEX_POINTS",
    "STATE_ID_POINTS", "STATUSES", "SWAP_PENALTY", "UNCERTAIN", "FieldComparison", "IncomingStudent",
    "MatchOutcome", "MatchScore", "Person", "apply_batch_rules", "blocking_keys", "decide",
    "find_incoming_duplicates", "flag_inactive", "inactive_note", "score",
]  # fmt: skip

MATCHED, UNCERTAIN, NEW = "matched", "uncertain", "new"
STATUSES = (MATCHED, UNCERTAIN, NEW)

MATCH_THRESHOLD = 80
POSSIBLE_THRESHOLD = 55
MARGIN = 10
CANDIDATE_FLOOR = 30
MAX_LISTED = 5
# Given-name grades strong enough to tell a child from a twin with the same family name and birth date.
_TWIN_SAFE = frozenset({"exact", "nickname", "preferred", "part", "middle"})


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingStudent:
    """A student as the sending district describes them; values already in Satchel's code sets.

    ``repr`` shows the sender's id only: the rest is a child's personal data.
    """

    sender_sis_id: str
    given_name: str = field(repr=False)
    family_name: str = field(repr=False)
    middle_name: str = field(default="", repr=False)
    preferred_name: str = field(default="", repr=False)
    birth_date: str | None = field(default=None, repr=False)
    sex: str | None = field(default=None, repr=False)
    grade: str | None = field(default=None, repr=False)
    state_id: str = field(default="", repr=False)
    receiving_sis_id: str | None = None
    school_name: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        check_text("sender_sis_id", self.sender_sis_id, required=True, max_length=MAX_ID_LENGTH)
        check_text("given_name", self.given_name, required=True)
        check_text("family_name", self.family_name, required=True)
        for name in ("middle_name", "preferred_name", "school_name"):
            check_text(name, getattr(self, name), required=False)
        check_text("state_id", self.state_id, required=False, max_length=64)
        if self.receiving_sis_id is not None:
            check_text("receiving_sis_id", self.receiving_sis_id, required=True, max_length=MAX_ID_LENGTH)
        if self.birth_date is not None:
            parse_iso_date(self.birth_date, field="birth_date")
        if self.sex is not None and self.sex not in SEX_CODES:
            raise InvalidInput("sex must be F, M, X or None", field="sex")
        if self.grade is not None and self.grade not in GRADE_CODES:
            raise InvalidInput("grade must be a CEDS grade code or None", field="grade")


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchOutcome:
    """The decision for one incoming student. ``score`` is the proposed local student's points."""

    status: str
    local_sis_id: str | None
    score: int | None
    method: str  # receiving_sis_id, state_id or score: which rule decided
    candidates: tuple[tuple[str, int], ...] = ()
    reasons: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        if self.status == MATCHED and self.local_sis_id is None:
            raise InvalidInput("a matched outcome names a local student", field="local_sis_id")


# -- blocking ---------------------------------------------------------------------------------------


def _date_form(birth_date: str) -> tuple[str, str]:
    month, day = birth_date[5:7], birth_date[8:10]
    return birth_date[:4], (month + day if month <= day else day + month)


def blocking_keys(student: Person) -> frozenset[str]:
    """The index keys of a student (local or incoming alike); see "Blocking keys" above."""
    given, family = name_info(student.given_name), name_info(student.family_name)
    codes = {given.phonetic, family.phonetic, *(phonetic_key(part) for part in family.parts)}
    codes.update(f"={head}" for head in given.groups)
    if student.preferred_name:
        preferred = name_info(student.preferred_name)
        codes.add(preferred.phonetic)
        codes.update(f"={head}" for head in preferred.groups)
    codes.discard("")
    first_given = phonetic_key(given.tokens[0]) if given.tokens else ""
    first_family = phonetic_key(family.parts[0]) if family.parts else ""
    pair = "|".join(sorted((first_given, first_family)))
    if not student.birth_date:
        return frozenset((f"p:{pair}|-",))
    year, month_day = _date_form(student.birth_date)
    keys = {f"n:{code}|{year}{month_day}" for code in codes}
    keys.add(f"p:{pair}|{year}")
    keys.add(f"q:{pair}|{month_day}")
    return frozenset(keys)


# -- deciding ---------------------------------------------------------------------------------------


def _rank(incoming: Person, candidates: Iterable[StudentRecord]) -> list[MatchScore]:
    seen: set[str] = set()
    scores: list[MatchScore] = []
    for record in candidates:
        if record.sis_id not in seen:
            seen.add(record.sis_id)
            scores.append(score(incoming, record))
    scores.sort(key=lambda s: (-s.total, s.local_sis_id))
    return scores


def _listing(
    scores: Sequence[MatchScore], first: MatchScore | None = None, always: MatchScore | None = None
) -> tuple[tuple[str, int], ...]:
    """The proposed student first, the one an id named, then the best others from CANDIDATE_FLOOR up."""
    listed = [first] if first is not None else []
    if always is not None and always not in listed:
        listed.append(always)
    for s in scores:
        if len(listed) >= MAX_LISTED or s.total < CANDIDATE_FLOOR:
            break
        if s not in listed:
            listed.append(s)
    return tuple((s.local_sis_id, s.total) for s in listed)


def _outcome(
    status: str,
    proposal: MatchScore | None,
    method: str,
    listing: tuple[tuple[str, int], ...],
    reasons: Iterable[str],
) -> MatchOutcome:
    return MatchOutcome(status=status, local_sis_id=proposal.local_sis_id if proposal else None,
                        score=proposal.total if proposal else None, method=method, candidates=listing,
                        reasons=tuple(reasons))  # fmt: skip


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _by_identifier(
    incoming: IncomingStudent,
    record: StudentRecord,
    method: str,
    candidates: Sequence[StudentRecord],
    state_id_lookup: Mapping[str, Sequence[StudentRecord]],
    notes: Sequence[str],
) -> MatchOutcome:
    named = score(incoming, record)
    what = "the receiving SIS id" if method == "receiving_sis_id" else "the state id"
    labels = (("given_name", "given name"), ("family_name", "family name"), ("birth_date", "birth date"))
    differing = [label for name, label in labels if named.outcome(name) == DIFFERS]
    problems = []
    if differing:
        verb = "differs" if len(differing) == 1 else "differ"
        problems.append(f"{what} belongs to a student whose {_join(differing)} {verb}")
    if method == "receiving_sis_id" and incoming.state_id:
        others = sorted({r.sis_id for r in state_id_lookup.get(incoming.state_id, ())} - {record.sis_id})
        if others:
            problems.append(f"the state id belongs to another local student ({', '.join(others)})")
    if not problems:
        reasons = (*notes, f"{what} supplied by the sender names this student", *named.reasons)
        return _outcome(MATCHED, named, method, ((record.sis_id, named.total),), reasons)
    others_ranked = [s for s in _rank(incoming, candidates) if s.local_sis_id != record.sis_id]
    proposal = named
    if (
        others_ranked
        and others_ranked[0].total > named.total
        and others_ranked[0].total >= POSSIBLE_THRESHOLD
    ):
        proposal = others_ranked[0]
        problems.append(f"local student {proposal.local_sis_id} matches names and birth date better")
    listing = _listing([named, *others_ranked], first=proposal, always=named)
    return _outcome(UNCERTAIN, proposal, method, listing, (*notes, *problems, *proposal.reasons))


def _blockers(
    best: MatchScore, ranked: Sequence[MatchScore], records: Mapping[str, StudentRecord]
) -> list[str]:
    """Why the best-scoring candidate cannot simply be matched; empty if it can."""
    problems = []
    if best.total < MATCH_THRESHOLD:
        problems.append(f"the best score, {best.total}, is below the match threshold of {MATCH_THRESHOLD}")
    if len(ranked) > 1 and best.total - ranked[1].total < MARGIN:
        runner_up = ranked[1]
        problems.append(
            f"local students {best.local_sis_id} and {runner_up.local_sis_id} score "
            f"{best.total} and {runner_up.total}: too close to choose"
        )
    if best.outcome("given_name") == DIFFERS:
        problems.append("the given name differs")
    if best.outcome("given_name") not in _TWIN_SAFE:
        mine = records[best.local_sis_id]
        family = name_info(mine.family_name).compact
        for other in ranked[1:]:
            twin = records[other.local_sis_id]
            if twin.birth_date == mine.birth_date and name_info(twin.family_name).compact == family:
                problems.append(
                    f"local student {twin.sis_id} has the same family name and birth date "
                    "(a twin?) and the given name is not an exact match"
                )
                break
    if best.outcome("state_id") == DIFFERS:
        problems.append("the state ids differ")
    return problems


def _by_score(
    candidates: Sequence[StudentRecord], ranked: Sequence[MatchScore], notes: list[str]
) -> MatchOutcome:
    if not ranked or ranked[0].total < POSSIBLE_THRESHOLD:
        if ranked:
            notes.append(f"the closest local student scores {ranked[0].total}, below {POSSIBLE_THRESHOLD}")
        else:
            notes.append("no local student shares a name and birth date")
        return _outcome(NEW, None, "score", _listing(ranked), notes)
    best = ranked[0]
    problems = _blockers(best, ranked, {r.sis_id: r for r in candidates})
    status = UNCERTAIN if problems else MATCHED
    return _outcome(status, best, "score", _listing(ranked, first=best), (*notes, *problems, *best.reasons))


def decide(
    incoming: IncomingStudent,
    candidates: Sequence[StudentRecord],
    *,
    receiving_sis_lookup: Mapping[str, StudentRecord],
    state_id_lookup: Mapping[str, Sequence[StudentRecord]],
    former_sis_lookup: Mapping[str, tuple[str, str]] | None = None,
) -> MatchOutcome:
    """Apply rules 1-3 to one incoming student.

    ``candidates`` come from blocking; ``receiving_sis_lookup`` maps local SIS ids to students and
    ``state_id_lookup`` state ids to the local students holding them (both pre-fetched in batches, so
    this stays pure). When an id names a student who disagrees, the candidates are scored to propose
    a better one.

    ``former_sis_lookup`` maps a local student's former SIS number (the SIS renumbered them) to their current
    number and the day it changed: the sender's copy may still name the child by the old one, and rule 1
    then applies to the student it names now, the reasons saying so. A number a student holds now is never
    in it (a number given back to a new child names the new child).
    """
    notes: list[str] = []
    if incoming.receiving_sis_id:
        record = receiving_sis_lookup.get(incoming.receiving_sis_id)
        renumbered = (former_sis_lookup or {}).get(incoming.receiving_sis_id) if record is None else None
        if renumbered is not None and (record := receiving_sis_lookup.get(renumbered[0])) is not None:
            notes.append(
                f"the sender's receiving SIS id {incoming.receiving_sis_id} is this student's former number, "
                f"renumbered to {renumbered[0]} on {renumbered[1][:10]}"
            )
        if record is not None:
            return _by_identifier(incoming, record, "receiving_sis_id", candidates, state_id_lookup, notes)
        notes.append("the receiving SIS id supplied by the sender is not a local student")
    if incoming.state_id:
        holders = _rank(incoming, state_id_lookup.get(incoming.state_id, ()))
        if len(holders) == 1:
            record = next(iter(state_id_lookup[incoming.state_id]))
            return _by_identifier(incoming, record, "state_id", candidates, state_id_lookup, notes)
        if holders:
            reasons = (*notes, f"{len(holders)} local students have this state id")
            return _outcome(UNCERTAIN, holders[0], "state_id", _listing(holders, first=holders[0]), reasons)
    return _by_score(candidates, _rank(incoming, candidates), notes)


# -- the batch --------------------------------------------------------------------------------------

# Siblings of a big family or a common name in one transfer share keys; beyond this a key is not compared
# pairwise (the sender id, state id and the other keys still are).
_DUPLICATE_BUCKET_LIMIT = 64


def find_incoming_duplicates(students: Sequence[IncomingStudent]) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of entries in one transfer that are the same student: same sender SIS id,
    same state id, or a comparison that would match (the same rules as against local students)."""
    buckets: dict[str, list[int]] = {}
    for i, student in enumerate(students):
        keys = {f"sender:{student.sender_sis_id}", *blocking_keys(student)}
        if student.state_id:
            keys.add(f"state:{student.state_id.casefold()}")
        for key in keys:
            buckets.setdefault(key, []).append(i)
    pairs: set[tuple[int, int]] = set()
    for key, members in buckets.items():
        if len(members) < 2:
            continue
        if key.startswith(("sender:", "state:")):
            # Certain duplicates: pairing each with the first is enough, and stays linear when a broken
            # sender repeats one id a thousand times.
            pairs.update((members[0], other) for other in members[1:])
        elif len(members) <= _DUPLICATE_BUCKET_LIMIT:
            pairs.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
    found = []
    for i, j in sorted(pairs):
        a, b = students[i], students[j]
        same_id = a.sender_sis_id == b.sender_sis_id
        same_state = bool(a.state_id) and a.state_id.casefold() == b.state_id.casefold()
        if same_id or same_state:
            found.append((i, j))
            continue
        total, comparisons, _ = _compare(a, b)
        given = next(c.outcome for c in comparisons if c.name == "given_name")
        if total >= MATCH_THRESHOLD and given != DIFFERS:
            found.append((i, j))
    return found


def apply_batch_rules(
    students: Sequence[IncomingStudent],
    outcomes: Sequence[MatchOutcome],
    duplicates: Iterable[tuple[int, int]],
) -> list[MatchOutcome]:
    """Rule 4: a later duplicate, and every student matched to an already-claimed local student, is
    ``uncertain``. Entries are numbered from 1 in reasons, as a person reading the transfer counts."""
    result = list(outcomes)
    later: dict[int, int] = {}
    for i, j in sorted(duplicates):
        later.setdefault(j, i)
    for j, i in sorted(later.items()):
        first = students[i]
        note = f"entry {j + 1} repeats entry {i + 1} (sender SIS id {first.sender_sis_id}) of this transfer"
        result[j] = replace(result[j], status=UNCERTAIN, reasons=(note, *result[j].reasons))
    claimed: dict[str, list[int]] = {}
    for n, outcome in enumerate(result):
        if outcome.status == MATCHED and outcome.local_sis_id is not None:
            claimed.setdefault(outcome.local_sis_id, []).append(n)
    for sis_id, entries in claimed.items():
        if len(entries) > 1:
            listed = _join([str(n + 1) for n in entries])
            for n in entries:
                note = f"entries {listed} of this transfer all match local student {sis_id}"
                result[n] = replace(result[n], status=UNCERTAIN, reasons=(note, *result[n].reasons))
    return result


# -- inactive students ------------------------------------------------------------------------------


def inactive_note(sis_id: str, since: str) -> str:
    """What a person reads of a proposed local student marked inactive since ``since`` (an ISO time)."""
    return (f"local student {sis_id} is marked inactive here since {since[:10]} (left the district, or inactive "
            "in the roster): check this is the same child, returning, before linking them")  # fmt: skip


def flag_inactive(outcomes: Sequence[MatchOutcome], inactive: Mapping[str, str]) -> list[MatchOutcome]:
    """Rule 5: an outcome proposing a local student of ``inactive`` (SIS id -> since when) is ``uncertain``,
    its first reason saying so; the others are unchanged."""
    result = []
    for outcome in outcomes:
        since = inactive.get(outcome.local_sis_id) if outcome.local_sis_id else None
        if since is not None:
            note = inactive_note(outcome.local_sis_id or "", since)
            outcome = replace(outcome, status=UNCERTAIN, reasons=(note, *outcome.reasons))
        result.append(outcome)
    return result
