"""Goal 2: a whole grade end to end between two real nodes on loopback, against age -e then age -d.

District A holds the grade (500 students, 10,000 assessment results, 1,000 documents); for every run a
new district B is made, both serve as `satchel serve --dev` processes, and the clock runs from the
coordinator starting `satchel send` at A until `satchel import run` at B has finished:

    send (seal, deliver) -> B stores the envelope -> accept with the code (open) -> import preview -> run

Every command is its own process, as a coordinator runs it. Argon2id has its production cost (t=3,
m=256 MiB) when sealing and opening. The baseline is `age -e` then `age -d` over the grade's documents
concatenated into one file: the same bytes, the same disk.

Floor (rows 2a*, information; tests/bench/transfer_floor.py): the same bytes sealed, copied once and opened in
this process, each copy synced and not: the per-byte work no transfer can skip, without the nodes'
processes, HTTP, database or import. Their ratios to the baseline bound what the nodes could reach.

Memory: each server's peak RSS (VmHWM from /proc just before it stops; a sampler also watches VmRSS),
and each command's peak RSS (wait4's rusage), at the grade's size and at half its document bytes.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.bench.common import (
    Extras,
    GiB,
    MiB,
    Row,
    RssSampler,
    drop_file,
    log,
    ratio_row,
    run_process,
    stats,
    tool,
)
from tests.bench.nodes import (
    District,
    LoadedGrade,
    concatenated_documents,
    json_of,
    load_grade,
    make_district,
    pin,
    wait_for,
)
from tests.bench.transfer_floor import Floor, document
from tests.bench.workloads import make_grade

SCHOOL = "0101"  # Lincoln Middle School, in the sample roster every district here imports
STEPS = ("send", "delivered", "accept", "preview", "import")


def _one_transfer(a: District, folder: Path, n: int, loaded: LoadedGrade) -> dict[str, float]:
    """One timed transfer to a new district; returns seconds per step and peak memory (KiB) per process."""
    b = make_district(folder / f"run-{n}", f"b{n}.example.org")
    a.start()
    b.start()
    try:
        pin(a, b)
        assert a.server is not None and b.server is not None
        with RssSampler({"a": a.server.pid, "b": b.server.pid}) as sampler:
            sent = a.cli("send", "--to", b.domain, "--students-file", str(loaded.students_file), "--documents",
                         ",".join(loaded.document_ids), "--assessments", "--as", "coord", "--json")  # fmt: skip
            answer = json_of(sent)
            tid = answer["transfer_id"]
            started_wait = time.perf_counter()
            # `satchel send` delivers at once; should that fail, A's outbox worker retries within seconds.
            wait_for(lambda: b.transfer_state(tid) == "received", timeout=600, what="delivery")
            waited = time.perf_counter() - started_wait
            accepted = b.cli("accept", tid, "--code", answer["code"], "--as", "coord")
            preview = b.cli("import", "preview", tid, "--school", SCHOOL, "--as", "coord", "--json")
            imported = b.cli("import", "run", tid, "--as", "coord", "--json")
        result = json_of(imported)
        if result["imported"] != len(loaded.grade.students):
            raise RuntimeError(f"import incomplete: {result}")
        memory_a, memory_b = a.memory(), b.memory()
    finally:
        a.stop()
        b.stop()
    shutil.rmtree(folder / f"run-{n}", ignore_errors=True)
    for leftover in (a.home / "envelopes" / "out").glob("*.env"):
        leftover.unlink()
    return {
        "send": sent.wall, "delivered": waited, "accept": accepted.wall, "preview": preview.wall,
        "import": imported.wall, "total": sent.wall + waited + accepted.wall + preview.wall + imported.wall,
        "rss.send": sent.max_rss_kib, "rss.accept": accepted.max_rss_kib, "rss.preview": preview.max_rss_kib,
        "rss.import": imported.max_rss_kib, "rss.server_a": memory_a.get("VmHWM", 0),
        "rss.server_b": memory_b.get("VmHWM", 0), "rss.server_a_sampled": sampler.peak_kib["a"],
        "rss.server_b_sampled": sampler.peak_kib["b"], "bytes": sent_bytes(answer),
    }  # fmt: skip


def sent_bytes(answer: dict[str, object]) -> float:
    return float(answer.get("bytes", 0))  # type: ignore[arg-type]


def _age_round_trip(folder: Path, source: Path) -> float:
    key = folder / "age.key"
    if not key.exists():
        run_process(["age-keygen", "-o", str(key)]).check()
    recipient = next(line.split(": ", 1)[1] for line in key.read_text().splitlines() if "public key" in line)
    sealed, opened = folder / "grade.age", folder / "grade.out"
    drop_file(sealed)
    drop_file(opened)
    encrypt = run_process(["age", "-e", "-r", recipient, "-o", str(sealed), str(source)]).check()
    decrypt = run_process(["age", "-d", "-i", str(key), "-o", str(opened), str(sealed)]).check()
    drop_file(sealed)
    drop_file(opened)
    return encrypt.wall + decrypt.wall


def run(folder: Path, *, runs: int, half_runs: int, scale: float, extras: Extras) -> list[Row]:
    log("  goal 2: making district A and its grade")
    a = make_district(folder, "a.example.org")
    full = make_grade(scale=scale)
    half = make_grade(scale=scale / 2)
    # The same students and results (same seed), once; two sets of documents, one half the size of the other.
    whole = load_grade(a, full, folder / "grade-full")
    halved = load_grade(a, half, folder / "grade-half", with_students=False)
    loaded = {1.0: whole, 0.5: LoadedGrade(half, whole.students_file, halved.document_ids)}
    concat = folder / "grade.bin"
    size = concatenated_documents(a, loaded[1.0], concat)
    extras["goal2.document_bytes"] = size
    extras["goal2.document_bytes_half"] = half.document_bytes
    extras["goal2.documents"] = len(full.documents)
    extras["goal2.students"] = len(full.students)
    extras["goal2.assessment_results"] = len(full.assessments)
    age = bool(tool("age") and tool("age-keygen"))
    measured: dict[float, list[dict[str, float]]] = {1.0: [], 0.5: []}
    baseline: list[float] = []
    floor = Floor(folder, document(concat))
    floors: dict[bool, list[float]] = {True: [], False: []}
    order = [1.0] * runs + [0.5] * half_runs
    for n, which in enumerate(order):
        log(
            f"  goal 2: run {n + 1}/{len(order)} ({loaded[which].grade.document_bytes / GiB:.2f} GiB of documents)"
        )
        if age and which == 1.0:
            baseline.append(_age_round_trip(folder, concat))
        if which == 1.0:
            for synced in floors:
                floors[synced].append(floor.seconds(synced=synced))
        measured[which].append(_one_transfer(a, folder, n, loaded[which]))
    drop_file(concat)
    for synced, seconds in floors.items():
        extras[f"goal2.floor_seconds.{'synced' if synced else 'not_synced'}"] = stats(seconds).to_json()
    for which, results in measured.items():
        for key in results[0]:
            extras[f"goal2.{'full' if which == 1.0 else 'half'}.{key}"] = stats(
                [r[key] for r in results]
            ).to_json()
    if baseline:
        extras["goal2.age_round_trip_seconds"] = stats(baseline).to_json()
    return _rows(measured, baseline, size, floors)


def _rows(
    measured: dict[float, list[dict[str, float]]], baseline: list[float], size: int, floors: dict[bool, list[float]]
) -> list[Row]:  # fmt: skip
    full, half = measured[1.0], measured[0.5]
    got = stats([size / MiB / r["total"] for r in full])
    rows = []
    gib = f"{size / GiB:.2f} GiB"
    steps = (
        ", ".join(f"{s} {stats([r[s] for r in full]).median:.1f}s" for s in STEPS) + " (send delivers too)"
    )
    if baseline:
        base = stats([size / MiB / s for s in baseline])
        ratio = got.median / base.median
        rows.append(Row("2a", f"grade ({gib}) end to end", "age -e then age -d", "send..import run", "MiB/s",
                        ">= 0.6x", base, got, ratio, ratio >= 0.6, note=f"median steps: {steps}"))  # fmt: skip
        for synced, seconds in floors.items():
            rows.append(ratio_row(
                "2a*", f"floor: seal, copy, open ({'synced' if synced else 'not synced'})",
                baseline="age -e then age -d", measured="in one process" + (", each copy synced" if synced else ""),
                base=base,
                got=stats([size / MiB / s for s in seconds]), unit="MiB/s", at_least=0.6, info=True,
                note="" if synced else "the most a transfer that seals, carries and opens an envelope can reach",
            ))  # fmt: skip
    else:
        rows.append(Row("2a", f"grade ({gib}) end to end", "age (not installed)", "send..import run", "MiB/s",
                        ">= 0.6x", None, got, None, None, note="skipped: install age"))  # fmt: skip
    for goal, key, who in (
        ("2b", "rss.server_a", "node A (sender)"),
        ("2c", "rss.server_b", "node B (receiver)"),
    ):
        peak = stats([r[key] / 1024 for r in full])
        low = stats([r[key] / 1024 for r in half])
        rows.append(Row(goal, f"peak RSS of {who} server", "limit 200 MiB", "VmHWM", "MiB", "< 200 MiB",
                        None, peak, peak.max / 200, peak.max < 200))  # fmt: skip
        ratio = peak.max / low.max
        rows.append(Row(goal + "'", f"{who} server RSS, bytes x2", "half the bytes", "full grade", "MiB",
                        "<= 1.10x", low, peak, ratio, ratio <= 1.10))  # fmt: skip
    for key, what in (("rss.send", "satchel send"), ("rss.accept", "satchel accept"),
                      ("rss.preview", "satchel import preview"), ("rss.import", "satchel import run")):  # fmt: skip
        peak, low = stats([r[key] / 1024 for r in full]), stats([r[key] / 1024 for r in half])
        note = (
            "send and accept each hold Argon2id's 256 MiB once (production cost, not per byte); every "
            "command is its own process, as coordinators run them"
            if key == "rss.send"
            else ""
        )
        rows.append(Row("2*", f"peak RSS of `{what}`", "half the bytes", "full grade", "MiB", "flat",
                        low, peak, peak.max / low.max, None, info=True, note=note))  # fmt: skip
    return rows
