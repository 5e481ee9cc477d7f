"""Real nodes for the benchmarks, made the way tests/integration makes them.

Homes are created in-process (as the integration tests' fixtures do); each node serves as a real
`satchel serve --dev` subprocess on a loopback port, with its output in a file (a pipe nobody reads
could fill and stall the server mid-benchmark). What a coordinator would run is timed as a real
`satchel` process, so the time includes starting Python and the process's own peak memory is known.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.clock import new_id, now_iso
from node.home import Node, init_home, open_node
from storage import records, students
from storage.database import write_transaction
from storage.records import Document
from tests.bench.common import SATCHEL, ProcessRun, proc_memory, run_process
from tests.bench.workloads import Grade

from fixtures_oneroster import sample_bundle, write_bundle
from support import DEV_ENV, free_port, node_fields, run_cli


@dataclass
class District:
    home: Path
    domain: str
    url: str
    env: dict[str, str]
    server: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    runs: list[ProcessRun] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def setup(self, *args: str) -> str:
        """A command run in-process (setup, not measured); returns its output."""
        return run_cli(self.home, *args, env=self.env).stdout

    def cli(self, *args: str, timeout: float = 600.0) -> ProcessRun:
        """A command as its own process, as a coordinator runs it: timed, with its peak RSS."""
        run = run_process([SATCHEL, *args, "--home", str(self.home)], env=self.env, timeout=timeout).check()
        self.runs.append(run)
        return run

    def open(self) -> Node:
        return open_node(self.home, {**os.environ, **self.env})

    def start(self) -> None:
        self.log_path = self.home.parent / f"{self.domain}-serve.log"
        log = self.log_path.open("ab")
        offset = log.tell()  # the log is appended to: look for this start's line only
        self.server = subprocess.Popen(
            [SATCHEL, "serve", "--home", str(self.home), "--port", str(self.port), "--dev"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while b"listening on" not in self.log_path.read_bytes()[offset:]:
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.domain} did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def memory(self) -> dict[str, int]:
        return proc_memory(self.server.pid) if self.server else {}

    def stop(self) -> dict[str, int]:
        """Stop the server; returns its memory (VmHWM is its peak RSS over its whole life) just before."""
        if self.server is None:
            return {}
        memory = self.memory()
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.server = None
        return memory

    def transfer_state(self, transfer_id: str) -> str | None:
        with sqlite3.connect(f"file:{self.home / 'satchel.db'}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute("SELECT state FROM transfers WHERE transfer_id = ?", [transfer_id]).fetchone()
        return row[0] if row else None


def make_district(
    root: Path, domain: str, *, env: dict[str, str] | None = None, roster: bool = True
) -> District:
    """A district home with an admin, a coordinator, a contact, transfers on and (by default) a roster."""
    url = f"http://127.0.0.1:{free_port()}"
    home = root / domain
    init_home(home, node=node_fields(domain, url))
    district = District(home, domain, url, {**DEV_ENV, **(env or {})})
    district.setup(
        "users", "add", "admin", "--email", f"admin@{domain}", "--name", "Ada Admin", "--role", "admin"
    )
    district.setup("users", "add", "coord", "--email", f"coord@{domain}", "--name", "Cory Coordinator",
                   "--role", "coordinator", "--as", "admin")  # fmt: skip
    district.setup("contact", "set", "--as", "coord", "--name", "Cory Coordinator", "--title", "Registrar",
                   "--email", f"coord@{domain}", "--phone", "+1 217-555-0100")  # fmt: skip
    district.setup("transfers", "enable", "--as", "coord")
    if roster:
        bundle = write_bundle(root / f"roster-{domain}", sample_bundle())
        district.setup("roster", "import", str(bundle), "--as", "coord")
    return district


def pin(a: District, b: District) -> None:
    """Each pins the other (both must be serving), as coordinators do after comparing fingerprints."""
    a.setup("peers", "add", b.url, "--yes", "--as", "coord")
    b.setup("peers", "add", a.url, "--yes", "--as", "coord")


@dataclass(frozen=True, slots=True)
class LoadedGrade:
    grade: Grade
    students_file: Path
    document_ids: tuple[str, ...]


def load_grade(district: District, grade: Grade, folder: Path, *, with_students: bool = True) -> LoadedGrade:
    """Put a grade into a district as its own records: students, assessment results, documents.

    Documents go through the blob store as `satchel documents add` stores them (hashed, fsynced, renamed)
    but straight from generated bytes, without writing each one to a file first.
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = now_iso()
    node = district.open()
    try:
        if with_students:
            with write_transaction(node.db):
                students.upsert(node.db, grade.students, now=now)
        ids = []
        docs = []
        for planned in grade.documents:
            blob = node.blobs.put_chunks(planned.chunks(grade.seed))
            doc_id = new_id()
            ids.append(doc_id)
            docs.append(Document(
                doc_id=doc_id, student_sis_id=planned.student_sis_id, doc_type=planned.doc_type,
                title=planned.title, filename=f"{planned.title.lower().replace(' ', '-')}.pdf",
                media_type="application/pdf", length=blob.length, sha256=blob.sha256, status="active",
                origin={"kind": "local"}, created_at=now, created_by="coord",
            ))  # fmt: skip
        with write_transaction(node.db):
            for doc in docs:
                records.add_document(node.db, doc)
    finally:
        node.close()
    if with_students:
        csv_path = grade.write_assessments_csv(folder / "assessments.csv")
        district.setup("assessments", "import", str(csv_path), "--as", "coord")
    students_file = folder / "students.txt"
    students_file.write_text("".join(f"{s.sis_id}\n" for s in grade.students), encoding="utf-8")
    return LoadedGrade(grade, students_file, tuple(ids))


def concatenated_documents(district: District, loaded: LoadedGrade, path: Path) -> int:
    """The grade's documents back to back in one file: the same bytes an envelope carries."""
    node = district.open()
    total = 0
    try:
        with path.open("wb") as out:
            for doc_id in loaded.document_ids:
                doc = records.get_document(node.db, doc_id)
                for chunk in node.blobs.read_chunks(doc.sha256):
                    out.write(chunk)
                    total += len(chunk)
    finally:
        node.close()
    return total


def wait_for(condition: Any, *, timeout: float = 300.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def json_of(run: ProcessRun) -> Any:
    return json.loads(run.stdout)


def stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
