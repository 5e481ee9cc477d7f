"""OneRoster 1.1 / 1.2 CSV bundles in, :class:`StudentRecord` values and row errors out.

Implements the bulk CSV binding of IMS OneRoster 1.1 (§4 "CSV Tables") and 1.2 (the "CSV Binding",
which moves ``role`` and ``orgSourcedIds`` out of users.csv into roles.csv). Only what a student record
needs is read: orgs, roles, users, demographics and enrollments. The caller does the file I/O and hands
over ``{canonical name: bytes}``, or a stream of chunks for each file (read once, in order);
:func:`read_bundle_names` maps the names found in a folder or zip.

Joining the files keeps a little state per student (about 1.7 KB in dicts). :func:`read_oneroster` can
keep it instead in mappings the caller supplies (``spill``, e.g. a scratch database), and hands the
students out one by one, so a caller that streams the files and the students needs memory that does not
grow with the roster.

Rules the parser applies (also stated in the importer's documentation):

* A student is a users.csv row whose ``role`` is ``student`` or whose ``sourcedId`` has a ``student``
  row in roles.csv. Other users (and their demographics and enrollments) are skipped unread.
* ``sis_id`` is users.csv ``identifier``, else ``sourcedId``. A second row with an id already seen is
  an error; the first row stands.
* ``state_id`` is the value of the userIds entry whose type is ``state``, ``stateId``, ``SSID`` or
  ``stateStudentId`` (any case, ``_``/``-``/spaces ignored), e.g. ``{state:1234}``; two different such
  values are an error. Without one, the ``metadata.stateId`` / ``metadata.state_id`` / ``metadata.ssid``
  extension column is used.
* The school is the first org of type ``school`` among: 1.2 ``primaryOrgSourcedId``; the user's orgs
  (1.1 ``orgSourcedIds`` in order, 1.2 roles.csv rows with ``roleType`` primary first); the school of
  the student's first current enrollment. ``school_id`` is the org's ``identifier``, else its sourcedId.
* Rows with status ``tobedeleted`` in demographics, roles and enrollments are ignored. A student is
  ``inactive`` when the users row has status ``tobedeleted``/``inactive`` or ``enabledUser`` false, or
  when ``today`` is given and every one of their enrollments (in a bulk enrollments.csv) ended before it.
* ``enrollment_start`` is the earliest ``beginDate`` of the current enrollments (all of them when no
  ``today`` is given). ``grade`` is the first entry of ``grades``.
* A ``birthDate`` before 1900, or after ``dates_until`` (the caller's today; else ``today``), is an error:
  a typo of the year or a placeholder, which would otherwise match and sort as a real date.
* Any error in a row that feeds a student (users, demographics, roles, enrollments) drops that student.
* A file the manifest marks ``absent`` is not read, even if a copy is there. Each file read is ``bulk`` (all
  of it) or ``delta`` (the rows changed since the last export), as the manifest says (a file it does not name
  takes the mode of users.csv; bulk without a manifest). :meth:`RosterReading.updates` says which fields a
  student's record does not tell (:class:`protocol.roster.FieldMerge`), to keep as stored: birth date and sex
  when demographics.csv is not read, or is a delta without the student's row; ``enrollment_start`` likewise
  for enrollments.csv (from a delta with rows, the earlier of the stored and the read date); the school when
  none is found and some file it could come from (users, orgs, enrollments, and roles in 1.2) is a delta or
  not read. In a delta orgs.csv, an org that is not listed is not an error: it is one not changed.
* A delta users.csv lists only the users that changed, so demographics.csv and enrollments.csv may hold rows
  of students it does not list (only their demographics or enrolment changed). Given the students the caller
  holds (:meth:`RosterReading.check`), those rows are applied to the student held under that sourcedId, every
  other field kept as stored; each enrollment of a sourcedId no student (or more than one) is held under is
  an error naming it, and so are its demographics. Demographics alone of a sourcedId not held are not read:
  demographics.csv covers teachers and staff too, and a delta need not name them in any other file; they are
  counted (:attr:`RosterReading.demographics_not_held`) and named, for the caller to report. A bulk
  users.csv lists every student: a row of anyone it does not list is not read, as before.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import date
from itertools import islice
from typing import Any, Protocol, TypeVar

from protocol.csv_rows import KEEP_ROW_ERRORS, CsvTable, Row, RowError, RowErrors
from protocol.errors import InvalidInput
from protocol.roster import (
    WHOLE,
    FieldMerge,
    StudentRecord,
    check_plausible_date,
    check_text,
    normalize_grade,
    normalize_sex,
    parse_iso_date,
)

# Every file name either CSV binding defines; lower case because districts' zips vary the case.
KNOWN_FILES: tuple[str, ...] = (
    "manifest.csv", "orgs.csv", "roles.csv", "users.csv", "demographics.csv", "enrollments.csv",
    "academicsessions.csv", "classes.csv", "courses.csv", "userprofiles.csv", "categories.csv",
    "lineitems.csv", "results.csv", "resources.csv", "classresources.csv", "courseresources.csv",
    "scorescales.csv", "lineitemlearningobjectiveids.csv", "lineitemscorescales.csv",
    "resultlearningobjectiveids.csv", "resultscorescales.csv",
)  # fmt: skip
REQUIRED_FILES: tuple[str, ...] = ("users.csv", "orgs.csv")
# The files read, in the order they are read (and errors reported); the others are not opened.
READ_FILES = ("manifest.csv", "orgs.csv", "roles.csv", "users.csv", "demographics.csv", "enrollments.csv")

_STATE_ID_TYPES = frozenset({"state", "stateid", "ssid", "statestudentid"})
_STATE_ID_COLUMNS = ("metadata.stateid", "metadata.state_id", "metadata.ssid")
_PREFERRED_NAME_COLUMNS = (
    "preferredfirstname", "preferredgivenname", "metadata.preferredfirstname", "metadata.preferredname",
)  # fmt: skip
_USER_IDS_FORMAT = "userIds must look like {state:1234},{district:5678}"
_MANIFEST = ("propertyName", "value")
_USER_ID_ENTRY = re.compile(r"\{([^{}:]*):([^{}]*)\}")
_STATUSES = frozenset({"", "active", "tobedeleted", "inactive"})
_GONE = frozenset({"tobedeleted", "inactive"})
# StudentRecord field -> users.csv column, so a record that fails validation names the column to fix.
_USER_COLUMNS = {
    "source_id": "sourcedId", "given_name": "givenName", "family_name": "familyName",
    "middle_name": "middleName", "username": "username", "email": "email", "state_id": "userIds",
}  # fmt: skip


# A file's bytes, whole or as a stream of chunks (iterated once).
FileData = bytes | Iterable[bytes]
# name -> a new, empty str-keyed mapping whose values are tuples, lists, strings, numbers, booleans or None.
# A mapping with ``get_many(keys)`` and ``setdefault_many(pairs)`` (storage.spill_map.SpillMap) is asked a
# chunk of rows at a time through them and ``update``: one statement per student per file was most of the
# time a spilled roster spent in the spill.
SpillFactory = Callable[[str], MutableMapping[str, Any]]
# Rows read before their students are looked up together: a hundred rows is one statement where there were
# a hundred, and their objects still die young (a thousand made the cyclic collector's work show when reading
# in memory).
CHUNK_ROWS = 100
_T = TypeVar("_T")
# Checks a chunk of the records read against what the caller holds (a database): index in the chunk ->
# the problem, whose ``field`` is a StudentRecord field, as the record's own checks give it.
Vet = Callable[[Sequence[StudentRecord]], Mapping[int, InvalidInput]]
# Records vetted at once: each chunk is one look-up in the caller's database.
VET_ROWS = 500
_RECORD_FIELDS = tuple(f.name for f in dataclass_fields(StudentRecord))


class StoredStudents(Protocol):
    """The students the caller holds (a database), looked up a chunk at a time: what the rows of a delta's
    demographics.csv and enrollments.csv for students its users.csv does not list are applied to."""

    def by_source_id(self, source_ids: Sequence[str]) -> Mapping[str, Sequence[StudentRecord]]:
        """The stored students holding each of ``source_ids`` that some student holds (a home may hold a
        student twice under one sourcedId, from before such rows were refused)."""
        ...

    def by_sis_id(self, sis_ids: Sequence[str]) -> Mapping[str, StudentRecord]:
        """The stored student of each of ``sis_ids`` that is held."""
        ...


class RosterMissingFile(InvalidInput):
    code = "roster.missing_file"


class RosterAmbiguousFile(InvalidInput):
    code = "roster.ambiguous_file"
    default_hint = "Keep one copy of each OneRoster file in the folder or zip."


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterParseResult:
    students: tuple[StudentRecord, ...]
    errors: tuple[RowError, ...]
    version: str
    delta: bool = False


def read_bundle_names(names: Iterable[str]) -> dict[str, str]:
    """Map OneRoster files among ``names`` (paths in a folder or zip) to their lower-case canonical names.

    Any folder depth and any case is accepted; macOS resource forks are skipped; other files are ignored.
    Two paths with the same canonical name raise RosterAmbiguousFile.
    """
    found: dict[str, str] = {}
    for name in names:
        parts = name.replace("\\", "/").split("/")
        base = parts[-1]
        if "__MACOSX" in parts or base.startswith("._"):
            continue
        key = base.lower()
        if key not in KNOWN_FILES:
            continue
        if key in found and found[key] != name:
            raise RosterAmbiguousFile(f"both {found[key]!r} and {name!r} look like {key}", field=key)
        found[key] = name
    return found


def parse_oneroster(
    files: Mapping[str, FileData], *, today: date | None = None, dates_until: date | None = None
) -> RosterParseResult:
    """Parse a OneRoster CSV bundle ``{file name: bytes}`` into students and row errors.

    Raises a SatchelError (``roster.missing_file``, ``roster.ambiguous_file``, ``csv.encoding``,
    ``csv.malformed``, ``csv.missing_column``) when a file as a whole is unusable.
    """
    reading = read_oneroster(files, today=today, dates_until=dates_until, keep_errors=None)
    students = tuple(reading.students())
    return RosterParseResult(
        students=students, errors=reading.errors(), version=reading.version, delta=reading.delta
    )


def read_oneroster(
    files: Mapping[str, FileData], *, today: date | None = None, dates_until: date | None = None,
    spill: SpillFactory | None = None, keep_errors: int | None = KEEP_ROW_ERRORS,
) -> RosterReading:  # fmt: skip
    """Read every file of a OneRoster bundle once, keeping what joins them in dicts or, given ``spill``, in
    the mappings it makes; then take the students from :meth:`RosterReading.students`. The first
    ``keep_errors`` bad rows are kept to be listed, and all of them counted (``None``: all kept).

    Raises as :func:`parse_oneroster` does.
    """
    by_key = read_bundle_names(files)
    bundle = {key: files[name] for key, name in by_key.items()}
    for key in REQUIRED_FILES:
        if key not in bundle:
            raise RosterMissingFile(
                f"the roster has no {key}", field=key, hint=f"Export {key} from the SIS with the other files."
            )
    reading = RosterReading(bundle, today, spill, keep_errors, dates_until=dates_until or today)
    reading.read()
    return reading


class _Draft:
    """A student between the users pass and the final record; mutable so later files can fill it in."""

    __slots__ = (
        "birth_date", "current_enrollments", "demographics_line", "email", "enrollment_school", "enrollments",
        "family", "given", "grade", "inactive", "line", "middle", "orgs", "preferred", "rows", "sex", "sis_field",
        "sis_id", "source_id", "start", "state_id", "tainted", "username",
    )  # fmt: skip

    def __init__(self, line: int, source_id: str) -> None:
        self.line, self.source_id = line, source_id
        self.sis_id, self.sis_field = source_id, "sourcedId"
        self.given = self.family = self.middle = self.preferred = self.username = self.email = ""
        self.grade: str | None = None
        self.state_id = ""
        self.inactive = False
        self.orgs: list[str] = []
        self.birth_date: str | None = None
        self.sex: str | None = None
        self.start: str | None = None
        self.enrollment_school = ""
        self.enrollments = self.current_enrollments = 0
        self.demographics_line = 0  # the line of the student's demographics.csv row, once one is read
        # Of a student a delta's users.csv does not list: its rows in the other files, [file, line] each (see
        # RosterReading.check); None for a users.csv student, which its users.csv line names.
        self.rows: list[list[Any]] | None = None
        self.tainted = False

    def pack(self) -> tuple[Any, ...]:
        return _PACK(self)

    @classmethod
    def unpack(cls, values: tuple[Any, ...]) -> _Draft:
        d = cls.__new__(cls)
        (d.birth_date, d.current_enrollments, d.demographics_line, d.email, d.enrollment_school, d.enrollments,
         d.family, d.given, d.grade, d.inactive, d.line, d.middle, d.orgs, d.preferred, d.rows, d.sex,
         d.sis_field, d.sis_id, d.source_id, d.start, d.state_id, d.tainted,
         d.username) = values  # the order of __slots__, as pack() gives it
        return d


_PACK = operator.attrgetter(*_Draft.__slots__)


def _chunks(items: Iterable[_T]) -> Iterator[list[_T]]:
    it = iter(items)
    while chunk := list(islice(it, CHUNK_ROWS)):
        yield chunk


def _get_many(mapping: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The entries of ``keys`` present in ``mapping`` (see SpillFactory)."""
    if hasattr(mapping, "get_many"):
        found: dict[str, Any] = mapping.get_many(keys)
        return found
    return {k: mapping[k] for k in keys if k in mapping}


