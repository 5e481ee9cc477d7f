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

Points (the tables below): exact given name, family name and birth date are worth 30 each, sex and
grade 4, middle name 6. The thresholds follow from them, and from the generated rosters with planted
difficulties in tests/node, which check every case:

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
from functools import lru_cache
from typing import Protocol

from protocol.errors import InvalidInput
from protocol.name_similarity import (
    DIFFERS,
    compare_family,
    compare_given,
    name_info,
    phonetic_key,
    within_one_edit,
)
from protocol.roster import GRADE_CODES, MAX_ID_LENGTH, SEX_CODES, StudentRecord, check_text, parse_iso_date

MATCHED, UNCERTAIN, NEW = "matched", "uncertain", "new"
STATUSES = (MATCHED, UNCERTAIN, NEW)

MATCH_THRESHOLD = 80
POSSIBLE_THRESHOLD = 55
MARGIN = 10
CANDIDATE_FLOOR = 30
MAX_LISTED = 5
# Swapped names are a known data-entry slip, but two exact names swapped are slightly weaker evidence.
SWAP_PENALTY = 5

# Names that only sound alike or look similar (10 or less) cannot reach the threshold with the other two
# core fields alone: among a million students an unrelated child with the same given name and birth date
# and a sound-alike surname turns up about once per thousand new students, and so do twins with rhyming
# names. The middle name has to agree as well.
GIVEN_POINTS = {"exact": 30, "nickname": 25, "preferred": 25, "part": 24, "typo": 22, "middle": 20,
                "sounds_alike": 10, "similar": 8, "initial": 10, DIFFERS: -20}  # fmt: skip
# Family names change (adoption, a parent's marriage, a second surname), so differing costs less.
FAMILY_POINTS = {"exact": 30, "compound": 25, "typo": 22, "sounds_alike": 10, "shared_part": 10,
                 "similar": 10, DIFFERS: -15}  # fmt: skip
# A date one digit off is as often another child with the same name (in a large district there are dozens
# of Liam Smiths, and each date has ~15 one-digit neighbours) as a typo: it needs a middle name to match.
# Day and month swapped is one specific, common slip (US and European order).
BIRTH_POINTS = {"exact": 30, "day_month_swapped": 22, "one_digit": 10, "transposed": 10, DIFFERS: -25,
                "missing": 0}  # fmt: skip
MIDDLE_POINTS = {"exact": 6, "nickname": 4, "part": 4, "typo": 4, "initial": 2, "sounds_alike": 2,
                 "similar": 2, DIFFERS: -4}  # fmt: skip
SEX_POINTS = {"exact": 4, DIFFERS: -8}
GRADE_POINTS = {"exact": 4, "adjacent": 2, DIFFERS: -6}  # adjacent: records often cross a promotion
STATE_ID_POINTS = {"exact": 20, DIFFERS: -15}
# Given-name grades strong enough to tell a child from a twin with the same family name and birth date.
_TWIN_SAFE = frozenset({"exact", "nickname", "preferred", "part", "middle"})
_GRADE_RANK = {code: rank for rank, code in enumerate(GRADE_CODES[:18])}  # IT..13; PS, UG, Other unranked


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


class Person(Protocol):
    """What scoring reads: both IncomingStudent and StudentRecord have it."""

    @property
    def given_name(self) -> str: ...
    @property
    def family_name(self) -> str: ...
    @property
    def middle_name(self) -> str: ...
    @property
    def preferred_name(self) -> str: ...
    @property
    def birth_date(self) -> str | None: ...
    @property
    def sex(self) -> str | None: ...
    @property
    def grade(self) -> str | None: ...
    @property
    def state_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FieldComparison:
    name: str  # the field compared: given_name, family_name, names, birth_date, sex, grade, ...
    outcome: str
    points: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchScore:
    """One incoming student against one local student. Reasons name names: show them, never log them."""

    local_sis_id: str
    total: int
    comparisons: tuple[FieldComparison, ...] = field(repr=False)
    names_swapped: bool = False

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(c.reason for c in self.comparisons if c.reason)

    def outcome(self, name: str) -> str:
        """The outcome for one field, "missing" if it was not compared."""
        return next((c.outcome for c in self.comparisons if c.name == name), "missing")


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


