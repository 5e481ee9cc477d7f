"""Canonical msgpack: one encoding per value, and a decoder that accepts nothing else.

Implements spec/envelope.md §2.2 ("Canonical msgpack"), which every Satchel msgpack message reuses:

- only nil, booleans, integers (-2**63 .. 2**64-1), UTF-8 strings, binary strings, arrays and maps whose
  keys are strings; no floats and no extension types (timestamps included);
- every value in its shortest msgpack form, strings as ``str`` and bytes as ``bin``;
- map keys unique and sorted by their UTF-8 bytes;
- exactly one top-level value: no trailing bytes.

Because the encoding is unique, :func:`unpack_strict` checks canonicity by re-encoding what it decoded and
comparing bytes. Signatures then cover one possible byte string per message, and two implementations that
build the same value produce the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from protocol.errors import MalformedMessage


class MsgpackMalformed(MalformedMessage):
    """The bytes are not one well-formed msgpack value of the allowed types."""

    code = "msgpack.malformed"
    default_hint = "the sender produced bytes that are not canonical msgpack; report it to its operator"


class MsgpackDuplicateKey(MsgpackMalformed):
    """A map holds the same key twice (parsers disagree about which one wins, so both are refused)."""

    code = "msgpack.duplicate_key"


class MsgpackTrailingBytes(MsgpackMalformed):
    """Bytes follow the single top-level value."""

    code = "msgpack.trailing_bytes"


class MsgpackLimitExceeded(MsgpackMalformed):
    """The message, a string, an array, a map or the nesting depth is larger than the limit allows."""

    code = "msgpack.limit_exceeded"


class MsgpackNotCanonical(MsgpackMalformed):
    """The value is valid but not in its one canonical encoding (key order or a longer form)."""

    code = "msgpack.not_canonical"


@dataclass(frozen=True, slots=True, kw_only=True)
class MsgpackLimits:
    """Upper bounds a decoder enforces before and while it decodes. Lengths count bytes or items."""

    max_bytes: int = 1 << 20
    max_depth: int = 8
    max_str: int = 1 << 16
    max_bin: int = 1 << 16
    max_array: int = 1 << 16
    max_map: int = 1 << 10

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_str", "max_bin", "max_array", "max_map"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"MsgpackLimits.{name} must be a non-negative int")


DEFAULT_LIMITS = MsgpackLimits()
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1


class _Order:
    """Whether every map decoded so far had its keys in canonical (sorted) order."""

    __slots__ = ("sorted",)

    def __init__(self) -> None:
        self.sorted = True


def _pairs_hook(field: str, order: _Order) -> Any:
    def hook(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        previous = ""
        for key, value in pairs:
            if not isinstance(key, str):
                raise MsgpackMalformed(f"{field}: map keys must be strings", field=field)
            if key in result:
                raise MsgpackDuplicateKey(f"{field}: a map repeats a key", field=field)
            # Python orders str by code point, which is also the order of their UTF-8 bytes.
            if result and key < previous:
                order.sorted = False
            result[key] = value
            previous = key
        return result

    return hook


def _no_extensions(field: str) -> Any:
    def hook(code: int, data: bytes) -> Any:
        raise MsgpackMalformed(f"{field}: extension types are not allowed", field=field)

    return hook


def _check_types(value: Any, field: str, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise MsgpackLimitExceeded(f"{field}: nested deeper than {max_depth} levels", field=field)
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is bytes:
        return
    if kind is int:
        return
    if kind is list:
        for item in value:
            _check_types(item, field, depth + 1, max_depth)
        return
    if kind is dict:
        for item in value.values():
            _check_types(item, field, depth + 1, max_depth)
        return
    raise MsgpackMalformed(f"{field}: floats and extension types are not allowed", field=field)


def unpack_strict(
    data: bytes | bytearray | memoryview,
    *,
    field: str,
    limits: MsgpackLimits = DEFAULT_LIMITS,
    canonical: bool = True,
) -> Any:
    """Decode exactly one canonical msgpack value from ``data``; raise a coded error for anything else.

    ``field`` names the message in errors ("header", "manifest"). Maps come back as ``dict`` with ``str``
    keys, arrays as ``list``, binary strings as ``bytes``.
    """
    raw = bytes(data)
    order = _Order()
    if len(raw) > limits.max_bytes:
        raise MsgpackLimitExceeded(f"{field}: longer than {limits.max_bytes} bytes", field=field)
    try:
        value = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            use_list=True,
            object_pairs_hook=_pairs_hook(field, order),
            max_str_len=limits.max_str,
            max_bin_len=limits.max_bin,
            max_array_len=limits.max_array,
            max_map_len=limits.max_map,
            max_ext_len=limits.max_bin,
            ext_hook=_no_extensions(field),
        )
    except MsgpackMalformed:
        raise
    except msgpack.ExtraData as exc:
        raise MsgpackTrailingBytes(f"{field}: bytes follow the msgpack value", field=field) from exc
    except msgpack.StackError as exc:
        raise MsgpackLimitExceeded(f"{field}: nested too deeply", field=field) from exc
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        if "exceeds max_" in str(exc):
            raise MsgpackLimitExceeded(f"{field}: a string, array or map is too long", field=field) from exc
        raise MsgpackMalformed(f"{field}: not well-formed msgpack", field=field) from exc
    _check_types(value, field, 0, limits.max_depth)
    # Maps decoded in sorted order re-encode as they are: msgpack's packer already writes the shortest
    # form of every value, so comparing its output with the input checks the rest of canonical form.
    if canonical and (not order.sorted or msgpack.packb(value, use_bin_type=True) != raw):
        raise MsgpackNotCanonical(
            f"{field}: not in canonical form (map keys sorted, shortest encodings)", field=field
        )
    return value


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("canonical msgpack map keys are strings")
        # Python orders str by code point, which is also the order of their UTF-8 bytes.
        return {key: _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, float):
        raise TypeError("canonical msgpack has no floats")
    if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
        raise OverflowError("integer outside the msgpack range")
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def pack_canonical(value: Any) -> bytes:
    """Encode ``value`` (nil, bool, int, str, bytes, list/tuple, str-keyed mapping) canonically."""
    return msgpack.packb(_canonical(value), use_bin_type=True)
