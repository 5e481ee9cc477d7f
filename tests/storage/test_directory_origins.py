"""A directory keeps its own entry for a district apart from those mirrored directories vouch for, and publishes
one of them: its own once its operator approved it, else a mirrored one."""

from __future__ import annotations

from pathlib import Path

from crypto import EncryptionKey, IdentityKey
from protocol.descriptor import Descriptor, sign_descriptor
from storage import directory
from storage.database import open_database
from storage.migrations import MIGRATIONS

from support import published_key

NOW = "2026-11-23T00:00:00Z"
HERE, STATE, OTHER = "national.example.gov", "state.example.gov", "consortium.example.gov"


def _signed(domain: str, identity: IdentityKey) -> tuple[Descriptor, bytes]:
    descriptor = Descriptor(
        role="district", domain=domain, name=f"District {domain}", state="IL", city="Springfield", zip="62701",
        nces_id="", base_url=f"https://{domain}", transfers_enabled=True, coordinator=None,
        keys=(published_key(identity, "identity"), published_key(EncryptionKey.generate(), "encryption")),
        issued_at=NOW,
    )  # fmt: skip
    return descriptor, sign_descriptor(descriptor, identity)


def _published(db, domain: str) -> list[tuple[str, str]]:
    return [(e.origin, e.status) for e in directory.list_entries(db) if e.domain == domain and e.published]


def _found(db, key: IdentityKey) -> list[tuple[str, str]]:
    return [(e.domain, e.origin) for e in directory.approved_entries_with_key(db, key.public_key.key_id)]


def test_own_and_mirrored_entries_of_a_domain_are_apart_and_one_is_published(tmp_path: Path) -> None:
    db = open_database(tmp_path / "dir.db")
    vouched, own_key = IdentityKey.generate(), IdentityKey.generate()
    domain = "a.example.org"
    directory.upsert_entry(db, *_signed(domain, vouched), status="approved", origin=STATE, entry=b"by state",
                           now=NOW, own=HERE)  # fmt: skip
    assert _published(db, domain) == [(STATE, "approved")] and _found(db, vouched) == [(domain, STATE)]
    # The district asks this directory itself: its request waits beside the state's entry, which stays published.
    directory.upsert_entry(db, *_signed(domain, own_key), status="pending", origin=HERE, entry=None, now=NOW, own=HERE)
    assert {(e.origin, e.status) for e in directory.list_entries(db)} == {(STATE, "approved"), (HERE, "pending")}
    assert _published(db, domain) == [(STATE, "approved")] and _found(db, own_key) == []
    # A later pull of the state's entry leaves the request alone.
    directory.upsert_entry(db, *_signed(domain, vouched), status="approved", origin=STATE, entry=b"by state",
                           now=NOW, own=HERE)  # fmt: skip
    pending = directory.get_entry(db, domain, HERE)
    assert pending is not None and pending.status == "pending"
    # Approved here, this directory's own entry is the one published, with its keys; rejected, the state's again.
    directory.set_decision(db, domain, own=HERE, status="approved", entry=b"by us", by="op", now=NOW)
    assert _published(db, domain) == [(HERE, "approved")]
    assert _found(db, own_key) == [(domain, HERE)] and _found(db, vouched) == []
    directory.set_decision(db, domain, own=HERE, status="rejected", entry=None, by="op", now=NOW)
    assert _published(db, domain) == [(STATE, "approved")] and _found(db, vouched) == [(domain, STATE)]
    # Two mirrored directories vouch for it: one is published, the same one every time.
    directory.upsert_entry(db, *_signed(domain, vouched), status="approved", origin=OTHER, entry=b"by other",
                           now=NOW, own=HERE)  # fmt: skip
    assert _published(db, domain) == [(OTHER, "approved")]
    # The state drops it: only the state's entry goes; the rejection here stays, as the operator decided.
    directory.remove_entries(db, [domain], origin=STATE, own=HERE, now=NOW)
    directory.remove_entries(db, [domain], origin=OTHER, own=HERE, now=NOW)
    assert _published(db, domain) == [] and _found(db, vouched) == []
    assert [(e.origin, e.status) for e in directory.list_entries(db)] == [(HERE, "rejected")]


def test_the_migration_publishes_the_approved_entries_already_stored(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0019_directory_entries_by_origin")
    keys = {status: IdentityKey.generate() for status in ("approved", "pending")}
    for status, key in keys.items():
        descriptor, signed = _signed(f"{status}.example.org", key)
        db.execute(
            "INSERT INTO directory_entries (domain, status, origin, name, state, city, zip, nces_id, descriptor,"
            " joined_at, updated_at) VALUES (?, ?, ?, ?, 'IL', 'Springfield', '62701', '', ?, ?, ?)",
            [descriptor.domain, status, HERE, descriptor.name, signed, NOW, NOW],
        )  # fmt: skip
        db.execute("INSERT INTO directory_entry_keys (key_id, domain) VALUES (?, ?)",
                   [key.public_key.key_id, descriptor.domain])  # fmt: skip
    MIGRATIONS.apply(db)
    assert _published(db, "approved.example.org") == [(HERE, "approved")]
    assert _published(db, "pending.example.org") == []
    assert _found(db, keys["approved"]) == [("approved.example.org", HERE)] and _found(db, keys["pending"]) == []
    # The pending request is approved later: published and found by its key, as a new one would be.
    directory.set_decision(db, "pending.example.org", own=HERE, status="approved", entry=b"e", by="op", now=NOW)
    assert _found(db, keys["pending"]) == [("pending.example.org", HERE)]
