"""The student record every part of Satchel shares, and the normalisers that produce its code sets.

A :class:`StudentRecord` only ever holds canonical values (CEDS grade codes, ``F``/``M``/``X``, ISO
dates, trimmed text); the parsers in ``protocol.oneroster`` translate a district's spellings into them
with :func:`normalize_grade`, :func:`normalize_sex` and :func:`parse_iso_date`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from protocol.errors import InvalidInput

# Error messages never repeat the offending value: they reach terminals and logs, and the values are
# children's personal data. The field name and the CSV line are enough to find it.

# CEDS "Grade Level" option set, as used by OneRoster 1.1 §4.13.7 / 1.2 grades vocabulary.
GRADE_CODES: tuple[str, ...] = (
    "IT", "PR", "PK", "TK", "KG", *(f"{n:02d}" for n in range(1, 14)), "PS", "UG", "Other",
)  # fmt: skip
SEX_CODES: tuple[str, ...] = ("F", "M", "X")
ENROLLMENT_STATUSES: tuple[str, ...] = ("active", "inactive")

MAX_ID_LENGTH = 255
MAX_TEXT_LENGTH = 255

_GRADE_ALIASES: dict[str, str] = {
    **{code.upper(): code for code in GRADE_CODES},
    "K": "KG", "KINDERGARTEN": "KG", "0": "KG", "00": "KG",
    "PREK": "PK", "PRE-K": "PK", "PREKINDERGARTEN": "PK", "TRANSITIONALKINDERGARTEN": "TK",
    "INFANT": "IT", "TODDLER": "IT", "PRESCHOOL": "PR", "POSTSECONDARY": "PS", "UNGRADED": "UG",
}  # fmt: skip
_SEX_ALIASES: dict[str, str | None] = {
    "f": "F", "female": "F", "m": "M", "male": "M", "x": "X", "other": "X",
    "unspecified": None, "": None,
}  # fmt: skip
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMERIC_GRADE = re.compile(r"[0-9]{1,2}")
# State ids end up inside OneRoster userIds entries ("{state:1234}"), so braces, colons and commas
# would make them ambiguous there; real state ids are short alphanumerics with the odd separator.
_STATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
# C0/C1 controls and the line/paragraph separators: they corrupt CSV exports and terminal output.
# What a registrar's terminal, a CSV export or an e-mail header must never be handed: C0 and C1 controls (ESC
# starts terminal sequences that can rewrite what was printed before), line separators.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def parse_iso_date(value: str, *, field: str) -> str:
    """Return ``value`` if it is a real calendar date written ``YYYY-MM-DD``; raise InvalidInput otherwise."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise InvalidInput(f"{field} must be a date written YYYY-MM-DD", field=field)
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} is not a calendar date", field=field) from None
    return value


# Dates a district's file can mean for a student's own records. Earlier is a typo or a placeholder (0001-01-01,
# 1900's forms); later than the reader's today is a typo of the year (2102 for 2012) or a scheduled test.
EARLIEST_DATE = "1900-01-01"


def check_plausible_date(value: str, *, field: str, today: date) -> None:
    """Raise InvalidInput when the ISO date ``value`` (already checked as a date) is before 1900 or after
    ``today``: a typo of the year, or a placeholder that would sort and match as if it were real."""
    if value < EARLIEST_DATE:
        raise InvalidInput(f"{field} is before {EARLIEST_DATE[:4]}: a typo of the year, or a placeholder",
                           field=field)  # fmt: skip
    if value > today.isoformat():
        raise InvalidInput(f"{field} is in the future: a typo of the year?", field=field)


def normalize_grade(value: str, *, field: str = "grade") -> str | None:
    """Map a district's grade spelling ("1", "k", "KG", "Other", "12") to a CEDS code; "" means unknown."""
    raw = value.strip()
    if not raw:
        return None
    key = re.sub(r"[\s_]", "", raw).upper()
    if key in _GRADE_ALIASES:
        return _GRADE_ALIASES[key]
    if _NUMERIC_GRADE.fullmatch(key) and 1 <= int(key) <= 13:
        return f"{int(key):02d}"
    raise InvalidInput(
        f"{field} is not a grade level; use a CEDS code such as KG, 01..13, PK or Other",
        field=field,
    )


def normalize_sex(value: str, *, field: str = "sex") -> str | None:
    """Map OneRoster's female/male/other/unspecified (or F/M/X) to F/M/X; unspecified and "" give None."""
    key = value.strip().lower()
    if key not in _SEX_ALIASES:
        raise InvalidInput(f"{field} must be female, male, other or unspecified", field=field)
    return _SEX_ALIASES[key]


