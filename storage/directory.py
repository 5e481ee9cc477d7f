"""Directory state: entries this node vets (directory role), and the directories a district uses."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlite_utils

from protocol import SatchelError
from protocol.descriptor import Descriptor, verify_descriptor
from storage.rows import like_escaped

SEARCH_LIMIT = 100  # entries a directory search answers at most


@dataclass(frozen=True, slots=True)
class Entry:
    """One origin's entry for a domain: this directory's own (``origin`` its domain: a member's request and the
    operator's decision) or one taken from a mirrored directory (``origin`` that directory, always approved)."""

    domain: str
    status: str
    origin: str
    name: str
    state: str
    city: str
    zip: str
    nces_id: str
    descriptor: bytes
    entry: bytes | None
    joined_at: str
    decided_at: str | None
    decided_by: str | None
    updated_at: str
    published: bool = False  # the one entry of its domain this directory publishes


_ENTRY_COLS = (
    "domain, status, origin, name, state, city, zip, nces_id, descriptor, entry, joined_at, decided_at,"
    " decided_by, updated_at, published"
)


def _entry(row: tuple) -> Entry:
    values = list(row)
    values[8] = bytes(values[8])
    values[9] = bytes(values[9]) if values[9] is not None else None
    values[14] = bool(values[14])
    return Entry(*values)


def get_entry(db: sqlite_utils.Database, domain: str, origin: str) -> Entry | None:
    row = db.execute(
        f"SELECT {_ENTRY_COLS} FROM directory_entries WHERE domain = ? AND origin = ?", [domain, origin]
    ).fetchone()
    return _entry(row) if row else None


def upsert_entry(
    db: sqlite_utils.Database,
    descriptor: Descriptor,
    signed_descriptor: bytes,
    *,
    status: str,
    origin: str,
    entry: bytes | None,
    now: str,
    own: str,
    decided_by: str | None = None,
) -> None:
    """Store ``origin``'s entry for the domain (``own``: this directory's domain), then which one is published."""
    db.execute(
        f"INSERT INTO directory_entries ({_ENTRY_COLS}) VALUES ({','.join('?' * 15)})"
        " ON CONFLICT (domain, origin) DO UPDATE SET status = excluded.status,"
        " name = excluded.name, state = excluded.state, city = excluded.city, zip = excluded.zip,"
        " nces_id = excluded.nces_id, descriptor = excluded.descriptor, entry = excluded.entry,"
        " decided_at = COALESCE(excluded.decided_at, directory_entries.decided_at),"
        " decided_by = COALESCE(excluded.decided_by, directory_entries.decided_by),"
        " updated_at = excluded.updated_at",
        [
            descriptor.domain, status, origin, descriptor.name, descriptor.state, descriptor.city,
            descriptor.zip, descriptor.nces_id, signed_descriptor, entry, now,
            now if decided_by else None, decided_by, now, 0,
        ],
    )  # fmt: skip
    _publish(db, descriptor.domain, own=own, now=now, written=(origin, descriptor))


def _publish(
    db: sqlite_utils.Database, domain: str, *, own: str, now: str, written: tuple[str, Descriptor] | None = None
) -> None:
    """Mark the entry published for ``domain``: this directory's own once approved (its operator vetted the
    district), else an approved one taken from a mirrored directory (of several, the one whose directory's
    domain sorts first, so the choice does not flap between pulls), else none. The key index follows the
    published entry. ``written``: the origin and descriptor of the entry just stored, to index its keys
    without parsing it again."""
    row = db.execute(
        "SELECT origin, descriptor FROM directory_entries WHERE domain = ? AND status = 'approved'"
        " ORDER BY origin = ? DESC, origin LIMIT 1",
        [domain, own],
    ).fetchone()
    chosen = row[0] if row else None
    # A row whose mark changes counts as updated, so the mirror feed's stamp (published_stamp) sees it. The
    # old mark goes first: at most one entry of a domain is published at any moment (a unique index).
    flipped = db.execute(
        "UPDATE directory_entries SET published = 0, updated_at = ? WHERE domain = ? AND published = 1"
        " AND origin IS NOT ?",
        [now, domain, chosen],
    ).rowcount
    flipped += db.execute(
        "UPDATE directory_entries SET published = 1, updated_at = ? WHERE domain = ? AND published = 0"
        " AND origin IS ?",
        [now, domain, chosen],
    ).rowcount
    if written is not None and written[0] != chosen and not flipped:
        return  # an entry stored beside the published one, which stays as it was (and so do its keys)
    if row is None:
        keys: list[str] = []
    elif written is not None and written[0] == chosen:
        keys = [k.key_id for k in written[1].keys]
    else:
        keys = _listed_key_ids(bytes(row[1]))
    _index_keys(db, domain, keys)


def _listed_key_ids(signed: bytes) -> list[str]:
    """The key ids a stored descriptor lists. An older version stored what its own checks took (a district's
    name with a tab in it, before control characters were refused): its keys are read all the same, and one
    this version cannot read at all indexes none rather than stop the rest."""
    try:
        return [k.key_id for k in verify_descriptor(signed, check_shown=False).descriptor.keys]
    except SatchelError:
        return []


def _index_keys(db: sqlite_utils.Database, domain: str, key_ids: list[str]) -> None:
    db.execute("DELETE FROM directory_entry_keys WHERE domain = ?", [domain])
    db.conn.executemany(
        "INSERT OR IGNORE INTO directory_entry_keys (key_id, domain) VALUES (?, ?)",
        [(k, domain) for k in key_ids],
    )


def reindex_keys(db: sqlite_utils.Database) -> None:
    """Rebuild the key ids of every entry from its stored descriptor (used by migration 0011, when each domain
    had one entry)."""
    rows = db.execute("SELECT domain, descriptor FROM directory_entries").fetchall()
    for domain, signed in rows:
        _index_keys(db, domain, _listed_key_ids(bytes(signed)))


def approved_entries_with_key(db: sqlite_utils.Database, key_id: str) -> list[Entry]:
    """Published entries whose descriptor lists ``key_id`` (one look-up in the index, whatever the size)."""
    columns = ", ".join(f"e.{c.strip()}" for c in _ENTRY_COLS.split(","))
    rows = db.execute(
        f"SELECT {columns} FROM directory_entry_keys k JOIN directory_entries e ON e.domain = k.domain"
        " WHERE k.key_id = ? AND e.published = 1 ORDER BY e.state, e.name",
        [key_id],
    ).fetchall()
    return [_entry(r) for r in rows]


def set_decision(
    db: sqlite_utils.Database, domain: str, *, own: str, status: str, entry: bytes | None, by: str, now: str
) -> None:
    """The operator's decision on this directory's own entry for ``domain`` (``own``: its domain)."""
    db.execute(
        "UPDATE directory_entries SET status = ?, entry = ?, decided_at = ?, decided_by = ?, updated_at = ?"
        " WHERE domain = ? AND origin = ?",
        [status, entry, now, by, now, domain, own],
    )
    _publish(db, domain, own=own, now=now)


def list_entries(db: sqlite_utils.Database, *, status: str | None = None) -> list[Entry]:
    sql, args = f"SELECT {_ENTRY_COLS} FROM directory_entries", []
    if status:
        sql += " WHERE status = ?"
        args.append(status)
    return [_entry(r) for r in db.execute(sql + " ORDER BY state, name, origin", args).fetchall()]


def approved_page(db: sqlite_utils.Database, *, after: str, limit: int) -> list[Entry]:
    """Up to ``limit`` published entries whose domain sorts after ``after``, in domain order (one page of the
    mirror feed; the primary key's index walks it, so a page costs the same wherever it starts)."""
    rows = db.execute(
        f"SELECT {_ENTRY_COLS} FROM directory_entries WHERE published = 1 AND domain > ?"
        " ORDER BY domain LIMIT ?",
        [after, limit],
    ).fetchall()
    return [_entry(r) for r in rows]


def own_approved_page(
    db: sqlite_utils.Database, own: str, *, after: str, limit: int
) -> list[tuple[str, bytes]]:
    """(domain, signed entry) of this directory's own approved entries after ``after``, in domain order."""
    rows = db.execute(
        "SELECT domain, entry FROM directory_entries WHERE origin = ? AND status = 'approved' AND domain > ?"
        " ORDER BY domain LIMIT ?",
        [own, after, limit],
    ).fetchall()
    return [(r[0], bytes(r[1])) for r in rows]


def own_approved_count(db: sqlite_utils.Database, own: str, *, upto: str | None = None) -> int:
    """How many of this directory's own approved entries there are (up to and with domain ``upto``, if given)."""
    sql, args = "SELECT count(*) FROM directory_entries WHERE origin = ? AND status = 'approved'", [own]
    if upto is not None:
        sql, args = sql + " AND domain <= ?", [*args, upto]
    return int(db.execute(sql, args).fetchone()[0])


def replace_entry(db: sqlite_utils.Database, domain: str, origin: str, *, old: bytes, new: bytes, now: str) -> int:
    """Replace ``origin``'s approved signed entry for ``domain`` by ``new`` if it is still ``old`` (it was
    signed again from it); returns 1 if it was, 0 if it changed meanwhile and is left as it is."""
    return db.execute(
        "UPDATE directory_entries SET entry = ?, updated_at = ? WHERE domain = ? AND origin = ? AND status = 'approved'"
        " AND entry = ?",
        [new, now, domain, origin, old],
    ).rowcount


def mirrored_domains(db: sqlite_utils.Database, origin: str) -> set[str]:
    """Domains of the entries taken from the mirrored directory ``origin``."""
    return {r[0] for r in db.execute("SELECT domain FROM directory_entries WHERE origin = ?", [origin])}


def remove_entries(db: sqlite_utils.Database, domains: list[str], *, origin: str, own: str, now: str) -> None:
    """Remove ``origin``'s entries for ``domains``; entries of other origins stay, and may be published now."""
    db.conn.executemany(
        "DELETE FROM directory_entries WHERE domain = ? AND origin = ?", [(d, origin) for d in domains]
    )
    for domain in domains:
        _publish(db, domain, own=own, now=now)


def published_stamp(db: sqlite_utils.Database) -> tuple:
    """Changes whenever what a directory's mirror feed publishes may have: its published entries, its mirrors."""
    entries = db.execute(
        "SELECT count(*), max(updated_at) FROM directory_entries WHERE published = 1"
    ).fetchone()
    mirrors = db.execute("SELECT count(*), max(last_sync_at) FROM directory_mirrors").fetchone()
    return (*entries, *mirrors)


def search_entries(
    db: sqlite_utils.Database,
    *,
    state: str,
    text: str | None = None,
    city: str | None = None,
    zip_code: str | None = None,
    limit: int = SEARCH_LIMIT,
) -> list[Entry]:
    where, args = _matching(state=state, text=text, city=city, zip_code=zip_code)
    sql = f"SELECT {_ENTRY_COLS} FROM directory_entries WHERE published = 1 AND {where} ORDER BY name LIMIT ?"
    return [_entry(r) for r in db.execute(sql, [*args, limit]).fetchall()]


def _matching(*, state: str, text: str | None, city: str | None, zip_code: str | None) -> tuple[str, list[str]]:
    """The condition a search sets on a district's state, name (or domain, or NCES id), city and ZIP prefix,
    over the columns of that name (directory_entries, directory_cache)."""
    where, args = ["state = ?"], [state]
    if text:
        where.append("(name LIKE ? ESCAPE '\\' OR domain LIKE ? ESCAPE '\\' OR nces_id = ?)")
        args += [f"%{like_escaped(text)}%", f"%{like_escaped(text)}%", text]
    if city:
        where.append("city LIKE ? ESCAPE '\\'")  # LIKE for its case-insensitivity: the whole name
        args.append(like_escaped(city))
    if zip_code:
        where.append("zip LIKE ? ESCAPE '\\'")
        args.append(f"{like_escaped(zip_code)}%")
    return " AND ".join(where), args


@dataclass(frozen=True, slots=True)
class TrustedDirectory:
    base_url: str
    domain: str
    key_id: str
    public_key: bytes
    added_by: str
    added_at: str
    last_ok_at: str | None


def add_trusted(
    db: sqlite_utils.Database,
    *,
    base_url: str,
    domain: str,
    key_id: str,
    public_key: bytes,
    by: str,
    now: str,
) -> None:
    before = db.execute("SELECT domain, key_id FROM trusted_directories WHERE base_url = ?", [base_url]).fetchone()
    if before is not None and tuple(before) != (domain, key_id):
        forget_cached(db, before[0])
    db.execute(
        "INSERT INTO trusted_directories (base_url, domain, key_id, public_key, added_by, added_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (base_url) DO UPDATE SET domain = excluded.domain,"
        " key_id = excluded.key_id, public_key = excluded.public_key",
        [base_url, domain, key_id, public_key, by, now],
    )


def trusted(db: sqlite_utils.Database) -> list[TrustedDirectory]:
    rows = db.execute(
        "SELECT base_url, domain, key_id, public_key, added_by, added_at, last_ok_at FROM trusted_directories"
        " ORDER BY domain"
    ).fetchall()
    return [TrustedDirectory(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]


def follow_trusted_key(
    db: sqlite_utils.Database, base_url: str, domain: str, *, key_id: str, public_key: bytes
) -> None:
    """Pin the key a trusted directory rotated to, in place of the one that endorsed it."""
    db.execute(
        "UPDATE trusted_directories SET key_id = ?, public_key = ? WHERE base_url = ?", [key_id, public_key, base_url]
    )
    forget_cached(db, domain)


def forget_cached(db: sqlite_utils.Database, directory_domain: str) -> None:
    """Drop what was cached from a directory whose pinned key changed: it was verified under the old key, and
    the directory's own entries among it no longer verify."""
    db.execute("DELETE FROM directory_cache WHERE directory_domain = ?", [directory_domain])


def mark_directory_ok(db: sqlite_utils.Database, base_url: str, now: str) -> None:
    db.execute("UPDATE trusted_directories SET last_ok_at = ? WHERE base_url = ?", [now, base_url])


def cache_entry(
    db: sqlite_utils.Database, directory_domain: str, district: Descriptor, entry: bytes, now: str
) -> None:
    """Keep a verified entry a directory answered, with the district's searchable fields."""
    db.execute(
        "INSERT INTO directory_cache (directory_domain, domain, entry, fetched_at, state, name, city, zip, nces_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (directory_domain, domain) DO UPDATE SET"
        " entry = excluded.entry, fetched_at = excluded.fetched_at, state = excluded.state, name = excluded.name,"
        " city = excluded.city, zip = excluded.zip, nces_id = excluded.nces_id",
        [directory_domain, district.domain, entry, now, district.state, district.name, district.city,
         district.zip, district.nces_id],
    )  # fmt: skip


def forget_unlisted(
    db: sqlite_utils.Database,
    directory_domain: str,
    *,
    listed: Collection[str],
    state: str,
    text: str | None = None,
    city: str | None = None,
    zip_code: str | None = None,
) -> int:
    """After a directory answered a search in full, drop what was cached from it that matches the same search
    but was not in the answer (``listed``): the directory no longer publishes it, or not as cached. Entries
    cached before their fields were kept (migration 0021) match nothing here; they age out."""
    where, args = _matching(state=state, text=text, city=city, zip_code=zip_code)
    listed = sorted(listed)
    sql = (
        f"DELETE FROM directory_cache WHERE directory_domain = ? AND {where}"
        f" AND domain NOT IN ({','.join('?' * len(listed))})"
    )
    return db.execute(sql, [directory_domain, *args, *listed]).rowcount


def forget_stale(db: sqlite_utils.Database, directory_domain: str, *, before: str) -> int:
    """Drop what was cached from a directory and has been in none of its answers since ``before``."""
    return db.execute(
        "DELETE FROM directory_cache WHERE directory_domain = ? AND fetched_at < ?", [directory_domain, before]
    ).rowcount


def cached_entries(db: sqlite_utils.Database, directory_domain: str) -> list[bytes]:
    rows = db.execute(
        "SELECT entry FROM directory_cache WHERE directory_domain = ? ORDER BY domain", [directory_domain]
    ).fetchall()
    return [bytes(r[0]) for r in rows]


def set_membership(
    db: sqlite_utils.Database, *, base_url: str, domain: str, status: str, now: str, pushed_sha256: str
) -> None:
    db.execute(
        "INSERT INTO directory_memberships (base_url, domain, status, joined_at, pushed_descriptor_sha256,"
        " pushed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (base_url) DO UPDATE SET status = excluded.status,"
        " pushed_descriptor_sha256 = excluded.pushed_descriptor_sha256, pushed_at = excluded.pushed_at",
        [base_url, domain, status, now, pushed_sha256, now],
    )


def memberships(db: sqlite_utils.Database) -> list[tuple[str, str, str, str | None]]:
    """(base_url, directory domain, status, sha256 of the descriptor last pushed)."""
    rows = db.execute(
        "SELECT base_url, domain, status, pushed_descriptor_sha256 FROM directory_memberships ORDER BY domain"
    )
    return [tuple(r) for r in rows.fetchall()]


def add_mirror(
    db: sqlite_utils.Database, *, base_url: str, domain: str, public_key: bytes, by: str, now: str
) -> None:
    db.execute(
        "INSERT INTO directory_mirrors (base_url, domain, public_key, added_by, added_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (base_url) DO UPDATE SET public_key = excluded.public_key",
        [base_url, domain, public_key, by, now],
    )


def mirrors(db: sqlite_utils.Database) -> list[tuple[str, str, bytes]]:
    rows = db.execute("SELECT base_url, domain, public_key FROM directory_mirrors ORDER BY domain").fetchall()
    return [(r[0], r[1], bytes(r[2])) for r in rows]


def follow_mirror_key(db: sqlite_utils.Database, base_url: str, public_key: bytes) -> None:
    """Pin the key a mirrored directory rotated to, in place of the one that endorsed it."""
    db.execute("UPDATE directory_mirrors SET public_key = ? WHERE base_url = ?", [public_key, base_url])


def mark_mirror_synced(db: sqlite_utils.Database, base_url: str, now: str) -> None:
    db.execute("UPDATE directory_mirrors SET last_sync_at = ? WHERE base_url = ?", [now, base_url])
