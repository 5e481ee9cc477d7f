"""What the vector generators under spec/vectors share.

Each generator writes its ``vectors.json`` from the code (never by hand), or with ``--check`` exits 1 when the
committed file is not what the code makes now. Keys come from fixed seeds, so every run writes the same
bytes. A generator finds this module beside its own folder::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # spec/vectors, for vector_kit
    import vector_kit
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crypto import EncryptionKey, IdentityKey
from protocol.descriptor import Contact, Descriptor, PublishedKey


def seeder(area: str) -> Callable[[str], bytes]:
    """label -> 32 fixed bytes for ``area``'s keys: SHA-256 of ``satchel/v1/vectors/{area}/{label}``."""
    prefix = f"satchel/v1/vectors/{area}/".encode()
    return lambda label: hashlib.sha256(prefix + label.encode()).digest()


def district(identity: IdentityKey, encryption: EncryptionKey, *, issued_at: str) -> Descriptor:
    """The sample district of the vectors (Springfield), publishing these two keys."""
    return Descriptor(
        role="district", domain="springfield.k12.example", name="Springfield School District 186", state="IL",
        city="Springfield", zip="62701", nces_id="1737140", base_url="https://satchel.springfield.k12.example",
        transfers_enabled=True,
        coordinator=Contact(name="Jane Doe", title="Registrar", email="jdoe@springfield.k12.example",
                            phone="+1 217-555-0100"),
        keys=(
            PublishedKey(key_id=identity.public_key.key_id, use="identity", algorithm="ed25519",
                         public_key=identity.public_key.raw, not_before="2026-01-01T00:00:00Z"),
            PublishedKey(key_id=encryption.public_key.key_id, use="encryption", algorithm="mlkem768-x25519",
                         public_key=encryption.public_key.raw, not_before="2026-01-01T00:00:00Z",
                         not_after="2027-01-01T00:00:00Z"),
        ),
        issued_at=issued_at,
    )  # fmt: skip


def render(value: Any) -> str:
    """The text of a vectors.json: indented, ASCII only (escapes for the rest), one newline at the end."""
    return json.dumps(value, indent=2, ensure_ascii=True) + "\n"


def write_or_check(out: Path, text: str, argv: list[str]) -> int:
    """Write ``text`` to ``out``; with ``--check`` in ``argv``, write nothing and return 1 if ``out`` differs."""
    if "--check" in argv:
        return 0 if out.exists() and out.read_text() == text else 1
    out.write_text(text)
    return 0
