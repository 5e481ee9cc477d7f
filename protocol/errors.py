"""The one exception tree of Satchel.

Every error a user or a peer can see is a :class:`SatchelError` subclass with a stable dotted ``code``
(documented in ``spec/errors.md``), an optional ``field`` naming the bad input and a ``hint`` saying what
to do next. Codes are class attributes so the full catalogue can be enumerated (and checked against the
HTTP status table in ``node/`` and the spec) by walking the subclasses.
"""

from __future__ import annotations

from typing import ClassVar


class SatchelError(Exception):
    """Root of every error Satchel raises on purpose."""

    code: ClassVar[str] = "satchel.internal"
    default_hint: ClassVar[str | None] = None

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint if hint is not None else self.default_hint

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.hint:
            body["hint"] = self.hint
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, field={self.field!r})"


class InvalidInput(SatchelError, ValueError):
    """A value given by a person or a peer is malformed."""

    code = "input.invalid"


class MalformedMessage(SatchelError, ValueError):
    """Bytes received from a peer do not parse as the message they claim to be."""

    code = "message.malformed"
    default_hint = (
        "the message does not follow the Satchel protocol (spec/ in the Satchel sources): check that the sending "
        "node runs a released Satchel version; sending the same bytes again will fail again"
    )


class SignatureInvalid(SatchelError):
    """A signature does not verify. Deliberately vague: details go to the local log only."""

    code = "signature.invalid"


class NotFound(SatchelError, LookupError):
    code = "not_found"


class Conflict(SatchelError):
    """The request is well formed but clashes with what is stored."""

    code = "conflict"


def all_error_classes() -> list[type[SatchelError]]:
    """Every SatchelError subclass currently imported, root included, in a stable order."""
    seen: dict[str, type[SatchelError]] = {}
    stack: list[type[SatchelError]] = [SatchelError]
    while stack:
        cls = stack.pop()
        seen.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
        stack.extend(cls.__subclasses__())
    return [seen[k] for k in sorted(seen)]
