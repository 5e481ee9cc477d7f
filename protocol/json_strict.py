"""Strict JSON decoding for peer messages: size-limited, no duplicate keys, no NaN, no 5,000-digit numbers,
objects only."""

from __future__ import annotations

import json
from typing import Any

from protocol.errors import MalformedMessage

MAX_JSON_BYTES = 1024 * 1024
MAX_INTEGER_DIGITS = 64


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedMessage(f"duplicate key {key[:40]!r}", field=member_name(key))
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise MalformedMessage(f"{name} is not allowed in Satchel JSON")


class _TooManyDigits(Exception):
    pass


def _integer(text: str) -> int:
    # Python refuses to convert more than 4,300 digits with a ValueError of its own; no Satchel number
    # comes near this bound (the longest, a session's sequence number, has 22 digits).
    if len(text) - text.startswith("-") > MAX_INTEGER_DIGITS:
        raise _TooManyDigits
    return int(text)


def loads_object(data: bytes, *, what: str, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """Decode ``data`` as one UTF-8 JSON object, or raise MalformedMessage saying what was expected."""
    if len(data) > max_bytes:
        raise MalformedMessage(f"{what} is larger than {max_bytes} bytes")
    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants,
            parse_int=_integer,
        )  # fmt: skip
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"{what} is not UTF-8") from exc
    except RecursionError as exc:
        raise MalformedMessage(f"{what} is nested too deeply") from exc
    except _TooManyDigits:
        raise MalformedMessage(f"{what} holds a number of more than {MAX_INTEGER_DIGITS} digits") from None
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"{what} is not valid JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(value, dict):
        raise MalformedMessage(f"{what} must be a JSON object")
    return value


def dumps_canonical(value: Any) -> bytes:
    """Deterministic JSON (sorted keys, no spaces, UTF-8), so the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def take(
    obj: dict[str, Any], key: str, kind: type | tuple[type, ...], *, what: str, optional: bool = False,
    path: str = "",
) -> Any:  # fmt: skip
    """Read one field with its type checked; bool never passes for int. ``path`` is where ``obj`` sits in the
    payload ("counts", "student"): errors name the member by its dotted path (``counts.scores``)."""
    field = f"{path}.{key}" if path else key
    if key not in obj:
        if optional:
            return None
        raise MalformedMessage(f"{what} lacks the field {field!r}", field=field)
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is None and optional:
        return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise MalformedMessage(f"{what} field {field!r} must be {names}", field=field)
    return value


def member_name(key: str) -> str | None:
    """``key`` as an error's ``field`` when a peer sent it as an unknown member: only a plain ASCII name (at
    most 40 characters) goes back to the peer and into logs; anything else is None."""
    return key if len(key) <= 40 and key.isascii() and key.isidentifier() else None
