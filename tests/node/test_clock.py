"""node.clock.new_id: ULIDs of the current millisecond, unique without coordination."""

from __future__ import annotations

import time

from node.clock import new_id, new_ids
from protocol.ids import parse_ulid, ulid


def test_new_ids_are_current_parseable_and_unique() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(20_000)]  # many share a millisecond, so the time part is reused
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids[::997] + ids[-1:]:
        ms, rnd = parse_ulid(text)
        assert before <= ms <= after
        assert ulid(ms, rnd) == text
    assert [parse_ulid(t)[0] for t in ids] == sorted(parse_ulid(t)[0] for t in ids)


def test_ids_made_together_are_current_and_unique() -> None:
    before = time.time_ns() // 1_000_000
    ids = new_ids(5000) + new_ids(1) + new_ids(0)
    after = time.time_ns() // 1_000_000
    assert len(ids) == len(set(ids)) == 5001
    for text in ids:
        ms, rnd = parse_ulid(text)
        assert before <= ms <= after and ulid(ms, rnd) == text
