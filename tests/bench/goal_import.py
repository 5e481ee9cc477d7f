"""Goal 3: importing a grade's rows, against a raw sqlite3 executemany of the same rows in one transaction.

The rows: the grade's 500 students, 10,000 assessment results and 1,000 documents (11,500 rows). So that
the rate is about rows, not bytes, the documents here are tiny (1.6 KB to 64 KiB: the grade's sizes
divided by 64); goal 2 times the same import with the real bytes.

* measured: ``node.import_run.run`` in-process on a node that has accepted and previewed the transfer
  (the state is copied afresh for every run). Accepting already opened the documents into the blob store,
  so the import moves no bytes: it verifies the stored manifest's signature again and parses it (bytes that
  passed every check at accept are not checked again), then writes one transaction
  per batch of students (up to 200): the new students, their records, the import bookkeeping (imported
  records, per-student results) and one audit entry per student, each table with one ``executemany``.
* baseline: the same 11,500 rows (same tables, same values, a freshly migrated Satchel database, so the
  same indexes, the same ``synchronous`` setting) inserted with three ``executemany`` calls in one
  transaction, and nothing else.
* floor (row 3*, information): the baseline's work plus what no import that keeps its guarantees can skip,
  with none of the import's planning: unpacking the signed manifest's bytes (the rows' values come from
  there), and one ``imported_records`` row per record (what makes a second import of the same records, a
  redo, recognise them), still in one transaction. Its ratio to the baseline is the most any import run can
  reach while it keeps them.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import shutil
import sqlite3
import time
from pathlib import Path

import msgpack

from node import import_run
from node.clock import new_id, now_iso
from protocol.manifest import Manifest, parse_manifest
from storage.database import DURABLE, open_database
from storage.records import _RESULT_FIELDS, Document, _row
from storage.students import _FIELDS as STUDENT_FIELDS
from tests.bench.common import Extras, Row, log, ratio_row, stats
from tests.bench.nodes import District, json_of, load_grade, make_district, pin, wait_for
from tests.bench.workloads import make_grade

from support import DEV_ENV

SCHOOL = "0101"


def _prepare(folder: Path) -> tuple[Path, str, bytes]:
    """A district B that has accepted and previewed a grade from A; returns (its home, transfer, the manifest's
    bytes)."""
    a = make_district(folder, "a.example.org")
    b = make_district(folder, "b.example.org")
    loaded = load_grade(a, make_grade(scale=1 / 64), folder / "grade")
    a.start()
    b.start()
    try:
        pin(a, b)
        sent = json_of(a.cli("send", "--to", b.domain, "--students-file", str(loaded.students_file), "--documents",
                             ",".join(loaded.document_ids), "--assessments", "--as", "coord", "--json"))  # fmt: skip
        tid = sent["transfer_id"]
        wait_for(lambda: b.transfer_state(tid) == "received", what="delivery")
        b.setup("accept", tid, "--code", sent["code"], "--as", "coord")
        b.setup("import", "preview", tid, "--school", SCHOOL, "--as", "coord")
    finally:
        a.stop()
        b.stop()
    node = b.open()
    try:
        blob = node.db.execute(
            "SELECT manifest FROM transfer_manifests WHERE transfer_id = ?", [tid]
        ).fetchone()[0]
        node.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        node.close()
    return b.home, tid, blob


def _raw_rows(manifest: Manifest) -> tuple[list[tuple], list[tuple], list[list]]:
    """The rows the import writes to students, assessment_results and documents, as plain tuples."""
    now = now_iso()
    students = []
    for s in manifest.students:
        values = {f: "" for f in STUDENT_FIELDS} | {
            "sis_id": f"T000001-{s.sis_id}", "source_id": f"import:{manifest.sender_domain}:{s.sis_id}",
            "given_name": s.given_name, "family_name": s.family_name, "middle_name": s.middle_name or "",
            "birth_date": s.birth_date, "sex": s.sex, "grade": s.grade, "state_id": s.state_id or "",
            "school_id": SCHOOL, "school_name": "Lincoln Middle School", "enrollment_start": None,
            "enrollment_status": "active",
        }  # fmt: skip
        students.append((*(values[f] for f in STUDENT_FIELDS), "import", now, now))
    results, documents = [], []
    for rec in manifest.records:
        origin = {"kind": "import", "sender": manifest.sender_domain, "envelope": "E", "record_id": rec.record_id,
                  "received": now}  # fmt: skip
        if rec.kind == "assessment":
            values = [str(rec.metadata.get(f, "") or "") for f in _RESULT_FIELDS[2:]]
            results.append((new_id(), f"T000001-{rec.student_sis_id}", *values, json.dumps(origin), now))
        elif rec.kind == "document":
            documents.append(_row(Document(
                doc_id=new_id(), student_sis_id=f"T000001-{rec.student_sis_id}", doc_type=rec.document_type or "other",
                title=rec.title or "", filename=str(rec.metadata.get("filename", "")), media_type=rec.media_type or "",
                length=rec.length or 0, sha256=(rec.sha256 or b"").hex(), status="active", origin=origin,
                created_at=now, created_by="coord",
            )))  # fmt: skip
    return students, results, documents


def _remembered(manifest: Manifest, rows: tuple[list[tuple], list[tuple], list[list]]) -> list[tuple]:
    """The imported_records rows an import writes for these rows: (sender, record id, kind, local id, import
    id, transfer id, student)."""
    _, results, documents = rows
    local = iter([r[0] for r in results] + [d[0] for d in documents])
    by_kind: dict[str, list[tuple]] = {"assessment": [], "document": []}
    for rec in manifest.records:
        by_kind[rec.kind].append((manifest.sender_domain, rec.record_id, rec.kind, "", "I" * 26, "T" * 26,
                                  f"T000001-{rec.student_sis_id}"))  # fmt: skip
    ordered = by_kind["assessment"] + by_kind["document"]
    return [(*row[:3], next(local), *row[4:]) for row in ordered]


def _raw_insert(
    path: Path, rows: tuple[list[tuple], list[tuple], list[list]], floor: tuple[bytes, list[tuple]] | None = None
) -> float:
    """The baseline: the rows in one transaction; with ``floor`` (the manifest's bytes, imported_records rows),
    also the work no import can skip (see the module's docstring)."""
    path.unlink(missing_ok=True)
    open_database(path).close()  # migrated: the same tables and indexes the import writes to
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(DURABLE)  # what Satchel runs with: a commit is on disk when it returns
    students, results, documents = rows
    started = time.perf_counter()
    if floor is not None:
        msgpack.unpackb(floor[0], raw=False, use_list=False)
    conn.execute("BEGIN")
    if floor is not None:
        conn.executemany("INSERT INTO imported_records (source_domain, source_record_id, kind, local_id,"
                         " import_id, transfer_id, student_sis_id) VALUES (?, ?, ?, ?, ?, ?, ?)", floor[1])  # fmt: skip
    conn.executemany(f"INSERT INTO students ({', '.join(STUDENT_FIELDS)}, origin, created_at, updated_at) "
                     f"VALUES ({','.join('?' * (len(STUDENT_FIELDS) + 3))})", students)  # fmt: skip
    conn.executemany(f"INSERT INTO assessment_results ({', '.join(_RESULT_FIELDS)}, origin, created_at) "
                     f"VALUES ({','.join('?' * (len(_RESULT_FIELDS) + 2))})", results)  # fmt: skip
    conn.executemany(f"INSERT INTO documents VALUES ({','.join('?' * len(documents[0]))})", documents)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _import_once(template: Path, work: Path, tid: str, profile: cProfile.Profile | None = None) -> float:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, work)
    node = District(work, "b.example.org", "", dict(DEV_ENV)).open()
    try:
        started = time.perf_counter()
        if profile:
            profile.enable()
        result = import_run.run(node, actor="coord", transfer_id=tid)
        if profile:
            profile.disable()
        elapsed = time.perf_counter() - started
    finally:
        node.close()
    if result.imported != result.total:
        raise RuntimeError(f"import incomplete: {result}")
    return elapsed


def run(folder: Path, *, runs: int, extras: Extras) -> list[Row]:
    log("  goal 3: preparing a previewed transfer")
    template, tid, blob = _prepare(folder / "prep")
    manifest = parse_manifest(blob)
    rows = _raw_rows(manifest)
    floor_work = (blob, _remembered(manifest, rows))
    count = sum(len(r) for r in rows)
    extras["goal3.rows"] = {"students": len(rows[0]), "assessment_results": len(rows[1]),
                            "documents": len(rows[2]), "total": count}  # fmt: skip
    measured, baseline, floor = [], [], []
    for i in range(runs):
        log(f"  goal 3: run {i + 1}/{runs}")
        baseline.append(_raw_insert(folder / "raw.db", rows))
        measured.append(_import_once(template, folder / "work", tid))
        floor.append(_raw_insert(folder / "raw.db", rows, floor_work))
    profile = cProfile.Profile()
    _import_once(template, folder / "work", tid, profile)
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(15)
    extras["goal3.profile_top_tottime"] = [line for line in text.getvalue().splitlines() if line.strip()][
        -17:
    ]
    extras["goal3.seconds.import"] = stats(measured).to_json()
    extras["goal3.seconds.executemany"] = stats(baseline).to_json()
    extras["goal3.seconds.floor"] = stats(floor).to_json()
    base, got = stats([count / s for s in baseline]), stats([count / s for s in measured])
    least = stats([count / s for s in floor])
    return [ratio_row("3", f"import of grade rows ({count:,})", baseline="sqlite3 executemany, 1 transaction",
                      measured="import_run.run", base=base, got=got, unit="rows/s", at_least=0.5,
                      note=f"rows = {len(rows[0])} students + {len(rows[1]):,} assessment results + "
                           f"{len(rows[2]):,} documents (tiny bytes)"),
            ratio_row("3*", "floor: rows + imported_records + unpack", baseline="sqlite3 executemany, 1 transaction",
                      measured="+ manifest unpacked, 1 bookkeeping row a record", base=base, got=least,
                      unit="rows/s", at_least=0.5, info=True,
                      note="the most an import can reach while it keeps the idempotency rows")]  # fmt: skip
