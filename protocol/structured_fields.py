"""RFC 8941 Structured Field Values: the subset HTTP Message Signatures and Digest Fields need.

Parsing follows RFC 8941 §4.2 step by step and fails (with one coded error) on anything the grammar does
not allow; serialisation follows §4.1 and is canonical, which matters because RFC 9421 signs the
serialised ``@signature-params`` line and re-serialised dictionary members byte for byte.

Types: a bare item is ``int`` (Integer), ``decimal.Decimal`` (Decimal), ``str`` (String), :class:`Token`,
``bytes`` (Byte Sequence) or ``bool`` (Boolean). Parameters are an ordered tuple of ``(key, bare item)``
pairs because their order is significant in a signature base.
"""

from __future__ import annotations

import base64
import binascii
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TypeVar

from protocol.errors import InvalidInput

# RFC 8941 §3.3.1 and §3.3.2: numeric ranges.
MAX_INTEGER = 999_999_999_999_999
MAX_DECIMAL_INTEGER_DIGITS = 12
_DIGITS = frozenset(string.digits)
_LCALPHA = frozenset(string.ascii_lowercase)
_ALPHA = frozenset(string.ascii_letters)
# RFC 9110 §5.6.2 tchar, plus ":" and "/" allowed inside a Token (RFC 8941 §3.3.4).
_TCHAR = frozenset("!#$%&'*+-.^_`|~") | _ALPHA | _DIGITS
_TOKEN_CHARS = _TCHAR | {":", "/"}
_KEY_FIRST = _LCALPHA | {"*"}
_KEY_CHARS = _LCALPHA | _DIGITS | frozenset("_-.*")
_BASE64_CHARS = _ALPHA | _DIGITS | frozenset("+/=")


class StructuredFieldMalformed(InvalidInput):
    """A structured field value does not follow RFC 8941, or a value cannot be serialised as one."""

    code = "structured_field.malformed"


@dataclass(frozen=True, slots=True)
class Token:
    """An RFC 8941 Token, kept distinct from String so that it round-trips unquoted."""

    value: str


BareItem = int | Decimal | str | Token | bytes | bool
Params = tuple[tuple[str, BareItem], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    value: BareItem
    params: Params = ()

    def param(self, key: str) -> BareItem | None:
        return _lookup(self.params, key)


@dataclass(frozen=True, slots=True, kw_only=True)
class InnerList:
    items: tuple[Item, ...]
    params: Params = ()

    def param(self, key: str) -> BareItem | None:
        return _lookup(self.params, key)


Member = Item | InnerList


def _lookup(params: Params, key: str) -> BareItem | None:
    for name, value in params:
        if name == key:
            return value
    return None


# --- parsing (RFC 8941 §4.2) -------------------------------------------------------------------------


class _Reader:
    __slots__ = ("field", "pos", "text")

    def __init__(self, text: str, field: str | None) -> None:
        if not isinstance(text, str) or not text.isascii():
            raise StructuredFieldMalformed("structured field values are ASCII text", field=field)
        self.text = text
        self.pos = 0
        self.field = field

    def fail(self, what: str) -> StructuredFieldMalformed:
        message = f"malformed structured field: {what} at offset {self.pos}"
        return StructuredFieldMalformed(message, field=self.field)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def skip(self, chars: str) -> None:
        while self.peek() != "" and self.peek() in chars:
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)


_T = TypeVar("_T")


def _parse_top(text: str, field: str | None, parse_one: Callable[[_Reader], _T]) -> _T:
    reader = _Reader(text, field)
    reader.skip(" ")
    result = parse_one(reader)
    reader.skip(" ")
    if not reader.at_end():
        raise reader.fail("trailing characters")
    return result


def parse_dictionary(
    text: str, *, field: str | None = None, reject_duplicates: bool = False
) -> dict[str, Member]:
    """Parse a Dictionary. RFC 8941 lets a repeated key overwrite; callers that sign may forbid that."""

    def parse(reader: _Reader) -> dict[str, Member]:
        result: dict[str, Member] = {}
        while not reader.at_end():
            key = _parse_key(reader)
            if reader.peek() == "=":
                reader.take()
                member = _parse_item_or_inner_list(reader)
            else:
                member = Item(value=True, params=_parse_params(reader))
            if key in result and reject_duplicates:
                raise reader.fail(f"duplicate key {key!r}")
            result[key] = member
            if not _next_member(reader):
                break
        return result

    return _parse_top(text, field, parse)


