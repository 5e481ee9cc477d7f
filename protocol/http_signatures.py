"""RFC 9421 HTTP Message Signatures with Ed25519: the Satchel profile (``spec/request-signing.md``).

Sans-IO: messages are described by :class:`HttpRequestView` / :class:`HttpResponseView` (pure data), time
and nonces are arguments, keys are reached through a ``sign`` callable and a ``resolve_key`` callable.
Verification returns a :class:`VerifiedSignature`; the caller then checks the nonce against its replay
store and the covered Content-Digest against the body as it streams (``protocol.content_digest``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Protocol

from protocol.errors import InvalidInput, MalformedMessage, SatchelError, SignatureInvalid
from protocol.structured_fields import (
    InnerList,
    Item,
    Params,
    StructuredFieldMalformed,
    parse_dictionary,
    parse_item,
    serialize_dictionary,
    serialize_item,
    serialize_member,
)

# RFC 9421 §4.1 / §4.2: the two fields carrying signatures (names compared case-insensitively).
SIGNATURE_INPUT = "signature-input"
SIGNATURE = "signature"
ALGORITHM = "ed25519"  # RFC 9421 §3.3.6
DEFAULT_LABEL = "sig1"
MAX_LIFETIME = 300  # seconds between created and expires; bounds how long a replay store keeps nonces
DEFAULT_MAX_SKEW = 60
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,128}")  # >= 128 bits of base64url, no padding
KEY_ID_PATTERN = re.compile(r"ed25519-[0-9a-hjkmnp-tv-z]{16}")  # crypto._keys._key_id
# RFC 9421 §2.3: the signature parameters; Satchel accepts no extensions.
_PARAM_ORDER = ("created", "expires", "nonce", "alg", "keyid", "tag")
_INT_PARAMS = frozenset({"created", "expires"})
_DERIVED = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
)
# Fields known to be RFC 8941 Dictionaries, the only ones ";sf" and ";key" may be applied to here.
_DICTIONARY_FIELDS = frozenset(
    {
        "signature",
        "signature-input",
        "content-digest",
        "repr-digest",
        "want-content-digest",
        "accept-signature",
    }
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_URI = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
    rf"(?P<path>(?:/{_PCHAR}*)*)"
    rf"(?:\?(?P<query>(?:{_PCHAR}|[/?])*))?"
)
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A field name is a token (RFC 9110 §5.1), lowercased; a derived component is "@" and a lowercase name.
_COMPONENT_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+|@[a-z][a-z-]*")


class SignatureMissing(SatchelError):
    code = "signature.missing"
    default_hint = (
        "sign every request between nodes with RFC 9421 (Signature-Input and Signature, label sig1)"
    )


class SignatureMalformed(MalformedMessage):
    code = "signature.malformed"
    default_hint = "see spec/request-signing.md for the Signature-Input the Satchel profile accepts"


class SignatureComponentsMissing(SatchelError):
    code = "signature.components_missing"
    default_hint = (
        "cover @method, @target-uri, content-digest and content-type"
        " (responses: @status and the request's signature)"
    )


class SignatureAlgorithmUnsupported(SatchelError):
    code = "signature.algorithm_unsupported"
    default_hint = 'Satchel signs with alg="ed25519" only'


class SignatureExpired(SatchelError):
    code = "signature.expired"
    default_hint = "sign each request just before sending it and check the sender's clock"


class SignatureNotYetValid(SatchelError):
    code = "signature.not_yet_valid"
    default_hint = "the sender's clock is ahead of ours by more than the allowed skew"


class SignatureLifetimeTooLong(SatchelError):
    code = "signature.lifetime_too_long"
    default_hint = f"expires may be at most {MAX_LIFETIME} seconds after created"


class SignatureKeyUnknown(SatchelError):
    code = "signature.key_unknown"
    default_hint = "the keyid is not a key this node knows for any peer; check the directory entry"


class SignatureKeyRevoked(SignatureKeyUnknown):
    code = "signature.key_revoked"
    default_hint = "the key was revoked; sign with the node's current key"


class SignatureWrongDestination(SatchelError):
    code = "signature.wrong_destination"
    default_hint = "the request was signed for another node"


class SignatureReplayed(SatchelError):
    """Raised by the node's replay store: the pair (keyid, nonce) was already seen inside its window."""

    code = "signature.replayed"
    default_hint = "use a fresh random nonce for every request"


