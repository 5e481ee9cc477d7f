"""Build OneRoster 1.1 / 1.2 CSV bundles for tests and examples.

``make_bundle`` takes students as dicts keyed like :class:`protocol.roster.StudentRecord` fields (only
``sis_id``, ``given_name`` and ``family_name`` are needed) and returns ``{lower-case file name: bytes}``,
the shape ``protocol.oneroster.parse_oneroster`` takes. Parsing the bundle gives back the same records
(the round-trip tests rely on it), with these conventions:

* ``source_id`` defaults to ``"u-" + sis_id``; when it equals ``sis_id`` the ``identifier`` column is
  left empty, which exercises the parser's sourcedId fallback.
* a ``school_id`` becomes an org of type school whose ``identifier`` is the school id; students without
  one only belong to the district org. ``school_name`` defaults to ``school_id + " School"``.
* ``enrollment_start`` becomes the beginDate of a homeroom enrollment; ``enrollment_status`` "inactive"
  becomes ``enabledUser`` false; ``state_id`` becomes a ``{state:...}`` userIds entry.
* one teacher (not a student) is always present, so tests see that non-students are skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from protocol.roster import GRADE_CODES

SEX_WORDS = {"F": "female", "M": "male", "X": "other", None: ""}
FILE_SPELLING = {"academicsessions.csv": "academicSessions.csv"}
TEACHER_ID = "fixture teacher 1"
DISTRICT_ORG = "org-district"
SCHOOL_YEAR = ("sy-2024", "2024-2025", "schoolYear", "2024-08-19", "2025-06-13", "", "2025")

USERS_11 = (
    "sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role", "username", "userIds",
    "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds",
    "grades", "password",
)  # fmt: skip
USERS_12 = (
    "sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds", "givenName",
    "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades",
    "password", "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName", "preferredMiddleName",
    "preferredFamilyName", "primaryOrgSourcedId", "pronouns",
)  # fmt: skip
ROLES = (
    "sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role", "beginDate", "endDate",
    "orgSourcedId", "userProfileSourcedId",
)  # fmt: skip
DEMOGRAPHICS = (
    "sourcedId", "status", "dateLastModified", "birthDate", "sex", "americanIndianOrAlaskaNative", "asian",
    "blackOrAfricanAmerican", "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
    "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation", "cityOfBirth",
    "publicSchoolResidenceStatus",
)  # fmt: skip
ORGS = ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId")
SESSIONS = ("sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
            "parentSourcedId", "schoolYear")  # fmt: skip
COURSES = ("sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode", "grades",
           "orgSourcedId", "subjects", "subjectCodes")  # fmt: skip
CLASSES = ("sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode",
           "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes",
           "periods")  # fmt: skip
ENROLLMENTS = ("sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
               "userSourcedId", "role", "primary", "beginDate", "endDate")  # fmt: skip

SAMPLE_STUDENTS: list[dict[str, Any]] = [
    {"sis_id": "100001", "given_name": "Ava", "family_name": "Martinez", "birth_date": "2012-03-14",
     "sex": "F", "grade": "07", "state_id": "9000000101", "school_id": "0101", "school_name": "Lincoln Middle School",
     "enrollment_start": "2024-08-19", "email": "ava.martinez@students.example.org", "username": "amartinez"},
    {"sis_id": "100002", "given_name": "William", "preferred_name": "Bill", "family_name": "Okafor",
     "birth_date": "2011-11-02", "sex": "M", "grade": "08", "state_id": "9000000102", "school_id": "0101",
     "school_name": "Lincoln Middle School", "enrollment_start": "2023-08-21"},
    {"sis_id": "100003", "given_name": "Mei", "middle_name": "Lin", "family_name": "Chen",
     "birth_date": "2013-01-30", "sex": "F", "grade": "06", "school_id": "0102",
     "school_name": "Roosevelt Middle School", "enrollment_start": "2024-08-19"},
    {"sis_id": "100004", "given_name": "Jordan", "family_name": "Smith", "birth_date": "2012-07-09",
     "sex": "X", "grade": "07", "state_id": "9000000104", "school_id": "0102",
     "school_name": "Roosevelt Middle School", "enrollment_start": "2024-08-19", "enrollment_status": "inactive"},
    {"sis_id": "100005", "given_name": "Noah", "family_name": "O'Brien", "birth_date": "2011-05-21",
     "sex": None, "grade": "08", "school_id": "0101", "school_name": "Lincoln Middle School"},
]  # fmt: skip


def _csv(header: Sequence[str], rows: Iterable[Mapping[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([row.get(column, "") for column in header] for row in rows)
    return out.getvalue().encode("utf-8")


def _student(raw: Mapping[str, Any]) -> dict[str, Any]:
    student: dict[str, Any] = {
        "middle_name": "", "preferred_name": "", "birth_date": None, "sex": None, "grade": None,
        "state_id": "", "username": "", "email": "", "school_id": "", "school_name": "",
        "enrollment_start": None, "enrollment_status": "active", **raw,
    }  # fmt: skip
    student.setdefault("source_id", "u-" + student["sis_id"])
    if student["school_id"] and not student["school_name"]:
        student["school_name"] = student["school_id"] + " School"
    return student


def make_bundle(
    students: list[dict[str, Any]], *, version: str = "1.1", district_name: str = "Sample School District"
) -> dict[str, bytes]:
    """A complete bulk OneRoster bundle (manifest, orgs, users, demographics, sessions, courses, classes,
    enrollments, and roles for 1.2) holding ``students`` and one teacher."""
    if version not in ("1.1", "1.2"):
        raise ValueError("version must be '1.1' or '1.2'")
    people = [_student(s) for s in students]
    schools: dict[str, tuple[str, str]] = {}  # school id -> (org sourcedId, name)
    for s in people:
        if s["school_id"] and s["school_id"] not in schools:
            schools[s["school_id"]] = (f"org-school-{len(schools) + 1}", s["school_name"])
    orgs = [{"sourcedId": DISTRICT_ORG, "name": district_name, "type": "district", "identifier": "D-0001"}]
    orgs += [{"sourcedId": org, "name": name, "type": "school", "identifier": school_id,
              "parentSourcedId": DISTRICT_ORG} for school_id, (org, name) in schools.items()]  # fmt: skip
    org_of = {school_id: org for school_id, (org, _name) in schools.items()}
    class_of = {org: f"class-{org}" for org in (DISTRICT_ORG, *org_of.values())}

    users, roles, demographics, enrollments = [], [], [], []
    for s in people:
        org = org_of.get(s["school_id"], DISTRICT_ORG)
        user = {
            "sourcedId": s["source_id"], "enabledUser": "false" if s["enrollment_status"] == "inactive" else "true",
            "username": s["username"], "userIds": f"{{state:{s['state_id']}}}" if s["state_id"] else "",
            "givenName": s["given_name"], "familyName": s["family_name"], "middleName": s["middle_name"],
            "identifier": "" if s["sis_id"] == s["source_id"] else s["sis_id"], "email": s["email"],
            "grades": s["grade"] or "",
        }  # fmt: skip
        if version == "1.1":
            user |= {
                "orgSourcedIds": org,
                "role": "student",
                "metadata.preferredFirstName": s["preferred_name"],
            }
        else:
            user |= {"preferredGivenName": s["preferred_name"], "primaryOrgSourcedId": org}
            roles.append({"sourcedId": f"role-{s['source_id']}", "status": "active", "userSourcedId": s["source_id"],
                          "roleType": "primary", "role": "student", "orgSourcedId": org})  # fmt: skip
        users.append(user)
        demographics.append({"sourcedId": s["source_id"], "birthDate": s["birth_date"] or "",
                             "sex": SEX_WORDS[s["sex"]]})  # fmt: skip
        if s["enrollment_start"]:
            enrollments.append({"sourcedId": f"enr-{len(enrollments) + 1}", "classSourcedId": class_of[org],
                                "schoolSourcedId": org, "userSourcedId": s["source_id"], "role": "student",
                                "primary": "false", "beginDate": s["enrollment_start"]})  # fmt: skip
    teacher = {"sourcedId": TEACHER_ID, "enabledUser": "true", "username": "tfixture", "givenName": "Terry",
               "familyName": "Teacher", "identifier": "T-0001", "email": "terry@example.org"}  # fmt: skip
    if version == "1.1":
        teacher |= {"orgSourcedIds": ",".join([DISTRICT_ORG, *org_of.values()]), "role": "teacher"}
    else:
        teacher["primaryOrgSourcedId"] = DISTRICT_ORG
        roles.append({"sourcedId": "role-teacher", "userSourcedId": TEACHER_ID, "roleType": "primary",
                      "role": "teacher", "orgSourcedId": DISTRICT_ORG})  # fmt: skip
    users.append(teacher)
    enrollments += [{"sourcedId": f"enr-t-{n}", "classSourcedId": cls, "schoolSourcedId": org,
                     "userSourcedId": TEACHER_ID, "role": "teacher", "primary": "true", "beginDate": "2024-08-19"}
                    for n, (org, cls) in enumerate(class_of.items(), 1)]  # fmt: skip

    users_header = USERS_11 if version == "1.1" else USERS_12
    if version == "1.1" and any(s["preferred_name"] for s in people):
        users_header = (*users_header, "metadata.preferredFirstName")
    bundle = {
        "manifest.csv": _manifest(version),
        "orgs.csv": _csv(ORGS, orgs),
        "users.csv": _csv(users_header, users),
        "demographics.csv": _csv(DEMOGRAPHICS, demographics),
        "academicsessions.csv": _csv(SESSIONS, [dict(zip(SESSIONS[:1] + SESSIONS[3:], SCHOOL_YEAR, strict=True))]),
        "courses.csv": _csv(COURSES, [{"sourcedId": f"course-{org}", "schoolYearSourcedId": SCHOOL_YEAR[0],
                                       "title": "Homeroom", "orgSourcedId": org} for org in class_of]),
        "classes.csv": _csv(CLASSES, [{"sourcedId": cls, "title": "Homeroom", "courseSourcedId": f"course-{org}",
                                       "classType": "homeroom", "schoolSourcedId": org,
                                       "termSourcedIds": SCHOOL_YEAR[0]} for org, cls in class_of.items()]),
        "enrollments.csv": _csv(ENROLLMENTS, enrollments),
    }  # fmt: skip
    if version == "1.2":
        bundle["roles.csv"] = _csv(ROLES, roles)
    return bundle


def _manifest(version: str) -> bytes:
    files = ["academicSessions", "classes", "courses", "demographics", "enrollments", "orgs", "users"]
    absent = ["categories", "classResources", "courseResources", "lineItems", "resources", "results"]
    if version == "1.2":
        files.append("roles")
        absent += ["userProfiles", "scoreScales"]
    rows = [{"propertyName": "manifest.version", "value": "1.0"},
            {"propertyName": "oneroster.version", "value": version}]  # fmt: skip
    rows += [{"propertyName": f"file.{name}", "value": "bulk"} for name in sorted(files)]
    rows += [{"propertyName": f"file.{name}", "value": "absent"} for name in sorted(absent)]
    rows += [{"propertyName": "source.systemName", "value": "Satchel fixtures"},
             {"propertyName": "source.systemCode", "value": "satchel-tests"}]  # fmt: skip
    return _csv(("propertyName", "value"), rows)


def sample_bundle(version: str = "1.1") -> dict[str, bytes]:
    """Five students in two schools (Lincoln: 3, Roosevelt: 2), one of them inactive."""
    return make_bundle(SAMPLE_STUDENTS, version=version)


def write_bundle(dir_path: str | Path, bundle: Mapping[str, bytes]) -> Path:
    """Write ``bundle`` as files in ``dir_path`` (created if needed), with OneRoster's file-name casing."""
    folder = Path(dir_path)
    folder.mkdir(parents=True, exist_ok=True)
    for key, data in bundle.items():
        (folder / FILE_SPELLING.get(key, key)).write_bytes(data)
    return folder


