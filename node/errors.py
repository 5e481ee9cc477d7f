"""Errors raised by node orchestration (the root lives in protocol.errors)."""

from __future__ import annotations

from protocol import SatchelError


class ConfigError(SatchelError):
    code = "config.invalid"
    default_hint = "fix the value in the home's satchel.toml or its environment variable"


class HomeMissing(SatchelError):
    code = "home.missing"
    default_hint = "create one with `satchel init`, or point --home / SATCHEL_HOME at an existing home"


class KeysExpired(SatchelError):
    """The node has identity or encryption keys, but none of a use is valid now: the last one ended."""

    code = "home.keys_expired"
    default_hint = "make a new key with `satchel keys rotate --identity` (or `--encryption`) as an admin"


class HomeExists(SatchelError):
    code = "home.exists"
    default_hint = "choose another --home; an existing home is never overwritten"


class OperatorRequired(SatchelError):
    code = "operator.required"
    default_hint = "name yourself with --as USER or the SATCHEL_USER environment variable"


class OperatorUnknown(SatchelError):
    code = "operator.unknown"
    default_hint = "see `satchel users list`; an admin can add you with `satchel users add`"


class OperatorDisabled(SatchelError):
    code = "operator.disabled"
    default_hint = "ask an admin to add a new account for you"


class PermissionDenied(SatchelError):
    code = "operator.forbidden"
    default_hint = "ask an admin or a coordinator to do this"
