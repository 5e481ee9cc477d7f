"""How two personal names relate: folding, a phonetic key, Jaro-Winkler, and name-level comparisons.

This module says *what* the relation between two names is ("a nickname of", "differs by one letter",
"contains"), with a human-readable reason; :mod:`protocol.matching` decides what each relation is worth.

* **Folding**: NFKD, combining marks dropped, casefolded, a few letters NFKD leaves alone mapped (ø, æ,
  ł...), apostrophes removed (O'Brien = OBrien) and every other non-letter made a space. The *compact*
  form also drops spaces, so "De la Cruz" and "Delacruz" compare equal.
* **Phonetic key**: Soundex's six consonant classes, applied to the first letter too (so Catherine and
  Katherine, Cindy and Sindy share a key), vowels and h/w/y handled as Soundex does, an initial vowel,
  h, w or y written ``0`` (Hernandez and Ernandez), at most four codes. Deliberately coarse: it serves
  blocking (together with a birth date) and the "sounds alike" grade, never a match on its own.
* **Jaro-Winkler** for the "similar" grade and an O(n) "within one edit" test (insertion, deletion,
  substitution or adjacent transposition: restricted Damerau-Levenshtein distance <= 1) for typos.

Results are memoised per string and per pair: a district's names repeat heavily, so a batch of
thousands of comparisons folds each distinct name once.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from operator import ne

from protocol.nicknames import NICKNAME_GROUPS, formal_of

# Surname particles: "Garcia de la Cruz" has the surnames Garcia and Cruz. Dropped when comparing parts
# of compound names, kept in the compact form.
PARTICLES = frozenset({
    "de", "del", "la", "las", "los", "da", "das", "do", "dos", "di", "du", "van", "von", "der", "den",
    "ter", "y", "e", "le", "el", "al", "bin", "ibn", "st",
})  # fmt: skip
# Letters NFKD does not decompose but which people write with their base letter when a keyboard lacks them.
_EXTRA_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
                             "ı": "i", "ŋ": "n", "ħ": "h"})  # fmt: skip
_APOSTROPHES = frozenset("'’`ʼ‘")
_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")
_PHONETIC_LENGTH = 4
# A one-letter difference between names this short usually makes another name (Ben/Ken, Eva/Ava).
_MIN_TYPO_LENGTH = 4
_SIMILAR_JW = 0.9
_SOUNDS_ALIKE_JW = 0.85


@lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Lowercase letters and single spaces: 'José-María  O’Neil' -> 'jose maria oneil'."""
    chars: list[str] = []
    for ch in unicodedata.normalize("NFKD", text).casefold().translate(_EXTRA_FOLD):
        if ch.isalpha():
            chars.append(ch)
        elif ch in _APOSTROPHES or unicodedata.combining(ch):
            continue
        else:
            chars.append(" ")
    return " ".join("".join(chars).split())


def fold_compact(text: str) -> str:
    """:func:`fold` without spaces: the form nicknames and exact comparisons use."""
    return fold(text).replace(" ", "")


@lru_cache(maxsize=1 << 16)
def phonetic_key(compact: str) -> str:
    """A Soundex-like key of a folded name (see the module docstring); '' for an empty name."""
    if not compact:
        return ""
    if not compact.isascii():
        # Another script: no phonetics, but the text itself still groups identical spellings.
        return compact[:8]
    codes = compact.translate(_SOUNDEX)
    first = codes[0]
    out = [first if first.isdigit() else "0"]
    last = first if first.isdigit() else ""
    for ch in codes[1:]:
        if ch.isdigit():
            if ch != last:
                out.append(ch)
                if len(out) == _PHONETIC_LENGTH:
                    break
            last = ch
        elif ch not in "hw":
            last = ""  # a vowel separates two equal codes; h and w do not
    return "".join(out)


def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity in [0, 1] (prefix scale 0.1, prefix up to 4), symmetric in a and b."""
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    if la > lb:
        a, b, la, lb = b, a, lb, la
    # Written with plain comparisons rather than min/max: this runs on every candidate pair.
    window = lb // 2 - 1 if lb > 3 else 0
    taken = [False] * lb
    matched_a: list[str] = []
    find = b.find
    for i, ch in enumerate(a):
        lo = i - window if i > window else 0
        hi = i + window + 1
        if hi > lb:
            hi = lb
        j = find(ch, lo, hi)
        while j != -1 and taken[j]:
            j = find(ch, j + 1, hi)
        if j != -1:
            taken[j] = True
            matched_a.append(ch)
    m = len(matched_a)
    if not m:
        return 0.0
    matched_b = [ch for ch, t in zip(b, taken, strict=True) if t]
    half_transpositions = sum(map(ne, matched_a, matched_b))
    jaro = (m / la + m / lb + (m - half_transpositions / 2) / m) / 3
    prefix = 0
    while prefix < 4 and prefix < la and a[prefix] == b[prefix]:
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


def within_one_edit(a: str, b: str) -> bool:
    """True if a and b differ by at most one insertion, deletion, substitution or adjacent transposition."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if la > lb:
        a, b, la, lb = b, a, lb, la
    if lb - la > 1:
        return False
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    if la == lb:
        return a[i + 1 :] == b[i + 1 :] or (
            i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
        )
    return a[i:] == b[i + 1 :]