# -- scoring ----------------------------------------------------------------------------------------


def _field(name: str, outcome: str, points: Mapping[str, int], reason: str | None = None) -> FieldComparison:
    return FieldComparison(name, outcome, points[outcome], reason)


@lru_cache(maxsize=1 << 18)
def _given_field(a: str, b: str) -> FieldComparison:
    relation = compare_given(a, b)
    return _field("given_name", relation.outcome, GIVEN_POINTS, relation.reason)


@lru_cache(maxsize=1 << 18)
def _family_field(a: str, b: str) -> FieldComparison:
    relation = compare_family(a, b)
    return _field("family_name", relation.outcome, FAMILY_POINTS, relation.reason)


def _same_name(a: str, b: str) -> bool:
    return name_info(a).compact == name_info(b).compact != ""


def _given_alternatives(a: Person, b: Person) -> Iterable[FieldComparison]:
    """A child who goes by a preferred or a middle name: checked both ways, so scores stay symmetric.
    Exact only: a nickname of a preferred name is two steps away (twins Emily and Emma "Emmy")."""
    if b.preferred_name and _same_name(a.given_name, b.preferred_name):
        reason = f"given name '{a.given_name}' is the preferred name '{b.preferred_name}'"
        yield _field("given_name", "preferred", GIVEN_POINTS, reason)
    if a.preferred_name and _same_name(a.preferred_name, b.given_name):
        reason = f"preferred name '{a.preferred_name}' is the given name '{b.given_name}'"
        yield _field("given_name", "preferred", GIVEN_POINTS, reason)
    if b.middle_name and _same_name(a.given_name, b.middle_name):
        reason = f"given name '{a.given_name}' is the middle name"
        yield _field("given_name", "middle", GIVEN_POINTS, reason)
    if a.middle_name and _same_name(a.middle_name, b.given_name):
        reason = f"middle name '{a.middle_name}' is the given name"
        yield _field("given_name", "middle", GIVEN_POINTS, reason)


def _names(a: Person, b: Person) -> tuple[FieldComparison, FieldComparison, bool]:
    given = _given_field(a.given_name, b.given_name)
    if given.outcome != "exact":
        for alternative in _given_alternatives(a, b):
            if alternative.points > given.points:
                given = alternative
    family = _family_field(a.family_name, b.family_name)
    if given.outcome != DIFFERS and family.outcome != DIFFERS:
        return given, family, False
    # Swapped names keep at least one of the two crossed pairs sounding alike; most pairs stop here.
    if (name_info(a.family_name).phonetic != name_info(b.given_name).phonetic
            and name_info(a.given_name).phonetic != name_info(b.family_name).phonetic):  # fmt: skip
        return given, family, False
    # Which crossed pair is judged as given names and which as family names depends on the side read
    # first; the better of both readings keeps the score symmetric.
    best: tuple[FieldComparison, FieldComparison] | None = None
    for as_given, as_family in (((a.family_name, b.given_name), (a.given_name, b.family_name)),
                                ((a.given_name, b.family_name), (a.family_name, b.given_name))):  # fmt: skip
        cross = _given_field(*as_given), _family_field(*as_family)
        if DIFFERS not in (cross[0].outcome, cross[1].outcome) and (
            best is None or cross[0].points + cross[1].points > best[0].points + best[1].points
        ):
            best = cross
    if best is None or best[0].points + best[1].points - SWAP_PENALTY <= given.points + family.points:
        return given, family, False
    return best[0], best[1], True


@lru_cache(maxsize=1 << 16)
def _birth_field(a: str | None, b: str | None) -> FieldComparison:
    if not a or not b:
        return _field("birth_date", "missing", BIRTH_POINTS, "birth date missing: compared on names only")
    if a == b:
        return _field("birth_date", "exact", BIRTH_POINTS)
    if a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]:
        return _field("birth_date", "day_month_swapped", BIRTH_POINTS, "birth date day and month swapped")
    digits_a, digits_b = a.replace("-", ""), b.replace("-", "")
    if within_one_edit(digits_a, digits_b):
        if sum(x != y for x, y in zip(digits_a, digits_b, strict=True)) == 1:
            return _field("birth_date", "one_digit", BIRTH_POINTS, "birth date differs by one digit")
        return _field("birth_date", "transposed", BIRTH_POINTS, "birth date has two adjacent digits swapped")
    return _field("birth_date", DIFFERS, BIRTH_POINTS, "birth dates differ")


