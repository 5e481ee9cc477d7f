"""Directory listings: signed, verified entry by entry, large enough for real answers, paged with `next`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import EncryptionKey, IdentityKey
from protocol.descriptor import (
    MAX_DESCRIPTOR_BYTES,
    Descriptor,
    sign_descriptor,
    verify_descriptor,
)
from protocol.directory import (
    FEED_PAGE_BYTES,
    MAX_DOMAIN_LENGTH,
    MAX_LISTING_BYTES,
    DirectoryEntry,
    Listing,
    SourceDirectory,
    listing_keys,
    read_entry,
    sign_entry,
    sign_listing,
    verify_listing,
)
from protocol.errors import MalformedMessage
from protocol.json_strict import MAX_JSON_BYTES
from protocol.signed_document import sign_document
from storage.directory import SEARCH_LIMIT

from support import published_key

NOW = "2026-12-04T00:00:00Z"
DIRECTORY = "directory.example.gov"
DIRECTORY_KEY = IdentityKey.generate()
DISTRICT_KEY = IdentityKey.generate()
ENCRYPTION_KEY = EncryptionKey.generate()



def _entry(domain: str) -> bytes:
    """A real entry: a district's descriptor (an identity and a hybrid encryption key, a coordinator),
    signed by the district and wrapped and signed by the directory: about 6.5 KB, as entries are."""
    descriptor = Descriptor(
        role="district", domain=domain, name=f"Unified School District of {domain}", state="IL",
        city="Springfield", zip="62701", nces_id="1234567", base_url=f"https://satchel.{domain}",
        transfers_enabled=True, coordinator=None,
        keys=(published_key(DISTRICT_KEY, "identity"), published_key(ENCRYPTION_KEY, "encryption")), issued_at=NOW,
    )  # fmt: skip
    entry = DirectoryEntry(directory=DIRECTORY, domain=domain, status="approved", approved_at=NOW, issued_at=NOW,
                           descriptor=sign_descriptor(descriptor, DISTRICT_KEY))  # fmt: skip
    return sign_entry(entry, DIRECTORY_KEY)


def _listing(entries: list[bytes], next_after: str | None = None) -> Listing:
    return Listing(directory=DIRECTORY, issued_at=NOW, sources=(), entries=tuple(entries), next=next_after)


def _verify(data: bytes):
    return verify_listing(data, directory=DIRECTORY, directory_key=DIRECTORY_KEY.public_key)


def test_a_full_search_answer_of_real_entries_verifies() -> None:
    # A search answers up to SEARCH_LIMIT entries; signed, they are larger than a generic signed document
    # may be, which is why a listing has its own limit.
    signed = sign_listing(_listing([_entry(f"d{i:03}.example.org") for i in range(SEARCH_LIMIT)]), DIRECTORY_KEY)
    assert MAX_JSON_BYTES < len(signed) < MAX_LISTING_BYTES
    verified = _verify(signed)
    assert len(verified.entries) == SEARCH_LIMIT and verified.rejected == ()


def test_a_full_feed_page_of_real_entries_verifies() -> None:
    one = len(_entry("d0000.example.org"))
    entries = [_entry(f"d{i:04}.example.org") for i in range(FEED_PAGE_BYTES // one)]
    signed = sign_listing(_listing(entries, next_after="d9999.example.org"), DIRECTORY_KEY)
    assert len(signed) < MAX_LISTING_BYTES
    verified = _verify(signed)
    assert len(verified.entries) == len(entries) and verified.listing.next == "d9999.example.org"


def test_a_listing_larger_than_its_limit_is_refused_before_its_signature_is_checked() -> None:
    payload = json.dumps({"pad": "x" * MAX_LISTING_BYTES}).encode()
    with pytest.raises(MalformedMessage, match="larger than"):
        _verify(sign_document("satchel/v1/directory-listing", payload, DIRECTORY_KEY))


def test_a_descriptor_is_held_to_its_own_limit() -> None:
    signed = sign_document("satchel/v1/descriptor", b"{" + b" " * MAX_DESCRIPTOR_BYTES + b"}", DISTRICT_KEY)
    with pytest.raises(MalformedMessage, match=f"larger than {MAX_DESCRIPTOR_BYTES}"):
        verify_descriptor(signed)


domains = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,60}[a-z0-9])?", fullmatch=True)
# Domain names as DOMAIN_RE has them (a source directory's domain is one): labels, then a last one
# starting with a letter (none ends with a hyphen).
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_labels = st.lists(_label, min_size=1, max_size=4)
domain_names = st.builds(lambda labels, last: ".".join([*labels, last]), _labels,
                         st.from_regex(r"[a-z]([a-z0-9-]{0,9}[a-z0-9])?", fullmatch=True))  # fmt: skip


@given(
    truncated=st.booleans(),
    next_after=st.none() | domains,
    sources=st.lists(st.tuples(domain_names, st.binary(min_size=32, max_size=32)), max_size=3),
    entries=st.lists(st.binary(max_size=64), max_size=5),
)
def test_a_listing_comes_back_as_it_was_signed(truncated, next_after, sources, entries) -> None:
    listing = Listing(directory=DIRECTORY, issued_at=NOW, next=next_after, truncated=truncated, entries=tuple(entries),
                      sources=tuple(SourceDirectory(domain=d, public_key=k) for d, k in sources))  # fmt: skip
    verified = _verify(sign_listing(listing, DIRECTORY_KEY))
    assert verified.listing == listing
    assert len(verified.rejected) == len(entries)  # not entries at all: each reported, none believed


@pytest.mark.parametrize("value", [7, "", "x" * (MAX_DOMAIN_LENGTH + 1), ["a.example.org"]])
def test_a_next_that_is_not_a_domain_is_refused(value) -> None:
    payload = _listing([]).to_json() | {"next": value}
    signed = sign_document("satchel/v1/directory-listing", json.dumps(payload).encode(), DIRECTORY_KEY)
    with pytest.raises(MalformedMessage) as refused:
        _verify(signed)
    assert refused.value.field == "next"


def test_listings_carry_next_and_truncated_only_when_they_say_something() -> None:
    assert not {"next", "truncated"} & set(_listing([]).to_json())
    assert _listing([], "a.example.org").to_json()["next"] == "a.example.org"


def _signed_payload(payload: dict) -> bytes:
    return sign_document("satchel/v1/directory-listing", json.dumps(payload).encode(), DIRECTORY_KEY)


SOURCE = {"domain": "directory.illinois.example", "public_key": "A" * 43}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": 2}, "version"),
        ({"directory": "directory.other.example"}, "directory"),
        ({"issued_at": "2026-12-04T00:00:00+00:00"}, "issued_at"),
        ({"issued_at": "2026-12-04T00:00:00.5Z"}, "issued_at"),
        ({"issued_at": "2026-02-30T00:00:00Z"}, "issued_at"),
        ({"issued_at": "yesterday"}, "issued_at"),
        ({"sources": [SOURCE | {"domain": "Directory.Illinois.Example"}]}, "sources.domain"),
        ({"sources": [SOURCE | {"domain": "directory.illinois.example."}]}, "sources.domain"),
        ({"sources": [SOURCE | {"domain": "https://directory.illinois.example"}]}, "sources.domain"),
        ({"sources": [{"public_key": "A" * 43}]}, "sources.domain"),  # missing: named by its path too
        ({"sources": [SOURCE | {"public_key": 7}]}, "sources.public_key"),
    ],
)
def test_a_listing_member_out_of_its_form_is_refused(change, field) -> None:
    with pytest.raises(MalformedMessage) as refused:
        _verify(_signed_payload(_listing([]).to_json() | change))
    assert refused.value.field == field


@pytest.mark.parametrize("name", ["localhost", "Directory.example.gov", "directory.example.gov."])
def test_a_listing_naming_a_directory_that_is_not_a_domain_is_refused(name) -> None:
    # Even when the caller asked under that very name: a directory is named by its domain.
    signed = sign_listing(Listing(directory=name, issued_at=NOW, sources=(), entries=()), DIRECTORY_KEY)
    with pytest.raises(MalformedMessage) as refused:
        verify_listing(signed, directory=name, directory_key=DIRECTORY_KEY.public_key)
    assert refused.value.field == "directory"


def test_a_listing_and_a_source_with_members_version_1_does_not_define_verify() -> None:
    # spec/directory.md, "Versions": new optional members may come within version 1; a receiver ignores them.
    source = SOURCE | {"region": "midwest"}
    payload = _listing([_entry("a.example.org")]).to_json() | {"sources": [source], "mirrored_at": NOW}
    verified = _verify(_signed_payload(payload))
    assert [s.domain for s in verified.listing.sources] == [SOURCE["domain"]]
    assert len(verified.entries) == 1 and verified.rejected == ()


@pytest.mark.parametrize("members", [{"next": None}, {"truncated": None}, {"truncated": False},
                                     {"next": None, "truncated": False}])  # fmt: skip
def test_an_optional_member_sent_as_null_or_false_reads_as_absent(members) -> None:
    # spec/directory.md: other implementations' JSON libraries often write absent values as null.
    verified = _verify(_signed_payload(_listing([_entry("a.example.org")]).to_json() | members))
    assert (verified.listing.next, verified.listing.truncated, len(verified.entries)) == (None, False, 1)


# --- a directory's entries signed by several of its keys (while it signs them again after a key change) ----

_EARLIER_KEY, _OTHER_KEY = IdentityKey.generate(), IdentityKey.generate()
_MIRRORED = "mirrored.example.gov"


def _signed_by(domain: str, key: IdentityKey, directory: str = DIRECTORY) -> bytes:
    entry, _ = read_entry(_entry(domain))
    return sign_entry(replace(entry, directory=directory), key)


@given(vouched=st.lists(st.sampled_from(["earlier", "other", "mirrored-earlier"]), unique=True),
       signers=st.lists(st.sampled_from(["current", "earlier", "other", "mirrored", "mirrored-earlier"]),
                        min_size=1, max_size=5))  # fmt: skip
def test_an_entry_verifies_if_signed_by_a_key_the_listing_vouches_for_under_its_directory(
    vouched: list[str], signers: list[str]
) -> None:
    keys = {"current": DIRECTORY_KEY, "earlier": _EARLIER_KEY, "other": _OTHER_KEY, "mirrored": DISTRICT_KEY,
            "mirrored-earlier": _OTHER_KEY}  # fmt: skip
    sources = [SourceDirectory(domain=_MIRRORED if name.startswith("mirrored") else DIRECTORY,
                               public_key=keys[name].public_key.raw) for name in vouched]  # fmt: skip
    sources.append(SourceDirectory(domain=_MIRRORED, public_key=DISTRICT_KEY.public_key.raw))
    entries = [_signed_by(f"d{i}.example.org", keys[name], _MIRRORED if name.startswith("mirrored") else DIRECTORY)
               for i, name in enumerate(signers)]  # fmt: skip
    listing = Listing(directory=DIRECTORY, issued_at=NOW, sources=tuple(sources), entries=tuple(entries))
    verified = _verify(sign_listing(listing, DIRECTORY_KEY))
    good = {"current", "mirrored", *vouched}
    assert [e.entry.domain for e in verified.entries] == [
        f"d{i}.example.org" for i, name in enumerate(signers) if name in good]
    assert len(verified.rejected) == sum(name not in good for name in signers)


def test_a_receiver_taking_one_key_per_source_keeps_the_pinned_one() -> None:
    # Receivers from before a directory could vouch for several keys of one directory keep the last source of a
    # domain: the key pinned for a mirrored directory comes last, and the answering directory's own is its
    # listing's key whatever its sources say, so such a receiver verifies what it verified before.
    listing = Listing(directory=DIRECTORY, issued_at=NOW, entries=(), sources=(
        SourceDirectory(domain=DIRECTORY, public_key=_EARLIER_KEY.public_key.raw),
        SourceDirectory(domain=_MIRRORED, public_key=_OTHER_KEY.public_key.raw),
        SourceDirectory(domain=_MIRRORED, public_key=DISTRICT_KEY.public_key.raw),
    ))  # fmt: skip
    assert listing_keys(listing, DIRECTORY_KEY.public_key) == {
        DIRECTORY: [DIRECTORY_KEY.public_key, _EARLIER_KEY.public_key],
        _MIRRORED: [_OTHER_KEY.public_key, DISTRICT_KEY.public_key],
    }