def student_dicts(max_size: int = 6) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Hypothesis strategy: lists of valid student dicts (unique ids) that ``make_bundle`` round-trips."""
    return st.lists(
        _student_dict(), max_size=max_size, unique_by=(lambda s: s["sis_id"], lambda s: s["source_id"])
    )


_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=12)
_NAME = _TEXT.map(str.strip).filter(bool)
_ISO = st.dates().map(lambda d: d.isoformat())
_SCHOOLS = [("", ""), ("0101", "Lincoln Middle School"), ("0102", 'Roosevelt "East", Campus')]


@st.composite
def _student_dict(draw: st.DrawFn) -> dict[str, Any]:
    sis_id = draw(_NAME.filter(lambda s: s != TEACHER_ID))
    school_id, school_name = draw(st.sampled_from(_SCHOOLS))
    return {
        "sis_id": sis_id,
        "source_id": draw(st.just(sis_id) | _NAME.filter(lambda s: s != TEACHER_ID)),
        "given_name": draw(_NAME),
        "family_name": draw(_NAME),
        "middle_name": draw(st.just("") | _NAME),
        "preferred_name": draw(st.just("") | _NAME),
        "birth_date": draw(st.none() | _ISO),
        "sex": draw(st.sampled_from(["F", "M", "X", None])),
        "grade": draw(st.none() | st.sampled_from(GRADE_CODES)),
        "state_id": draw(st.just("") | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,15}", fullmatch=True)),
        "username": draw(st.just("") | _NAME),
        "email": draw(st.just("") | st.from_regex(r"[a-z0-9._+]{1,8}@[a-z0-9.-]{1,8}", fullmatch=True)),
        "school_id": school_id,
        "school_name": school_name,
        "enrollment_start": draw(st.none() | _ISO),
        "enrollment_status": draw(st.sampled_from(["active", "inactive"])),
    }
