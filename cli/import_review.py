"""What `satchel import review --walk`, `import match` and `import decide` say: the walk through the students to
review (one at a time, beside their candidates), and the notes and warnings after a decision."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cli.common import print_table, shown

if TYPE_CHECKING:
    from node.home import Node
    from node.import_preview import Decided
    from node.import_review import Person, Recorded, ReviewItem


def tell_decided(
    transfer_id: str, student: str, decided: Decided, *, quiet: bool = False, shared: bool = True
) -> None:
    """The line saying what was recorded (unless ``quiet``), then the same notes and warnings wherever a person
    decides (`import match`, the walk, a decisions file)."""
    action, target = decided.student.target
    if not quiet:
        click.echo(f"{shown(student)}: {action}" + (f" to {target}" if target else "") + " (reviewed).")
    if decided.inactive_since:
        click.echo(f"Note: {target} is marked inactive here since {decided.inactive_since[:10]}; linked as you "
                   "chose (a child returning to the district).", err=True)  # fmt: skip
    if shared and decided.shared_with:
        tell_shared(transfer_id, student, target or "", decided.shared_with, decided.shared_imported)


def tell_shared(
    transfer_id: str, student: str, target: str, others: tuple[str, ...], imported: tuple[str, ...]
) -> None:
    # One already imported there cannot be decided again: then it is this one to change.
    again = next((s for s in others if s not in imported), student)
    click.echo(f"Warning: {target} also receives the records of incoming student(s) {shown(', '.join(others))} of this "
               "import: unless they are the same child, choose again for one of them "
               f"(`satchel import match {transfer_id} {shown(again)} --to|--new|--later`).", err=True)  # fmt: skip


def tell_former(recorded: Recorded) -> None:
    if recorded.former is not None:
        where = f"line {recorded.line}: " if recorded.line is not None else ""
        click.echo(f"Note: {where}{recorded.former.describe()}: linked to {recorded.former.current_sis_id}.",
                   err=True)  # fmt: skip


class Answers:
    """The coordinator's answers: typed at a terminal, or one a line on stdin (a script, a test). Without a
    terminal and with nothing on stdin (a job run from cron) the walk refuses before showing anyone."""

    def __init__(self, transfer_id: str) -> None:
        self._stdin = sys.stdin  # CliRunner's input= in tests
        self._tty = self._stdin.isatty()
        self._pending: str | None = None
        if not self._tty:
            first = self._stdin.readline()
            if not first:
                from protocol import InvalidInput

                raise InvalidInput(
                    "`import review --walk` asks a question per student: it needs a terminal, or the answers "
                    "on stdin (one a line), and stdin is empty", field="--walk",
                    hint=f"run it in a terminal; or decide by file: `satchel import review {transfer_id} --csv "
                         f"FILE`, fill DECISION, then `satchel import decide {transfer_id} --csv FILE`",
                )  # fmt: skip
            self._pending = first

    def ask(self, prompt: str) -> str | None:
        """The next answer, stripped; None at the end of the answers (or Ctrl-D / Ctrl-C at a terminal)."""
        if self._tty:
            try:
                return str(click.prompt(prompt, default="", show_default=False, prompt_suffix=" ")).strip()
            except click.Abort:
                click.echo()
                return None
        click.echo(f"{prompt} ", nl=False)
        line = self._pending if self._pending is not None else self._stdin.readline()
        self._pending = None
        if not line:
            click.echo()
            return None
        click.echo(line.rstrip("\r\n"))  # the transcript reads as it would have at a terminal
        return line.strip()


HELP = ("  c  confirm the proposal        1..N  link to that candidate     i  type a SIS id of a student here\n"
        "  n  create a new student       l     decide later              s  skip (ask next time)\n"
        "  q  quit (what you decided is kept)")  # fmt: skip


def _cell(p: Person, field: str) -> str:
    if p.missing:
        return "(no longer here)" if field == "name" else ""
    if field == "name":
        return f"{p.family_name}, {p.given_name}"
    if field == "score":
        return "" if p.score is None else str(p.score)
    if field == "status":
        return f"inactive since {p.inactive_since[:10]}" if p.inactive_since else ""
    return str(getattr(p, field)) or "-"


def show(item: ReviewItem, number: int, total: int) -> None:
    s = item.student
    click.echo()
    # The sender's ids and the reasons quoting them are another district's text: shown as table cells are.
    click.echo(f"Student {number} of {total}: {shown(s.sender_sis_id)} ({item.why}"
               + (f", score {s.score}" if s.score is not None and item.why != "new" else "") + ")")  # fmt: skip
    headers = ["", "incoming"] + [f"{i}: {c.sis_id}" + (" (proposed)" if c.sis_id == s.proposed_sis_id else "")
                                  for i, c in enumerate(item.candidates, 1)]  # fmt: skip
    fields = [("name", "name"), ("born", "birth_date"), ("state id", "state_id"), ("grade", "grade"),
              ("school", "school")]  # fmt: skip
    if item.candidates:
        fields += [("score", "score"), ("here", "status")]
    print_table(headers, [[label, _cell(item.incoming, f) if f not in ("score", "status") else "",
                           *(_cell(c, f) for c in item.candidates)] for label, f in fields])  # fmt: skip
    for reason in s.reasons:
        click.echo(f"  why: {shown(reason)}")
    if s.reviewed_by:
        click.echo(f"  set aside for later by {s.reviewed_by} on {(s.reviewed_at or '')[:10]}")


def _prompt(item: ReviewItem) -> str:
    proposal = item.proposal
    options = []
    if proposal is not None:
        options.append(f"c=confirm {proposal[1]}" if proposal[0] == "link" else "c=confirm new")
    if item.candidates:
        options.append(f"1-{len(item.candidates)}=link" if len(item.candidates) > 1 else "1=link")
    options += ["i=SIS id", "n=new", "l=later", "s=skip", "q=quit", "?=help"]
    return "Decide [" + ", ".join(options) + "]:"


def walk(node: Node, *, actor: str | None, transfer_id: str, everyone: bool) -> dict[str, int]:
    """Go through the students to review, recording each answer as `import match` would; returns the counts."""
    from node import import_review
    from node.operators import authorize
    from protocol import SatchelError

    authorize(node, actor, "transfers.act")  # before anyone is shown: an answer would not be recorded
    items = import_review.queue(node, transfer_id, everyone=everyone)
    counts = {"decided": 0, "skipped": 0, "left": len(items)}
    if not items:
        click.echo("Nothing to review: no uncertain student and none set aside for later"
                   + ("." if everyone else " (--all also shows those matched or new that no one reviewed)."))
        return counts
    answers = Answers(transfer_id)
    click.echo(f"{len(items)} student(s) to review. Each answer is recorded as you give it; q quits.")
    for number, item in enumerate(items, 1):
        show(item, number, len(items))
        while True:
            answer = answers.ask(_prompt(item))
            if answer is None or answer.lower() in ("q", "quit"):
                return _stop(counts)
            choice = _choice(item, answer, answers)
            if choice is None:
                continue
            if choice[0] == "skip":
                counts["skipped"] += 1
                counts["left"] -= 1
                break
            kind, sis_id = choice
            try:
                recorded = import_review.decide_one(node, actor=actor, transfer_id=transfer_id,
                                                    sender_sis_id=item.student.sender_sis_id, kind=kind,  # type: ignore[arg-type]
                                                    sis_id=sis_id, shown=item.student)  # fmt: skip
            except SatchelError as exc:  # a SIS id mistyped, or another coordinator imported them meanwhile
                click.echo(f"Not recorded: {exc.message}." + (f" Hint: {exc.hint}." if exc.hint else ""), err=True)
                continue
            tell_former(recorded)
            tell_decided(transfer_id, item.student.sender_sis_id, recorded.decided)
            counts["decided"] += 1
            counts["left"] -= 1
            break
    return _stop(counts)


def _stop(counts: dict[str, int]) -> dict[str, int]:
    click.echo(f"\nDecided {counts['decided']}, skipped {counts['skipped']}, not reached {counts['left']}. "
               "Run the walk again to go on; `satchel import run` imports those decided.")  # fmt: skip
    return counts


def _choice(item: ReviewItem, answer: str, answers: Answers) -> tuple[str, str | None] | None:
    """("confirm"|"link"|"new"|"later"|"skip", SIS id) for an answer, or None after saying why it is not one."""
    word = answer.lower()
    if word in ("?", "h", "help", ""):
        click.echo(HELP)
        return None
    if word in ("c", "confirm"):
        if item.proposal is None:
            click.echo("There is no proposal to confirm for this student: choose a candidate, a SIS id, n or l.")
            return None
        return "confirm", None
    if word.isdigit():
        index = int(word)
        if not 1 <= index <= len(item.candidates):
            click.echo(f"There is no candidate {word}" + (f": choose 1 to {len(item.candidates)}."
                                                          if item.candidates else "."))  # fmt: skip
            return None
        return "link", item.candidates[index - 1].sis_id
    if word in ("i", "id"):
        typed = answers.ask("SIS id of the student here (empty: back):")
        if not typed:
            return None
        return "link", typed
    if word in ("n", "new"):
        return "new", None
    if word in ("l", "later"):
        return "later", None
    if word in ("s", "skip"):
        return "skip", None
    click.echo(f"{answer!r} is not an answer here.")
    click.echo(HELP)
    return None
