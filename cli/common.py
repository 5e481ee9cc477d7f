"""What every command shares: finding the home, naming the operator, output, and the error translator."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli.progress import progress_line

if TYPE_CHECKING:
    from node.home import Node
    from node.progress import Progress
    from node.runtime import Runtime
    from protocol import SatchelError

# Every `satchel` run starts a new process, so the command modules import the node (aiohttp, SQLite,
# the crypto libraries: most of a second) inside the commands that use it: `satchel --help` and quick
# commands load only what they need.

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# How many rows a listing shows, and from where: bounded so that a mistyped number gets click's clear
# "not in the range" error rather than overflowing SQLite's 64-bit integers.
LIMIT = click.IntRange(1, 1_000_000)
OFFSET = click.IntRange(0, 1_000_000_000)


def fail(exc: SatchelError) -> None:
    click.echo(f"Error: {exc.message}", err=True)
    if exc.field:
        click.echo(f"Field: {exc.field}", err=True)
    rows = getattr(exc, "rows", ())
    for row in rows[:50]:
        click.echo(f"  {row}", err=True)  # protocol.csv_rows.RowError: "file line N, field: message"
    extra = getattr(exc, "count", len(rows)) - 50  # beyond those listed: kept, or only counted
    if extra > 0:
        click.echo(f"  ... and {extra} more", err=True)
    if exc.hint:
        click.echo(f"Hint: {exc.hint}", err=True)
    click.echo(f"(error code {exc.code})", err=True)


class SatchelGroup(click.Group):
    """A group whose commands never show a traceback for Satchel's own errors."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Bytes that are not UTF-8 (a terminal set to Latin-1) reach Python as lone surrogates, which no
        # name, id or path here can hold: say so plainly before any command trips over them.
        for arg in args:
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "replace").decode("utf-8")
                raise click.UsageError(
                    f'the argument "{shown}" is not UTF-8 text (? marks what is not); set the terminal to '
                    "UTF-8 (for example LANG=C.UTF-8) and type it again",
                    ctx,
                ) from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        ctx.meta.setdefault(STARTED, time.time())  # the outermost group's: when this command began
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            from protocol import SatchelError  # loaded by whatever raised it, if it is one
            from storage.errors import as_storage_error  # a full disk, a wrong user: the operator's to fix

            if isinstance(exc, BrokenPipeError) and _readers_gone():
                ctx.exit(SIGPIPE_EXIT)
            known = exc if isinstance(exc, SatchelError) else as_storage_error(exc)
            if known is not None:
                fail(known)
                ctx.exit(2)
            if os.environ.get("SATCHEL_DEBUG"):
                raise
            click.echo(f"Error: unexpected internal error ({type(exc).__name__})", err=True)
            click.echo("Hint: re-run with SATCHEL_DEBUG=1 to see the details, and report them", err=True)
            ctx.exit(3)


# What a shell reports for a program that SIGPIPE ended (128 + 13), as `cat` gets in `cat big | head -1`.
SIGPIPE_EXIT = 141


def _readers_gone() -> bool:
    """Whether the reader of stdout or stderr has gone (`satchel students list | head -1` once head has its
    line): then there is nobody to tell, and the rest of the output is dropped, as the signal module's
    documentation advises ("Note on SIGPIPE"). A broken pipe elsewhere (a peer's socket) is a real error."""
    import select

    gone = False
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue  # not a file (click's test runner captures output): it cannot lose its reader
        poller = select.poll()
        poller.register(fd, 0)  # no events asked for: POLLERR (a pipe without reader) is always reported
        if poller.poll(0):
            # Python flushes the streams at exit: what is still buffered must go nowhere, not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            gone = True
    return gone


class LazyChoice(click.Choice):
    """A choice among the values of ``module.attribute``, imported only when a command parses the option
    or shows its help (the values belong to the node, which quick commands do not load)."""

    def __init__(self, module: str, attribute: str) -> None:
        self._source = (module, attribute)
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        module, attribute = self._source
        return tuple(getattr(importlib.import_module(module), attribute))

    @choices.setter
    def choices(self, _ignored: object) -> None:
        pass  # click.Choice.__init__ stores its choices; these are looked up instead


def home_option(func: F) -> F:
    return click.option(
        "--home",
        type=click.Path(file_okay=False),
        help="The node's home directory (default: $SATCHEL_HOME, else ./satchel-home).",
    )(func)


def as_option(func: F) -> F:
    return click.option(
        "--as", "actor", envvar="SATCHEL_USER", metavar="USER",
        help="The operator doing this (or set SATCHEL_USER); recorded in the audit log.",
    )(func)  # fmt: skip


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")(
        func
    )


@contextmanager
def opened(home: str | None, *, expired_keys_ok: bool = False) -> Iterator[Node]:
    from node.home import open_node, resolve_home

    node = open_node(resolve_home(home), expired_keys_ok=expired_keys_ok)
    try:
        yield node
    finally:
        node.close()


def id_list(text: str | None) -> tuple[str, ...]:
    """Ids given as one option value, separated by commas (or semicolons, as spreadsheets export them)."""
    return tuple(part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip())


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# A row is one line: text an older version stored (a name with a tab or a line break, taken before the
# one-line rules) must not break the columns.
_CELL_BREAKS = str.maketrans({"\t": " ", "\n": " ", "\r": " "})
# Bidirectional embeddings, overrides and isolates in text another district wrote (a message, a note) would
# reorder the rest of the line in a terminal, the columns and marks like [signed] after them included: they
# are shown as what they are. --json keeps the text as it came.
_BIDI_CONTROLS = {c: f"<U+{c:04X}>" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_SHOWN = str.maketrans({**_CELL_BREAKS, **_BIDI_CONTROLS})


def shown(line: str) -> str:
    """One line of text, some of it another district's, as a table cell shows it (breaks, bidi controls)."""
    return line.translate(_SHOWN)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str = "(none)") -> None:
    rows = [["" if v is None else str(v).translate(_SHOWN) for v in row] for row in rows]
    if not rows:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


