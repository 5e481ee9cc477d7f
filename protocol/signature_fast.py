"""The Satchel profile's canonical signatures, read and written without the general RFC 8941/9421 code.

Every Satchel node writes ``Signature-Input`` in one shape: one label, components that are plain names
(plus ``"signature";req;key=…`` in responses), then ``created``, ``expires``, ``nonce``, ``alg`` and
``keyid`` in that order. The general parser and serialiser (``protocol.structured_fields``,
``protocol.signature_base``) accept every valid RFC 9421 message, but walk it character by character:
about 130 µs a message in pure Python, more than the Ed25519 signature itself. Here one regular
expression reads that single shape and the signature base is joined from strings.

These functions answer ``None`` for anything outside that shape, for anything suspect, and for every
message the general code would refuse: the caller then runs the general code, which accepts the message
or refuses it with the precise error. So they can only make the common case faster, never change a
decision; tests/protocol/test_signature_fast.py checks with hypothesis that whenever they answer, the
general code answers exactly the same.

A server reads a request from its header lines (:func:`read_request`) and builds its answer's base from the
answer's two covered field values (:func:`prepare_answer`), with no message views. Where the package was
built with a C compiler, both run compiled (protocol/_sigfast.c; the answer through http_signatures.sign_answer):
the compiled code answers as the Python code here does or leaves the message to it
(tests/protocol/test_signature_fast_compiled.py).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from protocol.errors import SatchelError
from protocol.signature_base import (
    _METHOD,
    Component,
    HttpRequestView,
    Message,
    _derived_value,
)

try:
    from protocol import _sigfast

    COMPILED: ModuleType | None = _sigfast
except ImportError:  # built without a C compiler: the Python code decides alone, and decides the same
    COMPILED = None

_KEY = r"[a-z*][a-z0-9_.*-]*"
_INT = r"0|[1-9][0-9]{0,14}"
# A plain component: a lowercase field name or one of the derived components Satchel covers.
_PLAIN = r'"(?:[a-z0-9-]+|@method|@target-uri|@status)"'
_REQ_SIGNATURE = rf'"signature";req;key="{_KEY}"'
_ITEM = rf"(?:{_PLAIN}|{_REQ_SIGNATURE})"
_INPUT = re.compile(
    rf"({_KEY})=\(((?:{_ITEM})(?: {_ITEM})*)\)"
    rf';created=({_INT});expires=({_INT});nonce="([A-Za-z0-9_-]{{22,128}})"'
    rf'(?:;alg="(ed25519|hmac-sha256)")?;keyid="([A-Za-z0-9_-]{{1,64}})"'
)
_SIGNATURE = re.compile(rf"({_KEY})=:([A-Za-z0-9+/]*={{0,2}}):")
# Every line of a base is printable ASCII or tab (a value holding a line break could forge another line).
_BASE_SAFE = re.compile(r"[\t -~\n]*")
_SAFE_PARAM = re.compile(r"[A-Za-z0-9_-]{1,128}")
_REQ_PREFIX = '"signature";req;key="'
_OWS = " \t"  # stripped from each field line (RFC 9421 §2.1)


@dataclass(slots=True)  # not frozen: built for every signed request, and only read once, by http_signatures
class FastSignature:
    """What the general check would have read from the message, for a message in the canonical shape."""

    label: str
    key_id: str
    alg: str | None
    created: int
    expires: int
    nonce: str
    components: tuple[Component, ...]
    signature: bytes
    content_digest: str | None
    signature_base: bytes
    # The message's combined Signature field, this signature among its members: an answer is signed over it.
    signature_field: str


@lru_cache(maxsize=64)  # a server reads a request's fields to verify it, then again to sign the answer
def _fields(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Field name -> combined value. Shared between calls through the cache: callers only read it."""
    return combined_fields(headers)


