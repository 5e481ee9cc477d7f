"""Saving what an import has checked, a batch to a transaction, with the audit entries around it.

The roster and assessments imports check every row before they save any (an invalid file changes nothing),
then save in short transactions: the serving node writes from its event loop and waits for the database,
so one long transaction stalled it for the whole import. The audit log gets ``ACTION`` (who, which file,
how many) in the transaction of the first change, so no saved change is unattributed even after a crash,
and ``ACTION.finished`` with the counts at the end. A run stopped part-way by an error (its operator disabled
meanwhile, a constraint, Ctrl-C) after it saved something gets ``ACTION.stopped`` instead, with the counts so
far, how many rows of how many were done and why, not a ``.finished`` that reads as complete; a killed process
leaves ``ACTION`` alone. A run that changes nothing, skips nothing and has nothing else to count writes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from node.home import Node
from node.operators import record, still_allowed
from node.progress import Progress
from storage.database import bulk_cache, write_transaction
from storage.rows import batched

T = TypeVar("T")
# What each item is counted as. Other counts a save returns tell more of some of these items, so are not done
# twice in the progress; but, unlike unchanged items, they are worth an audit entry.
OUTCOMES = ("inserted", "updated", "unchanged", "skipped")


def save_in_batches(
    node: Node, items: Iterable[T], *, size: int, save: Callable[[list[T]], Mapping[str, int]], total: int,
    progress: Progress | None, actor: str, action: str, subject: str, started: Mapping[str, object],
    skipped: int, finished: Callable[[Counter[str]], Mapping[str, object]],
    changes: tuple[str, ...] = ("inserted", "updated"), permission: str = "records.write",
) -> Counter[str]:  # fmt: skip
    """``save`` writes one batch and returns its counts (``inserted``, ``updated``, ``unchanged``, and
    ``skipped`` for items it could not save; any other tells more of them: ``OUTCOMES``); their sums are
    returned. ``started`` is the first audit entry's details; ``skipped``, how many rows the check refused;
    ``finished`` gives the last entry's details from the sums; ``changes``, the counts that say a batch
    changed the database. ``progress`` hears how many of ``total`` are done after each commit. ``actor`` must
    still hold ``permission`` at each batch: one disabled meanwhile stops the run there, the batches before
    saved (node.operators.still_allowed)."""
    totals: Counter[str] = Counter()
    audited = False

    def done() -> int:
        return sum(totals[outcome] for outcome in OUTCOMES)

    try:
        with bulk_cache(node.db):
            for batch in batched(items, size):
                with write_transaction(node.db):
                    still_allowed(node, actor, permission, hint="another operator runs it again (`--as THEM`): "
                                  "what was saved is found unchanged", stopped=lambda: f"importing {subject} stopped "
                                  f"after {done():,} of {total:,} rows, which stay saved")  # fmt: skip
                    counts = save(batch)
                    if any(counts.get(name) for name in changes) and not audited:
                        record(node, actor, action, subject, started)
                        audited = True
                totals.update(counts)
                if progress is not None:
                    progress(done(), total)
                del batch  # before the next is read: one batch held at a time, not two
    except (Exception, KeyboardInterrupt) as exc:
        if audited:  # what was saved is attributed; the trail also says the run did not complete, and why
            _stopped(node, actor, f"{action}.stopped", subject, {**finished(totals), "done": done(), "of": total,
                     "error": getattr(exc, "code", type(exc).__name__), "reason": _reason(exc)})  # fmt: skip
        raise
    if audited or skipped or any(count for name, count in totals.items() if name != "unchanged"):
        with write_transaction(node.db):
            if not audited:
                record(node, actor, action, subject, started)
            record(node, actor, f"{action}.finished", subject, finished(totals))
    return totals


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return (getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:500]


def _stopped(node: Node, actor: str, action: str, subject: str, details: Mapping[str, object]) -> None:
    """Record that a run stopped, in its own transaction (the failed batch's was rolled back). Should the
    database itself be what failed, the entry cannot be written: the caller re-raises the error that stopped
    the run, not this one, and ``ACTION`` without an end still says the run did not finish."""
    try:
        with write_transaction(node.db):
            record(node, actor, action, subject, details)
    except Exception:  # see the docstring: the first error is the one to report
        pass
