"""Identifiers: ULIDs (26 Crockford base32 characters: 48-bit millisecond time, 80 random bits).

Pure: the caller supplies the time and the randomness, so ids in vectors and tests are reproducible.
"""

from __future__ import annotations

from protocol.errors import InvalidInput

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}


def ulid(unix_ms: int, randomness: bytes) -> str:
    if not 0 <= unix_ms < 1 << 48:
        raise InvalidInput("ULID time must fit in 48 bits", field="unix_ms")
    if len(randomness) != 10:
        raise InvalidInput("ULID randomness is 10 bytes", field="randomness")
    value = (unix_ms << 80) | int.from_bytes(randomness, "big")
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(125, -5, -5))


def parse_ulid(text: str, *, field: str = "id") -> tuple[int, bytes]:
    """Return (unix_ms, randomness); raise InvalidInput naming ``field`` when ``text`` is not a ULID."""
    if not isinstance(text, str) or len(text) != 26 or any(c not in _INDEX for c in text) or text[0] > "7":
        raise InvalidInput(f"{field} is not a ULID (26 Crockford base32 characters)", field=field)
    value = 0
    for c in text:
        value = (value << 5) | _INDEX[c]
    return value >> 80, (value & ((1 << 80) - 1)).to_bytes(10, "big")
