"""The node descriptor served at ``/.well-known/satchel`` (spec/descriptor.md).

A descriptor says who a node is (domain, district, location), where it is reached, which keys it uses
and whether it accepts transfers. It travels as a signed document (protocol.signed_document) under the
purpose ``satchel/v1/descriptor``, signed by one of the identity keys it lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from crypto import EncryptionPublicKey, IdentityPublicKey
from protocol.errors import MalformedMessage, SatchelError
from protocol.json_strict import dumps_canonical, loads_object, take
from protocol.manifest import DOMAIN_RE
from protocol.roster import CONTROL_CHARACTERS
from protocol.signed_document import b64url, sign_document, unb64url, verify_document

PURPOSE = "satchel/v1/descriptor"
WELL_KNOWN_PATH = "/.well-known/satchel"
DESCRIPTOR_VERSION = 1
PROTOCOL_VERSIONS = ("satchel/1",)
# What this node understands beyond what every satchel/1 node does (spec/descriptor.md, Features): a peer whose
# descriptor does not list a feature is sent what an older version takes instead.
FEATURE_RELEASE_FAILED = "request.release_failed"
FEATURES = (FEATURE_RELEASE_FAILED,)
KEY_USES = ("identity", "encryption")
ROLES = ("district", "directory")
MAX_DESCRIPTOR_BYTES = 256 * 1024  # the signed document, as spec/descriptor.md step 1 says


class DescriptorMismatch(SatchelError):
    code = "descriptor.mismatch"
    default_hint = "check the URL; the node there is not the one you expected"


class DescriptorKeyNotListed(SatchelError):
    code = "descriptor.key_not_listed"
    default_hint = "the node's descriptor is signed by a key it does not publish; tell its operator"


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    name: str
    title: str = ""
    email: str
    phone: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "email": self.email, "phone": self.phone}


@dataclass(frozen=True, slots=True, kw_only=True)
class Endorsement:
    """An older identity key's signature over a newer key (spec/descriptor.md, Key rotation)."""

    key_id: str
    signature: bytes = field(repr=False)

    def to_json(self) -> dict[str, str]:
        return {"key_id": self.key_id, "signature": b64url(self.signature)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedKey:
    key_id: str
    use: str
    algorithm: str
    public_key: bytes = field(repr=False)
    not_before: str
    not_after: str | None = None
    endorsement: Endorsement | None = None

    def __post_init__(self) -> None:
        if self.use not in KEY_USES:
            raise MalformedMessage(f"key use must be one of {KEY_USES}", field="keys.use")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.key_id,
            "use": self.use,
            "alg": self.algorithm,
            "public_key": b64url(self.public_key),
            "not_before": self.not_before,
            "not_after": self.not_after,
        }
        if self.endorsement is not None:
            out["endorsed_by"] = self.endorsement.to_json()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    role: str
    domain: str
    name: str
    state: str
    city: str
    zip: str
    nces_id: str
    base_url: str
    transfers_enabled: bool
    coordinator: Contact | None
    keys: tuple[PublishedKey, ...]
    issued_at: str
    revoked_keys: tuple[str, ...] = ()
    protocol_versions: tuple[str, ...] = PROTOCOL_VERSIONS
    # Absent from the descriptors of versions before features: such a node understands none of them.
    features: tuple[str, ...] = FEATURES
    version: int = DESCRIPTOR_VERSION

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise MalformedMessage(f"role must be one of {ROLES}", field="role")
        if not any(k.use == "identity" for k in self.keys):
            raise MalformedMessage("a descriptor lists at least one identity key", field="keys")

    def supports(self, feature: str) -> bool:
        return feature in self.features

    def keys_for(self, use: str) -> tuple[PublishedKey, ...]:
        return tuple(k for k in self.keys if k.use == use)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "role": self.role,
            "domain": self.domain,
            "name": self.name,
            "state": self.state,
            "city": self.city,
            "zip": self.zip,
            "nces_id": self.nces_id,
            "base_url": self.base_url,
            "protocol_versions": list(self.protocol_versions),
            "features": list(self.features),
            "transfers_enabled": self.transfers_enabled,
            "coordinator": self.coordinator.to_json() if self.coordinator else None,
            "keys": [k.to_json() for k in self.keys],
            "issued_at": self.issued_at,
            "revoked_keys": list(self.revoked_keys),
        }


def encode_descriptor(descriptor: Descriptor) -> bytes:
    return dumps_canonical(descriptor.to_json())


def _contact(value: Any) -> Contact | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedMessage("coordinator must be an object or null", field="coordinator")
    what = "coordinator"
    return Contact(
        name=take(value, "name", str, what=what),
        title=take(value, "title", str, what=what),
        email=take(value, "email", str, what=what),
        phone=take(value, "phone", str, what=what),
    )


_PUBLIC: dict[str, Any] = {"ed25519": IdentityPublicKey, "mlkem768-x25519": EncryptionPublicKey}


def _endorsement(value: Any) -> Endorsement | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedMessage("endorsed_by must be an object", field="keys.endorsed_by")
    what = "endorsement"
    return Endorsement(
        key_id=take(value, "key_id", str, what=what),
        signature=unb64url(take(value, "signature", str, what=what), field="keys.endorsed_by.signature"),
    )


