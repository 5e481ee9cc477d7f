"""Temp files that name the process writing them, so the ones of a writer that died can be swept.

A blob, a sealed envelope or a received envelope is written under a temp name and renamed once complete;
a process killed mid-way (SIGKILL, power loss) leaves its temp file behind, sometimes gigabytes. Every
such name carries the writer's process id: a file whose writer is no longer running here and that nobody
has touched for a while is an orphan. A live writer's files are never removed, whatever their age; and a
file from a writer this machine cannot see (a reused id, another PID namespace) is only removed once it
has sat untouched for ``min_age`` seconds.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

# Names from before the writer's id was recorded: removed once they are a day old.
LEGACY_MIN_AGE = 86_400.0
DEFAULT_MIN_AGE = 3600.0
_PID = re.compile(r"-p(\d{1,10})-")


def temp_prefix(kind: str) -> str:
    """The start of a temp file's name for ``kind`` (e.g. ``incoming``) written by this process."""
    return f"{kind}-p{os.getpid()}-"


def make_temp(directory: Path, kind: str) -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``directory`` with this process's prefix: (descriptor, path)."""
    return tempfile.mkstemp(dir=directory, prefix=temp_prefix(kind))


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (the home is local to it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


def writer_of(name: str) -> int | None:
    """The process id a temp file's name records, if it records one."""
    match = _PID.search(name)
    return int(match.group(1)) if match else None


def writer_gone(name: str) -> bool:
    """Whether the temp file ``name`` records a writer that is not running any more (nor is this process)."""
    pid = writer_of(name)
    return pid is not None and pid != os.getpid() and not process_running(pid)


def sweep(directory: Path, kind: str, *, now: float | None = None, min_age: float = DEFAULT_MIN_AGE) -> int:
    """Remove ``kind`` temp files in ``directory`` whose writer is gone; returns how many went."""
    now = time.time() if now is None else now
    removed = 0
    try:
        candidates = [entry for entry in os.scandir(directory) if entry.name.startswith(f"{kind}-")]
    except FileNotFoundError:
        return 0
    for entry in candidates:
        pid = writer_of(entry.name)
        if pid is not None and (pid == os.getpid() or process_running(pid)):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue  # published or removed meanwhile
        if age < (min_age if pid is not None else max(min_age, LEGACY_MIN_AGE)) or not entry.is_file():
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed
