"""`satchel roster import`: read a OneRoster CSV bundle (folder or zip) and upsert the students.

The files are streamed from disk, never held whole. A big bundle (users.csv over ``SPILL_OVER_BYTES``, some
130,000 students) also keeps what joins its files in a scratch SQLite file (storage.spill_map) rather than in
dicts, and its students go to the database a batch at a time, so memory stays flat at any district's size;
smaller ones are joined in memory, which is faster.

A roster with an invalid row changes nothing (unless the caller skips invalid rows): every row is checked,
the student records' own checks included, before a student is saved. The students are then saved
``BATCH_STUDENTS`` to a transaction, so that the database is held briefly: the serving node, which writes
from its event loop, and coordinators' commands wait a fraction of a second, not the whole import (minutes
for a large district). An import stopped mid-way (killed, power cut) has saved some batches, each student
whole; running it again saves the rest, as a re-run changes nothing that is already saved. The audit log
gets ``roster.import`` with the first change and ``roster.import.finished`` at the end, or ``roster.import.stopped``
if an error stops it (node.batched_save).

A student here is one child for good, known to the SIS by its sourcedId: a row whose SIS id a student with
another sourcedId holds (the SIS gave a leaving child's number to a new one) is a bad row: updating it would
have shown one child's records and disclosures as another's. A student an import from another district
created is the exception: the roster takes it over.

A row whose sourcedId a student with another SIS id holds, its own SIS id held by nobody, is that student
renumbered by the SIS (a SIS migration renumbers every student; a district merges two numbering schemes):
the student takes the new number, and everything here that names them follows (storage.students.renumber:
records, match keys, disclosures, transfers, requests, codes, pending import decisions), with a
``student.renumbered`` audit entry naming both numbers, and the old number kept as their former number (other
districts' copies name them by it: matching and reading commands follow it to the new one; a number the SIS
gives a new child later is that child's, see storage.students.former). Inserting the row instead made the
child twice, their records on the first. It stays a bad row when it plainly describes another child (born
another day and named otherwise: the SIS reused a sourcedId, or the export is of another district), or when two
students here hold the sourcedId (which one was renumbered?). The check runs with the others, before anything
is saved, and again in each batch's transaction, which renumbers.

A delta users.csv lists only the students that changed there: the rows of others in its demographics.csv
and enrollments.csv are applied to the students held under their sourcedIds (protocol.oneroster), and a
row of a sourcedId held by no student is a bad row, found before anything is saved like any other; but
demographics alone of such a sourcedId are not read (they may be a teacher's), only counted and named in
the result, so that an operator sees a student's row that was not applied.

A bulk users.csv lists every student: those of the roster (not of imports from other districts) it no
longer lists, by sourcedId, are marked inactive after the others are saved, so that no transfer code picks
them; only those of the schools in its orgs.csv, or of none, as a district may import a bundle per school.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from node.batched_save import save_in_batches
from node.clock import now_iso, utc_now
from node.home import Node
from node.operators import authorize, record_many
from node.progress import Progress, ReadMeter
from protocol import InvalidInput
from protocol.csv_rows import RowsInvalid
from protocol.oneroster import READ_FILES, RosterReading, Vet, read_bundle_names, read_oneroster
from protocol.roster import FieldMerge, StudentRecord
from storage import students
from storage.spill_map import SpillFile
from storage.students import UpsertCounts

# A whole-district users.csv is tens of MB; refuse absurd inputs.
MAX_FILE_BYTES = 512 * 1024 * 1024
SPILL_OVER_BYTES = 16 * 1024 * 1024
# Students saved per transaction: about 0.4 s of holding the database, which the serving node's writes wait out.
BATCH_STUDENTS = 5000
# Stored students looked up at once for those a bulk roster no longer lists.
UNLISTED_PAGE = 500
# Rows whose ids are looked up at once among the students held, as they are saved (two ids a row, one query).
_LOOKED_UP = 500


class RosterRowsInvalid(RowsInvalid):
    code = "roster.rows_invalid"
    default_hint = "fix the rows listed, or re-run with --skip-invalid to import the valid rows only"


# What to do about rows refused as RosterIdsHeld's; also told after an import that skipped them.
IDS_HELD_ADVICE = (
    "a SIS id here is one child's for good (their records and disclosures name it): give a new student a number "
    "the SIS never gave anyone before; a renumbered student (same sourcedId) is carried over to the new number "
    "unless the row names another child, born another day: correct the name or birth date in the SIS if it is "
    "the same child; if the SIS gave every student a new sourcedId (a new SIS), re-run with --new-sourced-ids"
)


class RosterIdsHeld(RosterRowsInvalid):
    """Rows of a OneRoster bundle give a SIS id that a student with another sourcedId holds here (the SIS
    reused a number), or a sourcedId that a student with another SIS id holds while the row plainly describes
    another child (or two students hold it); each is listed. Nothing was imported."""

    code = "roster.ids_held"
    default_hint = f"{IDS_HELD_ADVICE}. Fix any other rows listed, or re-run with --skip-invalid to import the rest"


@dataclass(frozen=True, slots=True)
class RosterImportResult:
    counts: UpsertCounts
    skipped_rows: tuple  # the first of them (protocol.csv_rows.KEEP_ROW_ERRORS)
    skipped: int
    ids_held: int = 0  # of the skipped rows, those refused as RosterIdsHeld's
    marked_inactive: int = 0  # students a bulk roster no longer lists
    renumbered: int = 0  # students the SIS renumbered (same sourcedId), carried over to their new SIS id
    # A delta's demographics.csv rows alone of sourcedIds no student here holds (a teacher's, or a student the
    # bulk export never added): not read, and counted; the first of those sourcedIds, sorted.
    demographics_not_held: int = 0
    demographics_not_held_ids: tuple[str, ...] = ()


@contextmanager
def open_bundle(path: Path, reading: Progress | None = None) -> Iterator[dict[str, _Stream]]:
    """Map canonical OneRoster file names to streams of their bytes, from a folder or a zip file (kept open
    while the block runs). ``reading`` hears how many bytes of the files the parser reads have been read."""
    if path.is_dir():
        names = read_bundle_names(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        yield _streams({key: ((path / name).stat().st_size, path / name, None) for key, name in names.items()},
                       reading)  # fmt: skip
        return
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            bundle = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
            raise _damaged(path, exc) from None
        with bundle:
            if any(not info.filename for info in bundle.infolist()):  # zipfile itself trips over such a name
                raise _damaged(path, zipfile.BadZipFile("a file in it has no name"))
            # zipfile moves every file's offset by what its end record says was prepended; a damaged record
            # moves them before the start, where opening a file fails with an OSError (an I/O error, it is not).
            if any(info.header_offset < 0 for info in bundle.infolist()):
                raise _damaged(path, zipfile.BadZipFile("its files would start before the zip does"))
            infos = {info.filename: info for info in bundle.infolist() if not info.is_dir()}
            names = read_bundle_names(infos)
            yield _streams({key: (infos[name].file_size, bundle, infos[name]) for key, name in names.items()},
                           reading)  # fmt: skip
        return
    if path.is_file() and _starts_as_zip(path):  # a zip cut short (a download or copy that stopped)
        raise _damaged(path, zipfile.BadZipFile("it ends before the list of its files"))
    raise InvalidInput(
        f"{path} is neither a folder nor a zip file", field="PATH",
        hint="give the folder holding users.csv, orgs.csv, ... or a zip of them",
    )  # fmt: skip


def _starts_as_zip(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(4) == b"PK\x03\x04"
    except OSError:
        return False


_Source = tuple[int, Path | zipfile.ZipFile, zipfile.ZipInfo | None]  # (size, folder file or zip, zip member)


def _streams(sources: dict[str, _Source], reading: Progress | None) -> dict[str, _Stream]:
    for key, (size, _, _) in sources.items():
        if size > MAX_FILE_BYTES:
            raise InvalidInput(
                f"{key} is larger than {MAX_FILE_BYTES // 2**20} MiB, more than any district's roster", field="PATH",
                hint="check that the file is the SIS's OneRoster export; a larger district can export one bundle "
                     "per school and import each",
            )  # fmt: skip
    meter = ReadMeter(sum(size for key, (size, _, _) in sources.items() if key in READ_FILES), reading)
    return {key: _Stream(size, source, info, meter) for key, (size, source, info) in sources.items()}


class _Stream(Iterable[bytes]):
    """One file of the bundle as chunks, opened when iterated."""

    def __init__(self, size: int, source: Path | zipfile.ZipFile, info: zipfile.ZipInfo | None, meter: ReadMeter):
        self.size, self._source, self._info, self._meter = size, source, info, meter

    def __iter__(self) -> Iterator[bytes]:
        if not isinstance(self._source, zipfile.ZipFile):
            with self._source.open("rb") as stream:
                yield from self._meter.chunks(stream)
            return
        assert self._info is not None
        if self._info.flag_bits & 0x1:  # zipfile would ask for a password: a RuntimeError, not a damaged zip
            raise InvalidInput(
                f"{self._info.filename} in {Path(str(self._source.filename)).name} is encrypted (the zip has a "
                "password)", field="PATH",
                hint="unzip it with its password and give the folder of CSV files, or export the roster again "
                     "without a password",
            )  # fmt: skip
        try:
            with self._source.open(self._info) as stream:  # reads no more than the size the zip declares
                yield from self._meter.chunks(stream)
        # UnicodeDecodeError: a file's own header says its name is UTF-8 and it is not (zipfile decodes it then).
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, UnicodeDecodeError) as exc:
            raise _damaged(Path(str(self._source.filename)), exc, self._info.filename) from None


def _damaged(path: Path, exc: Exception, member: str | None = None) -> InvalidInput:
    what = f"{member} in {path.name}" if member else path.name
    return InvalidInput(
        f"{what} cannot be read: the zip file is damaged or uses a compression Satchel does not read ({exc})",
        field="PATH", hint="make the zip again (a plain zip, Deflate), or give the folder of CSV files instead",
    )  # fmt: skip


def import_roster(
    node: Node, *, actor: str | None, path: Path, skip_invalid: bool, progress: Progress | None = None,
    reading: Progress | None = None, spill_over: int = SPILL_OVER_BYTES, new_sourced_ids: bool = False,
) -> RosterImportResult:  # fmt: skip
    """``reading`` hears how many bytes of the bundle are read; then ``progress``, how many of the students
    read are saved. ``new_sourced_ids``: the SIS gave its students new sourcedIds, so a row whose SIS id is
    held under another one is that student. See the module's docstring for what is written when."""
    user = authorize(node, actor, "records.write")
    with ExitStack() as stack:
        files = stack.enter_context(open_bundle(path, reading))
        users = files.get("users.csv")
        spill = None
        if users is not None and users.size > spill_over:
            spill = stack.enter_context(SpillFile(node.blobs.tmp_dir)).mapping
        roster = read_oneroster(files, spill=spill, dates_until=utc_now().date())
        held: list[int] = [0]
        valid = roster.check(_vet(node, new_sourced_ids, held), stored=_Stored(node))
        errors, invalid = roster.errors(), roster.error_count
        if invalid and not skip_invalid:
            if held[0]:
                raise RosterIdsHeld(
                    f"{invalid} row(s) are invalid, {held[0]} of them giving ids another student holds here; "
                    "nothing was imported", errors, count=invalid,
                )  # fmt: skip
            raise RosterRowsInvalid(f"{invalid} row(s) are invalid; nothing was imported", errors, count=invalid)
        now = now_iso()
        items: Iterable[tuple[StudentRecord, FieldMerge] | str] = roster.updates()
        if roster.full_users:  # after every student it lists: those are not looked at again
            items = chain(items, _unlisted(node, roster, by_sis_id=new_sourced_ids))
        totals = save_in_batches(
            node, items, size=BATCH_STUDENTS, save=lambda batch: _save(node, batch, now, user.username), total=valid,
            progress=progress, actor=user.username, action="roster.import", subject=path.name,
            started={"students": valid, "skipped": invalid} | ({"new_sourced_ids": True} if new_sourced_ids else {}),
            skipped=invalid,
            finished=lambda totals: {k: totals[k] for k in ("inserted", "updated", "unchanged", "marked_inactive")}
            | ({"demographics_not_held": roster.demographics_not_held} if roster.demographics_not_held else {})
            | ({"renumbered": totals["renumbered"]} if totals["renumbered"] else {}),
            changes=("inserted", "updated", "marked_inactive", "renumbered"),
        )  # fmt: skip
    counts = UpsertCounts(totals["inserted"], totals["updated"], totals["unchanged"])
    return RosterImportResult(counts, errors, invalid, ids_held=held[0], marked_inactive=totals["marked_inactive"],
                              demographics_not_held=roster.demographics_not_held,
                              demographics_not_held_ids=roster.demographics_not_held_ids(),
                              renumbered=totals["renumbered"])  # fmt: skip