def _setdefault_many(mapping: MutableMapping[str, Any], pairs: Sequence[tuple[str, Any]]) -> list[Any]:
    """``[mapping.setdefault(k, v) for k, v in pairs]`` (see SpillFactory)."""
    if hasattr(mapping, "setdefault_many"):
        firsts: list[Any] = mapping.setdefault_many(pairs)
        return firsts
    return [mapping.setdefault(k, v) for k, v in pairs]


class _Drafts:
    """Drafts by users.csv sourcedId, in users.csv order: the objects in a dict, or packed into a spill
    mapping (so drafts changed after ``get_many`` must be put back with ``put_many``)."""

    def __init__(self, spill: SpillFactory | None, name: str = "drafts") -> None:
        self._objects: dict[str, _Draft] = {}
        self._packed = spill(name) if spill else None

    def get_many(self, source_ids: Iterable[str]) -> dict[str, _Draft]:
        if self._packed is None:
            return _get_many(self._objects, source_ids)
        return {k: _Draft.unpack(v) for k, v in _get_many(self._packed, source_ids).items()}

    def put_many(self, drafts: Iterable[_Draft]) -> None:
        if self._packed is None:
            self._objects.update((d.source_id, d) for d in drafts)
        else:
            self._packed.update((d.source_id, d.pack()) for d in drafts)

    def __iter__(self) -> Iterator[_Draft]:
        if self._packed is None:
            return iter(self._objects.values())
        return (_Draft.unpack(values) for values in self._packed.values())


