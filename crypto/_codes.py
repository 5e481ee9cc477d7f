"""Authentication codes people read out over the phone (spec/codes.md).

A code is 12 Crockford base32 characters (60 random bits) and one check character, shown in groups of four:
``7K2Q-M9XD-RT4B-J``. The check character is a weighted sum over GF(32), so every single wrong character
and every swap of two characters is caught before the code is tried: a typo costs no attempt.

The core (alphabet, normalisation, check character) is reusable for transfer codes (spec/codes.md §6).
"""

from __future__ import annotations

import hmac
import os
import unicodedata

from crypto._errors import CodeMalformed, CodeTypo

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DATA_LENGTH = 12
GROUP = 4
ENTROPY_BITS = 5 * DATA_LENGTH
_MAX_INPUT = 128
_VALUE = {char: i for i, char in enumerate(ALPHABET)}
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = frozenset("-_\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_GF32_POLY = 0b100101  # x^5 + x^2 + 1, primitive: alpha = x has order 31


def _gf32_mul(a: int, b: int) -> int:
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= _GF32_POLY
    return product


def check_symbol(data: str) -> str:
    """The check character of canonical data characters: XOR over i of alpha^(i+1) * value(data[i])."""
    total, weight = 0, 1
    for char in data:
        weight = _gf32_mul(weight, 2)
        total ^= _gf32_mul(weight, _VALUE[char])
    return ALPHABET[total]


def normalise(text: str) -> str:
    """Canonical characters of typed text: NFKC, separators and spaces dropped, upper case, O→0, I/L→1."""
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        raise CodeMalformed("a code is a short piece of text", field="code")
    folded = unicodedata.normalize("NFKC", text)
    kept = "".join(ch for ch in folded if not ch.isspace() and ch not in _SEPARATORS)
    return kept.upper().translate(_CONFUSABLE)


class Code:
    """A secret authentication code. Its ``repr`` and ``str`` never show it; :meth:`reveal` does."""

    __slots__ = ("_data",)
    __hash__ = None  # type: ignore[assignment]  # hashing a secret invites it into dict keys and logs

    def __init__(self, data: str) -> None:
        if len(data) != DATA_LENGTH or any(ch not in _VALUE for ch in data):
            raise CodeMalformed("a code has 12 data characters from the code alphabet", field="code")
        self._data = data

    @classmethod
    def _from_int(cls, value: int) -> Code:
        """Seam for vectors and tests: the code whose 60 data bits are ``value``."""
        if not 0 <= value < 1 << ENTROPY_BITS:
            raise ValueError("a code value has 60 bits")
        return cls("".join(ALPHABET[(value >> shift) & 31] for shift in range(55, -5, -5)))

    def reveal(self) -> str:
        """The code for a person to read: four groups, the last one the check character."""
        full = self._data + check_symbol(self._data)
        return "-".join(full[i : i + GROUP] for i in range(0, len(full), GROUP))

    def _kdf_input(self) -> bytes:
        """The Argon2id password: the 12 canonical data characters in ASCII (spec/envelope.md §8.3)."""
        return self._data.encode("ascii")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Code):
            return NotImplemented
        return hmac.compare_digest(self._data.encode(), other._data.encode())

    def __repr__(self) -> str:
        return "Code(<hidden>)"

    __str__ = __repr__


def generate_code() -> Code:
    """A fresh random code with 60 bits of entropy (``os.urandom``)."""
    return Code._from_int(int.from_bytes(os.urandom(8), "big") >> (64 - ENTROPY_BITS))


def parse_code(text: str) -> Code:
    """Parse what a person typed. ``code.typo`` means the check failed and no attempt should be counted.

    Raises ``code.malformed`` for text that cannot be a code (wrong length, letters outside the alphabet).
    """
    canonical = normalise(text)
    if len(canonical) != DATA_LENGTH + 1:
        raise CodeMalformed(
            f"a code has {DATA_LENGTH + 1} characters besides dashes and spaces", field="code"
        )
    if any(ch not in _VALUE for ch in canonical):
        raise CodeMalformed("a code contains only digits and letters other than U", field="code")
    data, check = canonical[:DATA_LENGTH], canonical[DATA_LENGTH]
    if check_symbol(data) != check:
        raise CodeTypo(
            "the code's check character does not match: one character is probably wrong", field="code"
        )
    return Code(data)
