"""Generate spec/vectors/descriptor/vectors.json from the code (never edit the JSON by hand).

    .venv/bin/python spec/vectors/descriptor/generate.py          # rewrite vectors.json
    .venv/bin/python spec/vectors/descriptor/generate.py --check  # exit 1 if it is stale

Each case is a served descriptor document (spec/descriptor.md) and what a verifier must make of it: the
descriptor's domain and whether it serves that domain (step 8), or the error code and field it is refused
with. Keys come from fixed seeds; Ed25519 signatures are deterministic, so the file is the same every run.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from crypto import EncryptionKey, IdentityKey
from protocol import SatchelError
from protocol.descriptor import (
    PURPOSE,
    Descriptor,
    PublishedKey,
    encode_descriptor,
    serves_its_domain,
    sign_descriptor,
    verify_descriptor,
)
from protocol.key_chain import KnownKey, check_continuity, endorse, endorsement_message, vouched_identity_keys
from protocol.signed_document import sign_document

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # spec/vectors, for vector_kit
import vector_kit

OUT = Path(__file__).resolve().parent / "vectors.json"


seed = vector_kit.seeder("descriptor")


IDENTITY = IdentityKey(seed("identity"))
OTHER = IdentityKey(seed("other-identity"))
ENCRYPTION = EncryptionKey(seed("mlkem")[:32] + seed("mlkem-2")[:32] + seed("x25519"))

BASE = vector_kit.district(IDENTITY, ENCRYPTION, issued_at="2026-12-05T00:00:00Z")


def _signed_anyway(descriptor: Descriptor, key: IdentityKey = IDENTITY) -> bytes:
    """Signed without sign_descriptor's own checks, as a hostile or broken node could."""
    return sign_document(PURPOSE, encode_descriptor(descriptor), key)


