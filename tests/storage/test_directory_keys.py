"""The directory's index of key ids: key discovery is one look-up, kept right as entries change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from crypto import EncryptionKey, IdentityKey
from protocol.descriptor import Descriptor, sign_descriptor
from storage import directory
from storage.database import open_database
from storage.migrations import MIGRATIONS

from support import published_key

NOW = "2026-11-23T00:00:00Z"



def _signed(domain: str, *identities: IdentityKey) -> tuple[Descriptor, bytes]:
    encryption = EncryptionKey.generate()
    descriptor = Descriptor(
        role="district", domain=domain, name=f"District {domain}", state="IL", city="Springfield", zip="62701",
        nces_id="", base_url=f"https://{domain}", transfers_enabled=True, coordinator=None,
        keys=(*(published_key(k, "identity") for k in identities), published_key(encryption, "encryption")),
        issued_at=NOW,
    )  # fmt: skip
    return descriptor, sign_descriptor(descriptor, identities[0])


def _found(db, key: IdentityKey) -> list[str]:
    return [e.domain for e in directory.approved_entries_with_key(db, key.public_key.key_id)]


def test_entries_are_found_by_any_key_they_list_and_only_when_approved(tmp_path: Path) -> None:
    db = open_database(tmp_path / "dir.db")
    old, new, other = IdentityKey.generate(), IdentityKey.generate(), IdentityKey.generate()
    directory.upsert_entry(
        db, *_signed("a.example.org", old), status="approved", origin="here", entry=None, now=NOW, own="here"
    )
    directory.upsert_entry(
        db, *_signed("b.example.org", other), status="pending", origin="here", entry=None, now=NOW, own="here"
    )
    assert _found(db, old) == ["a.example.org"]
    assert _found(db, other) == []  # pending entries are not published
    # A rotation lists both keys for a while, then only the new one: the index follows each update.
    directory.upsert_entry(db, *_signed("a.example.org", new, old), status="approved", origin="here", entry=None,
                           now=NOW, own="here")  # fmt: skip
    assert _found(db, old) == _found(db, new) == ["a.example.org"]
    directory.upsert_entry(
        db, *_signed("a.example.org", new), status="approved", origin="here", entry=None, now=NOW, own="here"
    )
    assert _found(db, old) == [] and _found(db, new) == ["a.example.org"]
    directory.set_decision(db, "b.example.org", own="here", status="approved", entry=None, by="op", now=NOW)
    assert _found(db, other) == ["b.example.org"]


def test_migration_indexes_the_entries_already_stored(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0011_directory_entry_keys")
    key = IdentityKey.generate()
    descriptor, signed = _signed("a.example.org", key)
    db.execute(
        "INSERT INTO directory_entries (domain, status, origin, name, state, city, zip, nces_id, descriptor, joined_at,"
        " updated_at) VALUES (?, 'approved', 'here', ?, 'IL', 'Springfield', '62701', '', ?, ?, ?)",
        [descriptor.domain, descriptor.name, signed, NOW, NOW],
    )  # fmt: skip
    MIGRATIONS.apply(db)
    assert _found(db, key) == ["a.example.org"]


def test_migration_indexes_an_entry_an_older_version_stored_under_looser_checks(tmp_path: Path) -> None:
    """A directory of a release before 0011 held what its checks took: a district whose name has a tab in it
    made the migration, and so every command of the upgraded directory, fail."""
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0011_directory_entry_keys")
    key, odd_key = IdentityKey.generate(), IdentityKey.generate()
    descriptor, signed = _signed("a.example.org", key)
    odd, _ = _signed("odd.example.org", odd_key)
    odd = replace(odd, name="Odd\tDistrict")  # refused since control characters are (spec/descriptor.md)
    for status, d, s in (("approved", descriptor, signed), ("approved", odd, sign_descriptor(odd, odd_key))):
        db.execute(
            "INSERT INTO directory_entries (domain, status, origin, name, state, city, zip, nces_id, descriptor,"
            " joined_at, updated_at) VALUES (?, ?, 'here', ?, 'IL', 'Springfield', '62701', '', ?, ?, ?)",
            [d.domain, status, d.name, s, NOW, NOW],
        )  # fmt: skip
    MIGRATIONS.apply(db)
    assert _found(db, key) == ["a.example.org"]
    assert _found(db, odd_key) == ["odd.example.org"]  # its keys are its keys; districts judge the entry
