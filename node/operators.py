"""Operators and what their roles allow. Every state change names who did it and is audited."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from node.clock import now_iso
from node.errors import OperatorDisabled, OperatorRequired, OperatorUnknown, PermissionDenied
from node.home import Node
from node.issued_codes import revoke_made_by
from protocol import InvalidInput
from protocol.records_request import MAX_NAME
from protocol.roster import check_text
from storage import audit, users
from storage.database import write_transaction
from storage.users import ROLES, User

# Which roles may do what (MISSION.md: only coordinators and admins send, accept, release, import).
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "users.manage": frozenset({"admin"}),
    "keys.manage": frozenset({"admin"}),
    "settings.manage": frozenset({"admin", "coordinator"}),
    "records.read": frozenset({"admin", "coordinator", "viewer"}),  # audited: who read which student's document
    "records.write": frozenset({"admin", "coordinator"}),
    # Coordinators fix mistakes (move, delete); undoing a delete, or making it final, is an admin's.
    "records.recover": frozenset({"admin"}),
    "transfers.act": frozenset({"admin", "coordinator"}),
}

# The actor the audit log and the timelines name for what the node's own timer did (an expiry): no operator's
# name can be it, as a username starts with a letter or digit. Another district's doing is named by its domain.
TIMER = "(timer)"

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def authorize(node: Node, username: str | None, permission: str) -> User:
    """The acting operator, if known, active and allowed to ``permission``; raise a coded error if not."""
    if not username:
        raise OperatorRequired("this command changes the node, so it must name the operator doing it")
    user = users.get(node.db, username)
    if user is None:
        raise OperatorUnknown(f"no operator named {username!r}", field="--as")
    if not user.active:
        raise OperatorDisabled(f"operator {username!r} is disabled", field="--as")
    allowed = PERMISSIONS[permission]
    if user.role not in allowed:
        roles = sorted(allowed)
        raise PermissionDenied(
            f"{username} is a {user.role}; this needs the role {' or '.join(roles)}", field="--as",
            hint=f"ask {' or '.join(('an ' if r[0] in 'aeiou' else 'a ') + r for r in roles)} to do this",
        )  # fmt: skip
    return user


def still_allowed(node: Node, username: str, permission: str, *, stopped: Callable[[], str], hint: str) -> None:
    """Inside each transaction of a long run (an import): ``username`` may still do it (one row read). One
    disabled, or given a role without ``permission``, while the run writes stops it there, between two of its
    transactions, with what it did kept; ``stopped()`` says how far it got."""
    try:
        authorize(node, username, permission)
    except (OperatorDisabled, OperatorUnknown, PermissionDenied) as exc:
        what = "was disabled" if isinstance(exc, OperatorDisabled) else "may no longer do this (" + exc.message + ")"
        raise type(exc)(f"{username} {what} while this ran: {stopped()}", field="--as", hint=hint) from None


def record(
    node: Node, actor: str, action: str, subject: str = "", details: Mapping[str, Any] | None = None
) -> None:
    """Append an audit entry. Call inside the transaction of the change."""
    audit.append(node.db, at=now_iso(), actor=actor, action=action, subject=subject, details=details)


def record_many(node: Node, actor: str, action: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """One audit entry per (subject, details), written together. Call inside the transaction of the change."""
    audit.append_many(node.db, at=now_iso(), actor=actor, action=action, items=items)


def add_user(node: Node, *, actor: str | None, username: str, email: str, full_name: str, role: str) -> User:
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise InvalidInput(
            f"{username!r} is not a valid username", field="username",
            hint="lower-case letters, digits, '.', '_' or '-', up to 64 characters",
        )  # fmt: skip
    if not _EMAIL.match(email.strip()):
        raise InvalidInput(f"{email!r} is not an e-mail address", field="email")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if not full_name.strip():
        raise InvalidInput("the full name must not be empty", field="full_name")
    try:  # it signs records requests and answers, whose rules for a person's name it must meet
        check_text("full_name", full_name.strip(), required=True, max_length=MAX_NAME)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="full_name",
                           hint=f"give the name as other districts will read it: one line, at most {MAX_NAME} "
                                "characters, e.g. --name 'Jane Doe'") from None  # fmt: skip
    with write_transaction(node.db):
        if users.count(node.db) == 0:
            # The very first operator bootstraps the node and must be able to manage it.
            if role != "admin":
                raise InvalidInput(
                    "the first operator of a node must be an admin", field="role", hint="use --role admin"
                )
            if actor and actor != username:  # nobody exists yet to have done it: the log must not name them
                raise OperatorUnknown(
                    f"no operator named {actor!r}: this node has none yet", field="--as",
                    hint="add the first operator without --as (or unset SATCHEL_USER); the audit log records it as "
                         "(bootstrap)",
                )  # fmt: skip
            acting = "(bootstrap)"
        else:
            acting = authorize(node, actor, "users.manage").username
        user = users.add(
            node.db,
            username=username,
            email=email.strip(),
            full_name=full_name.strip(),
            role=role,
            now=now_iso(),
        )
        record(node, acting, "user.add", username, {"role": role, "email": user.email})
    return user


def disable_user(node: Node, *, actor: str | None, username: str) -> tuple[User, bool, list[str]]:
    """The operator, whether this call disabled them (False: they already were; nothing is changed, so the
    trail keeps when and by whom it was done), and the ids of the transfer codes they made that this revoked: a
    code is its maker's disclosure, made when another district enters it, which nobody may make in the name of
    an operator who may no longer act."""
    with write_transaction(node.db):
        acting = authorize(node, actor, "users.manage")
        if acting.username == username:
            raise InvalidInput("you cannot disable yourself", field="username", hint="ask another admin")
        user = users.require(node.db, username)
        if not user.active:
            return user, False, []
        user = users.disable(node.db, username, now=now_iso())
        record(node, acting.username, "user.disable", username)
        revoked = revoke_made_by(node, username, by=acting.username)
    return user, True, revoked


def set_role(node: Node, *, actor: str | None, username: str, role: str) -> tuple[User, str, list[str]]:
    """Give ``username`` another role: the operator, their role before, and the ids of the transfer codes they
    made that this revoked (one who may no longer send records cannot have a code disclose in their name, as
    for :func:`disable_user`). An admin does not change their own role: the node could be left with none."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="ROLE")
    with write_transaction(node.db):
        acting = authorize(node, actor, "users.manage")
        if acting.username == username:
            raise InvalidInput("you cannot change your own role", field="USERNAME", hint="ask another admin")
        user = users.require(node.db, username)
        if not user.active:
            raise InvalidInput(f"{username} is disabled", field="USERNAME",
                               hint="a disabled operator stays disabled; add a new account for them")  # fmt: skip
        if user.role == role:
            return user, role, []
        changed = users.set_role(node.db, username, role)
        record(node, acting.username, "user.role", username, {"from": user.role, "to": role})
        revoked = [] if role in PERMISSIONS["transfers.act"] else revoke_made_by(node, username, by=acting.username)
    return changed, user.role, revoked
