"""A background pass that failed: a full disk is one line an operator can act on, a bug keeps its traceback."""

from __future__ import annotations

import logging

import pytest

from node.background_errors import log_failure


def _failure_from_a_full_device() -> OSError:
    try:
        with open("/dev/full", "wb", buffering=0) as full:
            full.write(b"x")
    except OSError as exc:
        return exc
    raise AssertionError("/dev/full took a write")


def test_a_full_disk_is_logged_as_what_to_do(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("satchel.test")
    with caplog.at_level(logging.ERROR, logger="satchel.test"):
        log_failure(log, "outbox pass", _failure_from_a_full_device())
    [entry] = caplog.records
    assert entry.getMessage().startswith("outbox pass failed: the disk is full")
    assert "free space on the disk" in entry.getMessage() and entry.exc_info is None


def test_anything_else_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("satchel.test")
    with caplog.at_level(logging.ERROR, logger="satchel.test"):
        try:
            raise KeyError("surprise")
        except KeyError as exc:
            log_failure(log, "expiry pass", exc)
    [entry] = caplog.records
    assert entry.getMessage() == "expiry pass failed; will try again"
    assert entry.exc_info is not None and entry.exc_info[0] is KeyError
