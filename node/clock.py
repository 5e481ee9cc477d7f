"""Wall-clock time for the node. protocol/ never reads the clock; node/ passes ``now`` down."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from protocol.ids import ulid


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(utc_now())


def new_id() -> str:
    return ulid(time.time_ns() // 1_000_000, os.urandom(10))