# How this node knows another district, in words for whoever decides whether to act on what it sent.
TRUST_WORDS = {
    "pinned": "pinned here after a fingerprint check",
    "directory": "listed by a trusted directory",
    "web": "known only from its own web site: confirm with its coordinator by phone",
    None: "not known here",
}


def trust_of(node: Node, domain: str) -> str | None:
    from storage import peers

    peer = peers.get(node.db, domain)
    return peer.trust if peer is not None else None


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters for a table column, ending in "…" when something was cut, so that
    a reader knows there is more (in ``--json``)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def print_fields(pairs: Iterable[tuple[str, Any]]) -> None:
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        shown = "" if value is None else str(value).translate(_BIDI_CONTROLS)
        click.echo(f"{(key + ':').ljust(width + 1)} {shown}")


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


T = TypeVar("T")


def run(
    home: str | None, work: Callable[[Node, Runtime], Awaitable[T]], *, upload_progress: Progress | None = None
) -> T:
    """Run network work for a command: the node opened, one HTTP session, the keyring and a peer client."""
    import asyncio

    from node.runtime import runtime

    async def main() -> T:
        with opened(home) as node:
            async with runtime(node, upload_progress=upload_progress) as rt:
                return await work(node, rt)

    return asyncio.run(main())


SETTLE_SECONDS = 60.0
STARTED = "satchel.started"  # click context meta: time.time() when the command began


def deliver_now(home: str | None, *, also: str | None = None) -> None:
    """Try the outbox once now; what fails stays queued for `satchel serve` to retry with backoff.

    The serving node's worker may have taken a job this command just queued: then the command waits for it
    (at most SETTLE_SECONDS), so that what it printed has reached the other district when it returns. Jobs
    queued before the command began (an upload already under way) are not its to wait for, except ``also``:
    the job the command asked to have delivered now (`transfers retry`), which the worker may be delivering
    at that very moment.
    """
    import random
    from datetime import UTC, datetime

    from node.clock import iso
    from node.outbox_worker import deliver_due, settle

    context = click.get_current_context(silent=True)
    began = context.meta.get(STARTED) if context is not None else None
    since = iso(datetime.fromtimestamp(began, UTC)) if began is not None else ""

    async def once(node: Node, rt: Runtime) -> tuple[int, bool]:
        # Not e-mails: the coordinators' notices are the serving node's to send, and a person must not wait out a
        # mail server's timeout for them.
        delivered = await deliver_due(node, rt.client, rng=random.SystemRandom(), mail=False)
        return delivered, await settle(node, timeout=0.5, created_since=since, job_id=also)

    with progress_line("Delivering") as line:
        delivered, settled = run(home, once, upload_progress=line)
    if delivered:
        click.echo(f"Delivered {delivered} message(s) to other nodes.", err=True)
    if not settled:
        click.echo("The serving node is delivering; waiting for it to finish...", err=True)
        if not run(home, lambda node, rt: settle(node, timeout=SETTLE_SECONDS, created_since=since, job_id=also)):
            click.echo("Still being delivered by the serving node; `satchel transfers list` shows when it"
                       " is done.", err=True)  # fmt: skip
    if since and tell_unsent(home, since):
        # What was done here stands (it is stored and audited), but what it was for did not happen: a script
        # or a registrar reading only the exit status must not take it for done.
        raise click.exceptions.Exit(1)


def tell_unsent(home: str | None, since: str) -> bool:
    """What this command queued and could not deliver, and why: a registrar who reads nothing would take a
    transfer waiting on a full disk or an offline node for one on its way. True when another node refused
    something for good."""
    from node.clock import now_iso
    from storage import outbox

    with opened(home) as node:
        # E-mails are the node's own notices, not what the command sent another district: the inbox has them.
        unsent = [j for j in outbox.unsent_since(node.db, now_iso(), created_since=since) if j.kind != "email"]
    for job in unsent:
        if job.status == "failed":
            click.echo(f"Refused by {job.peer}, for good: {job.last_error}", err=True)
        else:
            click.echo(f"Not delivered to {job.peer} yet: {job.last_error}", err=True)
    pending = {job.kind for job in unsent if job.status == "pending"}
    if pending:
        # A records request's answers and messages have no retry command of their own (`transfers retry`
        # takes a transfer id): the serving node is what sends them.
        more = ("; `satchel transfers show ID` shows its attempts, `satchel transfers retry ID` tries now"
                if pending - {"request"} else "; it must be running for them to go")  # fmt: skip
        click.echo(f"Hint: the serving node (`satchel serve`) tries again on its own, less often as time goes "
                   f"on{more}.", err=True)  # fmt: skip
    return any(job.status == "failed" for job in unsent)


def current_student(node: Node, sis_id: str) -> str:
    """The SIS id of the student ``sis_id`` names, for a command that only reads: a former number (the SIS
    renumbered the student) is followed to the current one with a note on stderr, so that --json stays as it
    was. Commands that act on a student (send, release, file a record) refuse a former number instead, the hint
    naming the current one (storage.students.require): the coordinator should see the change before acting."""
    from storage import students

    stored, was = students.resolve(node.db, sis_id)
    if was is not None:
        click.echo(f"Note: {was.describe()}: showing {was.current_sis_id}.", err=True)
    return stored.record.sis_id
