"""How much looking-up a stranger's request may set off (spec/request-signing.md §7.1, "Bounding discovery").

A request signed with a key this node does not know makes it ask every trusted directory and then fetch the
URL the request itself names in ``Satchel-Origin``. Anyone can send such requests without any key, so
without a bound each one would cost the directories (the state agency's node) a query apiece and make this
node connect wherever it is told. The gate answers, before any lookup:

* a key id that was looked up from an origin and not found in the last ``MISS_SECONDS`` is not looked up
  from that origin again. Per origin, because the lookup comes before the signature is checked: anyone
  may name a district's (public) key id with an origin that does not answer, and a miss per key id alone
  would then refuse the district's own requests, naming its real origin, for as long;
* a ``Satchel-Origin`` that did not give the key asked of it (unreachable, no descriptor, a descriptor
  without that key) is not fetched again for ``ORIGIN_SECONDS``, whatever key names it next; one that
  gave the key may be asked again at once (a peer's next rotation);
* the whole node looks up at most ``per_minute`` unknown keys a minute (a token bucket, so a burst of that
  many is allowed after a quiet minute).

A legitimate new peer is only delayed: its node retries `signature.key_unknown` and 5xx answers.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

MISS_SECONDS = 300.0
ORIGIN_SECONDS = 60.0
REMEMBERED = 10_000  # misses and origins each: a flood of distinct ones evicts the oldest, memory stays flat


class DiscoveryGate:
    def __init__(self, *, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._tokens = self._capacity
        self._filled_at = clock()
        self._missed: OrderedDict[str, float] = OrderedDict()  # key id and origin -> when a lookup found nothing
        self._failed: OrderedDict[str, float] = OrderedDict()  # origin -> when it last did not give a key

    def recently_missed(self, key_id: str, origin: str | None) -> bool:
        return _within(self._missed, _pair(key_id, origin), self._clock(), MISS_SECONDS)

    def take(self) -> bool:
        """Spend one lookup of the node's budget; False when it is spent for now."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._filled_at) * self._rate)
        self._filled_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def origin_resting(self, origin: str) -> bool:
        return _within(self._failed, origin, self._clock(), ORIGIN_SECONDS)

    def origin_failed(self, origin: str) -> None:
        _remember(self._failed, origin, self._clock())

    def missed(self, key_id: str, origin: str | None) -> None:
        _remember(self._missed, _pair(key_id, origin), self._clock())


def _pair(key_id: str, origin: str | None) -> str:
    return f"{key_id}\x00{origin or ''}"  # a key id has no NUL (its format is checked before any lookup)


def _key(name: str) -> str:
    # A header may be 8 KiB: remembering 10,000 of them as sent would be 80 MiB.
    return name if len(name) <= 64 else hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _within(seen: OrderedDict[str, float], name: str, now: float, seconds: float) -> bool:
    name = _key(name)
    at = seen.get(name)
    if at is None:
        return False
    if now - at < seconds:
        return True
    del seen[name]
    return False


def _remember(seen: OrderedDict[str, float], name: str, now: float) -> None:
    name = _key(name)
    seen[name] = now
    seen.move_to_end(name)
    while len(seen) > REMEMBERED:
        seen.popitem(last=False)