def _file_line(error: RowError) -> tuple[int, int]:
    return READ_FILES.index(error.file), error.line


class RosterReading:
    """A bundle read by :func:`read_oneroster`: its version, whether it is a delta, the row errors, and the
    students, handed out by :meth:`students` (after :meth:`check`, as often as wanted)."""

    def __init__(
        self, bundle: dict[str, FileData], today: date | None, spill: SpillFactory | None, keep_errors: int | None,
        *, dates_until: date | None = None,
    ) -> None:  # fmt: skip
        self.bundle, self.today, self.dates_until = bundle, today, dates_until
        self._spill = spill
        # Met file by file, but a student's record checks (users.csv) run after the last file is read.
        self.error_list: RowErrors[RowError] = RowErrors(keep_errors, order=_file_line)
        self.orgs: dict[str, tuple[str, str, str]] = {}  # sourcedId -> (name, type, school id); a few hundred
        self.role_orgs: MutableMapping[str, list[str]] = self._map("role_orgs")  # student -> orgs, primary first
        self.role_tainted: MutableMapping[str, bool] = self._map("role_tainted")
        self.drafts = _Drafts(spill)
        # Of a delta users.csv: the students it does not list, of whom demographics.csv or enrollments.csv has
        # rows (applied to the students held, see check).
        self.partials = _Drafts(spill, "partials")
        self._stored: StoredStudents | None = None
        self._partials_passed = 0
        self.version = "1.1"
        self.delta = False
        self.users_mode = ""  # as the manifest gives it: "" when it does not say
        self.modes: dict[str, str] = {}  # file read -> "bulk" or "delta"
        # Every student row's sourcedId and SIS id (a row with an error too) -> its line: who the file lists.
        self.user_lines: MutableMapping[str, int] = self._map("user_lines")
        self.sis_lines: MutableMapping[str, int] = self._map("sis_id_lines")
        self._checked = False
        # Of a delta: the sourcedIds held by no student here whose demographics.csv rows alone were not read
        # (see check), counted, the first ``keep_errors`` of them kept to be named.
        self.demographics_not_held = 0
        self._not_held_ids: list[str] = []
        self._keep_ids = keep_errors

    def _map(self, name: str) -> MutableMapping[str, Any]:
        return self._spill(name) if self._spill else {}

    @property
    def partial_orgs(self) -> bool:
        """orgs.csv lists only the orgs changed since the last export (a delta)."""
        return self.modes.get("orgs.csv") == "delta"

    @property
    def full_users(self) -> bool:
        """The manifest says users.csv lists every user (bulk): a student it does not list has left."""
        return self.users_mode == "bulk"

    def school_ids(self) -> set[str]:
        """The school ids (as StudentRecord.school_id gives them) of the schools orgs.csv lists."""
        return {school_id for _, kind, school_id in self.orgs.values() if kind == "school"}

    def unlisted(self, students: Sequence[tuple[str, str]], *, by_sis_id: bool = False) -> list[str]:
        """The SIS ids of ``students`` ((SIS id, sourcedId) pairs) that no student row of users.csv lists, a row
        with an error included: by sourcedId, the SIS's name for the person; with ``by_sis_id``, by SIS id too."""
        listed = _get_many(self.user_lines, [source_id for _, source_id in students])
        by_sis = _get_many(self.sis_lines, [sis_id for sis_id, _ in students]) if by_sis_id else {}
        return [sis_id for sis_id, source_id in students if source_id not in listed and sis_id not in by_sis]

    def read(self) -> None:
        self.read_manifest()
        self.read_orgs()
        self.read_roles()
        self.read_users()
        self.read_demographics()
        self.read_enrollments()

    def errors(self) -> tuple[RowError, ...]:
        """The bad rows found so far, by file then line (the first ``keep_errors`` of them; all of them are
        counted in :attr:`error_count`); every one once :meth:`check` has run, or :meth:`students` has run out."""
        return self.error_list.kept()

    @property
    def error_count(self) -> int:
        return len(self.error_list)

    def demographics_not_held_ids(self) -> tuple[str, ...]:
        """The sourcedIds (sorted; the first ``keep_errors`` met) of :attr:`demographics_not_held`."""
        return tuple(sorted(self._not_held_ids))

    def check(self, vet: Vet | None = None, stored: StoredStudents | None = None) -> int:
        """Run the record's own checks on every student, and ``vet`` on them a chunk at a time, adding those
        that fail to :meth:`errors`, so that every error is known before a student is handed out; returns how
        many students pass.

        A student that fails is marked like one with a bad row, so that :meth:`students` leaves it out and
        builds the others without checking them again (building them was a fifth of a roster's import).

        Given ``stored``, the students a delta's users.csv does not list but its demographics.csv or
        enrollments.csv has rows of are looked up there by sourcedId: one held is counted as passing, and
        :meth:`updates` applies those rows to it; each row of one held twice, or of one not held that has an
        enrollment, is an error naming the sourcedId. Demographics alone of one not held are not read (a
        teacher's, as likely as a student's), but counted in :attr:`demographics_not_held` and named by
        :meth:`demographics_not_held_ids`."""
        if self._checked:  # once is enough: those that failed are marked already
            return sum(1 for _ in self.build()) + self._partials_passed
        refused: MutableMapping[str, bool] = self._map("refused")
        passed = sum(1 for _ in self.build(refused, vet))
        self._taint(self.drafts, refused)
        if stored is not None:
            self._stored = stored
            self._partials_passed = self._check_partials(stored)
        self._checked = True
        return passed + self._partials_passed

    def _taint(self, drafts: _Drafts, source_ids: Iterable[str], holders: Mapping[str, str] | None = None) -> None:
        """Mark the drafts of ``source_ids`` tainted, or give them the SIS id ``holders`` names; after a pass
        over ``drafts``: the spill is not written while it is read."""
        for chunk in _chunks(source_ids):
            found = drafts.get_many(chunk)
            for draft in found.values():
                if holders is None:
                    draft.tainted = True
                else:
                    draft.sis_id = holders[draft.source_id]
            drafts.put_many(found.values())

    def _check_partials(self, stored: StoredStudents) -> int:
        refused: MutableMapping[str, bool] = self._map("partials_refused")
        holders: MutableMapping[str, str] = self._map("partials_held")  # sourcedId -> the SIS id holding it
        for chunk in _chunks(d for d in self.partials if not d.tainted):
            found = stored.by_source_id([d.source_id for d in chunk])
            for d in chunk:
                held = found.get(d.source_id, ())
                if len(held) == 1:
                    holders[d.source_id] = held[0].sis_id
                    continue
                refused[d.source_id] = True
                if not held and not d.enrollments:
                    # Demographics alone: demographics.csv covers every user, teachers and staff too, and a
                    # delta need not list them anywhere else, so one not held here is nobody known to be a
                    # student (refusing it would stop every nightly delta that corrects a teacher's birth date).
                    # Counted and named all the same: it may be a student's whom the bulk export never added.
                    self.demographics_not_held += 1
                    if self._keep_ids is None or len(self._not_held_ids) < self._keep_ids:
                        self._not_held_ids.append(d.source_id)
                    continue
                if held:
                    ids = ", ".join(repr(r.sis_id) for r in sorted(held, key=lambda r: r.sis_id))
                    why = (f"sourcedId {d.source_id!r} is held here by {len(held)} students (SIS ids {ids}), so "
                           "this row does not say which of them it is for")  # fmt: skip
                else:
                    why = (f"no student with sourcedId {d.source_id!r} is held here, and this delta's users.csv "
                           "does not list them: import the SIS's bulk export to add the student")  # fmt: skip
                for file, line in d.rows or ():
                    self.error(file, line, "sourcedId" if file == "demographics.csv" else "userSourcedId", why)
        self._taint(self.partials, refused)
        self._taint(self.partials, holders, holders)
        return len(holders)

    def students(self) -> Iterator[StudentRecord]:
        """The students without a problem, in users.csv order. Before :meth:`check`, one that fails the
        record's own checks is added to :meth:`errors` instead (iterate once); after it, it is left out."""
        return (record for record, _ in self.build())

    def updates(self) -> Iterator[tuple[StudentRecord, FieldMerge]]:
        """As :meth:`students`, each with the fields this bundle does not tell of them (see the module's
        docstring): how the record joins the student already stored. Then, after :meth:`check` with
        ``stored``, the students held that a delta's users.csv does not list, each as stored with what the
        delta's other files tell of them."""
        yield from self.build()
        if self._stored is None:
            return
        delta_enrollments = self.modes.get("enrollments.csv") == "delta"
        for chunk in _chunks(d for d in self.partials if not d.tainted):
            records = self._stored.by_sis_id([d.sis_id for d in chunk])
            for d in chunk:
                if (record := records.get(d.sis_id)) is not None:  # else gone since check(): nothing to update
                    yield _applied(record, d, delta_enrollments=delta_enrollments)

    def error(self, file: str, line: int, field: str | None, message: str) -> None:
        self.error_list.append(RowError(file=file, line=line, field=field, message=message))

    def rows(self, file: str, required: Iterable[str]) -> Iterator[Row]:
        """Rows of ``file`` (nothing if absent); field-count errors are recorded on the way."""
        if file not in self.bundle:
            return
        for item in CsvTable(self.bundle[file], file=file, required=required):
            if isinstance(item, RowError):
                self.error_list.append(item)
            else:
                yield item

    def read_manifest(self) -> None:
        props = {r.get("propertyname").lower(): r.get("value") for r in self.rows("manifest.csv", _MANIFEST)}
        # An unknown declared version is inferred from the files instead (see read_users).
        declared = props.get("oneroster.version", "")
        self.version = declared if declared in ("1.0", "1.1", "1.2") else ""
        self.users_mode = props.get("file.users", "").lower()
        self.delta = self.users_mode == "delta"
        for prop, mode in props.items():
            key = prop.removeprefix("file.") + ".csv"
            if prop.startswith("file.") and mode.lower() in ("bulk", "delta") and key not in self.bundle:
                raise RosterMissingFile(
                    f"manifest.csv lists {key} as {mode} but the roster has no {key}",
                    field=key,
                    hint=f"Add {key} or mark it 'absent' in manifest.csv.",
                )
        for key in READ_FILES[1:]:
            mode = props.get("file." + key.removesuffix(".csv"), "").lower()
            if mode == "absent" and key not in REQUIRED_FILES:
                # A folder the SIS exports into each night can still hold this file from an earlier export.
                self.bundle.pop(key, None)
            if key in self.bundle:
                self.modes[key] = "delta" if (mode or self.users_mode) == "delta" else "bulk"

    def read_orgs(self) -> None:
        first_line: dict[str, int] = {}
        for row in self.rows("orgs.csv", ("sourcedId", "name", "type")):
            sourced, name = row.get("sourcedid"), row.get("name")
            problems: list[tuple[str, str]] = []
            if not sourced:
                problems.append(("sourcedId", "sourcedId is empty"))
            elif sourced in first_line:
                problems.append(
                    ("sourcedId", f"org {sourced!r} already appears on line {first_line[sourced]}")
                )
            else:
                first_line[sourced] = row.line
            for column, value, required in (
                ("name", name, True),
                ("identifier", row.get("identifier"), False),
            ):
                try:
                    check_text(column, value, required=required)
                except InvalidInput as exc:
                    problems.append((column, exc.message))
            if not row.get("type"):
                problems.append(("type", "type is empty; use school, district, local, state or national"))
            for column, message in problems:
                self.error("orgs.csv", row.line, column, message)
            if not problems:
                self.orgs[sourced] = (name, row.get("type").lower(), row.get("identifier") or sourced)

    def read_roles(self) -> None:
        for chunk in _chunks(self.rows("roles.csv", ("userSourcedId", "role", "orgSourcedId"))):
            rows = [r for r in chunk if r.get("role").lower() == "student" and r.get("status").lower() not in _GONE]
            orgs_of = _get_many(self.role_orgs, (row.get("usersourcedid") for row in rows))
            tainted: dict[str, bool] = {}
            for row in rows:
                user, org = row.get("usersourcedid"), row.get("orgsourcedid")
                if not user:
                    self.error("roles.csv", row.line, "userSourcedId", "userSourcedId is empty")
                    continue
                orgs = orgs_of.setdefault(user, [])
                if org not in self.orgs and not (org and self.partial_orgs):
                    self.error("roles.csv", row.line, "orgSourcedId", _no_org(org))
                    tainted[user] = True
                elif row.get("roletype").lower() == "primary":
                    orgs.insert(0, org)
                else:
                    orgs.append(org)
            self.role_orgs.update(orgs_of)
            self.role_tainted.update(tainted)

    def read_users(self) -> None:
        required = ["sourcedId", "givenName", "familyName"]
        if "roles.csv" not in self.bundle:
            required.append("role")
        table = CsvTable(self.bundle["users.csv"], file="users.csv", required=required)
        if not self.version:
            self.version = "1.2" if "roles.csv" in self.bundle or not table.has("role") else "1.1"
        sourced_lines, sis_lines = self.user_lines, self.sis_lines
        roles = "roles.csv" in self.bundle  # without it, role_orgs is empty: no need to look there
        for chunk in _chunks(table):
            rows: list[Row] = []
            for row in chunk:
                if isinstance(row, RowError):
                    self.error_list.append(row)
                else:
                    rows.append(row)
            orgs_of = _get_many(self.role_orgs, (row.get("sourcedid") for row in rows)) if roles else {}
            student = [row.get("role").lower() == "student" or row.get("sourcedid") in orgs_of for row in rows]
            rows = [row for row, is_student in zip(rows, student, strict=True) if is_student]
            drafts = []
            for row in rows:
                draft = _Draft(row.line, row.get("sourcedid"))
                draft.sis_id = row.get("identifier") or draft.source_id
                draft.sis_field = "identifier" if row.get("identifier") else "sourcedId"
                drafts.append(draft)
            # A line already met for the same id (in this chunk or before) is a repeat.
            first_user = iter(_setdefault_many(sourced_lines, [(d.source_id, d.line) for d in drafts if d.source_id]))
            first_sis = iter(_setdefault_many(sis_lines, [(d.sis_id, d.line) for d in drafts if d.sis_id]))
            tainted = _get_many(self.role_tainted, (d.source_id for d in drafts)) if roles else {}
            kept = []
            for row, draft in zip(rows, drafts, strict=True):
                sourced = draft.source_id
                problems: list[tuple[str, str]] = []
                if not sourced:
                    problems.append(("sourcedId", "sourcedId is empty"))
                elif (first := next(first_user)) != row.line:
                    problems.append(("sourcedId", f"user {sourced!r} already appears on line {first}"))
                if draft.sis_id and (first := next(first_sis)) != row.line:
                    problems.append((draft.sis_field, f"SIS id {draft.sis_id!r} already appears on line {first}"))
                problems += _fill_user(draft, row, self.orgs, orgs_of.get(sourced, []), self.partial_orgs)
                for column, message in problems:
                    self.error("users.csv", row.line, column, message)
                if not problems:
                    draft.tainted = sourced in tainted
                    kept.append(draft)
            self.drafts.put_many(kept)

    def _partials_for(self, rows: list[Row], column: str, drafts: Mapping[str, _Draft]) -> dict[str, _Draft]:
        """The drafts, made now or before, of the students of ``rows`` (rows to apply) whom a delta's users.csv
        does not list; of a bulk users.csv, a row of a user it does not list is no student's, as before."""
        if not self.delta:
            return {}
        wanted = {row.get(column) for row in rows} - drafts.keys() - {""}
        wanted -= _get_many(self.user_lines, wanted).keys()  # a student row with an error: its error says it
        partials = self.partials.get_many(wanted)
        for source_id in wanted - partials.keys():
            partials[source_id] = draft = _Draft(0, source_id)
            draft.rows = []
        return partials

    def read_demographics(self) -> None:
        for chunk in _chunks(self.rows("demographics.csv", ("sourcedId",))):
            rows = [row for row in chunk if row.get("status").lower() not in _GONE]
            drafts = self.drafts.get_many(row.get("sourcedid") for row in rows)
            partials = self._partials_for(rows, "sourcedid", drafts)
            changed, changed_partials = {}, {}
            for row in rows:
                source_id = row.get("sourcedid")
                if (draft := drafts.get(source_id)) is not None:
                    self._demographics(row, draft)
                    changed[source_id] = draft
                elif (draft := partials.get(source_id)) is not None:
                    assert draft.rows is not None
                    draft.rows.append(["demographics.csv", row.line])
                    self._demographics(row, draft)
                    changed_partials[source_id] = draft
            self.drafts.put_many(changed.values())
            self.partials.put_many(changed_partials.values())

    def _demographics(self, row: Row, draft: _Draft) -> None:
        problems: list[tuple[str, str]] = []
        if first := draft.demographics_line:
            problems.append(("sourcedId", f"demographics for {draft.source_id!r} already on line {first}"))
        else:
            draft.demographics_line = row.line
        try:
            birth = row.get("birthdate")
            draft.birth_date = parse_iso_date(birth, field="birthDate") if birth else None
            if draft.birth_date and self.dates_until:
                check_plausible_date(draft.birth_date, field="birthDate", today=self.dates_until)
        except InvalidInput as exc:
            problems.append(("birthDate", exc.message))
        try:
            draft.sex = normalize_sex(row.get("sex"))
        except InvalidInput as exc:
            problems.append(("sex", exc.message))
        self.taint("demographics.csv", row.line, draft, problems)

    def read_enrollments(self) -> None:
        for chunk in _chunks(self.rows("enrollments.csv", ("userSourcedId", "role"))):
            rows = [row for row in chunk
                    if row.get("role").lower() == "student" and row.get("status").lower() not in _GONE]  # fmt: skip
            drafts = self.drafts.get_many(row.get("usersourcedid") for row in rows)
            partials = self._partials_for(rows, "usersourcedid", drafts)
            changed, changed_partials = {}, {}
            for row in rows:
                source_id = row.get("usersourcedid")
                if (draft := drafts.get(source_id)) is not None:
                    self._enrollment(row, draft)
                    changed[source_id] = draft
                elif (draft := partials.get(source_id)) is not None:
                    assert draft.rows is not None
                    draft.rows.append(["enrollments.csv", row.line])
                    self._enrollment(row, draft)
                    changed_partials[source_id] = draft
            self.drafts.put_many(changed.values())
            self.partials.put_many(changed_partials.values())

    def _enrollment(self, row: Row, draft: _Draft) -> None:
        problems: list[tuple[str, str]] = []
        dates: dict[str, str] = {}
        for column in ("beginDate", "endDate"):
            if value := row.get(column.lower()):
                try:
                    dates[column] = parse_iso_date(value, field=column)
                except InvalidInput as exc:
                    problems.append((column, exc.message))
        begin, end = dates.get("beginDate"), dates.get("endDate")
        if begin and end and end < begin:
            problems.append(("endDate", "endDate is before beginDate"))
        school = row.get("schoolsourcedid")
        if school and school not in self.orgs and not self.partial_orgs:
            problems.append(("schoolSourcedId", _no_org(school)))
        if not self.taint("enrollments.csv", row.line, draft, problems):
            draft.enrollments += 1
            if self.today is None or end is None or date.fromisoformat(end) >= self.today:
                draft.current_enrollments += 1
                if begin and (draft.start is None or begin < draft.start):
                    draft.start = begin
                draft.enrollment_school = draft.enrollment_school or school

    def taint(self, file: str, line: int, draft: _Draft, problems: list[tuple[str, str]]) -> bool:
        for column, message in problems:
            self.error(file, line, column, message)
        draft.tainted = draft.tainted or bool(problems)
        return bool(problems)

    def build(
        self, refused: MutableMapping[str, bool] | None = None, vet: Vet | None = None
    ) -> Iterator[tuple[StudentRecord, FieldMerge]]:
        """The records of the untainted drafts, with their FieldMerge; before :meth:`check`, one that fails the
        record's checks or ``vet`` is recorded as an error (and noted in ``refused``, by sourcedId) instead."""
        built = self._built(refused)
        if vet is None:
            yield from ((record, merge) for _, record, merge in built)
            return
        while chunk := list(islice(built, VET_ROWS)):
            problems = vet([record for _, record, _ in chunk])
            for at, (d, record, merge) in enumerate(chunk):
                if at in problems:
                    self._refuse(d, problems[at], refused)
                else:
                    yield record, merge

    def _built(self, refused: MutableMapping[str, bool] | None) -> Iterator[tuple[_Draft, StudentRecord, FieldMerge]]:
        checked = self._checked
        school_told = self._school_told()
        ended_told = self.today is not None and self.modes.get("enrollments.csv") == "bulk"
        for d in self.drafts:
            if d.tainted:
                continue
            # An org a delta orgs.csv does not list is unknown here, not an error (see the module's docstring).
            known = (self.orgs[o] for o in (*d.orgs, d.enrollment_school) if o in self.orgs)
            school = next((org for org in known if org[1] == "school"), ("", "", ""))
            # Enrollments a delta does not list may still run: only a bulk file tells that all of them ended.
            ended = ended_told and d.enrollments > 0 and d.current_enrollments == 0
            values = (
                d.sis_id, d.source_id, d.given, d.family, d.middle, d.preferred, d.birth_date, d.sex, d.grade,
                d.state_id, d.username, d.email, school[2], school[0], d.start,
                "inactive" if d.inactive or ended else "active",
            )  # in StudentRecord's field order
            merge = self._merge(d, school_told or bool(school[2]))
            if checked:  # check() built this very record from these values, and it passed
                yield d, StudentRecord.from_stored(values), merge
                continue
            try:
                yield d, StudentRecord.from_values(values), merge
            except InvalidInput as exc:
                self._refuse(d, exc, refused)

    def _refuse(self, d: _Draft, exc: InvalidInput, refused: MutableMapping[str, bool] | None) -> None:
        column = d.sis_field if exc.field == "sis_id" else _USER_COLUMNS.get(exc.field or "", exc.field)
        self.error("users.csv", d.line, column, exc.message)
        if refused is not None:
            refused[d.source_id] = True

    def _school_told(self) -> bool:
        """Whether a student whose school is not found has none: every file it could come from is bulk."""
        sources = ["users.csv", "orgs.csv", "enrollments.csv"] + (["roles.csv"] if self.version == "1.2" else [])
        return all(self.modes.get(file) == "bulk" for file in sources)

    def _merge(self, d: _Draft, school_told: bool) -> FieldMerge:
        keep: tuple[str, ...] = ()
        earliest: tuple[str, ...] = ()
        demographics = self.modes.get("demographics.csv")
        if demographics is None or (demographics == "delta" and not d.demographics_line):
            keep += ("birth_date", "sex")
        enrollments = self.modes.get("enrollments.csv")
        if enrollments is None or (enrollments == "delta" and not d.enrollments):
            keep += ("enrollment_start",)
        elif enrollments == "delta":  # the enrollments changed, not all of them
            earliest += ("enrollment_start",)
        if not school_told:
            keep += ("school_id", "school_name")
        return _field_merge(keep, earliest)


