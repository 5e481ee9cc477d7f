"""Room on the disk: full-disk errors recognised from real OS and SQLite failures, and the up-front check."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.errors import StorageFull, storage_full
from storage.free_space import check_room, require_room, size_text


def test_a_write_to_a_full_device_is_storage_full() -> None:
    # /dev/full answers every write with ENOSPC: the kernel's own "no space left on device".
    with pytest.raises(OSError) as caught, open("/dev/full", "wb", buffering=0) as full:
        full.write(b"x")
    assert caught.value.errno == errno.ENOSPC
    found = storage_full(caught.value)
    assert isinstance(found, StorageFull) and found.code == "storage.full"
    assert "disk is full" in found.message and "free space" in (found.hint or "")


def test_a_database_that_cannot_grow_is_storage_full(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "small.db")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 4")  # SQLite's own ceiling: it answers SQLITE_FULL, as on a full disk
    with pytest.raises(sqlite3.OperationalError) as caught:
        conn.execute("INSERT INTO t VALUES (randomblob(100000))")
    found = storage_full(caught.value)
    assert isinstance(found, StorageFull)
    assert "database" in found.message
    conn.close()


def test_other_failures_are_not_taken_for_a_full_disk(tmp_path: Path) -> None:
    with pytest.raises(OSError) as missing:
        (tmp_path / "absent" / "file").write_bytes(b"x")
    assert storage_full(missing.value) is None
    with pytest.raises(sqlite3.OperationalError) as syntax:
        sqlite3.connect(":memory:").execute("SELEC 1")
    assert storage_full(syntax.value) is None
    assert storage_full(ValueError("no")) is None
    already = StorageFull("full")
    assert storage_full(already) is already


def test_room_is_checked_against_the_real_disk(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    assert check_room(tmp_path, 0, reserve=0) is None
    assert check_room(tmp_path / "not" / "made" / "yet", 0, reserve=0) is None  # the disk it would be made on
    short = check_room(tmp_path, 1 << 20, reserve=free)  # the reserve alone takes every free byte
    assert short is not None and short.needed == 1 << 20 and short.reserve == free
    assert short.missing >= 1 << 20
    with pytest.raises(StorageFull) as caught:
        require_room(tmp_path, 1 << 20, reserve=free, what="opening the transfer")
    message, hint = caught.value.message, caught.value.hint or ""
    assert message.startswith("opening the transfer needs 1.0 MiB on the disk that holds ")
    assert "in reserve (storage.reserve_mib)" in message and "free at least" in hint
    with pytest.raises(StorageFull) as no_reserve:
        require_room(tmp_path, free + (1 << 30), reserve=0, what="sealing the transfer")
    assert "reserve" not in no_reserve.value.message


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (5 << 20, "5.0 MiB"),
     (1 << 30, "1.0 GiB"), (3000 << 30, "3,000.0 GiB")],
)  # fmt: skip
def test_sizes_read_as_an_operator_reads_them(count: int, text: str) -> None:
    assert size_text(count) == text


@given(st.integers(min_value=0, max_value=1 << 50), st.integers(min_value=0, max_value=1 << 50))
def test_larger_sizes_never_read_smaller(a: int, b: int) -> None:
    def value(text: str) -> float:
        number, unit = text.split(" ")
        return float(number.replace(",", "")) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]

    small, large = sorted((a, b))
    assert value(size_text(small)) <= value(size_text(large))
    assert abs(value(size_text(a)) - a) <= max(a * 0.05, 0)
