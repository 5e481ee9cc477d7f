"""Identifiers: ULIDs (26 Crockford base32 characters: 48-bit millisecond time, 80 random bits).

Pure: the caller supplies the time and the randomness, so ids in vectors and tests are reproducible.
"""

from __future__ import annotations

from protocol.errors import InvalidInput

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
# Two characters per 10 bits: generating ids is then 8 look-ups (new_id makes 11,000 for a grade's import).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def ulid(unix_ms: int, randomness: bytes) -> str:
    if not 0 <= unix_ms < 1 << 48:
        raise InvalidInput("ULID time must fit in 48 bits", field="unix_ms")
    if len(randomness) != 10:
        raise InvalidInput("ULID randomness is 10 bytes", field="randomness")
    return ulid_time(unix_ms) + ulid_randomness(randomness)


def ulid_time(unix_ms: int) -> str:
    """The first 10 characters of a ULID: its 48-bit time, as 50 bits with two leading zero bits.

    Callers that make many ids in one millisecond (node.clock.new_id) reuse it; ``unix_ms`` is not checked.
    """
    p = _PAIRS
    return "".join((p[unix_ms >> 40], p[(unix_ms >> 30) & 1023], p[(unix_ms >> 20) & 1023],
                    p[(unix_ms >> 10) & 1023], p[unix_ms & 1023]))  # fmt: skip


def ulid_randomness(randomness: bytes) -> str:
    """The last 16 characters of a ULID: 80 random bits, which are exactly 16 base32 characters."""
    v, p = int.from_bytes(randomness, "big"), _PAIRS
    return "".join((p[v >> 70], p[(v >> 60) & 1023], p[(v >> 50) & 1023], p[(v >> 40) & 1023],
                    p[(v >> 30) & 1023], p[(v >> 20) & 1023], p[(v >> 10) & 1023], p[v & 1023]))  # fmt: skip


def parse_ulid(text: str, *, field: str = "id") -> tuple[int, bytes]:
    """Return (unix_ms, randomness); raise InvalidInput naming ``field`` when ``text`` is not a ULID."""
    if not isinstance(text, str) or len(text) != 26 or any(c not in _INDEX for c in text) or text[0] > "7":
        raise InvalidInput(f"{field} is not a ULID (26 Crockford base32 characters)", field=field)
    value = 0
    for c in text:
        value = (value << 5) | _INDEX[c]
    return value >> 80, (value & ((1 << 80) - 1)).to_bytes(10, "big")