def _applied(stored: StudentRecord, d: _Draft, *, delta_enrollments: bool) -> tuple[StudentRecord, FieldMerge]:
    """The stored student with what a delta's demographics and enrollment rows (``d``) tell of it, and the
    FieldMerge keeping every other field as stored when it is saved."""
    told: dict[str, Any] = {}
    if d.demographics_line:
        told |= {"birth_date": d.birth_date, "sex": d.sex}
    if d.enrollments:  # of a delta, one of the student's enrollments: the earlier date wins, as for a listed one
        told["enrollment_start"] = d.start
    values = [told[name] if name in told else getattr(stored, name) for name in _RECORD_FIELDS]
    keep = tuple(name for name in _RECORD_FIELDS if name not in told)
    earliest = ("enrollment_start",) if d.enrollments and delta_enrollments else ()
    return StudentRecord.from_stored(values), _field_merge(keep, earliest)


@functools.cache
def _field_merge(keep: tuple[str, ...], earliest: tuple[str, ...]) -> FieldMerge:
    return FieldMerge(frozenset(keep), frozenset(earliest)) if keep or earliest else WHOLE


def _no_org(org: str) -> str:
    return f"org {org!r} is not in orgs.csv" if org else "orgSourcedId is empty"


def _fill_user(
    draft: _Draft, row: Row, orgs: Mapping[str, object], role_orgs: list[str], partial_orgs: bool
) -> list[tuple[str, str]]:
    """Copy a users.csv row's values into ``draft``; return (column, message) for each bad value. With
    ``partial_orgs`` (a delta orgs.csv), an org not in ``orgs`` is one not changed, not an error."""
    problems: list[tuple[str, str]] = []
    draft.given, draft.family = row.get("givenname"), row.get("familyname")
    draft.middle = row.get("middlename")
    draft.preferred = next((row.get(c) for c in _PREFERRED_NAME_COLUMNS if row.get(c)), "")
    draft.username, draft.email = row.get("username"), row.get("email")
    status, enabled = row.get("status").lower(), row.get("enableduser").lower()
    if status not in _STATUSES:
        problems.append(("status", "status must be active or tobedeleted"))
    if enabled not in ("", "true", "false"):
        problems.append(("enabledUser", "enabledUser must be true or false"))
    draft.inactive = status in _GONE or enabled == "false"
    try:
        draft.grade = normalize_grade(next((g for g in row.get("grades").split(",") if g.strip()), ""),
                                      field="grades")  # fmt: skip
    except InvalidInput as exc:
        problems.append(("grades", exc.message))
    try:
        draft.state_id = _state_id(row)
    except InvalidInput as exc:
        problems.append(("userIds", exc.message))
    primary = row.get("primaryorgsourcedid")
    listed = [o.strip() for o in row.get("orgsourcedids").split(",") if o.strip()]
    for column, ids in (("primaryOrgSourcedId", [primary] if primary else []), ("orgSourcedIds", listed)):
        problems += [(column, _no_org(o)) for o in ids if o not in orgs and not partial_orgs]
    draft.orgs = [primary, *listed, *role_orgs] if primary else [*listed, *role_orgs]
    return problems


def _state_id(row: Row) -> str:
    """The state id per the module docstring's rule; InvalidInput if userIds cannot be read."""
    text = row.get("userids")
    if "{" in text or "}" in text:
        entries = _USER_ID_ENTRY.findall(text)
        if not entries or _USER_ID_ENTRY.sub("", text).replace(",", "").strip():
            raise InvalidInput(_USER_IDS_FORMAT)
    else:
        pairs = [part.split(":", 1) for part in text.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise InvalidInput(_USER_IDS_FORMAT)
        entries = [(pair[0], pair[1]) for pair in pairs]
    found = {
        value.strip() for kind, value in entries if re.sub(r"[\s_-]", "", kind).lower() in _STATE_ID_TYPES
    }
    if len(found) > 1:
        raise InvalidInput("userIds lists two different state ids")
    if found:
        return found.pop()
    return next((row.get(c) for c in _STATE_ID_COLUMNS if row.get(c)), "")