def _key(value: Any) -> PublishedKey:
    if not isinstance(value, dict):
        raise MalformedMessage("each key must be an object", field="keys")
    what = "key"
    key = PublishedKey(
        endorsement=_endorsement(value.get("endorsed_by")),
        key_id=take(value, "id", str, what=what),
        use=take(value, "use", str, what=what),
        algorithm=take(value, "alg", str, what=what),
        public_key=unb64url(take(value, "public_key", str, what=what), field="keys.public_key"),
        not_before=take(value, "not_before", str, what=what),
        not_after=take(value, "not_after", str, what=what, optional=True),
    )
    # An id is its key's fingerprint, not a name the publisher picks: otherwise a descriptor could list its
    # own key under another district's key id (spec/keys: key ids).
    public = _PUBLIC.get(key.algorithm)
    if public is not None:
        try:
            derived = public(key.public_key).key_id
        except SatchelError as exc:
            raise MalformedMessage(f"key {key.key_id}: {exc.message}", field="keys.public_key") from exc
        if derived != key.key_id:
            raise MalformedMessage(f"key id {key.key_id} is not the id of its public key ({derived})",
                                   field="keys.id")  # fmt: skip
    return key


def parse_descriptor(payload: bytes, *, check_shown: bool = True) -> Descriptor:
    """Parse descriptor payload bytes (already signature-checked by the caller).

    ``check_shown=False`` leaves out the checks of what is shown to people (control characters), for reading
    back a descriptor stored under an older version, which did not make them: its keys are still its keys.
    Never for a descriptor that arrives."""
    what = "descriptor"
    obj = loads_object(payload, what=what)
    version = take(obj, "version", int, what=what)
    if version != DESCRIPTOR_VERSION:
        raise MalformedMessage(f"descriptor version {version} is not supported", field="version")
    versions = take(obj, "protocol_versions", list, what=what)
    keys = take(obj, "keys", list, what=what)
    revoked = obj.get("revoked_keys", [])
    features = obj.get("features", [])
    for name, items in (("protocol_versions", versions), ("revoked_keys", revoked), ("features", features)):
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise MalformedMessage(f"{name} must be a list of strings", field=name)
    descriptor = Descriptor(
        version=version,
        role=take(obj, "role", str, what=what),
        domain=take(obj, "domain", str, what=what),
        name=take(obj, "name", str, what=what),
        state=take(obj, "state", str, what=what),
        city=take(obj, "city", str, what=what),
        zip=take(obj, "zip", str, what=what),
        nces_id=take(obj, "nces_id", str, what=what),
        base_url=take(obj, "base_url", str, what=what),
        protocol_versions=tuple(versions),
        features=tuple(features),
        transfers_enabled=take(obj, "transfers_enabled", bool, what=what),
        coordinator=_contact(obj.get("coordinator")),
        keys=tuple(_key(k) for k in keys),
        issued_at=take(obj, "issued_at", str, what=what),
        revoked_keys=tuple(revoked),
    )
    if check_shown:
        _check_shown(descriptor)
    return descriptor


def _check_shown(descriptor: Descriptor) -> None:
    """The domain is a domain name; what is shown to people is text without control characters."""
    if not DOMAIN_RE.match(descriptor.domain):
        raise MalformedMessage(f"{descriptor.domain[:80]!r} is not a lower-case domain name", field="domain")
    contact = descriptor.coordinator
    shown = [("name", descriptor.name), ("state", descriptor.state), ("city", descriptor.city),
             ("zip", descriptor.zip), ("nces_id", descriptor.nces_id), ("base_url", descriptor.base_url)]  # fmt: skip
    if contact is not None:
        shown += [(f"coordinator.{k}", v) for k, v in contact.to_json().items()]
    for name, value in shown:
        if CONTROL_CHARACTERS.search(value):
            raise MalformedMessage(f"{name} contains a control character or line break", field=name)


def serves_its_domain(descriptor: Descriptor) -> bool:
    """Whether ``base_url`` is https on the domain or under it: whoever serves it holds a certificate for a
    name in that domain, the proof a node gives that the domain is its own (spec/descriptor.md)."""
    parts = urlsplit(descriptor.base_url)
    host = parts.hostname or ""
    return parts.scheme == "https" and (host == descriptor.domain or host.endswith("." + descriptor.domain))


def sign_descriptor(descriptor: Descriptor, key: Any) -> bytes:
    """Serialise and sign; ``key`` is the crypto.IdentityKey whose public half the descriptor lists."""
    payload = encode_descriptor(descriptor)
    if not any(k.key_id == key.public_key.key_id for k in descriptor.keys_for("identity")):
        raise DescriptorKeyNotListed("the signing key is not among the descriptor's identity keys")
    return sign_document(PURPOSE, payload, key)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedDescriptor:
    descriptor: Descriptor
    signer: IdentityPublicKey
    payload: bytes


def verify_descriptor(
    data: bytes, *, expected_domain: str | None = None, check_shown: bool = True
) -> VerifiedDescriptor:
    """Verify a served descriptor: signature first, then parse, then check the signer is listed
    (``check_shown``: see parse_descriptor)."""
    verified = verify_document(data, purpose=PURPOSE, max_bytes=MAX_DESCRIPTOR_BYTES)
    descriptor = parse_descriptor(verified.payload, check_shown=check_shown)
    listed = {k.key_id: k for k in descriptor.keys_for("identity")}
    entry = listed.get(verified.signer.key_id)
    if entry is None or entry.public_key != verified.signer.raw:
        raise DescriptorKeyNotListed("the descriptor is signed by a key it does not list")
    if expected_domain is not None and descriptor.domain != expected_domain:
        raise DescriptorMismatch(
            f"expected the node for {expected_domain}, got {descriptor.domain}", field="domain"
        )
    return VerifiedDescriptor(descriptor=descriptor, signer=verified.signer, payload=verified.payload)
