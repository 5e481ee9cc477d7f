"""Reviewing an import's matches many at a time, on real nodes: the walk (`import review --walk`) and decisions
by file (`import review --csv`, then `import decide --csv`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from cli.main import cli

from fixtures_oneroster import make_bundle, write_bundle
from support import District

# B's roster is these alone: Ava under another spelling (a possible match only), Quinlan under a misspelt family
# name; B's other students (100001 among them) are marked inactive, as having left.
B_VARIANTS = [
    {"sis_id": "B-9001", "given_name": "Ava", "family_name": "Martines", "birth_date": "2012-03-14", "sex": "F",
     "grade": "07", "school_id": "0101", "school_name": "Lincoln Middle School"},
    {"sis_id": "B-9009", "given_name": "Quinlan", "family_name": "Oyelaren", "birth_date": "2011-05-06", "sex": "M",
     "grade": "08", "school_id": "0101", "school_name": "Lincoln Middle School"},
]  # fmt: skip
A_STUDENTS = [
    {"sis_id": "400003", "given_name": "Ava", "family_name": "Martinez", "birth_date": "2012-03-14", "sex": "F",
     "grade": "07"},
    {"sis_id": "400009", "given_name": "Quinlan", "family_name": "Oyelaran", "birth_date": "2011-05-06", "sex": "M",
     "grade": "08"},
    {"sis_id": "400001", "given_name": "Zara", "family_name": "Okonkwo", "birth_date": "2012-02-02", "sex": "F",
     "grade": "07"},
]  # fmt: skip


def _json(d: District, *args: str):
    return json.loads(d.cli(*args).stdout)


def _walk(d: District, tid: str, answers: str | None, *extra: str):
    """`satchel import review ID --walk --as coord`, answering from stdin as a coordinator would type."""
    return CliRunner().invoke(cli, ["import", "review", tid, "--walk", "--as", "coord", *extra, "--home", str(d.home)],
                              input=answers, env=d.env, catch_exceptions=False)  # fmt: skip


def _grade(a: District, b: District, tmp_path: Path) -> str:
    """A transfer previewed at B: 100001 and 100004 (inactive at B) and 400003 uncertain, 400009 matched, 400001
    new."""
    b.cli("roster", "import", str(write_bundle(tmp_path / "b-more", make_bundle(B_VARIANTS))), "--as", "coord")
    a.cli("roster", "import", str(write_bundle(tmp_path / "a-more", make_bundle(A_STUDENTS))), "--as", "coord")
    args = [x for s in ("100001", "100004", "400003", "400009", "400001") for x in ("--student", s)]
    sent = json.loads(a.cli("send", "--to", "b.example.org", *args, "--as", "coord", "--json").stdout)
    tid = sent["transfer_id"]
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    status = {r["sender_sis_id"]: r["match_status"] for r in _json(b, "import", "review", tid, "--json")}
    assert status == {"100001": "uncertain", "100004": "uncertain", "400003": "uncertain", "400009": "matched",
                      "400001": "new"}, status  # fmt: skip
    return tid


def _renumber(b: District, tmp_path: Path, old: str, new: str) -> None:
    """B's SIS gives ``old`` the number ``new`` (same sourcedId): ``old`` is their former number from then on."""
    students = [v | {"sis_id": new, "source_id": f"u-{old}"} if v["sis_id"] == old else v for v in B_VARIANTS]
    b.cli("roster", "import", str(write_bundle(tmp_path / f"b-{new}", make_bundle(students))), "--as", "coord")


def _reviewed(b: District, tid: str) -> dict[str, tuple]:
    return {r["sender_sis_id"]: (r["decision"], r["decided_sis_id"], r["reviewed_by"])
            for r in _json(b, "import", "review", tid, "--json") if r["reviewed_by"]}  # fmt: skip


def _audit_reviews(b: District) -> list[dict]:
    entries = _json(b, "audit", "--json")
    return [e for e in entries if e["action"] == "import.review"]