def _vet(node: Node, new_sourced_ids: bool, held: list[int]) -> Vet:
    """The check of the records read against the students stored (see the module's docstring); ``held[0]``
    counts the records it refuses."""

    def vet(records: Sequence[StudentRecord]) -> Mapping[int, InvalidInput]:
        holders = students.holders(node.db, records)
        by_sis_id = {h.sis_id: h for h in holders}
        by_source_id = _by_source_id(holders)
        problems: dict[int, InvalidInput] = {}
        for at, rec in enumerate(records):
            holder = by_sis_id.get(rec.sis_id)
            if holder is not None:
                if holder.source_id != rec.source_id and not new_sourced_ids and not _imported(holder):
                    problems[at] = InvalidInput(
                        f"SIS id {rec.sis_id!r} is held here by another student, sourcedId {holder.source_id!r}, "
                        f"not by this row's sourcedId {rec.source_id!r}", field="sis_id",
                    )  # fmt: skip
                elif _imported(holder) and _another_child(holder, rec) and students.holds_records(node.db,
                                                                                                  holder.sis_id):
                    problems[at] = InvalidInput(
                        f"SIS id {rec.sis_id!r} is held here by {holder.given_name} {holder.family_name} (born "
                        f"{holder.birth_date}), whom an import from another district created under that id, not by "
                        f"this row's {rec.given_name} {rec.family_name} (born {rec.birth_date}), who would get "
                        f"their records: move those to the right student (`satchel documents|cases|assessments "
                        f"move ID --to SIS_ID`; `satchel students show {rec.sis_id}` lists them), then import the "
                        f"roster again", field="sis_id",
                    )  # fmt: skip
            elif (problem := _not_renumbered(rec, by_source_id.get(rec.source_id, []))) is not None:
                problems[at] = problem
        held[0] += len(problems)
        return problems

    return vet