def combined_fields(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Field name (lowercase) -> value, the lines of one field combined in order, each stripped (RFC 9421 §2.1)."""
    combined: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        value = value.strip(_OWS)
        combined[key] = f"{combined[key]}, {value}" if key in combined else value
    return combined


@lru_cache(maxsize=256)
def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split(" "))


@lru_cache(maxsize=256)
def _components(identifiers: tuple[str, ...]) -> tuple[Component, ...]:
    return tuple(_component(i) for i in identifiers)


@lru_cache(maxsize=256)  # the same few component lists, request after request
def components_of(items: str) -> tuple[Component, ...]:
    """The components of a component list's text as the compiled reader gives it (``"@method" "@target-uri" ...``)."""
    return _components(_split(items))


def _component(identifier: str) -> Component:
    if identifier.startswith(_REQ_PREFIX):
        return Component(name="signature", params=(("req", True), ("key", identifier[len(_REQ_PREFIX) : -1])))
    return Component(name=identifier[1:-1])


def _signature_member(value: str | None, label: str) -> str | None:
    """``:base64:`` of a one-member Signature field, as RFC 9421 §2.1.2 re-serialises it; else None."""
    if value is None:
        return None
    match = _SIGNATURE.fullmatch(value)
    if match is None or match[1] != label or _decode(match[2]) is None:
        return None
    return f":{match[2]}:"


def _decode(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Only the canonical form: what re-serialising the parsed bytes gives back.
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _body_present(fields: dict[str, str], has_body: bool | None) -> bool:
    if has_body is not None:
        return has_body
    return "transfer-encoding" in fields or fields.get("content-length") not in (None, "0")


class _Derived:
    """What a message gives beyond its fields: its derived components, and for a response the Signature
    field of the request it answers (for ``"signature";req``)."""

    __slots__ = ("is_request", "request_signature", "values")

    def __init__(self, is_request: bool, values: dict[str, str], request_signature: str | None = None) -> None:
        self.is_request = is_request
        self.values = values
        self.request_signature = request_signature


def _derived(message: Message) -> _Derived:
    if isinstance(message, HttpRequestView):
        return _Derived(True, {"@method": message.method, "@target-uri": _target_uri(message.target_uri)})
    request = message.request  # without it (or its Signature field), ;req components cannot be read
    signature = None if request is None else _fields(tuple(request.headers)).get("signature")
    return _Derived(False, {"@status": f"{message.status:03d}"}, signature)


def _request_derived(method: str, target_uri: str) -> _Derived | None:
    """The derived components of a request given by its method and target URI; None where building its
    view would fail (the general code then refuses the request with the precise error)."""
    if not _METHOD.fullmatch(method):
        return None
    try:
        target = _target_uri(target_uri)
    except SatchelError:
        return None
    return _Derived(True, {"@method": method, "@target-uri": target})


def _covers_what_is_required(
    derived: _Derived,
    fields: dict[str, str],
    identifiers: tuple[str, ...],
    *,
    has_body: bool | None,
    require: tuple[str, ...],
    request_label: str,
) -> bool:
    return _covers(
        identifiers, derived.is_request, require, request_label,
        _body_present(fields, has_body) or "content-digest" in fields, "content-type" in fields,
    )  # fmt: skip


@lru_cache(maxsize=256)  # one answer per shape of message: the same few shapes come again and again
def _covers(
    identifiers: tuple[str, ...],
    is_request: bool,
    require: tuple[str, ...],
    request_label: str,
    needs_digest: bool,
    needs_type: bool,
) -> bool:
    needed = [f'"{name}"' for name in require]
    if is_request:
        # Without @target-uri the profile wants @authority/@path/@query: the general code's business.
        needed += ['"@method"', '"@target-uri"']
    else:
        needed += ['"@status"', f'{_REQ_PREFIX}{request_label}"']
    if needs_digest:
        needed.append('"content-digest"')
    if needs_type:
        needed.append('"content-type"')
    present = set(identifiers)
    return len(present) == len(identifiers) and all(item in present for item in needed)


@lru_cache(maxsize=256)
def _sources(identifiers: tuple[str, ...]) -> tuple[tuple[str, int, str], ...]:
    """Where each identifier's value comes from, worked out once per shape: (identifier, kind, name)."""
    return tuple(
        (i, _FROM_REQUEST, i[len(_REQ_PREFIX) : -1]) if i.startswith(_REQ_PREFIX)
        else (i, _DERIVED if i[1] == "@" else _FIELD, i[1:-1])
        for i in identifiers
    )  # fmt: skip


_FIELD, _DERIVED, _FROM_REQUEST = 0, 1, 2


@lru_cache(maxsize=256)
def _target_uri(uri: str) -> str:
    return _derived_value(HttpRequestView(method="GET", target_uri=uri), "@target-uri")


def _base(derived: _Derived, fields: dict[str, str], identifiers: Sequence[str], params: str) -> bytes | None:
    lines = []
    values = derived.values
    for identifier, kind, name in _sources(tuple(identifiers)):
        if kind == _FIELD:
            value = fields.get(name)
        elif kind == _DERIVED:
            value = values.get(name)
        else:
            value = None if derived.is_request else _signature_member(derived.request_signature, name)
        if value is None:
            return None
        lines.append(f"{identifier}: {value}")
    lines.append(f'"@signature-params": {params}')
    text = "\n".join(lines)
    # One scan of the whole base rather than one per value: as many line breaks as joins means no value
    # held one, and the rest is printable ASCII or tab (identifiers and params already matched _INPUT).
    if text.count("\n") != len(identifiers) or not _BASE_SAFE.fullmatch(text):
        return None
    return text.encode("ascii")


def read(
    message: Message,
    *,
    label: str,
    request_label: str,
    require: Sequence[str],
    has_body: bool | None,
) -> FastSignature | None:
    """The signature ``label`` of a message in the canonical shape, its base built; None otherwise.

    Checks the shape, duplicates and required coverage only: the profile's rules on the values (times,
    key id, algorithm) stay with the caller, which applies them to what this returns.
    """
    fields = _fields(tuple(message.headers))  # a view's headers are a tuple already: no copy
    return _read(_derived(message), fields, label=label, request_label=request_label, require=require,
                 has_body=has_body)  # fmt: skip


def read_request(
    headers: Iterable[tuple[str, str]],
    *,
    method: str,
    target_uri: str,
    label: str,
    require: tuple[str, ...],
    has_body: bool | None,
    compiled: bool = True,
) -> FastSignature | None:
    """:func:`read` for a request given by its header lines, method and absolute target URI: no view is
    built. None also where building the request's view would fail. Read by the compiled reader when the
    package was built with it (protocol/_sigfast.c), which answers as this Python code does (``compiled=False``,
    what the tests hold it to) or leaves the request to it."""
    derived = _request_derived(method, target_uri)
    if derived is None:
        return None
    if compiled and COMPILED is not None:
        found = COMPILED.read_request(headers, method, derived.values["@target-uri"], label, require, has_body)
        if found is not None:
            return from_compiled(found, label)
    return _read(derived, combined_fields(headers), label=label, request_label=label, require=require,
                 has_body=has_body)  # fmt: skip


# key id, alg, created, expires, nonce, the component list's text, signature, Content-Digest, base, Signature
CompiledRead = tuple[str, str | None, int, int, str, str, bytes, str | None, bytes, str]


def from_compiled(found: CompiledRead, label: str) -> FastSignature:
    """The compiled reader's answer (protocol/_sigfast.c ``read_request``) as :func:`read_request` gives it."""
    key_id, alg, created, expires, nonce, items, signature, digest, base, field = found
    return FastSignature(
        label=label, key_id=key_id, alg=alg, created=created, expires=expires, nonce=nonce,
        components=components_of(items), signature=signature, content_digest=digest, signature_base=base,
        signature_field=field,
    )  # fmt: skip


def checked_request(
    headers: Iterable[tuple[str, str]],
    *,
    method: str,
    target_uri: str,
    label: str,
    require: tuple[str, ...],
    has_body: bool | None,
    now: int,
    max_skew: int,
    max_lifetime: int,
) -> CompiledRead | None:
    """:func:`read_request` and then the profile's rules on what it read (key id, algorithm, times), in one
    compiled call (protocol/_sigfast.c ``check_request``): its answer when the request is read and every rule
    holds; None when the package was built without it, or for anything else (the caller then reads the
    request with :func:`read_request` and applies the rules itself, which refuses with the precise error)."""
    if COMPILED is None:
        return None
    target = _request_target(method, target_uri)
    if target is None:
        return None
    return COMPILED.check_request(headers, method, target, label, require, has_body, now, max_skew, max_lifetime)


@lru_cache(maxsize=256)  # a node is called at a handful of URIs
def _request_target(method: str, target_uri: str) -> str | None:
    derived = _request_derived(method, target_uri)
    return None if derived is None else derived.values["@target-uri"]


def _read(
    derived: _Derived,
    fields: dict[str, str],
    *,
    label: str,
    request_label: str,
    require: Sequence[str],
    has_body: bool | None,
) -> FastSignature | None:
    text, signatures = fields.get("signature-input"), fields.get("signature")
    if text is None or signatures is None:
        return None
    match = _INPUT.fullmatch(text)
    sig = _SIGNATURE.fullmatch(signatures)
    if match is None or sig is None or match[1] != label or sig[1] != label:
        return None
    signature = _decode(sig[2])
    identifiers = _split(match[2])
    if signature is None or not _covers_what_is_required(
        derived, fields, identifiers, has_body=has_body, require=tuple(require), request_label=request_label
    ):
        return None
    base = _base(derived, fields, identifiers, text[len(label) + 1 :])
    if base is None:
        return None
    return FastSignature(
        label=label, key_id=match[7], alg=match[6], created=int(match[3]), expires=int(match[4]),
        nonce=match[5], components=_components(identifiers), signature=signature,
        content_digest=fields.get("content-digest"), signature_base=base, signature_field=signatures,
    )  # fmt: skip


def prepare(
    message: Message,
    components: Sequence[Component],
    *,
    label: str,
    created: int,
    expires: int,
    nonce: str,
    alg: str | None,
    key_id: str,
    has_body: bool | None,
    request_label: str,
) -> tuple[str, bytes] | None:
    """The Signature-Input member and the signature base for signing, or None to take the general path.

    Like :func:`read`, only for the canonical shape and only when the general code would sign too.
    """
    fields = _fields(tuple(message.headers))  # a view's headers are a tuple already: no copy
    return _prepare(
        _derived(message), fields, _identifiers(tuple(components)), label=label, created=created, expires=expires,
        nonce=nonce, alg=alg, key_id=key_id, has_body=has_body, request_label=request_label,
    )  # fmt: skip


def prepare_answer(
    status: int,
    content_digest: str,
    content_type: str,
    request_signature: str | None,
    *,
    label: str,
    created: int,
    expires: int,
    nonce: str,
    alg: str | None,
    key_id: str,
    request_label: str,
) -> tuple[str, bytes] | None:
    """:func:`prepare` for an answer covering the profile's default components (``@status``,
    ``content-digest``, ``content-type`` and the request's signature), given those two fields' values, one
    line each, and the request's combined Signature field (None when it had none): what a node does for
    every answer, with no view, no field table and no component objects. Compiled, it is ``answer_base``
    in protocol/_sigfast.c, which ``signed_answer`` there builds on (http_signatures.sign_answer)."""
    if type(status) is not int or not 100 <= status <= 999:
        return None
    answered = _signature_member(request_signature, request_label)
    if answered is None:
        return None
    params = (
        f'created={created};expires={expires};nonce="{nonce}"'
        + (f';alg="{alg}"' if alg is not None else "")
        + f';keyid="{key_id}"'
    )
    covered = f'{_REQ_PREFIX}{request_label}"'
    member = f'("@status" "content-digest" "content-type" {covered});{params}'
    if _INPUT.fullmatch(f"{label}={member}") is None:
        return None
    digest, kind = content_digest.strip(_OWS), content_type.strip(_OWS)
    text = (
        f'"@status": {status:03d}\n"content-digest": {digest}\n"content-type": {kind}\n'
        f'{covered}: {answered}\n"@signature-params": {member}'
    )
    if text.count("\n") != 4 or not _BASE_SAFE.fullmatch(text):  # as in _base: no value held a line break
        return None
    return member, text.encode("ascii")


def _prepare(
    derived: _Derived,
    fields: dict[str, str],
    identifiers: tuple[str, ...] | None,
    *,
    label: str,
    created: int,
    expires: int,
    nonce: str,
    alg: str | None,
    key_id: str,
    has_body: bool | None,
    request_label: str,
) -> tuple[str, bytes] | None:
    if identifiers is None:
        return None
    params = (
        f'created={created};expires={expires};nonce="{nonce}"'
        + (f';alg="{alg}"' if alg is not None else "")
        + f';keyid="{key_id}"'
    )
    member = f"({' '.join(identifiers)});{params}"
    if (
        _INPUT.fullmatch(f"{label}={member}") is None
        or "signature-input" in fields
        or not _covers_what_is_required(
            derived, fields, identifiers, has_body=has_body, require=(), request_label=request_label
        )
    ):
        return None
    base = _base(derived, fields, identifiers, member)
    return None if base is None else (member, base)


@lru_cache(maxsize=256)
def _identifiers(components: tuple[Component, ...]) -> tuple[str, ...] | None:
    identifiers = []
    for c in components:
        if (c.params == () and c.name in ("@method", "@target-uri", "@status")) or not c.name.startswith("@"):
            identifier = f'"{c.name}"' if c.params == () else _req_identifier(c)
        else:
            return None
        if identifier is None:
            return None
        identifiers.append(identifier)
    return tuple(identifiers)


def _req_identifier(component: Component) -> str | None:
    params = dict(component.params)
    if component.name != "signature" or list(params) != ["req", "key"] or params["req"] is not True:
        return None
    key = params["key"]
    return f'{_REQ_PREFIX}{key}"' if isinstance(key, str) and re.fullmatch(_KEY, key) else None