# The node's status table is authoritative; these are the statuses spec/request-signing.md suggests.
SUGGESTED_HTTP_STATUS: dict[str, int] = {
    "signature.missing": 401,
    "signature.malformed": 400,
    "signature.components_missing": 401,
    "signature.algorithm_unsupported": 401,
    "signature.expired": 401,
    "signature.not_yet_valid": 401,
    "signature.lifetime_too_long": 401,
    "signature.key_unknown": 401,
    "signature.key_revoked": 401,
    "signature.invalid": 401,
    "signature.wrong_destination": 421,
    "signature.replayed": 401,
    "structured_field.malformed": 400,
    "digest.missing": 400,
    "digest.malformed": 400,
    "digest.unsupported_algorithm": 400,
    "digest.mismatch": 400,
}


class VerifyKeyLike(Protocol):
    """What ``resolve_key`` returns: ``crypto.IdentityPublicKey`` fits."""

    def verify_raw(self, message: bytes, signature: bytes) -> bytes: ...


Headers = tuple[tuple[str, str], ...]


def _headers(value: Sequence[tuple[str, str]]) -> Headers:
    try:
        pairs = tuple((name, text) for name, text in value)
    except (TypeError, ValueError) as exc:
        raise MalformedMessage("headers are (name, value) pairs", field="headers") from exc
    if not all(isinstance(name, str) and isinstance(text, str) for name, text in pairs):
        raise MalformedMessage("header names and values are text", field="headers")
    return pairs


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequestView:
    """A request as signed or received: its method, absolute target URI and header lines in order."""

    method: str
    target_uri: str
    headers: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _headers(self.headers))
        if not isinstance(self.method, str) or not _METHOD.fullmatch(self.method):
            raise MalformedMessage("the method is not an HTTP token", field="method")
        _split_uri(self.target_uri)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpResponseView:
    """A response, with the request it answers when components are taken from it (``;req``)."""

    status: int
    headers: Sequence[tuple[str, str]] = ()
    request: HttpRequestView | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _headers(self.headers))
        if type(self.status) is not int or not 100 <= self.status <= 999:
            raise MalformedMessage("the status is a three-digit integer", field="status")


Message = HttpRequestView | HttpResponseView


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """A component identifier (RFC 9421 §2): a lowercase name and its parameters in wire order."""

    name: str
    params: Params = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise SignatureMalformed("component names are strings", field="Signature-Input")
        try:
            text = self.identifier
        except StructuredFieldMalformed as exc:
            raise SignatureMalformed(
                "a component identifier is not a valid string", field="Signature-Input"
            ) from exc
        if not _COMPONENT_NAME.fullmatch(self.name) or self.name == "@signature-params":
            raise SignatureMalformed(f"component {text} is not allowed", field="Signature-Input")

    @classmethod
    def parse(cls, text: str) -> Component:
        """``'"signature";req;key="sig1"'`` or a bare name such as ``"content-type"``."""
        if not text.startswith('"'):
            return cls(name=text)
        try:
            item = parse_item(text, field="Signature-Input")
        except StructuredFieldMalformed as exc:
            raise SignatureMalformed(
                "a component identifier does not parse", field="Signature-Input"
            ) from exc
        return cls._from_item(item)

    @classmethod
    def _from_item(cls, item: Item) -> Component:
        if not isinstance(item.value, str):
            raise SignatureMalformed("component identifiers are strings", field="Signature-Input")
        return cls(name=item.value, params=item.params)

    @property
    def identifier(self) -> str:
        return serialize_item(Item(value=self.name, params=self.params))

    @property
    def identity(self) -> tuple[str, frozenset[tuple[str, object]]]:
        # RFC 9421 §2: parameter order does not make a different component.
        return self.name, frozenset(self.params)

    def param(self, key: str) -> object:
        return next((value for name, value in self.params if name == key), None)

    def without(self, key: str) -> Component:
        return Component(name=self.name, params=tuple(p for p in self.params if p[0] != key))


