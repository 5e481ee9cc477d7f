"""storage.temp_files: temp files of writers that died are swept; a live writer's never are."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from storage.temp_files import LEGACY_MIN_AGE, make_temp, sweep, temp_prefix, writer_of

HOUR = 3600.0


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _file(folder: Path, name: str, age: float) -> Path:
    path = folder / name
    path.write_bytes(b"half an envelope")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_only_old_files_of_writers_no_longer_running_go(tmp_path: Path) -> None:
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        orphan = _file(tmp_path, f"incoming-p{dead}-abc", age=2 * HOUR)
        recent = _file(tmp_path, f"incoming-p{dead}-def", age=60)  # maybe a writer this machine cannot see
        running = _file(tmp_path, f"incoming-p{live.pid}-ghi", age=10 * HOUR)
        mine = _file(tmp_path, f"{temp_prefix('incoming')}jkl", age=10 * HOUR)
        legacy_old = _file(tmp_path, "incoming-x7f3k2", age=LEGACY_MIN_AGE + HOUR)
        legacy_new = _file(tmp_path, "incoming-q9w8e7", age=2 * HOUR)
        other_kind = _file(tmp_path, f".sealing-p{dead}-mno", age=2 * HOUR)
        assert sweep(tmp_path, "incoming", min_age=HOUR) == 2
    finally:
        live.kill()
        live.wait()
    assert not orphan.exists() and not legacy_old.exists()
    assert (
        recent.exists() and running.exists() and mine.exists() and legacy_new.exists() and other_kind.exists()
    )
    assert sweep(tmp_path / "missing", "incoming") == 0


def test_made_temp_files_name_their_writer(tmp_path: Path) -> None:
    fd, name = make_temp(tmp_path, ".receiving")
    os.close(fd)
    assert Path(name).parent == tmp_path and Path(name).name.startswith(".receiving-p")
    assert writer_of(Path(name).name) == os.getpid()
    assert sweep(tmp_path, ".receiving", now=time.time() + 100 * HOUR) == 0  # this process still runs


@given(st.text(max_size=40))
def test_writer_of_never_raises(name: str) -> None:
    pid = writer_of(name)
    assert pid is None or re.search(rf"-p0*{pid}-", name)