def _flip_signature(document: bytes) -> bytes:
    outer = json.loads(document)
    signature = outer["signature"]
    outer["signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    return json.dumps(outer, sort_keys=True, separators=(",", ":")).encode()


def _cases() -> list[tuple[str, str, bytes]]:
    contact = BASE.coordinator
    assert contact is not None
    return [
        ("valid", "a district's descriptor, served from a host in its domain", sign_descriptor(BASE, IDENTITY)),
        ("valid-web-host-outside-domain",
         "well-formed, but served from a host outside the domain it claims: a verifier that met it only by its "
         "URL must not take the domain from it (descriptor.md step 8)",
         sign_descriptor(replace(BASE, base_url="https://satchel.other-host.example"), IDENTITY)),
        ("signature-flipped", "one base64url character of the signature changed",
         _flip_signature(sign_descriptor(BASE, IDENTITY))),
        ("signer-not-listed", "signed by a key the descriptor does not list", _signed_anyway(BASE, OTHER)),
        ("name-with-escape", "ESC [2J in the name: a terminal would clear the screen",
         _signed_anyway(replace(BASE, name="Springfield\x1b[2J"))),
        ("phone-with-carriage-return", "a CR in the coordinator's phone",
         _signed_anyway(replace(BASE, coordinator=replace(contact, phone="+1 217\r555-0100")))),
        ("domain-upper-case", "a domain must be lower case",
         _signed_anyway(replace(BASE, domain="Springfield.K12.example"))),
        ("domain-with-line-break", "a line break in the domain would add e-mail headers",
         _signed_anyway(replace(BASE, domain="springfield.k12.example\r\nbcc: x@evil.example"))),
        ("domain-single-label", "a domain has at least two labels", _signed_anyway(replace(BASE, domain="localhost"))),
    ]  # fmt: skip


def _expect(document: bytes) -> dict[str, Any]:
    try:
        descriptor = verify_descriptor(document).descriptor
    except SatchelError as exc:
        return {"error": exc.code, "field": exc.field}
    return {"domain": descriptor.domain, "serves_its_domain": serves_its_domain(descriptor)}


# Key rotation (descriptor.md): the district rotates from IDENTITY to ROTATED, then revokes IDENTITY.
ROTATED = IdentityKey(seed("rotated-identity"))
ROTATED_KEY = PublishedKey(key_id=ROTATED.public_key.key_id, use="identity", algorithm="ed25519",
                           public_key=ROTATED.public_key.raw, not_before="2026-06-01T00:00:00Z")  # fmt: skip
ENDORSED = replace(ROTATED_KEY, endorsement=endorse(BASE.domain, ROTATED_KEY, IDENTITY))
OLD_KEY, ENCRYPTION_KEY = BASE.keys


def _rotation_cases() -> list[tuple[str, str, bytes]]:
    overlap = replace(OLD_KEY, not_after="2026-06-08T00:00:00Z")
    return [
        ("rotated", "signed by the new key, which the old one (listed until the overlap ends) endorses",
         sign_descriptor(replace(BASE, keys=(overlap, ENDORSED, ENCRYPTION_KEY)), ROTATED)),
        ("rotated-then-revoked", "the old key revoked: no longer listed, its endorsement of the new key still stands",
         sign_descriptor(replace(BASE, keys=(ENDORSED, ENCRYPTION_KEY), revoked_keys=(OLD_KEY.key_id,)), ROTATED)),
        ("endorsed-by-another-key", "the new key endorsed by a key the peer does not know",
         sign_descriptor(replace(BASE, keys=(replace(ROTATED_KEY, endorsement=endorse(BASE.domain, ROTATED_KEY,
                                                                                         OTHER)), ENCRYPTION_KEY)),
                         ROTATED)),
        ("endorsed-for-another-domain", "the old key's endorsement was made for another domain",
         sign_descriptor(replace(BASE, keys=(overlap, replace(ROTATED_KEY, endorsement=endorse(
             "other.k12.example", ROTATED_KEY, IDENTITY)), ENCRYPTION_KEY)), ROTATED)),
    ]  # fmt: skip


def _rotation_expect(document: bytes) -> dict[str, Any]:
    verified = verify_descriptor(document)
    signer = verified.signer.key_id
    try:
        chain = check_continuity(verified.descriptor, signer, {OLD_KEY.key_id: KnownKey(OLD_KEY.public_key)})
    except SatchelError as exc:
        return {"error": exc.code}
    return {"chain": list(chain), "identity_keys": sorted(vouched_identity_keys(verified.descriptor, signer)),
            "revoked": list(verified.descriptor.revoked_keys)}  # fmt: skip


def build() -> dict[str, Any]:
    return {
        "about": "spec/descriptor.md: served descriptor documents and what a verifier makes of each",
        "cases": [
            {"name": name, "why": why, "document": document.decode("ascii"), "expect": _expect(document)}
            for name, why, document in _cases()
        ],
        "rotation": {
            "about": "descriptor.md, Key rotation: a peer that pinned the old key (`old_key_id`, the valid case's "
            "signer) gets each descriptor of the domain; `endorsed_key` is the new key's object, "
            "`endorsement_payload` the bytes its endorsement signs (after the purpose and 0x00). Each case expects "
            "the chain the peer walks (signer first, ending at the pinned key), the identity keys it then holds "
            "for the domain (those the signer vouches for) and the keys it marks revoked, or the error code",
            "domain": BASE.domain,
            "old_key_id": OLD_KEY.key_id,
            "old_public_key_hex": OLD_KEY.public_key.hex(),
            "endorsed_key": ENDORSED.to_json(),
            "endorsement_payload": endorsement_message(BASE.domain, ROTATED_KEY).decode(),
            "cases": [
                {"name": name, "why": why, "document": document.decode("ascii"), "expect": _rotation_expect(document)}
                for name, why, document in _rotation_cases()
            ],
        },
    }


def render() -> str:
    return vector_kit.render(build())


def main(argv: list[str]) -> int:
    return vector_kit.write_or_check(OUT, render(), argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
