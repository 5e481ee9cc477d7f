"""The benchmark workloads, seeded and sized by parameters: `doc`, `grade` and `roster` (issue 8).

* ``doc``: one incompressible document (256 MiB by default).
* ``grade``: a whole grade of one district: students with demographics, assessment results each, and
  documents of 0.1-4 MiB (log-uniform, so a thousand of them make about 1 GiB), all bytes
  incompressible. ``scale`` multiplies every document's size and nothing else, so two grades that differ
  only in their bytes can be compared.
* ``roster``: a district's local students and incoming students with realistic variations; this reuses
  tests/roster_generator.py (names with real-world skew, families, twins, typos, nicknames, swapped
  day/month).

Bytes come from a ChaCha20 keystream keyed by the seed: incompressible, reproducible, and generated
at several GiB/s so that making a workload costs little of the time budget.
"""

from __future__ import annotations

import csv
import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from protocol.roster import StudentRecord

from roster_generator import generate_incoming, generate_roster

MiB = 1 << 20
_BLOCK = 1 << 20


def random_chunks(seed: str, size: int, block: int = _BLOCK) -> Iterator[bytes]:
    """``size`` incompressible bytes determined by ``seed``, ``block`` bytes at a time."""
    key = hashlib.sha256(b"satchel/bench/bytes\x00" + seed.encode()).digest()
    keystream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    zeros = bytes(block)
    left = size
    while left > 0:
        n = min(block, left)
        yield keystream.update(zeros[:n])
        left -= n


def write_random_file(path: Path, size: int, seed: str) -> bytes:
    """Write the seeded bytes to ``path``; returns their SHA-256 (what storing a document computes)."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for chunk in random_chunks(seed, size):
            digest.update(chunk)
            out.write(chunk)
    return digest.digest()


# -- doc ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Doc:
    path: Path
    size: int
    sha256: bytes


def make_doc(folder: Path, *, size: int = 256 * MiB, seed: int = 8) -> Doc:
    path = folder / f"doc-{size}-{seed}.bin"
    return Doc(path, size, write_random_file(path, size, f"doc/{seed}"))


# -- grade ----------------------------------------------------------------------------------------------

SUBJECTS = (("STAR", "Math"), ("STAR", "Reading"), ("MAP", "Math"), ("MAP", "Reading"), ("MAP", "Science"))
DOC_TYPES = ("iep", "504", "evaluation", "transcript", "report_card", "other")


@dataclass(frozen=True, slots=True)
class PlannedDocument:
    index: int
    student_sis_id: str
    size: int
    doc_type: str
    title: str

    def chunks(self, seed: int) -> Iterator[bytes]:
        return random_chunks(f"grade/{seed}/doc/{self.index}/{self.size}", self.size)


@dataclass(frozen=True, slots=True)
class Grade:
    seed: int
    scale: float
    students: tuple[StudentRecord, ...]
    assessments: tuple[dict[str, str], ...]
    documents: tuple[PlannedDocument, ...]

    @property
    def document_bytes(self) -> int:
        return sum(d.size for d in self.documents)

    def write_assessments_csv(self, path: Path) -> Path:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.assessments[0]))
            writer.writeheader()
            writer.writerows(self.assessments)
        return path


def make_grade(
    *, students: int = 500, results_per_student: int = 20, documents: int = 1000, min_mib: float = 0.1,
    max_mib: float = 4.0, scale: float = 1.0, seed: int = 2024, grade: str = "07",
) -> Grade:  # fmt: skip
    """A grade of one school: ``students`` seventh-graders (by default) with their records.

    Sizes are log-uniform between ``min_mib`` and ``max_mib`` (mean (max-min)/ln(max/min), 1.06 MiB for
    the defaults: about 1 GiB for 1,000 documents), then multiplied by ``scale``.
    """
    rng = random.Random(seed)
    # The generated roster covers every grade; one grade is about 1/14 of it.
    pool = [s for s in generate_roster(students * 20, seed) if s.grade == grade and s.birth_date]
    if len(pool) < students:
        raise ValueError(f"the generated roster has only {len(pool)} students in grade {grade}")
    chosen = tuple(pool[:students])
    results = []
    for student in chosen:
        for k in range(results_per_student):
            assessment, subject = SUBJECTS[k % len(SUBJECTS)]
            month = 1 + (k // len(SUBJECTS)) * 3
            results.append({
                "student_sis_id": student.sis_id, "assessment": assessment, "subject": subject,
                "date": f"{2021 + k // 12:04d}-{month % 12 + 1:02d}-{1 + k % 27:02d}",
                "scale_score": f"{rng.uniform(300, 1200):.1f}", "percentile": str(rng.randint(1, 99)),
                "benchmark_category": rng.choice(("At/Above", "On Watch", "Intervention", "Urgent")),
            })  # fmt: skip
    low, high = math.log(min_mib * MiB), math.log(max_mib * MiB)
    planned = tuple(
        PlannedDocument(
            index=i, student_sis_id=chosen[i % students].sis_id,
            size=max(1, int(math.exp(rng.uniform(low, high)) * scale)), doc_type=DOC_TYPES[i % len(DOC_TYPES)],
            title=f"{DOC_TYPES[i % len(DOC_TYPES)].upper()} {i:04d}",
        )
        for i in range(documents)
    )  # fmt: skip
    return Grade(seed, scale, chosen, tuple(results), planned)


# -- roster ---------------------------------------------------------------------------------------------


def make_roster(local: int, *, seed: int = 20240901) -> list[StudentRecord]:
    return generate_roster(local, seed)


def make_incoming(local: list[StudentRecord], n: int, *, seed: int = 20240901) -> list:
    """(IncomingStudent, expected SIS id or None, variation kind) triples; see roster_generator."""
    return generate_incoming(local, n, seed + n)
