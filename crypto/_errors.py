"""Errors of the code layer (spec/codes.md §5). Envelope errors live in ``protocol.envelope_errors``.

Neither error ever contains the text that was typed: it is a secret.
"""

from __future__ import annotations

from protocol.errors import InvalidInput


class CodeMalformed(InvalidInput):
    """The text is not a code: wrong length, or characters outside the alphabet."""

    code = "code.malformed"
    default_hint = "a code is 12 letters and digits and a check character, like 7K2Q-M9XD-RT4B-J"


class CodeTypo(InvalidInput):
    """The text has the shape of a code but its check character does not match: a typo, caught locally."""

    code = "code.typo"
    default_hint = "a character was probably misheard or mistyped; read the code back (no attempt was used)"