def check_text(name: str, value: object, *, required: bool, max_length: int = MAX_TEXT_LENGTH) -> None:
    """Raise InvalidInput unless ``value`` is trimmed, printable text of at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, not {type(value).__name__}", field=name)
    if required and not value:
        raise InvalidInput(f"{name} is required", field=name)
    if value != value.strip():
        raise InvalidInput(f"{name} must not start or end with spaces", field=name)
    if len(value) > max_length:
        raise InvalidInput(f"{name} is longer than {max_length} characters", field=name)
    if CONTROL_CHARACTERS.search(value):
        raise InvalidInput(f"{name} contains a control character or line break", field=name)


def _check_optional_date(name: str, value: object) -> None:
    if value is not None:
        parse_iso_date(value, field=name)  # type: ignore[arg-type]


def _check_code(name: str, value: object, codes: tuple[str, ...], *, optional: bool) -> None:
    if value is None and optional:
        return
    if value not in codes:
        allowed = ", ".join(codes)
        raise InvalidInput(f"{name} must be one of {allowed}", field=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class StudentRecord:
    """One student as the district's SIS knows them. Field order is the storage column order."""

    sis_id: str
    source_id: str
    given_name: str
    family_name: str
    middle_name: str = ""
    preferred_name: str = ""
    birth_date: str | None
    sex: str | None
    grade: str | None
    state_id: str = ""
    username: str = ""
    email: str = ""
    school_id: str = ""
    school_name: str = ""
    enrollment_start: str | None = None
    enrollment_status: str = "active"

    def __post_init__(self) -> None:
        check_text("sis_id", self.sis_id, required=True, max_length=MAX_ID_LENGTH)
        check_text("source_id", self.source_id, required=True, max_length=MAX_ID_LENGTH)
        check_text("given_name", self.given_name, required=True)
        check_text("family_name", self.family_name, required=True)
        check_text("middle_name", self.middle_name, required=False)
        check_text("preferred_name", self.preferred_name, required=False)
        _check_optional_date("birth_date", self.birth_date)
        _check_code("sex", self.sex, SEX_CODES, optional=True)
        _check_code("grade", self.grade, GRADE_CODES, optional=True)
        check_text("state_id", self.state_id, required=False, max_length=64)
        if self.state_id and not _STATE_ID.fullmatch(self.state_id):
            raise InvalidInput(
                "state_id may only hold letters, digits and . _ / - (starting with a letter or digit)",
                field="state_id",
            )
        check_text("username", self.username, required=False)
        check_text("email", self.email, required=False)
        if self.email and not _EMAIL.fullmatch(self.email):
            raise InvalidInput("email is not an e-mail address", field="email")
        check_text("school_id", self.school_id, required=False, max_length=MAX_ID_LENGTH)
        check_text("school_name", self.school_name, required=False)
        if self.school_name and not self.school_id:
            raise InvalidInput("school_name is set but school_id is empty", field="school_id")
        _check_optional_date("enrollment_start", self.enrollment_start)
        _check_code("enrollment_status", self.enrollment_status, ENROLLMENT_STATUSES, optional=False)

    @classmethod
    def from_stored(cls, values: Sequence[Any]) -> StudentRecord:
        """The record whose fields, in order, are ``values``, taken as they are: for rows Satchel stored from a
        record, which were checked then (storage writes students only from records). Checking them again
        would only repeat that verdict; it was a third of matching a transfer against a large district, where
        each incoming student loads its candidates. Rows read back also stay readable should a later
        version check more strictly than the one that wrote them."""
        record = object.__new__(cls)
        for setter, value in zip(_SETTERS, values, strict=True):
            setter(record, value)
        return record

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> StudentRecord:
        """The record whose fields, in order, are ``values``, checked as the constructor checks keywords."""
        record = cls.from_stored(values)
        record.__post_init__()
        return record

    def to_dict(self) -> dict[str, str | None]:
        """Plain values in field order, for JSON output and msgpack."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudentRecord:
        """Validate a mapping (JSON, msgpack, a database row) into a record; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown student field {unknown[0]!r}", field=unknown[0])
        missing = [name for name in ("sis_id", "source_id", "given_name", "family_name") if name not in data]
        if missing:
            raise InvalidInput(f"{missing[0]} is required", field=missing[0])
        values = {"birth_date": None, "sex": None, "grade": None, **data}
        return cls(**values)


# The slot descriptors of StudentRecord's fields, in order: setting through them is what a frozen
# dataclass's __init__ does, without the checks in __post_init__.
_SETTERS = tuple(getattr(StudentRecord, f.name).__set__ for f in fields(StudentRecord))


@dataclass(frozen=True, slots=True)
class FieldMerge:
    """How a record read from a partial export (a OneRoster delta, a bundle without demographics.csv) joins
    the student already stored: ``keep`` names the fields the export does not say, which keep their stored
    values; ``earliest`` those of which the export tells only part, where the earlier of the stored and the
    read date wins. A new student takes the record as it is."""

    keep: frozenset[str] = frozenset()
    earliest: frozenset[str] = frozenset()


WHOLE = FieldMerge()  # every field read from the export stands