class _Stored:
    """The students held here, as protocol.oneroster.StoredStudents: what a delta's rows of students its
    users.csv does not list apply to."""

    def __init__(self, node: Node) -> None:
        self._db = node.db

    def by_source_id(self, source_ids: Sequence[str]) -> Mapping[str, Sequence[StudentRecord]]:
        return students.by_source_ids(self._db, source_ids)

    def by_sis_id(self, sis_ids: Sequence[str]) -> Mapping[str, StudentRecord]:
        return students.by_sis_ids(self._db, sis_ids)


def _by_source_id(holders: Iterable[students.Holder]) -> dict[str, list[students.Holder]]:
    found: dict[str, list[students.Holder]] = {}
    for holder in sorted(holders, key=lambda h: h.sis_id):
        found.setdefault(holder.source_id, []).append(holder)
    return found


def _not_renumbered(rec: StudentRecord, held: Sequence[students.Holder]) -> InvalidInput | None:
    """Why a row whose SIS id nobody holds is not the renumbering of the student holding its sourcedId (see the
    module's docstring); None when it is, or when no student holds the sourcedId (a new student)."""
    if len(held) > 1:
        ids = ", ".join(repr(h.sis_id) for h in held)
        return InvalidInput(
            f"sourcedId {rec.source_id!r} is held here by {len(held)} students (SIS ids {ids}), so this row's SIS id "
            f"{rec.sis_id!r} does not say which of them the SIS renumbered", field="sis_id",
        )  # fmt: skip
    if held and _another_child(held[0], rec):
        holder = held[0]
        return InvalidInput(
            f"sourcedId {rec.source_id!r} is held here by the student with SIS id {holder.sis_id!r}, "
            f"{holder.given_name} {holder.family_name} (born {holder.birth_date}), not by this row's SIS id "
            f"{rec.sis_id!r}, {rec.given_name} {rec.family_name} (born {rec.birth_date}): another child, not the "
            f"student renumbered", field="sis_id",
        )  # fmt: skip
    return None


