"""Transfer codes as people write them: ``7K2Q-M9XD-RT4B-J@district.example.org`` (spec/codes.md §7.1).

The part before ``@`` is an authentication code (crypto.parse_code: alphabet, normalisation and the check
character that catches typos before anything is tried); the part after it names the node that made the
code, so the destination knows whom to ask. Only the split and the domain are handled here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import crypto
from crypto import Code
from protocol.errors import InvalidInput, SatchelError
from protocol.manifest import DOMAIN_RE

SEPARATOR = "@"
MAX_INPUT = 400  # a code with generous spacing, the separator and a 253-character domain


class TransferCodeSourceInvalid(InvalidInput):
    """A transfer code is not CODE@domain: too long, no '@', nothing before it, or no valid domain after it."""

    code = "code.source_invalid"
    default_hint = (
        "a transfer code ends with @ and the source district's domain, like 7K2Q-M9XD-RT4B-J@d.example.org"
    )


class CodeSameNode(SatchelError):
    """A transfer code was entered on, or claimed by, the node that made it."""

    code = "code.same_node"
    default_hint = "this code was made here: the records are already on this node and need no transfer"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TransferCode:
    """A secret code and the domain of the node that made it. ``repr`` never shows the code."""

    code: Code
    source_domain: str

    def __post_init__(self) -> None:
        if not isinstance(self.code, Code):
            raise InvalidInput("code must be a crypto.Code", field="code")
        if type(self.source_domain) is not str or not DOMAIN_RE.match(self.source_domain):
            raise TransferCodeSourceInvalid(
                "the source must be a lowercase domain name", field="source_domain"
            )

    def reveal(self) -> str:
        """The text to read out or paste: the grouped code, ``@``, the source domain."""
        return format_transfer_code(self)

    def __repr__(self) -> str:
        return f"TransferCode(<hidden>@{self.source_domain})"


def split_transfer_code(text: str) -> tuple[str, str]:
    """Split typed text into (code part, normalised source domain); the code part is not checked here.

    Refusals name ``code`` (the whole text a person typed: too long, no ``@``, nothing before it) or
    ``source_domain`` (the part after the ``@``), as spec/codes.md §7.1 says.
    """
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        raise TransferCodeSourceInvalid("a transfer code is a short piece of text", field="code")
    folded = unicodedata.normalize("NFKC", text).strip()
    # NFKC maps the full-width at sign (U+FF20) and its kin to "@" before the split.
    code_part, separator, domain = folded.rpartition(SEPARATOR)
    if not separator:
        raise TransferCodeSourceInvalid(
            "the transfer code lacks '@' and the source district's domain", field="code"
        )
    if not code_part.strip():
        raise TransferCodeSourceInvalid(
            "the transfer code has nothing before its '@': the code itself is missing", field="code"
        )
    domain = "".join(domain.split()).lower().rstrip(".")
    if not DOMAIN_RE.match(domain):
        raise TransferCodeSourceInvalid(
            "the part after '@' is not a domain name (use the ASCII form of international names)",
            field="source_domain",
        )
    return code_part, domain


def parse_transfer_code(text: str, *, parse_code: Callable[[str], Code] = crypto.parse_code) -> TransferCode:
    """Parse what a person typed or pasted. A typo in the code part raises ``code.typo`` (no attempt used)."""
    code_part, domain = split_transfer_code(text)
    return TransferCode(code=parse_code(code_part), source_domain=domain)


def format_transfer_code(transfer_code: TransferCode) -> str:
    return f"{transfer_code.code.reveal()}{SEPARATOR}{transfer_code.source_domain}"


def check_usable_here(transfer_code: TransferCode, *, own_domain: str) -> None:
    """Refuse, before any network traffic, a code entered on the node that made it."""
    if transfer_code.source_domain == own_domain:
        raise CodeSameNode("this transfer code was made by this node; it cannot be used here")
