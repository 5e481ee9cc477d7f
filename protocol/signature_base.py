"""RFC 9421 signature bases: message views, component identifiers and their values (RFC 9421 §2).

Pure data and pure functions; the Satchel profile built on them (signing, verifying, the
Signature-Input and Signature fields) is ``protocol.http_signatures``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from protocol.errors import InvalidInput, MalformedMessage
from protocol.signature_errors import SignatureMalformed
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
    return value if isinstance(value, Component) else _parsed_component(value)


@lru_cache(maxsize=256)  # Components are immutable; the same few names are asked for on every request
def _parsed_component(text: str) -> Component:
    return Component.parse(text)


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


# --- URI and component values --------------------------------------------------------------------------


def _split_uri(uri: str) -> tuple[str, str, str | None, str, str | None]:
    if not isinstance(uri, str):
        raise MalformedMessage("the target URI is not an absolute http(s) URI", field="target_uri")
    return _split_text_uri(uri)


@lru_cache(maxsize=256)  # a node is called at a handful of URIs, once per view, per signature and per check
def _split_text_uri(uri: str) -> tuple[str, str, str | None, str, str | None]:
    match = _URI.fullmatch(uri)
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


def _field_lines(headers: Sequence[tuple[str, str]], name: str) -> list[str] | None:
    # RFC 9421 §2.1: field lines combined in order, each stripped of surrounding whitespace.
    lines = [value.strip(" \t") for key, value in headers if key.lower() == name]
    return lines or None


def _field_value(headers: Sequence[tuple[str, str]], name: str) -> str | None:
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