def test_the_walk_decides_skips_quits_and_goes_on_where_it_stopped(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    # Uncertain ones first, in the transfer's order: 100001, 100004, 400003.
    first = _walk(b, tid, "x\n7\nc\ns\nq\n")
    assert first.exit_code == 0, first.output
    out = first.stdout
    assert "3 student(s) to review" in out and "Student 1 of 3: 100001 (uncertain" in out
    assert "1: 100001 (PROPOSED)" in out and "inactive since" in out  # the candidate beside the incoming student
    assert "'x' is not an answer here." in out and "There is no candidate 7" in out
    assert "100001: link to 100001 (reviewed)." in out
    assert "Note: 100001 is marked inactive here since" in first.stderr  # as `import match --to` says it
    assert "Student 2 of 3: 100004" in out
    assert "Student 3 of 3: 400003" in out and "Martines, Ava" in out and "Martinez, Ava" in out
    assert "Decided 1, skipped 1, not reached 1." in out
    assert _reviewed(b, tid) == {"100001": ("link", "100001", "coord")}
    (entry,) = _audit_reviews(b)
    assert entry["details"] == {"student": "100001", "decision": "link", "to": "100001",
                                "to_inactive_since": entry["details"]["to_inactive_since"]}  # fmt: skip

    # Again: the one decided is not asked again, the one skipped is. 400003 linked by SIS id to B-9009, where
    # 400009 is matched: the warning `import match` gives.
    second = _walk(b, tid, "1\ni\nB-9009\n")
    assert second.exit_code == 0, second.output
    assert "2 student(s) to review" in second.stdout and "Student 1 of 2: 100004" in second.stdout
    assert "400003: link to B-9009 (reviewed)." in second.stdout
    assert ("Warning: B-9009 also receives the records of incoming student(s) 400009 of this import"
            in second.stderr)  # fmt: skip
    assert f"satchel import match {tid} 400009 --to|--new|--later" in second.stderr
    assert "Decided 2, skipped 0, not reached 0." in second.stdout
    assert _reviewed(b, tid)["400003"] == ("link", "B-9009", "coord")

    # Nothing left among the uncertain; --all goes on with the matched and new ones no one reviewed.
    assert "Nothing to review" in _walk(b, tid, None).stdout
    third = _walk(b, tid, "n\nl\n", "--all")
    assert "Student 1 of 2: 400009 (matched" in third.stdout and "Student 2 of 2: 400001 (new)" in third.stdout
    assert _reviewed(b, tid)["400009"][0] == "new" and _reviewed(b, tid)["400001"][0] == "later"
    # A student set aside for later comes back in the next walk.
    fourth = _walk(b, tid, "c\n")
    assert "Student 1 of 1: 400001 (set aside for later)" in fourth.stdout
    assert "400001: new (reviewed)." in fourth.stdout
    assert len(_audit_reviews(b)) == 6


def test_the_walk_checks_a_typed_sis_id_and_follows_a_former_number(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    _renumber(b, tmp_path, "B-9001", "B-9100")
    # A SIS id no one here holds: said, nothing recorded, asked again; the former number is followed, with a note.
    walked = _walk(b, tid, "s\ns\ni\nNOPE-1\ni\nB-9001\nq\n")
    assert walked.exit_code == 0, walked.output
    assert "2: B-9001" in walked.stdout and "(no longer here)" in walked.stdout  # a candidate renumbered since
    assert "Not recorded: no student with SIS id 'NOPE-1'" in walked.stderr
    assert "Note: SIS id B-9001 is the former number of student B-9100" in walked.stderr
    assert "400003: link to B-9100 (reviewed)." in walked.stdout
    assert _reviewed(b, tid) == {"400003": ("link", "B-9100", "coord")}


def test_the_walk_refuses_without_a_terminal_or_answers_and_a_cut_walk_keeps_what_was_decided(
    pair, tmp_path: Path
) -> None:
    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    refused = _walk(b, tid, None)
    assert refused.exit_code != 0
    assert "needs a terminal, or the answers on stdin" in refused.stderr
    assert f"satchel import review {tid} --csv FILE" in refused.stderr
    assert "Student 1" not in refused.stdout and _reviewed(b, tid) == {}
    # The answers end mid-walk (a closed pipe, Ctrl-D): what was decided stays, nothing half-recorded.
    cut = _walk(b, tid, "l\n")
    assert cut.exit_code == 0 and "Decided 1, skipped 0, not reached 2." in cut.stdout
    assert _reviewed(b, tid) == {"100001": ("later", None, "coord")}
    # Who is not an operator here sees no one's data.
    stranger = CliRunner().invoke(cli, ["import", "review", tid, "--walk", "--as", "nobody", "--home", str(b.home)],
                                  input="c\n", env=b.env)  # fmt: skip
    assert stranger.exit_code != 0 and "no operator named 'nobody'" in stranger.stderr
    assert "Martinez" not in stranger.stdout
    for bad in (("--walk", "--json"), ("--walk", "--csv", str(tmp_path / "r.csv")), ("--all",),
                ("--csv", str(tmp_path / "r.csv"), "--status", "new")):  # fmt: skip
        usage = b.cli("import", "review", tid, *bad, "--as", "coord", ok=False)
        assert usage.exit_code == 2, bad


def _filled(path: Path, decisions: dict[str, str]) -> None:
    rows = list(csv.reader(path.open(newline="")))
    for row in rows[1:]:
        row[-1] = decisions.get(row[0], "")
    with path.open("w", newline="") as out:
        csv.writer(out).writerows(rows)


def test_decisions_by_file_round_trip(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    _renumber(b, tmp_path, "B-9009", "B-9900")
    sheet = tmp_path / "review.csv"
    wrote = b.cli("import", "review", tid, "--csv", str(sheet), "--all")
    assert "Wrote 5 student(s)" in wrote.stdout and f"satchel import decide {tid} --csv" in wrote.stdout
    assert sheet.stat().st_mode & 0o777 == 0o600  # students' names: the owner's to read
    rows = list(csv.DictReader(sheet.open(newline="")))
    assert [r["Student"] for r in rows] == ["100001", "100004", "400003", "400009", "400001"]
    assert {r["DECISION"] for r in rows} == {""}
    ava = rows[2]
    assert (ava["Name"], ava["Born"], ava["Match"], ava["Proposed"]) == ("Martinez, Ava", "2012-03-14", "uncertain",
                                                                        "100001")  # fmt: skip
    assert "B-9001 (Martines, Ava; 2012-03-14; grade 07; Lincoln Middle School" in ava["Candidates"]
    assert "inactive since" in rows[0]["Candidates"]
    # Only the uncertain ones without --all.
    b.cli("import", "review", tid, "--csv", str(tmp_path / "few.csv"))
    assert [r["Student"] for r in csv.DictReader((tmp_path / "few.csv").open())] == ["100001", "100004", "400003"]

    # confirm, a former SIS id (followed, with a note), new, and what the proposal was.
    _filled(sheet, {"100001": "confirm", "100004": "Confirm", "400003": "B-9001", "400009": "B-9009",
                    "400001": "new"})  # fmt: skip
    done = b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord")
    assert "Recorded 5 decision(s): 4 linked, 1 new, 0 later." in done.stdout
    assert "Note: line 5: SIS id B-9009 is the former number of student B-9900" in done.stderr
    assert "Note: 100004 is marked inactive here since" in done.stderr
    assert "Warning" not in done.stderr
    assert _reviewed(b, tid) == {"100001": ("link", "100001", "coord"), "100004": ("link", "100004", "coord"),
                                 "400003": ("link", "B-9001", "coord"), "400009": ("link", "B-9900", "coord"),
                                 "400001": ("new", None, "coord")}  # fmt: skip
    assert len(_audit_reviews(b)) == 5
    # Two students linked to one here: said once, for the file as recorded; a row left empty is not decided.
    _filled(sheet, {"400001": "B-9001"})
    shared = b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord", "--json")
    told = json.loads(shared.stdout)
    assert (told["recorded"], told["shared"]) == (1, [{"student": "400001", "to": "B-9001", "with": ["400003"]}])
    assert shared.stderr.count("Warning: B-9001 also receives the records") == 1
    # A later row undoing what an earlier one's warning would say: no warning.
    _filled(sheet, {"400001": "B-9001", "400003": "later"})
    assert "Warning" not in b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord").stderr
    _filled(sheet, {"400001": "new", "400003": "B-9001"})
    b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord")
    result = _json(b, "import", "run", tid, "--as", "coord", "--json")
    assert result["imported"] == 5, result


def test_a_bad_decisions_file_records_nothing_and_names_each_bad_row(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    sheet = tmp_path / "review.csv"
    b.cli("import", "review", tid, "--csv", str(sheet), "--all")
    written = sheet.read_bytes()
    _filled(sheet, {"100001": "later", "400003": "NOPE-1", "400001": "confirm"})
    with sheet.open("a", newline="") as out:
        csv.writer(out).writerow(["999999"] + [""] * 12 + ["new"])
        csv.writer(out).writerow(["100001"] + [""] * 12 + ["new"])
    refused = b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord", ok=False)
    assert refused.exit_code != 0 and "(error code import.decisions_invalid)" in refused.stderr
    assert "review.csv line 8, Student: student 100001 is decided on line 2 already" in refused.stderr
    b.cli("import", "run", tid, "--as", "coord")  # imports 400009 and 400001; the uncertain ones wait
    sheet.write_bytes(written)
    _filled(sheet, {"100001": "later", "400003": "NOPE-1", "400001": "confirm"})
    with sheet.open("a", newline="") as out:
        csv.writer(out).writerow(["999999"] + [""] * 12 + ["new"])
    refused = b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord", ok=False)
    err = refused.stderr
    assert "3 row(s) of review.csv do not fit this import; nothing was recorded" in err, err
    assert "review.csv line 4, DECISION: no student with SIS id NOPE-1 here" in err
    assert "review.csv line 6, Student: student 400001 is already imported" in err
    assert "review.csv line 7, Student: no incoming student 999999 in this import" in err
    assert "(error code import.decisions_invalid)" in err
    assert _reviewed(b, tid) == {} and _audit_reviews(b) == []

    for content, code in ((b"", "csv.malformed"), (b"\xff\xfe\x00S", "csv.encoding"),
                          (b"Student,Name\n100004,x\n", "csv.missing_column"),
                          (b'Student,DECISION\n"100004,later\n', "csv.malformed")):  # fmt: skip
        sheet.write_bytes(content)
        bad = b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord", ok=False)
        assert f"(error code {code})" in bad.stderr, (content, bad.stderr)
    missing = b.cli("import", "decide", tid, "--csv", str(tmp_path / "none.csv"), "--as", "coord", ok=False)
    assert "cannot read" in missing.stderr and "(error code input.invalid)" in missing.stderr
    sheet.write_bytes(b"Student,DECISION\n100001,later\n")
    unknown = b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "nobody", ok=False)
    assert "no operator named 'nobody'" in unknown.stderr
    assert _reviewed(b, tid) == {}
    inside = b.cli("import", "review", tid, "--csv", str(b.home / "review.csv"), ok=False)
    assert "inside the node's home" in inside.stderr and not (b.home / "review.csv").exists()


def _zara_here(b: District, tmp_path: Path) -> None:
    """B's roster gains Zara Okonkwo (B-9002), whom A sends as 400001: a preview run again matches them to her."""
    zara = {"sis_id": "B-9002", "given_name": "Zara", "family_name": "Okonkwo", "birth_date": "2012-02-02",
            "sex": "F", "grade": "07", "school_id": "0101", "school_name": "Lincoln Middle School"}  # fmt: skip
    b.cli("roster", "import", str(write_bundle(tmp_path / "b-zara", make_bundle([*B_VARIANTS, zara]))), "--as", "coord")


def test_confirm_in_a_file_is_refused_when_the_preview_proposes_another_student_since(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    sheet = tmp_path / "review.csv"
    b.cli("import", "review", tid, "--csv", str(sheet), "--all")
    # The clerk confirms 400001 as new; meanwhile the roster gains her and the preview is run again.
    _filled(sheet, {"400001": "confirm", "400009": "confirm"})
    _zara_here(b, tmp_path)
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    assert {r["sender_sis_id"]: r["proposed_sis_id"] for r in _json(b, "import", "review", tid, "--json")}[
        "400001"] == "B-9002"  # fmt: skip
    refused = b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord", ok=False)
    assert "(error code import.decisions_invalid)" in refused.stderr, refused.stderr
    assert ("review.csv line 6, DECISION: the proposal for student 400001 changed since it was shown (a new student "
            "then, B-9002 now") in refused.stderr  # fmt: skip
    assert _reviewed(b, tid) == {} and _audit_reviews(b) == []
    # A file without the Proposed column (a clerk kept Student and DECISION only) confirms what is proposed now.
    sheet.write_bytes(b"Student,DECISION\r\n400001,confirm\r\n")
    b.cli("import", "decide", tid, "--csv", str(sheet), "--as", "coord")
    assert _reviewed(b, tid) == {"400001": ("link", "B-9002", "coord")}


class _AnswersAfter(io.RawIOBase):
    """The walk's answers, given once ``before`` ran: the walk has read its queue by then (it reads the answers
    after), as when another coordinator acts while the first reads the screen."""

    def __init__(self, answers: bytes, before: Callable[[], None]) -> None:
        self._answers, self._before = answers, before

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self._before is not None:
            self._before()
            self._before = None  # type: ignore[assignment]
        n = min(len(buffer), len(self._answers))
        buffer[:n], self._answers = self._answers[:n], self._answers[n:]
        return n


def test_the_walk_does_not_confirm_a_proposal_it_did_not_show(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    _zara_here(b, tmp_path)

    def preview_again() -> None:
        other = b.spawn("import", "preview", tid, "--school", "0101", "--as", "coord")
        assert other.wait(timeout=60) == 0, other.stderr.read() if other.stderr else ""

    # 400001 is shown as new (nothing proposed); by the time c is typed the preview proposes B-9002.
    answers = io.BufferedReader(_AnswersAfter(b"s\ns\ns\ns\nc\nn\n", preview_again))
    walked = _walk(b, tid, answers, "--all")  # type: ignore[arg-type]
    assert walked.exit_code == 0, walked.output
    assert "Student 5 of 5: 400001 (new)" in walked.stdout
    assert "Not recorded: the proposal for student 400001 changed since it was shown" in walked.stderr
    assert "400001: new (reviewed)." in walked.stdout  # then the answer n, as the person meant
    assert _reviewed(b, tid) == {"400001": ("new", None, "coord")}


def test_a_huge_decisions_file_is_refused_before_it_is_read(pair, tmp_path: Path) -> None:
    import time

    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    huge = tmp_path / "review.csv"
    with huge.open("wb") as out:  # 1 GiB, sparse: a header, then as good as nothing for ever
        out.write(b"Student,DECISION\n100001,later\n")
        out.truncate(1 << 30)
    started = time.monotonic()
    refused = b.cli("import", "decide", tid, "--csv", str(huge), "--as", "coord", ok=False)
    assert time.monotonic() - started < 5
    assert "is larger than 64 MiB: it is not a review file" in refused.stderr, refused.stderr
    assert "(error code input.invalid)" in refused.stderr
    assert _reviewed(b, tid) == {}
    # Under the bound, a file deciding for 100 more students than the import's five is refused at the 106th.
    many = tmp_path / "many.csv"
    many.write_bytes(b"Student,DECISION\n" + b"".join(b"S%07d,later\n" % i for i in range(200_000)))
    refused = b.cli("import", "decide", tid, "--csv", str(many), "--as", "coord", ok=False)
    assert "many.csv line 107, Student: the file decides for 100 students more than the import's 5" in refused.stderr
    assert _reviewed(b, tid) == {}


def test_the_walk_shows_bidi_controls_in_the_senders_ids_as_tables_do(pair, tmp_path: Path) -> None:
    # A SIS id with a right-to-left override (manifests refuse control characters, not these) would reorder the
    # rest of each line the walk prints about them: "(reviewed)", the options.
    a, b, _ = pair
    sly = "4\u202e00077"
    a.cli("roster", "import", str(write_bundle(tmp_path / "a-sly", make_bundle([
        {"sis_id": sly, "given_name": "Eve\u2067", "family_name": "Sly", "birth_date": "2012-01-01", "sex": "F",
         "grade": "07"}]))), "--as", "coord")  # fmt: skip
    sent = json.loads(a.cli("send", "--to", "b.example.org", "--student", sly, "--as", "coord", "--json").stdout)
    tid = sent["transfer_id"]
    b.cli("accept", tid, "--code", sent["code"], "--as", "coord")
    b.cli("import", "preview", tid, "--school", "0101", "--as", "coord")
    walked = _walk(b, tid, "n\n", "--all")
    assert walked.exit_code == 0, walked.output
    assert "Student 1 of 1: 4<U+202E>00077 (new)" in walked.stdout, walked.stdout
    assert "4<U+202E>00077: new (reviewed)." in walked.stdout and "Sly, Eve<U+2067>" in walked.stdout
    assert "\u202e" not in walked.output and "\u2067" not in walked.output
    assert _reviewed(b, tid) == {sly: ("new", None, "coord")}


def test_the_walk_does_not_undo_what_another_coordinator_decided_meanwhile(pair, tmp_path: Path) -> None:
    a, b, _ = pair
    tid = _grade(a, b, tmp_path)
    sheet = tmp_path / "theirs.csv"
    sheet.write_bytes(b"Student,DECISION\r\n100001,B-9001\r\n")

    def decided_by_file() -> None:  # another coordinator, in another process, while 100001 is on the screen
        other = b.spawn("import", "decide", tid, "--csv", str(sheet), "--as", "coord")
        assert other.wait(timeout=60) == 0, other.stderr.read() if other.stderr else ""

    answers = io.BufferedReader(_AnswersAfter(b"n\ns\nl\nq\n", decided_by_file))
    walked = _walk(b, tid, answers)  # type: ignore[arg-type]
    assert walked.exit_code == 0, walked.output
    assert "Not recorded: student 100001 was decided meanwhile by coord: link to B-9001." in walked.stderr
    assert f"`satchel import match {tid} 100001 --to|--new|--later`" in walked.stderr
    assert "Decided 1, skipped 1, not reached 1." in walked.stdout  # 100004 set aside for later as asked
    assert _reviewed(b, tid) == {"100001": ("link", "B-9001", "coord"), "100004": ("later", None, "coord")}
