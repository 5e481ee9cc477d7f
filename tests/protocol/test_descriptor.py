import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import EncryptionKey, IdentityKey
from protocol import SatchelError
from protocol.descriptor import (
    FEATURE_RELEASE_FAILED,
    Contact,
    Descriptor,
    DescriptorKeyNotListed,
    DescriptorMismatch,
    PublishedKey,
    parse_descriptor,
    serves_its_domain,
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


def test_a_node_advertises_what_it_understands_and_an_older_descriptor_understands_none_of_it() -> None:
    assert _descriptor().supports(FEATURE_RELEASE_FAILED)
    assert _descriptor().to_json()["features"] == [FEATURE_RELEASE_FAILED]
    older = _descriptor().to_json()
    del older["features"]  # as versions before features wrote it
    parsed = parse_descriptor(json.dumps(older).encode())
    assert parsed.features == () and not parsed.supports(FEATURE_RELEASE_FAILED)


@given(st.lists(st.text(max_size=40), max_size=5))
def test_features_round_trip_and_unknown_ones_are_kept_not_refused(features: list[str]) -> None:
    descriptor = _descriptor(features=tuple(features))
    assert parse_descriptor(verify_descriptor(sign_descriptor(descriptor, IDENTITY)).payload) == descriptor


@pytest.mark.parametrize("features", ["request.release_failed", [1], {"a": 1}, None])
def test_features_that_are_not_a_list_of_strings_are_refused(features: object) -> None:
    payload = _descriptor().to_json() | {"features": features}
    with pytest.raises(SatchelError) as refused:
        parse_descriptor(json.dumps(payload).encode())
    assert (refused.value.code, refused.value.field) == ("message.malformed", "features")


def test_tampered_payload_is_refused_before_parsing() -> None:
    outer = json.loads(sign_descriptor(_descriptor(), IDENTITY))
    payload = unb64url(outer["payload"], field="payload").replace(
        b'"transfers_enabled":true', b'"transfers_enabled":false'
    )
    outer["payload"] = b64url(payload)
    with pytest.raises(SatchelError) as info:
        verify_descriptor(json.dumps(outer).encode())
    assert info.value.code == "signature.invalid"


def test_a_signed_document_has_exactly_its_five_members() -> None:
    """Anything beside them would travel with the document unsigned, yet look part of it."""
    outer = json.loads(sign_descriptor(_descriptor(), IDENTITY))
    with pytest.raises(SatchelError) as info:
        verify_descriptor(json.dumps({**outer, "approved_by": "the state"}).encode())
    assert (info.value.code, info.value.field) == ("message.malformed", "approved_by")
    assert verify_descriptor(json.dumps(outer).encode()).descriptor == _descriptor()  # the five alone verify


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


@pytest.mark.parametrize(("field", "value"), [
    ("name", "District A\x1b[2J"), ("city", "Spring\nfield"), ("zip", "62701\r"), ("base_url", "https://a\x00b"),
    ("coordinator", Contact(name="Jane", title="Registrar", email="jd@a.example.org", phone="+1 217\x1b[1A555")),
    ("coordinator", Contact(name="Jane\u2028Doe", email="jd@a.example.org")),
    ("domain", "A.EXAMPLE.ORG"), ("domain", "a.example.org\r\nBcc: x"), ("domain", "localhost"),
    ("domain", "a.example.org-"),  # no label ends with a hyphen, the last one included (spec/README.md)
])  # fmt: skip
def test_what_is_shown_to_people_is_plain_text_and_the_domain_a_domain(field: str, value: object) -> None:
    # Shown in a registrar's terminal (ESC sequences can rewrite what was printed before, such as the phone
    # number to read a code to) and in e-mail subjects (a line break adds headers).
    payload = json.dumps(_descriptor(**{field: value}).to_json()).encode()
    with pytest.raises(SatchelError) as refused:
        parse_descriptor(payload)
    assert refused.value.code == "message.malformed"
    assert refused.value.field in (field, f"coordinator.{field}") or refused.value.field.startswith("coordinator.")


@given(st.text(max_size=30))
def test_any_printable_name_is_kept_and_any_control_character_refused(name: str) -> None:
    payload = json.dumps(_descriptor(name=name).to_json()).encode()
    if any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in name):
        with pytest.raises(SatchelError):
            parse_descriptor(payload)
    else:
        assert parse_descriptor(payload).name == name


@pytest.mark.parametrize(("base_url", "proven"), [
    ("https://a.example.org", True), ("https://satchel.a.example.org", True),
    ("https://satchel.a.example.org:8443", True),
    ("http://satchel.a.example.org", False), ("https://evil.example", False), ("https://xa.example.org", False),
    ("https://a.example.org.evil.example", False), ("https://127.0.0.1", False),
])  # fmt: skip
def test_a_node_serves_its_domain_only_from_a_host_in_it(base_url: str, proven: bool) -> None:
    assert serves_its_domain(_descriptor(base_url=base_url)) is proven


def test_a_key_listed_under_an_id_not_its_own_is_refused() -> None:
    other = IdentityKey(bytes(32))
    borrowed = PublishedKey(key_id=other.public_key.key_id, use="identity", algorithm="ed25519",
                            public_key=IdentityKey(bytes([7] * 32)).public_key.raw,
                            not_before="2026-01-01T00:00:00Z")  # fmt: skip
    signed = sign_descriptor(_descriptor(keys=(*_descriptor().keys, borrowed)), IDENTITY)
    with pytest.raises(SatchelError) as info:
        verify_descriptor(signed)
    assert (info.value.code, info.value.field) == ("message.malformed", "keys.id")
    assert other.public_key.key_id in info.value.message
