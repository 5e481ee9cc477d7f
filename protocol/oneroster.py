"""OneRoster 1.1 / 1.2 CSV bundles in, :class:`StudentRecord` values and row errors out.

Implements the bulk CSV binding of IMS OneRoster 1.1 (§4 "CSV Tables") and 1.2 (the "CSV Binding",
which moves ``role`` and ``orgSourcedIds`` out of users.csv into roles.csv). Only what a student record
needs is read: orgs, roles, users, demographics and enrollments. The caller does the file I/O and hands
over ``{canonical name: bytes}``; :func:`read_bundle_names` maps the names found in a folder or zip.

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
  when ``today`` is given and every one of their enrollments ended before it.
* ``enrollment_start`` is the earliest ``beginDate`` of the current enrollments (all of them when no
  ``today`` is given). ``grade`` is the first entry of ``grades``.
* Any error in a row that feeds a student (users, demographics, roles, enrollments) drops that student.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date

from protocol.csv_rows import CsvTable, Row, RowError
from protocol.errors import InvalidInput
from protocol.roster import StudentRecord, check_text, normalize_grade, normalize_sex, parse_iso_date

# Every file name either CSV binding defines; lower case because districts' zips vary the case.
KNOWN_FILES: tuple[str, ...] = (
    "manifest.csv", "orgs.csv", "roles.csv", "users.csv", "demographics.csv", "enrollments.csv",
    "academicsessions.csv", "classes.csv", "courses.csv", "userprofiles.csv", "categories.csv",
    "lineitems.csv", "results.csv", "resources.csv", "classresources.csv", "courseresources.csv",
    "scorescales.csv", "lineitemlearningobjectiveids.csv", "lineitemscorescales.csv",
    "resultlearningobjectiveids.csv", "resultscorescales.csv",
)  # fmt: skip
REQUIRED_FILES: tuple[str, ...] = ("users.csv", "orgs.csv")
_ERROR_ORDER = ("manifest.csv", "orgs.csv", "roles.csv", "users.csv", "demographics.csv", "enrollments.csv")

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


def parse_oneroster(files: Mapping[str, bytes], *, today: date | None = None) -> RosterParseResult:
    """Parse a OneRoster CSV bundle ``{file name: bytes}`` into students and row errors.

    Raises a SatchelError (``roster.missing_file``, ``roster.ambiguous_file``, ``csv.encoding``,
    ``csv.malformed``, ``csv.missing_column``) when a file as a whole is unusable.
    """
    by_key = read_bundle_names(files)
    bundle = {key: files[name] for key, name in by_key.items()}
    for key in REQUIRED_FILES:
        if key not in bundle:
            raise RosterMissingFile(
                f"the roster has no {key}", field=key, hint=f"Export {key} from the SIS with the other files."
            )
    return _Parser(bundle, today).run()


class _Draft:
    """A student between the users pass and the final record; mutable so later files can fill it in."""

    __slots__ = (
        "birth_date", "current_enrollments", "email", "enrollment_school", "enrollments", "family", "given",
        "grade", "inactive", "line", "middle", "orgs", "preferred", "sex", "sis_field", "sis_id", "source_id",
        "start", "state_id", "tainted", "username",
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
        self.tainted = False


class _Parser:
    def __init__(self, bundle: dict[str, bytes], today: date | None) -> None:
        self.bundle, self.today = bundle, today
        self.errors: list[RowError] = []
        self.orgs: dict[str, tuple[str, str, str]] = {}  # sourcedId -> (name, type, school id)
        self.role_orgs: dict[str, list[str]] = {}  # student sourcedId -> orgs, primary first
        self.role_tainted: set[str] = set()
        self.drafts: dict[str, _Draft] = {}
        self.version = "1.1"
        self.delta = False

    def run(self) -> RosterParseResult:
        self.read_manifest()
        self.read_orgs()
        self.read_roles()
        self.read_users()
        self.read_demographics()
        self.read_enrollments()
        students = tuple(self.build())
        self.errors.sort(key=lambda e: (_ERROR_ORDER.index(e.file), e.line))
        return RosterParseResult(
            students=students, errors=tuple(self.errors), version=self.version, delta=self.delta
        )

    def error(self, file: str, line: int, field: str | None, message: str) -> None:
        self.errors.append(RowError(file=file, line=line, field=field, message=message))

    def rows(self, file: str, required: Iterable[str]) -> Iterator[Row]:
        """Rows of ``file`` (nothing if absent); field-count errors are recorded on the way."""
        if file not in self.bundle:
            return
        for item in CsvTable(self.bundle[file], file=file, required=required):
            if isinstance(item, RowError):
                self.errors.append(item)
            else:
                yield item

    def read_manifest(self) -> None:
        props = {r.get("propertyname").lower(): r.get("value") for r in self.rows("manifest.csv", _MANIFEST)}
        # An unknown declared version is inferred from the files instead (see read_users).
        declared = props.get("oneroster.version", "")
        self.version = declared if declared in ("1.0", "1.1", "1.2") else ""
        self.delta = props.get("file.users", "").lower() == "delta"
        for prop, mode in props.items():
            key = prop.removeprefix("file.") + ".csv"
            if prop.startswith("file.") and mode.lower() in ("bulk", "delta") and key not in self.bundle:
                raise RosterMissingFile(
                    f"manifest.csv lists {key} as {mode} but the roster has no {key}",
                    field=key,
                    hint=f"Add {key} or mark it 'absent' in manifest.csv.",
                )

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
        for row in self.rows("roles.csv", ("userSourcedId", "role", "orgSourcedId")):
            user, org = row.get("usersourcedid"), row.get("orgsourcedid")
            if row.get("role").lower() != "student" or row.get("status").lower() in _GONE:
                continue
            if not user:
                self.error("roles.csv", row.line, "userSourcedId", "userSourcedId is empty")
                continue
            orgs = self.role_orgs.setdefault(user, [])
            if org not in self.orgs:
                self.error("roles.csv", row.line, "orgSourcedId", _no_org(org))
                self.role_tainted.add(user)
            elif row.get("roletype").lower() == "primary":
                orgs.insert(0, org)
            else:
                orgs.append(org)

    def read_users(self) -> None:
        required = ["sourcedId", "givenName", "familyName"]
        if "roles.csv" not in self.bundle:
            required.append("role")
        table = CsvTable(self.bundle["users.csv"], file="users.csv", required=required)
        if not self.version:
            self.version = "1.2" if "roles.csv" in self.bundle or not table.has("role") else "1.1"
        sourced_lines: dict[str, int] = {}
        sis_lines: dict[str, int] = {}
        for row in table:
            if isinstance(row, RowError):
                self.errors.append(row)
                continue
            sourced = row.get("sourcedid")
            if row.get("role").lower() != "student" and sourced not in self.role_orgs:
                continue
            problems: list[tuple[str, str]] = []
            draft = _Draft(row.line, sourced)
            draft.sis_id = row.get("identifier") or sourced
            draft.sis_field = "identifier" if row.get("identifier") else "sourcedId"
            if not sourced:
                problems.append(("sourcedId", "sourcedId is empty"))
            elif sourced in sourced_lines:
                problems.append(
                    ("sourcedId", f"user {sourced!r} already appears on line {sourced_lines[sourced]}")
                )
            else:
                sourced_lines[sourced] = row.line
            if draft.sis_id and draft.sis_id in sis_lines:
                problems.append(
                    (
                        draft.sis_field,
                        f"SIS id {draft.sis_id!r} already appears on line {sis_lines[draft.sis_id]}",
                    )
                )
            elif draft.sis_id:
                sis_lines[draft.sis_id] = row.line
            problems += _fill_user(draft, row, self.orgs, self.role_orgs.get(sourced, []))
            for column, message in problems:
                self.error("users.csv", row.line, column, message)
            if not problems:
                draft.tainted = sourced in self.role_tainted
                self.drafts[sourced] = draft

    def read_demographics(self) -> None:
        lines: dict[str, int] = {}
        for row in self.rows("demographics.csv", ("sourcedId",)):
            draft = self.drafts.get(row.get("sourcedid"))
            if draft is None or row.get("status").lower() in _GONE:
                continue
            problems: list[tuple[str, str]] = []
            if draft.source_id in lines:
                problems.append(("sourcedId", f"demographics for {draft.source_id!r} already on line "
                                 f"{lines[draft.source_id]}"))  # fmt: skip
            lines.setdefault(draft.source_id, row.line)
            try:
                birth = row.get("birthdate")
                draft.birth_date = parse_iso_date(birth, field="birthDate") if birth else None
                if draft.birth_date and self.today and date.fromisoformat(draft.birth_date) > self.today:
                    problems.append(("birthDate", "birthDate is in the future"))
            except InvalidInput as exc:
                problems.append(("birthDate", exc.message))
            try:
                draft.sex = normalize_sex(row.get("sex"))
            except InvalidInput as exc:
                problems.append(("sex", exc.message))
            self.taint("demographics.csv", row.line, draft, problems)

    def read_enrollments(self) -> None:
        for row in self.rows("enrollments.csv", ("userSourcedId", "role")):
            draft = self.drafts.get(row.get("usersourcedid"))
            if draft is None or row.get("role").lower() != "student" or row.get("status").lower() in _GONE:
                continue
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
            if school and school not in self.orgs:
                problems.append(("schoolSourcedId", _no_org(school)))
            if self.taint("enrollments.csv", row.line, draft, problems):
                continue
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

    def build(self) -> Iterator[StudentRecord]:
        for d in self.drafts.values():
            if d.tainted:
                continue
            school = next(
                (self.orgs[o] for o in (*d.orgs, d.enrollment_school) if o and self.orgs[o][1] == "school"),
                ("", "", ""),
            )
            ended = self.today is not None and d.enrollments > 0 and d.current_enrollments == 0
            try:
                yield StudentRecord(
                    sis_id=d.sis_id, source_id=d.source_id, given_name=d.given, family_name=d.family,
                    middle_name=d.middle, preferred_name=d.preferred, birth_date=d.birth_date, sex=d.sex,
                    grade=d.grade, state_id=d.state_id, username=d.username, email=d.email,
                    school_id=school[2], school_name=school[0], enrollment_start=d.start,
                    enrollment_status="inactive" if d.inactive or ended else "active",
                )  # fmt: skip
            except InvalidInput as exc:
                column = (
                    d.sis_field if exc.field == "sis_id" else _USER_COLUMNS.get(exc.field or "", exc.field)
                )
                self.error("users.csv", d.line, column, exc.message)


def _no_org(org: str) -> str:
    return f"org {org!r} is not in orgs.csv" if org else "orgSourcedId is empty"


def _fill_user(
    draft: _Draft, row: Row, orgs: Mapping[str, object], role_orgs: list[str]
) -> list[tuple[str, str]]:
    """Copy a users.csv row's values into ``draft``; return (column, message) for each bad value."""
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
        problems += [(column, _no_org(o)) for o in ids if o not in orgs]
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
