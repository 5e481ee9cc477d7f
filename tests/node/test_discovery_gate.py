from __future__ import annotations

from fractions import Fraction

from hypothesis import example, given
from hypothesis import strategies as st

from node import discovery_gate
from node.discovery_gate import MISS_SECONDS, ORIGIN_SECONDS, DiscoveryGate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_missed_key_is_remembered_for_its_while() -> None:
    clock = Clock()
    gate = DiscoveryGate(per_minute=30, clock=clock)
    gate.missed("k1", "https://o.example")
    clock.now += MISS_SECONDS - 1
    assert gate.recently_missed("k1", "https://o.example")
    clock.now += 1
    assert not gate.recently_missed("k1", "https://o.example")
    assert not gate.recently_missed("never", "https://o.example")


def test_a_key_missed_from_one_origin_is_not_missed_from_another() -> None:
    # Whoever names a key id with an origin that does not answer must not keep the key's owner out.
    gate = DiscoveryGate(per_minute=30, clock=Clock())
    gate.missed("k1", "https://dead.example")
    assert gate.recently_missed("k1", "https://dead.example")
    assert not gate.recently_missed("k1", "https://owner.example")
    assert not gate.recently_missed("k1", None)


def test_an_origin_that_failed_rests_for_its_interval() -> None:
    clock = Clock()
    gate = DiscoveryGate(per_minute=30, clock=clock)
    assert not gate.origin_resting("https://a.example")
    gate.origin_failed("https://a.example")
    assert gate.origin_resting("https://a.example") and not gate.origin_resting("https://b.example")
    clock.now += ORIGIN_SECONDS - 1
    assert gate.origin_resting("https://a.example")
    clock.now += 1
    assert not gate.origin_resting("https://a.example")


def test_a_flood_of_distinct_names_keeps_memory_flat(monkeypatch) -> None:
    monkeypatch.setattr(discovery_gate, "REMEMBERED", 100)
    gate = DiscoveryGate(per_minute=30, clock=Clock())
    for i in range(1000):
        gate.missed(f"k{i}", "https://" + "o" * 100 + ".example")
        gate.origin_failed(f"https://{i}.example")
    assert len(gate._missed) == len(gate._failed) == 100
    long = "https://" + "x" * 8000 + ".example"
    gate.origin_failed(long)
    assert gate.origin_resting(long) and max(map(len, gate._failed)) == 64  # kept by its hash
    assert max(map(len, gate._missed)) == 64  # a key id and a long origin: kept by their hash
    assert gate.recently_missed("k999", "https://" + "o" * 100 + ".example")
    assert not gate.recently_missed("k0", "https://" + "o" * 100 + ".example")


@given(
    per_minute=st.integers(1, 120),
    steps=st.lists(st.floats(0, 30, allow_nan=False), max_size=300),
)
@example(per_minute=1, steps=[2.0, 30.0, 30.0, 29.0, 30.0])  # the draw the earlier lower bound failed on
def test_the_budget_is_never_exceeded(per_minute: int, steps: list[float]) -> None:
    # From a full bucket, over any run of T seconds, at most per_minute + per_minute * T / 60 lookups pass. Not
    # always that many: what accrues while the bucket is full is lost (a budget of 1 a minute, asked at 0, 2,
    # 32 and 62 s, is full again at 60 s and takes one at 62, not 1 + 2/60: a CI run's draw once expected more).
    # So it also gets what a bucket counted exactly would: the same count, unless the exact count of tokens came
    # within a hair of a whole token at some ask, where floating point may go either way.
    clock = Clock()
    gate = DiscoveryGate(per_minute=per_minute, clock=clock)
    start = clock.now
    taken = 0
    for step in [0.0, *steps]:
        clock.now += step
        while gate.take():
            taken += 1
    allowed = per_minute + per_minute * (clock.now - start) / 60
    assert taken <= allowed + 1e-9
    exact, at_an_edge = _exact_bucket(per_minute, [0.0, *steps])
    assert taken == exact or (at_an_edge and abs(taken - exact) == 1)


def _exact_bucket(per_minute: int, steps: list[float]) -> tuple[int, bool]:
    """(lookups a token bucket of ``per_minute`` gives when asked until refused after each step, whether its
    tokens came within 1e-9 of a whole one at an ask), in exact arithmetic: the same rule as DiscoveryGate,
    capacity per_minute, per_minute / 60 tokens a second."""
    capacity, rate = Fraction(per_minute), Fraction(per_minute, 60)
    tokens, taken, at_an_edge = capacity, 0, False
    for step in steps:
        grown = tokens + Fraction(step) * rate
        if step:  # only accrual rounds: a full bucket, or whole tokens taken away, are exact in floating point too
            at_an_edge |= abs(grown - round(grown)) < Fraction(1, 10**9) and grown >= Fraction(1, 2)
        tokens = min(capacity, grown)
        while tokens >= 1:
            tokens -= 1
            taken += 1
    return taken, at_an_edge
