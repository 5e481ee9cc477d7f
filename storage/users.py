"""Operators: the people who act on this node."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from protocol import Conflict, NotFound

ROLES = ("admin", "coordinator", "viewer")


@dataclass(frozen=True, slots=True)
class User:
    username: str
    email: str
    full_name: str
    role: str
    status: str
    created_at: str
    disabled_at: str | None

    @property
    def active(self) -> bool:
        return self.status == "active"


_COLUMNS = "username, email, full_name, role, status, created_at, disabled_at"


def add(db: sqlite_utils.Database, *, username: str, email: str, full_name: str, role: str, now: str) -> User:
    if get(db, username) is not None:
        raise Conflict(f"user {username!r} already exists", field="username", hint="pick another username")
    if db.execute("SELECT 1 FROM users WHERE email = ? COLLATE NOCASE", [email]).fetchone():
        raise Conflict(f"another user already has the e-mail {email}", field="email")
    db.execute(
        "INSERT INTO users (username, email, full_name, role, status, created_at) VALUES (?, ?, ?, ?, 'active', ?)",
        [username, email, full_name, role, now],
    )
    user = get(db, username)
    assert user is not None
    return user


def get(db: sqlite_utils.Database, username: str) -> User | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM users WHERE username = ?", [username]).fetchone()
    return User(*row) if row else None


def find(db: sqlite_utils.Database, username_or_email: str) -> User | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM users WHERE username = ? OR email = ? COLLATE NOCASE",
        [username_or_email, username_or_email],
    ).fetchone()
    return User(*row) if row else None


def require(db: sqlite_utils.Database, username: str) -> User:
    user = get(db, username)
    if user is None:
        raise NotFound(f"no user {username!r}", field="username", hint="see `satchel users list`")
    return user


def list_all(db: sqlite_utils.Database, *, role: str | None = None) -> list[User]:
    sql, args = f"SELECT {_COLUMNS} FROM users", []
    if role:
        sql += " WHERE role = ?"
        args.append(role)
    return [User(*r) for r in db.execute(sql + " ORDER BY username", args).fetchall()]


def count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM users").fetchone()[0]


def disable(db: sqlite_utils.Database, username: str, *, now: str) -> User:
    require(db, username)
    db.execute("UPDATE users SET status = 'disabled', disabled_at = ? WHERE username = ?", [now, username])
    return require(db, username)


def set_role(db: sqlite_utils.Database, username: str, role: str) -> User:
    require(db, username)
    db.execute("UPDATE users SET role = ? WHERE username = ?", [role, username])
    return require(db, username)
