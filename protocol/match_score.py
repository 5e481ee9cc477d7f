"""Scoring one student against another, field by field: the points and the reasons behind them.

Each field comparison (given name, family name, birth date, middle name, sex, grade, state id) has an
outcome ("exact", "typo", "nickname", ``DIFFERS``...) worth the points in the tables below; the total and
the reasons are a :class:`MatchScore`. :mod:`protocol.matching` decides from the scores (thresholds,
margin, twins, the batch) and explains why the tables have the values they have; it re-exports every
public name here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from protocol.name_similarity import DIFFERS, compare_family, compare_given, name_info, within_one_edit
from protocol.roster import GRADE_CODES, StudentRecord

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
_GRADE_RANK = {code: rank for rank, code in enumerate(GRADE_CODES[:18])}  # IT..13; PS, UG, Other unranked


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