def parse_list(text: str, *, field: str | None = None) -> list[Member]:
    def parse(reader: _Reader) -> list[Member]:
        result: list[Member] = []
        while not reader.at_end():
            result.append(_parse_item_or_inner_list(reader))
            if not _next_member(reader):
                break
        return result

    return _parse_top(text, field, parse)


def parse_item(text: str, *, field: str | None = None) -> Item:
    return _parse_top(text, field, _parse_item)


def _next_member(reader: _Reader) -> bool:
    reader.skip(" \t")
    if reader.at_end():
        return False
    if reader.take() != ",":
        raise reader.fail("expected ','")
    reader.skip(" \t")
    if reader.at_end():
        raise reader.fail("trailing ','")
    return True


def _parse_item_or_inner_list(reader: _Reader) -> Member:
    return _parse_inner_list(reader) if reader.peek() == "(" else _parse_item(reader)


def _parse_inner_list(reader: _Reader) -> InnerList:
    reader.take()
    items: list[Item] = []
    while not reader.at_end():
        reader.skip(" ")
        if reader.peek() == ")":
            reader.take()
            return InnerList(items=tuple(items), params=_parse_params(reader))
        items.append(_parse_item(reader))
        if reader.peek() not in (" ", ")"):
            raise reader.fail("expected ' ' or ')' in inner list")
    raise reader.fail("unterminated inner list")


def _parse_item(reader: _Reader) -> Item:
    value = _parse_bare_item(reader)
    return Item(value=value, params=_parse_params(reader))


def _parse_params(reader: _Reader) -> Params:
    params: dict[str, BareItem] = {}
    while reader.peek() == ";":
        reader.take()
        reader.skip(" ")
        key = _parse_key(reader)
        value: BareItem = True
        if reader.peek() == "=":
            reader.take()
            value = _parse_bare_item(reader)
        params[key] = value
    return tuple(params.items())


def _parse_key(reader: _Reader) -> str:
    if reader.peek() not in _KEY_FIRST:
        raise reader.fail("expected a key")
    start = reader.pos
    while not reader.at_end() and reader.peek() in _KEY_CHARS:
        reader.pos += 1
    return reader.text[start : reader.pos]


def _parse_bare_item(reader: _Reader) -> BareItem:
    char = reader.peek()
    if char == "-" or char in _DIGITS:
        return _parse_number(reader)
    if char == '"':
        return _parse_string(reader)
    if char == "*" or char in _ALPHA:
        return _parse_token(reader)
    if char == ":":
        return _parse_byte_sequence(reader)
    if char == "?":
        return _parse_boolean(reader)
    raise reader.fail("expected an item")


def _parse_number(reader: _Reader) -> int | Decimal:
    sign = -1 if reader.peek() == "-" else 1
    if sign < 0:
        reader.take()
    if reader.peek() not in _DIGITS:
        raise reader.fail("expected a digit")
    digits = ""
    is_decimal = False
    while not reader.at_end():
        char = reader.peek()
        if char in _DIGITS:
            digits += reader.take()
        elif char == "." and not is_decimal:
            if len(digits) > MAX_DECIMAL_INTEGER_DIGITS:
                raise reader.fail("decimal integer part too long")
            digits += reader.take()
            is_decimal = True
        else:
            break
        if len(digits) > (16 if is_decimal else 15):
            raise reader.fail("number too long")
    if not is_decimal:
        return sign * int(digits)
    fraction = digits.partition(".")[2]
    if not fraction or len(fraction) > 3:
        raise reader.fail("a decimal has 1 to 3 fractional digits")
    return sign * Decimal(digits)


def _parse_string(reader: _Reader) -> str:
    reader.take()
    out: list[str] = []
    while not reader.at_end():
        char = reader.take()
        if char == "\\":
            escaped = reader.take()
            if escaped not in ('"', "\\"):
                raise reader.fail("bad escape in string")
            out.append(escaped)
        elif char == '"':
            return "".join(out)
        elif not " " <= char <= "~":
            raise reader.fail("control character in string")
        else:
            out.append(char)
    raise reader.fail("unterminated string")


