"""RFC 9421 HTTP Message Signatures with Ed25519: the Satchel profile (``spec/request-signing.md``).

Sans-IO: messages are described by :class:`HttpRequestView` / :class:`HttpResponseView` (pure data), time
and nonces are arguments, keys are reached through a ``sign`` callable and a ``resolve_key`` callable.
Verification returns a :class:`VerifiedSignature`; the caller then checks the nonce against its replay
store and the covered Content-Digest against the body as it streams (``protocol.content_digest``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from protocol import signature_fast
from protocol.errors import InvalidInput, MalformedMessage, SignatureInvalid
from protocol.signature_base import (
    Component,
    Headers,
    HttpRequestView,
    HttpResponseView,
    Message,
    SignatureParams,
    _authority,
    _component,
    _field_value,
    _headers,
    _split_uri,
    signature_base,
    signature_params_value,
)
from protocol.signature_errors import (
    MAX_LIFETIME,
    SignatureAlgorithmUnsupported,
    SignatureComponentsMissing,
    SignatureExpired,
    SignatureKeyLookupLimited,
    SignatureKeyRevoked,
    SignatureKeyUnknown,
    SignatureLifetimeTooLong,
    SignatureMalformed,
    SignatureMissing,
    SignatureNotYetValid,
    SignatureReplayed,
    SignatureWrongDestination,
)
from protocol.signature_profile import (
    ALGORITHM,
    DEFAULT_LABEL,
    DEFAULT_MAX_SKEW,
    KEY_ID_PATTERN,
    NONCE_PATTERN,
    SESSION_ALGORITHM,
    SESSION_KEY_ID_PATTERN,
    SIGNATURE,
    SIGNATURE_INPUT,
    UnverifiedSignature,
    VerifiedSignature,
    VerifyKeyLike,
    algorithm_for,
    encode_nonce,
)
from protocol.signature_profile import check_algorithm as _check_algorithm
from protocol.signature_profile import check_times as _check_times
from protocol.signature_profile import profile_values as _profile_values
from protocol.structured_fields import (
    InnerList,
    Item,
    StructuredFieldMalformed,
    parse_dictionary,
    serialize_dictionary,
)

__all__ = [
    "ALGORITHM",
    "DEFAULT_LABEL",
    "DEFAULT_MAX_SKEW",
    "DEFAULT_REQUEST_COMPONENTS",
    "DEFAULT_RESPONSE_COMPONENTS",
    "KEY_ID_PATTERN",
    "MAX_LIFETIME",
    "NONCE_PATTERN",
    "SESSION_ALGORITHM",
    "SESSION_KEY_ID_PATTERN",
    "SIGNATURE",
    "SIGNATURE_INPUT",
    "SUGGESTED_HTTP_STATUS",
    "Component",
    "Headers",
    "HttpRequestView",
    "HttpResponseView",
    "Message",
    "ParsedSignature",
    "SignatureAlgorithmUnsupported",
    "SignatureComponentsMissing",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureKeyLookupLimited",
    "SignatureKeyRevoked",
    "SignatureKeyUnknown",
    "SignatureLifetimeTooLong",
    "SignatureMalformed",
    "SignatureMissing",
    "SignatureNotYetValid",
    "SignatureParams",
    "SignatureReplayed",
    "SignatureWrongDestination",
    "UnverifiedSignature",
    "VerifiedSignature",
    "VerifyKeyLike",
    "algorithm_for",
    "check_request_headers",
    "check_request_signature",
    "check_response_signature",
    "default_response_components",
    "encode_nonce",
    "parse_signature",
    "sign_answer",
    "sign_request",
    "sign_response",
    "signature_base",
    "signature_params_value",
    "verify_request",
    "verify_response",
]

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
    "signature.key_lookup_limited": 503,
    "signature.invalid": 401,
    "signature.wrong_destination": 421,
    "signature.replayed": 401,
    "signature.session_unknown": 401,
    "session.offer_invalid": 400,
    "structured_field.malformed": 400,
    "digest.missing": 400,
    "digest.malformed": 400,
    "digest.unsupported_algorithm": 400,
    "digest.mismatch": 400,
}


DEFAULT_REQUEST_COMPONENTS: tuple[Component, ...] = tuple(
    Component(name=name) for name in ("@method", "@target-uri", "content-digest", "content-type")
)


@lru_cache(maxsize=16)
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
    return _profile_values(created, expires, nonce, keyid)


def _body_present(headers: Sequence[tuple[str, str]], has_body: bool | None) -> bool:
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
    alg = _signing_alg(key_id, include_alg, created, expires, nonce)
    fast = signature_fast.prepare(
        message, covered, label=label, created=created, expires=expires, nonce=nonce, alg=alg, key_id=key_id,
        has_body=has_body, request_label=request_label,
    )  # fmt: skip
    if fast is not None:
        return _signature_lines(label, *fast, sign)
    params = SignatureParams.build(created=created, expires=expires, nonce=nonce, alg=alg, keyid=key_id)
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


def _signing_alg(key_id: str, include_alg: bool, created: int, expires: int, nonce: str) -> str | None:
    algorithm = algorithm_for(key_id)
    # The signer applies the verifier's rules to itself, so a bad call fails here and not at the peer.
    _profile_values(created, expires, nonce, key_id)
    _check_times(created, expires, now=created, max_skew=0, max_lifetime=MAX_LIFETIME)
    return algorithm if include_alg or algorithm == SESSION_ALGORITHM else None


def _signature_lines(label: str, member: str, base: bytes, sign: Callable[[bytes], bytes]) -> list[tuple[str, str]]:
    encoded = base64.b64encode(bytes(sign(base))).decode("ascii")
    return [("Signature-Input", f"{label}={member}"), ("Signature", f"{label}=:{encoded}:")]


def _defaults(message: Message, defaults: Sequence[Component]) -> tuple[Component, ...]:
    present = {name.lower() for name, _ in message.headers}  # one pass, not one per optional field
    return tuple(c for c in defaults if c.name not in _COVER_WHEN_PRESENT or c.name in present)


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


def sign_answer(
    status: int,
    *,
    content_digest: str,
    content_type: str,
    request_signature: str | None,
    key_id: str,
    sign: Callable[[bytes], bytes],
    created: int,
    expires: int,
    nonce: str,
    label: str = DEFAULT_LABEL,
    request_label: str = DEFAULT_LABEL,
    include_alg: bool = True,
    compiled: bool = True,
) -> list[tuple[str, str]] | None:
    """:func:`sign_response` with the default components, for an answer not yet signed whose Content-Digest
    and Content-Type fields are these values (one line each), answering a request whose combined Signature
    field is ``request_signature`` (None if it had none). No view is built.

    None when the fast path cannot sign it: the caller then calls :func:`sign_response` with views, which
    signs or refuses. Whatever this returns, that call returns too (tests/protocol/test_signature_fast.py).
    The compiled code (protocol/_sigfast.c) signs as this Python code does (``compiled=False``) or leaves it.
    """
    if compiled and signature_fast.COMPILED is not None:  # the rules, base and signature in one call
        lines = signature_fast.COMPILED.signed_answer(
            status, content_digest, content_type, request_signature, label, request_label, created, expires, nonce,
            key_id, include_alg, sign,
        )  # fmt: skip
        if lines is not None:
            return [("Signature-Input", lines[0]), ("Signature", lines[1])]
    alg = _signing_alg(key_id, include_alg, created, expires, nonce)
    fast = signature_fast.prepare_answer(
        status, content_digest, content_type, request_signature, label=label, created=created, expires=expires,
        nonce=nonce, alg=alg, key_id=key_id, request_label=request_label,
    )  # fmt: skip
    return None if fast is None else _signature_lines(label, *fast, sign)


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
    fast: bool = True,
) -> UnverifiedSignature:
    extra = tuple(map(_component, require_components))
    if fast and not any(c.params for c in extra):
        found = signature_fast.read(
            message, label=label, request_label=request_label, require=[c.name for c in extra], has_body=has_body
        )  # fmt: skip
        if found is not None:
            return _checked_fast(
                found, now=now, max_skew=max_skew, max_lifetime=max_lifetime, misaddressed=misaddressed
            )
    parsed = parse_signature(message.headers, label)
    created, expires, nonce, keyid = _profile_params(parsed.params)
    missing = _missing_components(
        message, parsed.components, has_body=has_body, extra=extra, request_label=request_label
    )
    if missing:
        raise SignatureComponentsMissing(
            f"the signature does not cover {', '.join(missing)}", field="Signature-Input"
        )
    _check_algorithm(keyid, parsed.params.alg)
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
        signature_field=_field_value(message.headers, SIGNATURE),
    )


def _checked_fast(
    found: signature_fast.FastSignature, *, now: int, max_skew: int, max_lifetime: int, misaddressed: bool
) -> UnverifiedSignature:
    # The same rules, in the same order, as the general code applies after parsing: what it would decide.
    created, expires, nonce, keyid = _profile_values(found.created, found.expires, found.nonce, found.key_id)
    _check_algorithm(keyid, found.alg)
    _check_times(created, expires, now=now, max_skew=max_skew, max_lifetime=max_lifetime)
    return UnverifiedSignature(
        label=found.label, key_id=keyid, created=created, expires=expires, nonce=nonce,
        components=found.components, signature=found.signature, content_digest=found.content_digest,
        replay_until=expires + max_skew, signature_base=found.signature_base, misaddressed=misaddressed,
        signature_field=found.signature_field,
    )  # fmt: skip


@lru_cache(maxsize=64)
def _plain_required(require_components: tuple[Component | str, ...]) -> tuple[str, ...] | None:
    """The names a fast-path read must find covered; None when one carries parameters (general code only)."""
    extra = tuple(map(_component, require_components))
    return None if any(c.params for c in extra) else tuple(c.name for c in extra)


def check_request_headers(
    headers: Iterable[tuple[str, str]],
    *,
    method: str,
    target_uri: str,
    now: int,
    expected_authority: str | None,
    max_skew: int = DEFAULT_MAX_SKEW,
    max_lifetime: int = MAX_LIFETIME,
    label: str = DEFAULT_LABEL,
    require_components: tuple[Component | str, ...] = (),
    has_body: bool | None = None,
    compiled: bool = True,
) -> UnverifiedSignature | None:
    """:func:`check_request_signature` for a request in the canonical shape, given by its header lines,
    method and absolute target URI, with no view built.

    None when the fast path cannot decide (another shape, anything suspect, a target URI no view accepts):
    the caller then builds the request's view and calls :func:`check_request_signature`, which decides
    with the precise error. Whatever this returns or raises, that call would return or raise too
    (tests/protocol/test_signature_fast.py). The compiled code (protocol/_sigfast.c) reads and checks a
    request that passes as this Python code does (``compiled=False``) or leaves it.
    """
    require = _plain_required(require_components)
    if require is None:
        return None
    if compiled:  # the reading and the profile's rules in one call, for a request that passes them all
        checked = signature_fast.checked_request(
            headers, method=method, target_uri=target_uri, label=label, require=require, has_body=has_body,
            now=now, max_skew=max_skew, max_lifetime=max_lifetime,
        )  # fmt: skip
        if checked is not None:
            key_id, _, created, expires, nonce, items, signature, digest, base, field = checked
            return UnverifiedSignature(
                label=label, key_id=key_id, created=created, expires=expires, nonce=nonce,
                components=signature_fast.components_of(items), signature=signature, content_digest=digest,
                replay_until=expires + max_skew, signature_base=base, signature_field=field,
                misaddressed=expected_authority is not None and _misaddressed_uri(target_uri, expected_authority),
            )  # fmt: skip
    found = signature_fast.read_request(
        headers, method=method, target_uri=target_uri, label=label, require=require, has_body=has_body,
        compiled=compiled,
    )  # fmt: skip
    if found is None:
        return None
    misaddressed = expected_authority is not None and _misaddressed_uri(target_uri, expected_authority)
    return _checked_fast(found, now=now, max_skew=max_skew, max_lifetime=max_lifetime, misaddressed=misaddressed)


def _misaddressed(view: HttpRequestView, expected_authority: str | None) -> bool:
    return False if expected_authority is None else _misaddressed_uri(view.target_uri, expected_authority)


@lru_cache(maxsize=256)  # a node is called at a handful of URIs, always with its own authority
def _misaddressed_uri(target_uri: str, expected_authority: str) -> bool:
    scheme, host, port, _, _ = _split_uri(target_uri)
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