def _renumber(node: Node, records: Sequence[StudentRecord], now: str, actor: str) -> int:
    """Inside the batch's transaction: give each student the SIS renumbered the row's new SIS id (the module's
    docstring), before the rows are saved; how many were. Checked again here, as it was before saving, so that
    what is renumbered is what the database holds now."""
    done = []
    for start in range(0, len(records), _LOOKED_UP):
        chunk = records[start : start + _LOOKED_UP]
        holders = students.holders(node.db, chunk)
        held_sis_ids = {h.sis_id for h in holders}
        by_source_id = _by_source_id(holders)
        for rec in chunk:
            held = by_source_id.get(rec.source_id, [])
            if rec.sis_id in held_sis_ids or len(held) != 1 or _not_renumbered(rec, held) is not None:
                continue
            students.renumber(node.db, held[0].sis_id, rec.sis_id, now=now)
            done.append((rec.sis_id, {"from": held[0].sis_id, "to": rec.sis_id, "source_id": rec.source_id}))
    if done:
        record_many(node, actor, "student.renumbered", done)
    return len(done)


def _imported(holder: students.Holder) -> bool:
    """A student an import from another district created, which the district's own roster has not yet taken
    over: its SIS id was chosen here, for the roster to take up (node.import_run)."""
    return holder.origin == "import" and holder.source_id.startswith("import:")


