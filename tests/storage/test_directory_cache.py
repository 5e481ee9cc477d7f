"""A district's cache of directory answers, which it searches when a directory does not answer, holds what the
directory still publishes: an answer that holds every match drops what it no longer lists, and what no answer
has held for a while goes."""

from __future__ import annotations

from pathlib import Path

from crypto import IdentityKey
from protocol.descriptor import Descriptor
from storage import directory
from storage.database import open_database
from storage.migrations import MIGRATIONS

from support import published_key

NOW = "2026-11-23T00:00:00Z"
STATE = "directory.example.gov"


def _district(domain: str, name: str, city: str = "Springfield", zip_code: str = "62701") -> Descriptor:
    return Descriptor(
        role="district", domain=domain, name=name, state="IL", city=city, zip=zip_code, nces_id="1700001",
        base_url=f"https://{domain}", transfers_enabled=True, coordinator=None, issued_at=NOW,
        keys=(published_key(IdentityKey.generate(), "identity"),),
    )  # fmt: skip


def _cached(db, source: str = STATE) -> list[bytes]:
    return directory.cached_entries(db, source)


def test_an_answer_in_full_drops_the_matches_it_no_longer_lists(tmp_path: Path) -> None:
    db = open_database(tmp_path / "district.db")
    for domain, name, city in (("a.example.org", "Springfield A", "Springfield"),
                               ("b.example.org", "Springfield B", "Springfield"),
                               ("c.example.org", "Shelbyville C", "Shelbyville")):  # fmt: skip
        directory.cache_entry(db, STATE, _district(domain, name, city), domain.encode(), NOW)
    directory.cache_entry(db, "other.example.gov", _district("b.example.org", "Springfield B"), b"b", NOW)
    # "springfield" answered with A only: B, which matches, is gone from the directory; C did not match.
    dropped = directory.forget_unlisted(db, STATE, listed={"a.example.org"}, state="IL", text="springfield")
    assert dropped == 1 and _cached(db) == [b"a.example.org", b"c.example.org"]
    assert _cached(db, "other.example.gov") == [b"b"]  # another directory's answers are its own
    # A search in another state, city or ZIP says nothing of these.
    for search in ({"state": "WI"}, {"state": "IL", "city": "Chicago"}, {"state": "IL", "zip_code": "606"}):
        assert directory.forget_unlisted(db, STATE, listed=set(), **search) == 0
    # The whole state answered with nothing: the directory lists none of them any more.
    assert directory.forget_unlisted(db, STATE, listed=set(), state="IL") == 2 and _cached(db) == []


def test_what_no_answer_held_lately_goes(tmp_path: Path) -> None:
    db = open_database(tmp_path / "district.db")
    directory.cache_entry(db, STATE, _district("a.example.org", "A"), b"a", "2026-09-01T00:00:00Z")
    directory.cache_entry(db, STATE, _district("b.example.org", "B"), b"b", NOW)
    assert directory.forget_stale(db, STATE, before="2026-10-24T00:00:00Z") == 1 and _cached(db) == [b"b"]


def test_entries_cached_before_their_fields_were_kept_only_age_out(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="0020_directory_cache_fields")
    db.execute("INSERT INTO directory_cache (directory_domain, domain, entry, fetched_at) VALUES (?, ?, ?, ?)",
               [STATE, "a.example.org", b"a", "2026-09-01T00:00:00Z"])  # fmt: skip
    MIGRATIONS.apply(db)
    assert directory.forget_unlisted(db, STATE, listed=set(), state="IL") == 0 and _cached(db) == [b"a"]
    assert directory.forget_stale(db, STATE, before=NOW) == 1 and _cached(db) == []
