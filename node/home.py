"""A node's home directory: where it is, creating one, and opening it for a command or a server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from crypto import EncryptionKey, IdentityKey
from node.clock import now_iso
from node.config import CONFIG_FILE, NodeConfig, build_config, load_config, render_toml
from node.errors import ConfigError, HomeExists, HomeMissing, KeysExpired
from protocol import InvalidInput
from storage import audit
from storage.blobs import BlobStore
from storage.database import open_database, write_transaction
from storage.durable_files import create_synced
from storage.errors import database_damaged

DEFAULT_HOME = "satchel-home"
IDENTITY_FILE = "identity.key"
ENCRYPTION_FILE = "encryption.key"


def expand_user(path: Path, *, option: str) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded. A user this machine has no home folder for is an
    operator's typo (``~jane`` for ``~/jane``), told as one; pathlib raises a RuntimeError for it."""
    try:
        return path.expanduser()
    except RuntimeError:
        start = str(path).split(os.sep, 1)[0]
        raise InvalidInput(
            f"{path} starts with {start}, and this machine has no home folder for it", field=option,
            hint="write the folder out in full, or start with ~/ for your own home",
        ) from None  # fmt: skip


def resolve_home(option: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Path:
    """--home, else $SATCHEL_HOME, else ./satchel-home: every command finds the home the same way."""
    if option is not None and not str(option).strip():
        # `--home "$HOME_DIR"` with the variable unset: going on with ./satchel-home would act on another home.
        raise InvalidInput("--home is empty", field="--home",
                           hint="give the home's directory, or leave --home out to use $SATCHEL_HOME")  # fmt: skip
    env = os.environ if environ is None else environ
    return expand_user(Path(option or env.get("SATCHEL_HOME") or DEFAULT_HOME), option="--home").absolute()


def _write_secret(path: Path, text: str, encoding: str = "ascii") -> None:
    create_synced(path, text.encode(encoding))


@dataclass(frozen=True, slots=True)
class NodeKeys:
    identity: IdentityKey  # the key that signs now
    encryption: EncryptionKey  # the key envelopes should be sealed to now
    # Every encryption key not revoked, by key id: envelopes sealed to an older key must still open.
    encryption_by_id: Mapping[str, EncryptionKey]
    # When the first of the two keys above stops being valid; None when neither ends, as always since a
    # revocation leaves a key with no end (node.keys_admin.revoke). A home from before that may still have an
    # end here, and a server running past it would sign with a key its peers refuse.
    valid_until: str | None = None
    # This node's identity keys it has revoked: a serving node ends the sessions they vouched for.
    revoked_identity: frozenset[str] = frozenset()


_RESTORE_KEYS = (
    "restore keys/ from the latest backup (`satchel backup` copies it; see Restoring in the README)"
)


def _read(config: NodeConfig, name: str) -> str:
    path = config.keys_dir / name
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        said = _unreadable(path, exc)
        if said is None:  # a permission, a full disk: storage.errors names those
            raise
        raise HomeMissing(said, hint=_RESTORE_KEYS) from exc


def _unreadable(path: Path, exc: Exception) -> str | None:
    if isinstance(exc, FileNotFoundError):
        return f"key file {path} is missing"
    if isinstance(exc, NotADirectoryError):
        return f"{path.parent} is not a directory, so key file {path.name} cannot be read"
    if isinstance(exc, IsADirectoryError):
        return f"key file {path} is not a file but a directory"
    if isinstance(exc, UnicodeDecodeError):  # one line of ASCII: other bytes are damage, or another file
        return f"key file {path} is damaged: it holds bytes no key file has"
    return None


_USES = ("identity", "encryption")


def load_keys(config: NodeConfig, db: sqlite_utils.Database, *, expired_ok: bool = False) -> NodeKeys:
    """The current keys: for each use, the newest active key whose validity has started and not ended (of
    two made within the same second, times being to the second, the one stored last).

    ``expired_ok``: a use whose every key has ended gets the newest of them instead of an error, for the one
    thing that mends such a home: `satchel keys rotate` (whose new identity key that key endorses)."""
    now = now_iso()
    rows = db.execute(
        "SELECT use, key_id, key_file, not_after FROM node_keys WHERE status = 'active' AND not_before <= ?"
        " ORDER BY not_before DESC, created_at DESC, rowid DESC",
        [now],
    ).fetchall()
    current: dict[str, tuple[str, str | None]] = {}
    ended: dict[str, tuple[str, str]] = {}
    for use, key_id, key_file, not_after in rows:
        if not_after is None or not_after > now:
            current.setdefault(use, (key_file, not_after))
        else:
            ended.setdefault(use, (key_id, not_after))
            if expired_ok:
                current.setdefault(use, (key_file, not_after))
    if any(use not in current and use not in ended for use in _USES):
        raise HomeMissing(
            "the node has no valid identity or encryption key", hint="restore the home from backup"
        )
    expired = [use for use in _USES if use not in current]
    if expired:
        said = "; ".join(
            f"its {use} key {ended[use][0]} stopped being valid at {ended[use][1]}, and it has no other"
            for use in expired
        )
        follow = "; peers follow the new identity key, which the ended one endorses" if "identity" in expired else ""
        raise KeysExpired(
            f"the node cannot sign or open anything: {said}",
            hint="; ".join(f"make a new {use} key with `satchel keys rotate --{use} --as ADMIN`" for use in expired)
            + follow,
        )
    encryption_by_id = {
        key_id: EncryptionKey.import_secret(_read(config, key_file))
        for key_id, key_file in db.execute(
            "SELECT key_id, key_file FROM node_keys WHERE use = 'encryption' AND status != 'revoked'"
        ).fetchall()
    }
    ends = [not_after for _, not_after in current.values() if not_after is not None]
    revoked = db.execute("SELECT key_id FROM node_keys WHERE use = 'identity' AND status = 'revoked'").fetchall()
    return NodeKeys(
        identity=IdentityKey.import_secret(_read(config, current["identity"][0])),
        encryption=EncryptionKey.import_secret(_read(config, current["encryption"][0])),
        encryption_by_id=encryption_by_id,
        valid_until=min(ends) if ends else None,
        revoked_identity=frozenset(key_id for (key_id,) in revoked),
    )


def revoked_encryption_keys(config: NodeConfig, db: sqlite_utils.Database) -> tuple[list[EncryptionKey], list[str]]:
    """This node's revoked encryption keys whose key files are still here, and what is said of those that are
    not: for opening an envelope stored before its key was revoked (spec/descriptor.md, Revoking a key).
    Read only then, so that a revoked key's file may be deleted without the home failing to open."""
    keys, unreadable = [], []
    for (key_file,) in db.execute(
        "SELECT key_file FROM node_keys WHERE use = 'encryption' AND status = 'revoked' ORDER BY not_before"
    ).fetchall():
        try:
            keys.append(EncryptionKey.import_secret(_read(config, key_file)))
        except HomeMissing as exc:
            unreadable.append(exc.message)
        except InvalidInput as exc:
            unreadable.append(f"key file {config.keys_dir / key_file} is damaged: {exc.message}")
    return keys, unreadable


def init_home(
    home: Path, *, node: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """Create a new home. Refuses to touch a directory that already holds a home (or anything at all)."""
    if (home / CONFIG_FILE).exists() or (home.exists() and any(home.iterdir())):
        raise HomeExists(f"{home} already exists and is not empty")
    values = {"node": dict(node), "server": {"host": "127.0.0.1", "port": 8440}}
    # Validate before writing anything, so a typo leaves no half-made home behind.
    config = build_config(home, values, environ or {})
    made_home = not home.exists()
    try:
        home.mkdir(parents=True, exist_ok=True)
        # The database holds students' records: no other user of the machine may read it, nor anything else
        # here (an existing empty directory may come with the usual 0755).
        home.chmod(0o700)
        # The claim: of several `satchel init`s run at once, the one that makes keys/ goes on; the others
        # stop without touching what it writes (removing "their" partial home removed the winner's).
        config.keys_dir.mkdir(mode=0o700)
    except FileExistsError:
        raise HomeExists(f"{home} already exists and is not empty") from None
    except OSError as exc:
        if made_home:
            with contextlib.suppress(OSError):
                home.rmdir()
        raise InvalidInput(
            f"cannot create the home at {home}: {exc.strerror or exc}", field="--home",
            hint="choose a directory this user may create (for example /srv/satchel, made by root and given to "
                 "the user that runs `satchel serve`)",
        ) from exc  # fmt: skip
    try:
        config.blobs_dir.mkdir()
        identity, encryption = IdentityKey.generate(), EncryptionKey.generate()
        _write_secret(config.keys_dir / IDENTITY_FILE, identity.export_secret())
        _write_secret(config.keys_dir / ENCRYPTION_FILE, encryption.export_secret())
        _write_secret(home / CONFIG_FILE, render_toml(values), encoding="utf-8")  # may hold the SMTP password
        # SQLite creates its -wal and -shm files with the database file's mode.
        _write_secret(config.db_path, "")
        db = open_database(config.db_path)
        now = now_iso()
        with write_transaction(db):
            for use, key, name in (
                ("identity", identity, IDENTITY_FILE),
                ("encryption", encryption, ENCRYPTION_FILE),
            ):
                public = key.public_key
                db.execute(
                    "INSERT INTO node_keys (key_id, use, algorithm, public_key, key_file, not_before, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [public.key_id, use, public.algorithm, public.raw, name, now, now],
                )
            audit.append(
                db, at=now, actor="(init)", action="home.init", subject=config.node.domain,
                details={"identity_key": identity.public_key.key_id},
            )  # fmt: skip
        db.close()
    except BaseException:
        _remove_partial_home(home, made_home)
        raise
    return config


def _remove_partial_home(home: Path, made_home: bool) -> None:
    """What this init wrote (it holds keys/, so nobody else wrote there); the directory only if it made it."""
    for path in sorted(home.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    if made_home:
        home.rmdir()


@dataclass
class Node:
    """An opened home: what every command and the server work with. Close it when done."""

    config: NodeConfig
    keys: NodeKeys
    db: sqlite_utils.Database
    blobs: BlobStore
    expired_keys_ok: bool = False  # see load_keys
    _keys_stamp: tuple | None = None
    _db_changes: tuple[int, int] | None = None

    def current_keys(self) -> NodeKeys:
        """The keys to use now; a long-running server picks up rotations and revocations made by the CLI, and
        stops (home.keys_expired) rather than sign with a key once it has ended."""
        # Asked for every signed answer: look at node_keys only when some connection has written since
        # (data_version moves on other connections' commits, total_changes on this one's), or time has
        # passed the end of a key in use.
        changes = (self.db.execute("PRAGMA data_version").fetchone()[0], self.db.conn.total_changes)
        until = self.keys.valid_until
        ended = until is not None and now_iso() >= until and not self.expired_keys_ok
        if changes == self._db_changes and not ended:
            return self.keys
        self._db_changes = changes
        stamp = tuple(
            self.db.execute(
                "SELECT count(*), max(created_at), sum(status = 'revoked'), max(not_after) FROM node_keys"
            ).fetchone()
        )
        if stamp != self._keys_stamp or ended:
            self.keys = load_keys(self.config, self.db, expired_ok=self.expired_keys_ok)
            self._keys_stamp = stamp
        return self.keys

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_node(home: Path, environ: Mapping[str, str] | None = None, *, expired_keys_ok: bool = False) -> Node:
    """Open an existing home. Never creates anything: a part that is gone is named, for restoring.

    ``expired_keys_ok``: open a home whose last key of a use has ended (see load_keys), to list its keys and
    rotate them; nothing else should run on such a home."""
    if not home.is_dir():
        raise HomeMissing(f"no Satchel home at {home}")
    config = load_config(home, environ)
    if config.node.role not in ("district", "directory"):
        raise ConfigError("unknown node role", field="node.role")
    # satchel.toml is there, so `satchel init` made this home and its database with it: a database that is
    # gone was deleted or moved, and an empty new one would lose every record and then blame the keys.
    if not config.db_path.is_file():
        what = "is not a file" if config.db_path.exists() else "is missing"
        raise HomeMissing(
            f"{config.db_path} {what}, in a home made by `satchel init` (it has {CONFIG_FILE})",
            hint="put satchel.db back from the latest backup (`satchel backup` makes them; see Restoring in the "
                 "README), or point --home / SATCHEL_HOME at the right home; nothing was created",
        )  # fmt: skip
    db = open_database(config.db_path, create=False)
    try:
        keys = load_keys(config, db, expired_ok=expired_keys_ok)
    except BaseException as exc:
        db.close()
        damaged = database_damaged(exc, config.db_path)
        if damaged is None:
            raise
        raise damaged from exc
    return Node(config, keys, db, BlobStore(config.blobs_dir), expired_keys_ok=expired_keys_ok)
