import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import EncryptionKey, IdentityKey
from protocol import SatchelError
from protocol.descriptor import (
    Contact,
    Descriptor,
    DescriptorKeyNotListed,
    DescriptorMismatch,
    PublishedKey,
    parse_descriptor,
    sign_descriptor,
    verify_descriptor,
)
from protocol.signed_document import b64url, unb64url

IDENTITY = IdentityKey(bytes(range(32)))
ENCRYPTION = EncryptionKey(bytes(range(96)))


def _descriptor(identity: IdentityKey = IDENTITY, **changes: object) -> Descriptor:
    fields = {
        "role": "district",
        "domain": "a.example.org",
        "name": "District A",
        "state": "IL",
        "city": "Springfield",
        "zip": "62701",
        "nces_id": "1712345",
        "base_url": "https://satchel.a.example.org",
        "transfers_enabled": True,
        "coordinator": Contact(name="Jane Doe", title="Registrar", email="jd@a.example.org", phone="+1 217"),
        "keys": (
            PublishedKey(
                key_id=identity.public_key.key_id,
                use="identity",
                algorithm="ed25519",
                public_key=identity.public_key.raw,
                not_before="2026-01-01T00:00:00Z",
            ),
            PublishedKey(
                key_id=ENCRYPTION.public_key.key_id,
                use="encryption",
                algorithm="mlkem768-x25519",
                public_key=ENCRYPTION.public_key.raw,
                not_before="2026-01-01T00:00:00Z",
                not_after="2027-01-01T00:00:00Z",
            ),
        ),
        "issued_at": "2026-11-23T00:00:00Z",
    }
    fields.update(changes)
    return Descriptor(**fields)  # type: ignore[arg-type]


def test_round_trip() -> None:
    signed = sign_descriptor(_descriptor(), IDENTITY)
    verified = verify_descriptor(signed, expected_domain="a.example.org")
    assert verified.descriptor == _descriptor()
    assert verified.signer == IDENTITY.public_key
    assert parse_descriptor(verified.payload) == _descriptor()


def test_tampered_payload_is_refused_before_parsing() -> None:
    outer = json.loads(sign_descriptor(_descriptor(), IDENTITY))
    payload = unb64url(outer["payload"], field="payload").replace(
        b'"transfers_enabled":true', b'"transfers_enabled":false'
    )
    outer["payload"] = b64url(payload)
    with pytest.raises(SatchelError) as info:
        verify_descriptor(json.dumps(outer).encode())
    assert info.value.code == "signature.invalid"


def test_signer_must_be_listed() -> None:
    other = IdentityKey(bytes(32))
    with pytest.raises(DescriptorKeyNotListed):
        sign_descriptor(_descriptor(), other)
    # A document signed by an unlisted key (built by hand) is refused by the verifier too.
    from protocol.descriptor import PURPOSE, encode_descriptor
    from protocol.signed_document import sign_document

    forged = sign_document(PURPOSE, encode_descriptor(_descriptor()), other)
    with pytest.raises(DescriptorKeyNotListed):
        verify_descriptor(forged)


def test_wrong_domain_is_refused() -> None:
    with pytest.raises(DescriptorMismatch):
        verify_descriptor(sign_descriptor(_descriptor(), IDENTITY), expected_domain="b.example.org")


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_coded_errors(data: bytes) -> None:
    with pytest.raises(SatchelError):
        verify_descriptor(data)


@given(
    st.dictionaries(
        st.sampled_from(["version", "role", "domain", "keys", "transfers_enabled", "x"]),
        st.one_of(st.none(), st.integers(), st.text(), st.booleans(), st.lists(st.integers())),
    )
)
def test_arbitrary_payload_objects_raise_only_coded_errors(obj: dict) -> None:
    with pytest.raises(SatchelError):
        parse_descriptor(json.dumps(obj).encode())