def _parse_token(reader: _Reader) -> Token:
    start = reader.pos
    reader.pos += 1
    while not reader.at_end() and reader.peek() in _TOKEN_CHARS:
        reader.pos += 1
    return Token(reader.text[start : reader.pos])


def _parse_byte_sequence(reader: _Reader) -> bytes:
    reader.take()
    end = reader.text.find(":", reader.pos)
    if end < 0:
        raise reader.fail("unterminated byte sequence")
    encoded = reader.text[reader.pos : end]
    if not set(encoded) <= _BASE64_CHARS:
        raise reader.fail("bad base64 in byte sequence")
    reader.pos = end + 1
    # RFC 8941 §4.2.7: parsers SHOULD NOT fail on missing "=" padding, so restore it before decoding.
    stripped = encoded.rstrip("=")
    if "=" in stripped or len(stripped) % 4 == 1 or len(encoded) - len(stripped) > 2:
        raise reader.fail("bad base64 in byte sequence")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise reader.fail("bad base64 in byte sequence") from exc


def _parse_boolean(reader: _Reader) -> bool:
    reader.take()
    char = reader.take()
    if char not in ("0", "1"):
        raise reader.fail("a boolean is ?0 or ?1")
    return char == "1"


# --- serialisation (RFC 8941 §4.1) -------------------------------------------------------------------


def serialize_dictionary(members: Mapping[str, Member] | Iterable[tuple[str, Member]]) -> str:
    pairs = members.items() if isinstance(members, Mapping) else members
    out = []
    for key, member in pairs:
        _check_key(key)
        if isinstance(member, Item) and member.value is True:
            out.append(key + serialize_params(member.params))
        else:
            out.append(f"{key}={serialize_member(member)}")
    return ", ".join(out)


def serialize_list(members: Iterable[Member]) -> str:
    return ", ".join(serialize_member(member) for member in members)


def serialize_member(member: Member) -> str:
    if isinstance(member, InnerList):
        inner = " ".join(serialize_item(item) for item in member.items)
        return f"({inner}){serialize_params(member.params)}"
    return serialize_item(member)


def serialize_item(item: Item) -> str:
    return serialize_bare_item(item.value) + serialize_params(item.params)


def serialize_params(params: Params) -> str:
    out = []
    for key, value in params:
        _check_key(key)
        out.append(f";{key}" if value is True else f";{key}={serialize_bare_item(value)}")
    return "".join(out)


def serialize_bare_item(value: BareItem) -> str:
    # bool before int: True is an int in Python but a Boolean on the wire.
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise StructuredFieldMalformed("integer out of range for a structured field")
        return str(value)
    if isinstance(value, Decimal):
        return _serialize_decimal(value)
    if isinstance(value, str):
        if not all(" " <= char <= "~" for char in value):
            raise StructuredFieldMalformed("a structured field string is printable ASCII")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Token):
        text = value.value
        if not text or not (text[0] in _ALPHA or text[0] == "*") or not set(text) <= _TOKEN_CHARS:
            raise StructuredFieldMalformed("not a valid structured field token")
        return text
    if isinstance(value, bytes | bytearray | memoryview):
        return ":" + base64.b64encode(bytes(value)).decode("ascii") + ":"
    raise StructuredFieldMalformed(f"cannot serialise {type(value).__name__} as a structured field item")


def _serialize_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise StructuredFieldMalformed("a structured field decimal is finite")
    rounded = value.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
    whole, _, fraction = f"{abs(rounded):f}".partition(".")
    if len(whole) > MAX_DECIMAL_INTEGER_DIGITS:
        raise StructuredFieldMalformed("decimal out of range for a structured field")
    fraction = fraction.rstrip("0") or "0"
    return f"{'-' if rounded < 0 else ''}{whole}.{fraction}"


def _check_key(key: str) -> None:
    if not key or key[0] not in _KEY_FIRST or not set(key) <= _KEY_CHARS:
        raise StructuredFieldMalformed(f"{key!r} is not a valid structured field key")