@lru_cache(maxsize=256)
def _small_fields(sex_a: str | None, sex_b: str | None, grade_a: str | None, grade_b: str | None,
                  ) -> tuple[FieldComparison, ...]:  # fmt: skip
    out: list[FieldComparison] = []
    # X against F or M is a different record-keeping choice, not evidence of another child.
    if sex_a and sex_b and "X" not in (sex_a, sex_b):
        same = sex_a == sex_b
        out.append(_field("sex", "exact" if same else DIFFERS, SEX_POINTS,
                          None if same else f"sex differs ({sex_a} / {sex_b})"))  # fmt: skip
    rank_a, rank_b = _GRADE_RANK.get(grade_a or ""), _GRADE_RANK.get(grade_b or "")
    if rank_a is not None and rank_b is not None:
        gap = abs(rank_a - rank_b)
        if gap == 0:
            out.append(_field("grade", "exact", GRADE_POINTS))
        elif gap == 1:
            out.append(
                _field(
                    "grade", "adjacent", GRADE_POINTS, f"grades differ by one year ({grade_a} / {grade_b})"
                )
            )
        else:
            out.append(_field("grade", DIFFERS, GRADE_POINTS, f"grades differ ({grade_a} / {grade_b})"))
    return tuple(out)


_MIDDLE_PHRASES = {"nickname": "are forms of the same name", "part": "overlap", "typo": "differ by one letter",
                   "initial": "share an initial", "sounds_alike": "sound alike", "similar": "are similar",
                   DIFFERS: "differ"}  # fmt: skip


@lru_cache(maxsize=1 << 16)
def _middle_field(a: str, b: str) -> FieldComparison:
    outcome = compare_given(a, b).outcome
    reason = None if outcome == "exact" else f"middle names '{a}' and '{b}' {_MIDDLE_PHRASES[outcome]}"
    return _field("middle_name", outcome, MIDDLE_POINTS, reason)


def _compare(a: Person, b: Person) -> tuple[int, tuple[FieldComparison, ...], bool]:
    given, family, swapped = _names(a, b)
    parts = [given, family]
    if swapped:
        parts.append(FieldComparison("names", "swapped", -SWAP_PENALTY, "family and given names swapped"))
    parts.append(_birth_field(a.birth_date, b.birth_date))
    parts.extend(_small_fields(a.sex, b.sex, a.grade, b.grade))
    if a.middle_name and b.middle_name and given.outcome != "middle":
        parts.append(_middle_field(a.middle_name, b.middle_name))
    if a.state_id and b.state_id:
        if a.state_id.casefold() == b.state_id.casefold():
            parts.append(_field("state_id", "exact", STATE_ID_POINTS))
        else:
            parts.append(_field("state_id", DIFFERS, STATE_ID_POINTS, "state ids differ"))
    return sum(p.points for p in parts), tuple(parts), swapped


def score(incoming: Person, local: StudentRecord) -> MatchScore:
    """Compare two students field by field (see the points tables); symmetric in its two arguments."""
    total, comparisons, swapped = _compare(incoming, local)
    return MatchScore(local_sis_id=local.sis_id, total=total, comparisons=comparisons, names_swapped=swapped)


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
) -> MatchOutcome:
    """Apply rules 1-3 to one incoming student.

    ``candidates`` come from blocking; ``receiving_sis_lookup`` maps local SIS ids to students and
    ``state_id_lookup`` state ids to the local students holding them (both pre-fetched in batches, so
    this stays pure). When an id names a student who disagrees, the candidates are scored to propose
    a better one.
    """
    notes: list[str] = []
    if incoming.receiving_sis_id:
        record = receiving_sis_lookup.get(incoming.receiving_sis_id)
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
