"""Generate spec/vectors/directory/vectors.json from the code (never edit the JSON by hand).

    .venv/bin/python spec/vectors/directory/generate.py          # rewrite vectors.json
    .venv/bin/python spec/vectors/directory/generate.py --check  # exit 1 if it is stale

Each case is a directory entry (spec/directory.md, "Entries"): a district's signed descriptor wrapped and
signed by a directory, and what a receiver that trusts the directories of `trusted_directories` makes of
it: the entry and the district it vouches for, or the error code and field it is refused with. Keys come
from fixed seeds and times are fixed; Ed25519 signatures are deterministic, so the file is the same every
run. Refused entries are built by hand and signed with sign_document, as a broken or hostile directory
could.
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from crypto import EncryptionKey, IdentityKey, IdentityPublicKey
from protocol import SatchelError
from protocol.descriptor import PURPOSE as DESCRIPTOR_PURPOSE
from protocol.descriptor import (
    Descriptor,
    encode_descriptor,
    sign_descriptor,
)
from protocol.directory import (
    ENTRY_PURPOSE,
    LISTING_PURPOSE,
    DirectoryEntry,
    sign_entry,
    verify_entry,
)
from protocol.json_strict import dumps_canonical
from protocol.signed_document import sign_document, unb64url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # spec/vectors, for vector_kit
import vector_kit

OUT = Path(__file__).resolve().parent / "vectors.json"


seed = vector_kit.seeder("directory")


# The state directory vetted the district; the national one is trusted too (it signs entries of its own);
# the third directory and the stranger's key are trusted by nobody.
STATE_DIRECTORY = "directory.illinois.example"
NATIONAL_DIRECTORY = "directory.national.example"
UNTRUSTED_DIRECTORY = "directory.elsewhere.example"
KEYS = {name: IdentityKey(seed(name)) for name in ("state-directory", "national-directory",
                                                   "untrusted-directory", "district", "stranger")}  # fmt: skip
TRUSTED = {STATE_DIRECTORY: KEYS["state-directory"], NATIONAL_DIRECTORY: KEYS["national-directory"]}
DISTRICT_KEY = KEYS["district"]
ENCRYPTION = EncryptionKey(seed("mlkem")[:32] + seed("mlkem-2")[:32] + seed("x25519"))

DISTRICT = vector_kit.district(DISTRICT_KEY, ENCRYPTION, issued_at="2026-01-05T12:00:00Z")
SIGNED_DESCRIPTOR = sign_descriptor(DISTRICT, DISTRICT_KEY)
ENTRY = DirectoryEntry(
    directory=STATE_DIRECTORY, domain=DISTRICT.domain, status="approved", approved_at="2026-01-05T16:00:00Z",
    issued_at="2026-01-06T09:00:00Z", descriptor=SIGNED_DESCRIPTOR,
)  # fmt: skip


def _signed_anyway(
    entry: DirectoryEntry, key: IdentityKey = KEYS["state-directory"], purpose: str = ENTRY_PURPOSE
) -> bytes:
    """Signed without any check, as a broken or hostile directory could."""
    return sign_document(purpose, dumps_canonical(entry.to_json()), key)


def _signed_json(obj: dict[str, Any], key: IdentityKey = KEYS["state-directory"]) -> bytes:
    return sign_document(ENTRY_PURPOSE, dumps_canonical(obj), key)


def _flip_signature(document: bytes) -> bytes:
    outer = json.loads(document)
    signature = outer["signature"]
    outer["signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    return dumps_canonical(outer)


def _descriptor_signed_anyway(descriptor: Descriptor, key: IdentityKey = DISTRICT_KEY) -> bytes:
    return sign_document(DESCRIPTOR_PURPOSE, encode_descriptor(descriptor), key)


def _padded_base64url(data: bytes) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    assert text.endswith("="), "the descriptor's length is a multiple of 3: change it so padding shows"
    return text


def _cases() -> list[tuple[str, str, bytes]]:
    entry_json = ENTRY.to_json()
    without_approval = {k: v for k, v in entry_json.items() if k != "approved_at"}
    state_key = KEYS["state-directory"]
    return [
        ("entry-valid", "the state directory's approved entry for a district", sign_entry(ENTRY, state_key)),
        ("entry-valid-other-trusted-directory", "an entry the national directory signed and names itself in: "
         "each entry is checked with the key of the directory it names",
         sign_entry(replace(ENTRY, directory=NATIONAL_DIRECTORY), KEYS["national-directory"])),
        ("entry-signature-flipped", "one base64url character of the entry's signature changed",
         _flip_signature(sign_entry(ENTRY, state_key))),
        ("entry-signed-by-other-directory", "names the state directory but is signed by the national one's key",
         _signed_anyway(ENTRY, KEYS["national-directory"])),
        ("entry-signed-by-district", "names the state directory but is signed by the district's own key",
         _signed_anyway(ENTRY, DISTRICT_KEY)),
        ("entry-signed-by-stranger", "names the state directory but is signed by a key nobody publishes",
         _signed_anyway(ENTRY, KEYS["stranger"])),
        ("entry-untrusted-directory", "an entry of a directory the receiver does not trust, signed by its key",
         _signed_anyway(replace(ENTRY, directory=UNTRUSTED_DIRECTORY), KEYS["untrusted-directory"])),
        ("entry-status-pending", "a pending entry: only approved entries are published",
         _signed_anyway(replace(ENTRY, status="pending"))),
        ("entry-status-rejected", "a rejected entry", _signed_anyway(replace(ENTRY, status="rejected"))),
        ("entry-domain-differs", "the entry is for another domain than its descriptor's",
         _signed_anyway(replace(ENTRY, domain="shelbyville.k12.example"))),
        ("entry-descriptor-signature-flipped", "the inner descriptor's signature has one character changed",
         _signed_anyway(replace(ENTRY, descriptor=_flip_signature(SIGNED_DESCRIPTOR)))),
        ("entry-descriptor-signer-not-listed", "the inner descriptor is signed by a key it does not list",
         _signed_anyway(replace(ENTRY, descriptor=_descriptor_signed_anyway(DISTRICT, KEYS["stranger"])))),
        ("entry-descriptor-name-with-escape", "the inner descriptor's name holds ESC [2J",
         _signed_anyway(replace(ENTRY, descriptor=_descriptor_signed_anyway(
             replace(DISTRICT, name="Springfield\x1b[2J"))))),
        ("entry-wrong-purpose", "the entry's payload signed under the listing purpose",
         _signed_anyway(ENTRY, purpose=LISTING_PURPOSE)),
        ("entry-descriptor-given-as-entry", "the district's own signed descriptor where an entry is expected",
         SIGNED_DESCRIPTOR),
        ("entry-unsupported-version", "version 2", _signed_json({**entry_json, "version": 2})),
        ("entry-approved-at-missing", "no approved_at member", _signed_json(without_approval)),
        ("entry-descriptor-padded-base64", "the descriptor member's base64url is padded with '='",
         _signed_json({**entry_json, "descriptor": _padded_base64url(SIGNED_DESCRIPTOR)})),
        ("entry-unknown-member", "a member version 1 does not define (a later directory's optional member): "
         "ignored, and kept in the signed bytes", _signed_json({**entry_json, "region": "midwest"})),
        ("entry-approved-at-with-offset", "approved_at written with +00:00, not Z",
         _signed_anyway(replace(ENTRY, approved_at="2026-01-05T16:00:00+00:00"))),
        ("entry-issued-at-fraction", "issued_at with fractional seconds",
         _signed_anyway(replace(ENTRY, issued_at="2026-01-06T09:00:00.250Z"))),
        ("entry-issued-at-not-a-date", "issued_at on February 30th",
         _signed_anyway(replace(ENTRY, issued_at="2026-02-30T09:00:00Z"))),
        ("entry-directory-upper-case", "the directory's domain in upper case, signed by that directory's key",
         _signed_anyway(replace(ENTRY, directory=STATE_DIRECTORY.upper()))),
        ("entry-directory-url", "the directory given as a URL, not a domain",
         _signed_anyway(replace(ENTRY, directory="https://" + STATE_DIRECTORY))),
        ("entry-domain-trailing-dot", "the district's domain with a trailing dot",
         _signed_anyway(replace(ENTRY, domain=DISTRICT.domain + "."))),
    ]  # fmt: skip


def _directory_keys() -> dict[str, IdentityPublicKey]:
    return {domain: key.public_key for domain, key in TRUSTED.items()}


def _expect(document: bytes) -> dict[str, Any]:
    try:
        verified = verify_entry(document, directory_keys=_directory_keys())
    except SatchelError as exc:
        return {"error": exc.code, "field": exc.field}
    entry, district = verified.entry, verified.district
    return {
        "entry": {k: v for k, v in entry.to_json().items() if k != "descriptor"},
        "district": {"domain": district.descriptor.domain, "role": district.descriptor.role,
                     "name": district.descriptor.name, "signer_key_id": district.signer.key_id},
        "reencodes_to_payload": dumps_canonical(entry.to_json()) == _payload(document),
    }  # fmt: skip


def _payload(document: bytes) -> bytes:
    return unb64url(json.loads(document)["payload"], field="payload")


def build() -> dict[str, Any]:
    cases = [
        {"name": name, "why": why, "payload": _payload(document).decode(), "document": document.decode("ascii"),
         "expect": _expect(document)}
        for name, why, document in _cases()
    ]  # fmt: skip
    return {
        "about": "spec/directory.md, Entries: signed directory entries and what a receiver trusting the "
        "directories of `trusted_directories` (domain -> key id in `keys`) makes of each: the entry's members "
        "and the district it vouches for, or the error code and field it is refused with. `payload` is the "
        "entry's signed payload as text; `document` the whole signed entry, exactly as sent.",
        "keys": [
            {
                "name": name,
                "seed_hex": seed(name).hex(),
                "public_key_hex": key.public_key.raw.hex(),
                "key_id": key.public_key.key_id,
                "fingerprint": key.public_key.fingerprint,
            }
            for name, key in KEYS.items()
        ],
        "trusted_directories": {domain: key.public_key.key_id for domain, key in TRUSTED.items()},
        "cases": cases,
    }


def render() -> str:
    return vector_kit.render(build())


def main(argv: list[str]) -> int:
    return vector_kit.write_or_check(OUT, render(), argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