@dataclass(frozen=True, slots=True)
class NameInfo:
    """The forms of one name that comparisons and blocking keys use."""

    raw: str
    compact: str
    tokens: tuple[str, ...]
    parts: tuple[str, ...]  # tokens minus particles: the surnames of a compound family name
    phonetic: str
    # Nickname groups of the whole name only: "Maria Jose" and "Maria Fernanda" must not meet via "maria".
    groups: tuple[str, ...]


@lru_cache(maxsize=1 << 17)
def name_info(raw: str) -> NameInfo:
    folded = fold(raw)
    tokens = tuple(folded.split())
    compact = "".join(tokens)
    parts = tuple(t for t in tokens if t not in PARTICLES) or tokens
    return NameInfo(raw, compact, tokens, parts, phonetic_key(compact), NICKNAME_GROUPS.get(compact, ()))


@dataclass(frozen=True, slots=True)
class NameRelation:
    """How two names relate: ``outcome`` is one of the grades below, ``reason`` says it to a person."""

    outcome: str
    reason: str | None = None


EXACT = NameRelation("exact")
DIFFERS = "differs"


def _nickname_reason(label: str, a: NameInfo, b: NameInfo) -> str:
    formal = formal_of(a.compact, b.compact)
    if formal == b.compact:
        return f"{label} '{a.raw}' is a nickname of '{b.raw}'"
    if formal == a.compact:
        return f"{label} '{b.raw}' is a nickname of '{a.raw}'"
    return f"{label}s '{a.raw}' and '{b.raw}' are forms of the same name"


def _spelling(label: str, a: NameInfo, b: NameInfo, *, first_letter: bool) -> NameRelation | None:
    """typo, sounds_alike or similar; with ``first_letter`` only for names that start alike."""
    x, y = a.compact, b.compact
    same_start = x[0] == y[0]
    if first_letter and not same_start:
        return None
    if min(len(x), len(y)) >= _MIN_TYPO_LENGTH and within_one_edit(x, y):
        return NameRelation("typo", f"{label} '{a.raw}' differs from '{b.raw}' by one letter")
    # Jaro-Winkler is the costly step, so only for names that start or sound alike: beyond a one-letter
    # typo, names that differ in both are not spelling variants of each other.
    if abs(len(x) - len(y)) > 3 or not (same_start or a.phonetic == b.phonetic):
        return None
    jw = jaro_winkler(x, y)
    if a.phonetic == b.phonetic and jw >= _SOUNDS_ALIKE_JW:
        return NameRelation("sounds_alike", f"{label}s '{a.raw}' and '{b.raw}' sound alike")
    if jw >= _SIMILAR_JW:
        return NameRelation("similar", f"{label}s '{a.raw}' and '{b.raw}' are similar")
    return None


@lru_cache(maxsize=1 << 18)
def compare_given(a_raw: str, b_raw: str) -> NameRelation:
    """exact, nickname, part, initial, typo, sounds_alike, similar or differs (see matching's points)."""
    a, b = name_info(a_raw), name_info(b_raw)
    if not a.compact or not b.compact:
        return EXACT if a_raw.casefold() == b_raw.casefold() else NameRelation(DIFFERS)
    if a.compact == b.compact:
        return EXACT
    if len(a.tokens) != len(b.tokens):
        short, long_ = (a, b) if len(a.tokens) < len(b.tokens) else (b, a)
        if set(short.tokens) <= set(long_.tokens):
            return NameRelation("part", f"given name '{short.raw}' is part of '{long_.raw}'")
    if a.groups and b.groups and not set(a.groups).isdisjoint(b.groups):
        return NameRelation("nickname", _nickname_reason("given name", a, b))
    if len(a.compact) == 1 or len(b.compact) == 1:
        if a.compact[0] == b.compact[0]:
            short, long_ = (a, b) if len(a.compact) == 1 else (b, a)
            return NameRelation("initial", f"given name '{short.raw}' is an initial of '{long_.raw}'")
        return NameRelation(DIFFERS, f"given names '{a.raw}' and '{b.raw}' differ")
    # A typo in the first letter is rare, while different names that rhyme or sound alike (twins Jayden
    # and Hayden, Charlotte and Scarlett) differ exactly there. Catherine/Katherine is in the nickname table.
    return _spelling("given name", a, b, first_letter=True) or NameRelation(
        DIFFERS, f"given names '{a.raw}' and '{b.raw}' differ"
    )


@lru_cache(maxsize=1 << 18)
def compare_family(a_raw: str, b_raw: str) -> NameRelation:
    """exact, compound, typo, sounds_alike, shared_part, similar or differs."""
    a, b = name_info(a_raw), name_info(b_raw)
    if not a.compact or not b.compact:
        return EXACT if a_raw.casefold() == b_raw.casefold() else NameRelation(DIFFERS)
    if a.compact == b.compact:
        return EXACT
    set_a, set_b = frozenset(a.parts), frozenset(b.parts)
    if (len(set_a) > 1 or len(set_b) > 1) and (set_a < set_b or set_b < set_a):
        short, long_ = (a, b) if set_a < set_b else (b, a)
        kind = "hyphenated" if "-" in long_.raw else "compound"
        return NameRelation("compound", f"{kind} family name '{long_.raw}' contains '{short.raw}'")
    if (len(set_a) > 1 or len(set_b) > 1) and not set_a.isdisjoint(set_b):
        return NameRelation("shared_part", f"family names '{a.raw}' and '{b.raw}' share a surname")
    return _spelling("family name", a, b, first_letter=False) or NameRelation(
        DIFFERS, f"family names '{a.raw}' and '{b.raw}' differ"
    )
