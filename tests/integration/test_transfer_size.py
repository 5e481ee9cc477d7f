"""A transfer larger than a receiver accepts is refused at `satchel send`, before anything is sealed, stored
or sent, with how many students one transfer can carry."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from node.clock import now_iso
from node.home import open_node
from storage import students
from storage.database import write_transaction
from tests.bench.workloads import make_grade


def test_a_transfer_over_the_manifest_limit_is_refused_before_sealing(pair, tmp_path: Path) -> None:
    a, b, _mailbox = pair
    # A whole school moving at once: 2,000 students with 20 assessment results each, a 10 MiB manifest.
    grade = make_grade(students=2000, results_per_student=20, documents=0)
    node = open_node(a.home, a.env)
    try:
        with write_transaction(node.db):
            students.upsert(node.db, grade.students, now=now_iso())
    finally:
        node.close()
    a.cli("assessments", "import", str(grade.write_assessments_csv(tmp_path / "assessments.csv")), "--as", "coord")
    chosen = tmp_path / "students.txt"
    chosen.write_text("".join(f"{s.sis_id}\n" for s in grade.students), encoding="utf-8")

    refused = a.cli("send", "--to", b.domain, "--students-file", str(chosen), "--assessments", "--as", "coord",
                    ok=False)  # fmt: skip
    assert "(error code transfer.too_large)" in refused.stderr
    assert "the 2,000 students chosen carry 40,000 records" in refused.stderr
    assert "Hint: send them in groups of at most about 1," in refused.stderr  # about 1,500 fit
    # Nothing was kept or sent: no transfer, no outbox entry, no envelope, no disclosure.
    with sqlite3.connect(a.home / "satchel.db") as db:
        for table in ("transfers", "outbox", "disclosures"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert not [p for p in (a.home / "envelopes" / "out").glob("*") if p.is_file()]
    # Half of them go through.
    chosen.write_text("".join(f"{s.sis_id}\n" for s in grade.students[:1000]), encoding="utf-8")
    sent = json.loads(a.cli("send", "--to", b.domain, "--students-file", str(chosen), "--assessments", "--as",
                            "coord", "--json").stdout)  # fmt: skip
    assert sent["transfer_id"]
