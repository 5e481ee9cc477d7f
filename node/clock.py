"""Wall-clock time for the node. protocol/ never reads the clock; node/ passes ``now`` down."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from protocol.ids import ulid_randomness, ulid_time


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """A time as :func:`iso` writes it ("...Z") back to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_iso() -> str:
    return iso(utc_now())


_time_part: tuple[int, str] = (-1, "")  # (millisecond, its ULID characters): an import makes thousands a ms


def new_id() -> str:
    """A fresh ULID: this millisecond and 80 bits from the OS's CSPRNG (unique without coordination)."""
    global _time_part
    ms = time.time_ns() // 1_000_000
    if _time_part[0] != ms:
        _time_part = (ms, ulid_time(ms))
    return _time_part[1] + ulid_randomness(os.urandom(10))


def new_ids(count: int) -> list[str]:
    """``count`` fresh ULIDs at once, as ``new_id`` makes them (one clock read, one CSPRNG read)."""
    prefix = ulid_time(time.time_ns() // 1_000_000)
    randomness = os.urandom(10 * count)
    return [prefix + ulid_randomness(randomness[i : i + 10]) for i in range(0, 10 * count, 10)]