def _component(value: Component | str) -> Component:
    return value if isinstance(value, Component) else Component.parse(value)


DEFAULT_REQUEST_COMPONENTS: tuple[Component, ...] = tuple(
    Component(name=name) for name in ("@method", "@target-uri", "content-digest", "content-type")
)


def default_response_components(request_label: str = DEFAULT_LABEL) -> tuple[Component, ...]:
    return (
        Component(name="@status"),
        Component(name="content-digest"),
        Component(name="content-type"),
        Component(name=SIGNATURE, params=(("req", True), ("key", request_label))),
    )


DEFAULT_RESPONSE_COMPONENTS = default_response_components()
# With the defaults, these two fields are covered when the message carries them (a GET has neither).
_COVER_WHEN_PRESENT = frozenset({"content-digest", "content-type"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureParams:
    """The signature parameters (RFC 9421 §2.3) in wire order, which the signature base preserves."""

    params: Params

    def __post_init__(self) -> None:
        names = [name for name, _ in self.params]
        if len(set(names)) != len(names):
            raise SignatureMalformed("a signature parameter is repeated", field="Signature-Input")
        for name, value in self.params:
            if name not in _PARAM_ORDER:
                raise SignatureMalformed(f"unknown signature parameter {name!r}", field="Signature-Input")
            ok = type(value) is int and value >= 0 if name in _INT_PARAMS else isinstance(value, str)
            if not ok:
                kind = "a non-negative integer" if name in _INT_PARAMS else "a string"
                raise SignatureMalformed(
                    f"signature parameter {name!r} must be {kind}", field="Signature-Input"
                )

    @classmethod
    def build(
        cls,
        *,
        created: int | None = None,
        expires: int | None = None,
        nonce: str | None = None,
        alg: str | None = None,
        keyid: str | None = None,
        tag: str | None = None,
    ) -> SignatureParams:
        """Parameters in the RFC 9421 §2.3 order, leaving out those given as None."""
        values = (created, expires, nonce, alg, keyid, tag)
        return cls(params=tuple((n, v) for n, v in zip(_PARAM_ORDER, values, strict=True) if v is not None))

    def _get(self, name: str) -> object:
        return next((value for key, value in self.params if key == name), None)

    @property
    def created(self) -> int | None:
        return self._get("created")  # type: ignore[return-value]

    @property
    def expires(self) -> int | None:
        return self._get("expires")  # type: ignore[return-value]

    @property
    def nonce(self) -> str | None:
        return self._get("nonce")  # type: ignore[return-value]

    @property
    def alg(self) -> str | None:
        return self._get("alg")  # type: ignore[return-value]

    @property
    def keyid(self) -> str | None:
        return self._get("keyid")  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, kw_only=True)
class _SignatureFields:
    label: str
    key_id: str
    created: int
    expires: int
    nonce: str
    components: tuple[Component, ...]
    signature: bytes
    # The covered Content-Digest value; None means the message may carry no body at all.
    content_digest: str | None
    # Keep (key_id, nonce) in the replay store at least until this instant; later the signature is expired.
    replay_until: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedSignature(_SignatureFields):
    """A signature that verified under the Satchel profile. Replay and body digest are still to check."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnverifiedSignature(_SignatureFields):
    """A signature that passed every check needing no key; the signature itself is NOT verified yet."""

    signature_base: bytes
    misaddressed: bool

    def verify(self, key: VerifyKeyLike | None) -> VerifiedSignature:
        """Finish verification with the key for ``key_id`` (None means the key is unknown)."""
        if key is None:
            raise SignatureKeyUnknown(f"unknown key {self.key_id}", field="Signature-Input")
        try:
            key.verify_raw(self.signature_base, self.signature)
        except SignatureInvalid as exc:
            raise SignatureInvalid(
                "the signature does not verify",
                field="Signature",
                hint="a covered component changed in transit, or the message was signed with another key",
            ) from exc
        # Reported only for authentic requests, so a 421 always means a real peer is misconfigured.
        if self.misaddressed:
            raise SignatureWrongDestination(
                "the request is addressed to another node", field="Signature-Input"
            )
        return VerifiedSignature(**{f.name: getattr(self, f.name) for f in fields(_SignatureFields)})


# --- URI and component values --------------------------------------------------------------------------


def _split_uri(uri: str) -> tuple[str, str, str | None, str, str | None]:
    match = _URI.fullmatch(uri) if isinstance(uri, str) else None
    if match is None or match["scheme"].lower() not in _DEFAULT_PORTS:
        raise MalformedMessage("the target URI is not an absolute http(s) URI", field="target_uri")
    return match["scheme"], match["host"], match["port"], match["path"], match["query"]


def _authority(scheme: str, host: str, port: str | None) -> str:
    # RFC 9421 §2.2.3: normalised per RFC 9110 §4.2.3, lowercase host and no default port.
    if port is not None and port.lstrip("0") == _DEFAULT_PORTS[scheme.lower()]:
        port = None
    return host.lower() if port is None else f"{host.lower()}:{port}"


def _derived_value(view: HttpRequestView, name: str) -> str:
    scheme, host, port, path, query = _split_uri(view.target_uri)
    query_suffix = "" if query is None else "?" + query
    values = {
        "@method": view.method,
        "@target-uri": f"{scheme}://{host}{'' if port is None else ':' + port}{path or '/'}{query_suffix}",
        "@authority": _authority(scheme, host, port),
        "@scheme": scheme.lower(),
        "@request-target": (path or "/") + query_suffix,
        "@path": path or "/",
        "@query": "?" + (query or ""),
    }
    return values[name]


def _field_lines(headers: Headers, name: str) -> list[str] | None:
    # RFC 9421 §2.1: field lines combined in order, each stripped of surrounding whitespace.
    lines = [value.strip(" \t") for key, value in headers if key.lower() == name]
    return lines or None


def _field_value(headers: Headers, name: str) -> str | None:
    lines = _field_lines(headers, name)
    return None if lines is None else ", ".join(lines)


def _component_value(message: Message, component: Component) -> str:
    if component.param("req") is not None:
        if component.param("req") is not True or not isinstance(message, HttpResponseView):
            raise SignatureMalformed(
                f"{component.identifier} needs a response to a request", field="Signature-Input"
            )
        if message.request is None:
            raise InvalidInput("covering request components needs the request in the response view")
        return _component_value(message.request, component.without("req"))
    name = component.name
    if name.startswith("@"):
        if component.params:
            raise SignatureMalformed(
                f"unsupported parameters on {component.identifier}", field="Signature-Input"
            )
        if name == "@status" and isinstance(message, HttpResponseView):
            return f"{message.status:03d}"
        if name in _DERIVED and isinstance(message, HttpRequestView):
            return _derived_value(message, name)
        raise SignatureMalformed(f"{name} cannot be covered in this message", field="Signature-Input")
    value = _field_value(message.headers, name)
    if value is None:
        raise SignatureMalformed(f"covered field {name!r} is not in the message", field=name)
    if not component.params:
        return value
    return _structured_value(name, value, component)


def _structured_value(name: str, value: str, component: Component) -> str:
    key, sf = component.param("key"), component.param("sf")
    extra = {param for param, _ in component.params} - {"key", "sf"}
    if extra or name not in _DICTIONARY_FIELDS or sf not in (None, True) or not isinstance(key, str | None):
        raise SignatureMalformed(f"unsupported component {component.identifier}", field="Signature-Input")
    try:
        members = parse_dictionary(value, field=name, reject_duplicates=True)
    except StructuredFieldMalformed as exc:
        raise SignatureMalformed(f"covered field {name!r} is not a dictionary", field=name) from exc
    if key is None:
        return serialize_dictionary(members)
    if key not in members:
        raise SignatureMalformed(f"covered field {name!r} has no member {key!r}", field=name)
    # RFC 9421 §2.1.2: the member re-serialised on its own, parameters included.
    return serialize_member(members[key])


def _check_line_value(component: Component, value: str) -> None:
    # A CR or LF would let a field value forge extra lines in the signature base.
    if not all(" " <= char <= "~" or char == "\t" for char in value):
        raise SignatureMalformed(
            f"covered component {component.identifier} is not printable ASCII", field=component.name
        )


def signature_params_value(components: Sequence[Component], params: SignatureParams) -> str:
    """The ``@signature-params`` value, which is also the Signature-Input member for the label."""
    inner = InnerList(
        items=tuple(Item(value=c.name, params=c.params) for c in components), params=params.params
    )
    return serialize_member(inner)


def signature_base(message: Message, components: Sequence[Component | str], params: SignatureParams) -> bytes:
    """The RFC 9421 §2.5 signature base: one ``identifier: value`` line per component, then params."""
    covered = [_component(c) for c in components]
    if len({c.identity for c in covered}) != len(covered):
        raise SignatureMalformed("a component is covered twice", field="Signature-Input")
    lines = []
    for component in covered:
        value = _component_value(message, component)
        _check_line_value(component, value)
        lines.append(f"{component.identifier}: {value}")
    lines.append(f'"@signature-params": {signature_params_value(covered, params)}')
    return "\n".join(lines).encode("ascii")


# --- the Satchel profile: signing and verifying ---------------------------------------------------------

_METHOD_C, _TARGET_URI = Component(name="@method"), Component(name="@target-uri")
_AUTHORITY, _PATH, _QUERY = Component(name="@authority"), Component(name="@path"), Component(name="@query")
_STATUS, _DIGEST = Component(name="@status"), Component(name="content-digest")
_CONTENT_TYPE = Component(name="content-type")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedSignature:
    """One labelled signature as read from the headers; nothing about it is verified yet."""

    label: str
    components: tuple[Component, ...]
    params: SignatureParams
    signature: bytes


def _parse_signature_dict(text: str, field: str) -> dict[str, InnerList | Item]:
    try:
        # A repeated label would let two parsers disagree about which signature was meant.
        return parse_dictionary(text, field=field, reject_duplicates=True)
    except StructuredFieldMalformed as exc:
        raise SignatureMalformed(f"{field} is not a structured dictionary", field=field) from exc


def parse_signature(headers: Sequence[tuple[str, str]], label: str = DEFAULT_LABEL) -> ParsedSignature:
    """Read the signature labelled ``label`` from Signature-Input and Signature (RFC 9421 §4)."""
    pairs = _headers(headers)
    inputs_text, signatures_text = _field_value(pairs, SIGNATURE_INPUT), _field_value(pairs, SIGNATURE)
    if inputs_text is None or signatures_text is None:
        field = "Signature-Input" if inputs_text is None else "Signature"
        raise SignatureMissing(f"the message has no {field} field", field=field)
    inputs = _parse_signature_dict(inputs_text, "Signature-Input")
    signatures = _parse_signature_dict(signatures_text, "Signature")
    if label not in inputs:
        raise SignatureMissing(f"no signature labelled {label!r}", field="Signature-Input")
    member, signature = inputs[label], signatures.get(label)
    if not isinstance(member, InnerList):
        raise SignatureMalformed(
            f"Signature-Input member {label!r} is not an inner list", field="Signature-Input"
        )
    if not isinstance(signature, Item) or not isinstance(signature.value, bytes):
        raise SignatureMalformed(f"Signature member {label!r} is not a byte sequence", field="Signature")
    return ParsedSignature(
        label=label,
        components=tuple(Component._from_item(item) for item in member.items),
        params=SignatureParams(params=member.params),
        signature=signature.value,
    )


def _profile_params(params: SignatureParams) -> tuple[int, int, str, str]:
    created, expires, nonce, keyid = params.created, params.expires, params.nonce, params.keyid
    if created is None or expires is None or nonce is None or keyid is None:
        raise SignatureMalformed(
            "created, expires, nonce and keyid are all required", field="Signature-Input"
        )
    if not NONCE_PATTERN.fullmatch(nonce):
        raise SignatureMalformed("nonce is not 22 to 128 base64url characters", field="Signature-Input")
    if not KEY_ID_PATTERN.fullmatch(keyid):
        raise SignatureMalformed("keyid is not a Satchel node key id", field="Signature-Input")
    if expires <= created:
        raise SignatureMalformed("expires is not after created", field="Signature-Input")
    return created, expires, nonce, keyid


def _body_present(headers: Headers, has_body: bool | None) -> bool:
    if has_body is not None:
        return has_body
    # Without word from the transport, any framing that could carry bytes counts as a body.
    length = _field_value(headers, "content-length")
    return _field_value(headers, "transfer-encoding") is not None or length not in (None, "0")


def _missing_components(
    message: Message,
    covered: Sequence[Component],
    *,
    has_body: bool | None,
    extra: Sequence[Component],
    request_label: str,
) -> list[str]:
    identities = {c.identity for c in covered}
    needed = list(extra)
    if isinstance(message, HttpRequestView):
        needed.append(_METHOD_C)
        if _TARGET_URI.identity not in identities:
            has_query = _split_uri(message.target_uri)[4] is not None
            needed += [_AUTHORITY, _PATH, *([_QUERY] if has_query else [])]
    else:
        needed += [_STATUS, Component(name=SIGNATURE, params=(("req", True), ("key", request_label)))]
    if _body_present(message.headers, has_body) or _field_value(message.headers, _DIGEST.name) is not None:
        needed.append(_DIGEST)
    if _field_value(message.headers, _CONTENT_TYPE.name) is not None:
        needed.append(_CONTENT_TYPE)
    return [c.identifier for c in needed if c.identity not in identities]


def _check_times(created: int, expires: int, *, now: int, max_skew: int, max_lifetime: int) -> None:
    if expires - created > max_lifetime:
        raise SignatureLifetimeTooLong(
            f"the signature is valid for {expires - created} s, more than {max_lifetime} s",
            field="Signature-Input",
        )
    if created > now + max_skew:
        raise SignatureNotYetValid(
            f"created is {created - now} s in the future, more than the {max_skew} s allowed",
            field="Signature-Input",
        )
    if expires < now - max_skew:
        raise SignatureExpired(f"the signature expired {now - expires} s ago", field="Signature-Input")


def _sign(
    message: Message,
    covered: tuple[Component, ...],
    *,
    key_id: str,
    sign: Callable[[bytes], bytes],
    created: int,
    expires: int,
    nonce: str,
    label: str,
    include_alg: bool,
    has_body: bool | None,
    request_label: str,
) -> list[tuple[str, str]]:
    params = SignatureParams.build(
        created=created, expires=expires, nonce=nonce, alg=ALGORITHM if include_alg else None, keyid=key_id
    )
    # The signer applies the verifier's rules to itself, so a bad call fails here and not at the peer.
    _profile_params(params)
    _check_times(created, expires, now=created, max_skew=0, max_lifetime=MAX_LIFETIME)
    missing = _missing_components(message, covered, has_body=has_body, extra=(), request_label=request_label)
    if missing:
        raise SignatureComponentsMissing(f"the signature would not cover {', '.join(missing)}")
    serialize_dictionary({label: Item(value=True)})  # rejects a label that is not an RFC 8941 key
    existing = _field_value(message.headers, SIGNATURE_INPUT)
    if existing is not None and label in _parse_signature_dict(existing, "Signature-Input"):
        raise InvalidInput(f"the message already has a signature labelled {label!r}", field="Signature-Input")
    signature = sign(signature_base(message, covered, params))
    inner = InnerList(items=tuple(Item(value=c.name, params=c.params) for c in covered), params=params.params)
    return [
        ("Signature-Input", serialize_dictionary({label: inner})),
        ("Signature", serialize_dictionary({label: Item(value=bytes(signature))})),
    ]


def _defaults(message: Message, defaults: Sequence[Component]) -> tuple[Component, ...]:
    return tuple(
        c
        for c in defaults
        if c.name not in _COVER_WHEN_PRESENT or _field_value(message.headers, c.name) is not None
    )


def sign_request(
    view: HttpRequestView,
    *,
    key_id: str,
    sign: Callable[[bytes], bytes],
    created: int,
    expires: int,
    nonce: str,
    label: str = DEFAULT_LABEL,
    components: Sequence[Component | str] | None = None,
    include_alg: bool = True,
    has_body: bool | None = None,
) -> list[tuple[str, str]]:
    """The ``Signature-Input`` and ``Signature`` header lines to add to ``view`` before sending it.

    ``components=None`` covers DEFAULT_REQUEST_COMPONENTS, with content-digest and content-type only when
    the request carries them; an explicit list is covered exactly as given.
    """
    covered = (
        _defaults(view, DEFAULT_REQUEST_COMPONENTS)
        if components is None
        else tuple(map(_component, components))
    )
    return _sign(
        view, covered, key_id=key_id, sign=sign, created=created, expires=expires, nonce=nonce, label=label,
        include_alg=include_alg, has_body=has_body, request_label=DEFAULT_LABEL,
    )  # fmt: skip


def sign_response(
    view: HttpResponseView,
    *,
    key_id: str,
    sign: Callable[[bytes], bytes],
    created: int,
    expires: int,
    nonce: str,
    label: str = DEFAULT_LABEL,
    request_label: str = DEFAULT_LABEL,
    components: Sequence[Component | str] | None = None,
    include_alg: bool = True,
    has_body: bool | None = None,
) -> list[tuple[str, str]]:
    """Like :func:`sign_request`; ``view.request`` is the request as received, signature included."""
    if view.request is None:
        raise InvalidInput("a Satchel response signature covers the request's; pass the request")
    defaults = default_response_components(request_label)
    covered = _defaults(view, defaults) if components is None else tuple(map(_component, components))
    return _sign(
        view, covered, key_id=key_id, sign=sign, created=created, expires=expires, nonce=nonce, label=label,
        include_alg=include_alg, has_body=has_body, request_label=request_label,
    )  # fmt: skip


def _check(
    message: Message,
    *,
    now: int,
    max_skew: int,
    max_lifetime: int,
    label: str,
    request_label: str,
    require_components: Sequence[Component | str],
    has_body: bool | None,
    misaddressed: bool = False,
) -> UnverifiedSignature:
    parsed = parse_signature(message.headers, label)
    created, expires, nonce, keyid = _profile_params(parsed.params)
    extra = tuple(map(_component, require_components))
    missing = _missing_components(
        message, parsed.components, has_body=has_body, extra=extra, request_label=request_label
    )
    if missing:
        raise SignatureComponentsMissing(
            f"the signature does not cover {', '.join(missing)}", field="Signature-Input"
        )
    if parsed.params.alg not in (None, ALGORITHM):
        raise SignatureAlgorithmUnsupported("the signature algorithm is not ed25519", field="Signature-Input")
    _check_times(created, expires, now=now, max_skew=max_skew, max_lifetime=max_lifetime)
    return UnverifiedSignature(
        label=label,
        key_id=keyid,
        created=created,
        expires=expires,
        nonce=nonce,
        components=parsed.components,
        signature=parsed.signature,
        content_digest=_field_value(message.headers, _DIGEST.name),
        replay_until=expires + max_skew,
        signature_base=signature_base(message, parsed.components, parsed.params),
        misaddressed=misaddressed,
    )


def _misaddressed(view: HttpRequestView, expected_authority: str | None) -> bool:
    if expected_authority is None:
        return False
    scheme, host, port, _, _ = _split_uri(view.target_uri)
    try:
        if set(expected_authority) & set("/?#@"):
            raise MalformedMessage("not an authority")
        expected = _authority(*_split_uri(f"{scheme}://{expected_authority}/")[:3])
    except MalformedMessage as exc:
        raise InvalidInput("expected_authority is not host[:port]", field="expected_authority") from exc
    return _authority(scheme, host, port) != expected


def check_request_signature(
    view: HttpRequestView,
    *,
    now: int,
    expected_authority: str | None,
    max_skew: int = DEFAULT_MAX_SKEW,
    max_lifetime: int = MAX_LIFETIME,
    label: str = DEFAULT_LABEL,
    require_components: Sequence[Component | str] = (),
    has_body: bool | None = None,
) -> UnverifiedSignature:
    """Every check that needs no key (spec steps 1 to 6). For callers whose key lookup is asynchronous:
    resolve ``.key_id``, then call ``.verify(key)``. Arguments as for :func:`verify_request`."""
    return _check(
        view, now=now, max_skew=max_skew, max_lifetime=max_lifetime, label=label, request_label=DEFAULT_LABEL,
        require_components=require_components, has_body=has_body,
        misaddressed=_misaddressed(view, expected_authority),
    )  # fmt: skip


def check_response_signature(
    view: HttpResponseView,
    *,
    now: int,
    max_skew: int = DEFAULT_MAX_SKEW,
    max_lifetime: int = MAX_LIFETIME,
    label: str = DEFAULT_LABEL,
    request_label: str = DEFAULT_LABEL,
    require_components: Sequence[Component | str] = (),
    has_body: bool | None = None,
) -> UnverifiedSignature:
    """The key-free checks for a response; see :func:`verify_response`."""
    if view.request is None:
        raise InvalidInput("verifying a Satchel response needs the request it answers")
    parse_signature(view.request.headers, request_label)
    return _check(
        view, now=now, max_skew=max_skew, max_lifetime=max_lifetime, label=label, request_label=request_label,
        require_components=require_components, has_body=has_body,
    )  # fmt: skip


def verify_request(
    view: HttpRequestView,
    *,
    resolve_key: Callable[[str], VerifyKeyLike | None],
    now: int,
    expected_authority: str | None,
    max_skew: int = DEFAULT_MAX_SKEW,
    max_lifetime: int = MAX_LIFETIME,
    label: str = DEFAULT_LABEL,
    require_components: Sequence[Component | str] = (),
    has_body: bool | None = None,
) -> VerifiedSignature:
    """Verify the request's ``label`` signature under the Satchel profile; raise a coded error otherwise.

    ``resolve_key`` maps a keyid to a key with ``verify_raw`` and raises SignatureKeyUnknown or
    SignatureKeyRevoked (returning None means unknown); it is called only after every key-free check
    passed. ``expected_authority`` is this node's own ``host[:port]``. ``has_body`` should come from the
    transport; when None it is inferred from framing headers. ``require_components`` adds to the profile's
    requirements. Replay (the nonce) and the body digest are the caller's next two checks.
    """
    unverified = check_request_signature(
        view, now=now, expected_authority=expected_authority, max_skew=max_skew, max_lifetime=max_lifetime,
        label=label, require_components=require_components, has_body=has_body,
    )  # fmt: skip
    return unverified.verify(resolve_key(unverified.key_id))


def verify_response(
    view: HttpResponseView,
    *,
    resolve_key: Callable[[str], VerifyKeyLike | None],
    now: int,
    max_skew: int = DEFAULT_MAX_SKEW,
    max_lifetime: int = MAX_LIFETIME,
    label: str = DEFAULT_LABEL,
    request_label: str = DEFAULT_LABEL,
    require_components: Sequence[Component | str] = (),
    has_body: bool | None = None,
) -> VerifiedSignature:
    """Verify a response to a request this node sent (``view.request``, exactly as sent).

    The response must cover ``"signature";req;key=<request_label>``, and since that value is taken from
    our own request, a response made for any other request does not verify. ``resolve_key`` should
    resolve only the keys of the node the request went to.
    """
    unverified = check_response_signature(
        view, now=now, max_skew=max_skew, max_lifetime=max_lifetime, label=label, request_label=request_label,
        require_components=require_components, has_body=has_body,
    )  # fmt: skip
    return unverified.verify(resolve_key(unverified.key_id))


def encode_nonce(random_bytes: bytes) -> str:
    """A nonce from 16 to 96 bytes of the caller's randomness: base64url without padding."""
    if not 16 <= len(random_bytes) <= 96:
        raise InvalidInput("a nonce is made from 16 to 96 random bytes", field="nonce")
    return base64.urlsafe_b64encode(random_bytes).rstrip(b"=").decode("ascii")