def _another_child(holder: students.Holder, rec: StudentRecord) -> bool:
    """Whether a roster row is plainly not the child an import created under its SIS id: born another day, and
    named otherwise. The other district chose that id (`send --receiving-sis-id`) and may have got it wrong;
    taking the student over would give the row's child the records transferred for the other. A birth date or a
    name alone may be a typo on one side, and the child the same."""
    if not holder.birth_date or not rec.birth_date or holder.birth_date == rec.birth_date:
        return False
    return (holder.given_name.casefold().strip(), holder.family_name.casefold().strip()) != (
        rec.given_name.casefold().strip(), rec.family_name.casefold().strip())


def _unlisted(node: Node, roster: RosterReading, *, by_sis_id: bool) -> Iterator[str]:
    """The SIS ids of the active students of the roster that a bulk users.csv does not list (see the module's
    docstring), read a page at a time: none is held in memory beyond its page."""
    schools = roster.school_ids() | {""}
    after = ""
    while page := students.active_roster_students(node.db, after=after, limit=UNLISTED_PAGE):
        after = page[-1][0]
        yield from roster.unlisted([(sis_id, source_id) for sis_id, source_id, school in page if school in schools],
                                   by_sis_id=by_sis_id)  # fmt: skip


def _save(node: Node, batch: list[tuple[StudentRecord, FieldMerge] | str], now: str, actor: str) -> dict[str, int]:
    records = [item for item in batch if not isinstance(item, str)]
    renumbered = _renumber(node, [record for record, _ in records], now, actor)
    counts = students.upsert_merged(node.db, records, now=now)
    gone = [item for item in batch if isinstance(item, str)]
    return {"inserted": counts.inserted, "updated": counts.updated, "unchanged": counts.unchanged,
            "marked_inactive": students.mark_inactive(node.db, gone, now=now) if gone else 0,
            "renumbered": renumbered}  # fmt: skip
