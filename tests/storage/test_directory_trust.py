"""What a district caches from a directory was verified under the key it pinned: it goes when that key
changes, followed to the directory's new key or pinned again by an operator."""

from __future__ import annotations

from pathlib import Path

from crypto import IdentityKey
from protocol.descriptor import Descriptor
from storage import directory
from storage.database import open_database

from support import published_key

NOW = "2026-11-23T00:00:00Z"
URL, STATE = "https://directory.example.gov", "directory.example.gov"


def _pin(db, key_id: str) -> None:
    directory.add_trusted(db, base_url=URL, domain=STATE, key_id=key_id, public_key=key_id.encode(), by="ada",
                          now=NOW)  # fmt: skip


def _cache(db) -> None:
    district = Descriptor(
        role="district", domain="a.example.org", name="A", state="IL", city="Springfield", zip="62701",
        nces_id="", base_url="https://a.example.org", transfers_enabled=True, coordinator=None, issued_at=NOW,
        keys=(published_key(IdentityKey.generate(), "identity"),),
    )  # fmt: skip
    for source in (STATE, "national.example.gov"):
        directory.cache_entry(db, source, district, f"entry from {source}".encode(), NOW)


def test_the_cache_of_a_directory_goes_when_its_pinned_key_changes(tmp_path: Path) -> None:
    db = open_database(tmp_path / "district.db")
    _pin(db, "k1")
    _cache(db)
    _pin(db, "k1")  # pinned again, the same key: nothing changes
    assert directory.cached_entries(db, STATE) == [b"entry from directory.example.gov"]
    directory.follow_trusted_key(db, URL, STATE, key_id="k2", public_key=b"k2")
    assert [(t.key_id, t.public_key) for t in directory.trusted(db)] == [("k2", b"k2")]
    assert directory.cached_entries(db, STATE) == []
    assert directory.cached_entries(db, "national.example.gov") == [b"entry from national.example.gov"]
    _cache(db)
    _pin(db, "k3")  # an operator pins another key (the directory was rebuilt)
    assert directory.cached_entries(db, STATE) == []
