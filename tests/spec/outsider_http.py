"""An outside team's client for Satchel's signed HTTP, written from spec/ alone.

It implements, from the text of spec/README.md, spec/request-signing.md, spec/descriptor.md, spec/transfer.md §5
and spec/requests.md §3-§4 (and nothing of Satchel's own packages: tests/spec/test_outsider_http.py checks the
imports), the RFC 9421 signature base and Ed25519 / HMAC-SHA256 signatures of the Satchel profile, RFC 9530
Content-Digest, the nonce/created/expires rules and the replay store, the session handshake of
request-signing.md §11, and the verification of descriptors, receipts and records requests. Its tests check
it against every vector and against a real node on loopback: if they pass, the spec was enough.

Where the text once left an outside team guessing (the order of the replay and digest checks, the scheme of
the rebuilt target URI, the HKDF inputs of a session, the domain and e-mail syntax, the ping endpoint), the
spec was fixed, and this module follows the fixed text; it must never learn anything from the code instead.
Sans-IO but for the small aiohttp client at the end.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class Refused(Exception):
    """What a receiver answers: an error code of spec/errors.md and, where the spec names one, the field."""

    def __init__(self, code: str, field: str | None = None, detail: str = "") -> None:
        super().__init__(f"{code} ({field}): {detail}" if field else f"{code}: {detail}")
        self.code = code
        self.field = field


# --- encodings (spec/README.md) --------------------------------------------------------------------------

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: object) -> bytes:
    """base64url without padding, one text per byte string (README: refuse anything else)."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(data) != text:  # the last character's unused bits are not zero
        raise ValueError("not canonical base64url")
    return data


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def crockford32(data: bytes, chars: int) -> str:
    """Most significant bits first, the last character zero-padded on the right (descriptor.md)."""
    bits = int.from_bytes(data, "big")
    total = len(data) * 8
    bits <<= chars * 5 - total if chars * 5 > total else 0
    bits >>= total - chars * 5 if total > chars * 5 else 0
    return "".join(CROCKFORD[(bits >> (5 * (chars - 1 - i))) & 31] for i in range(chars))


def key_id(alg: str, public: bytes) -> str:
    digest = hashlib.sha256(b"satchel/v1/key-id\x00" + alg.encode() + b"\x00" + public).digest()
    return f"{alg}-{crockford32(digest[:10], 16).lower()}"


def fingerprint(alg: str, public: bytes) -> str:
    digest = hashlib.sha256(b"satchel/v1/fingerprint\x00" + alg.encode() + b"\x00" + public).digest()
    text = crockford32(digest[:16], 26)[:25]  # the first 125 bits
    return "-".join(text[i : i + 5] for i in range(0, 25, 5))


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def strict_json(data: bytes) -> Any:
    """UTF-8 JSON, no duplicate keys, no NaN/Infinity, integers of at most 64 digits (README)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise DuplicateKey(key)
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def integer(text: str) -> int:
        if len(text.lstrip("-")) > 64:
            raise ValueError("integer of more than 64 digits")
        return int(text)

    return json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant, parse_int=integer)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_time(text: object) -> int:
    """`YYYY-MM-DDTHH:MM:SSZ` -> Unix seconds."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise ValueError("not a time")
    moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def format_time(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date(text: object) -> dt.date:
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ValueError("not a date")
    return dt.date.fromisoformat(text)


_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
# spec/README.md, "A domain": the regular expression given there
_DOMAIN = re.compile(r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")


def is_ulid(text: object) -> bool:
    return isinstance(text, str) and bool(_ULID.fullmatch(text))


def is_domain(text: object) -> bool:
    return isinstance(text, str) and bool(_DOMAIN.fullmatch(text))


def free_text_ok(text: str, *, lines: bool) -> bool:
    """README's free-text rule: no C0/C1 controls but LF and TAB (where allowed), no U+2028/9, no surrogates."""
    for ch in text:
        o = ord(ch)
        if ch in "\n\t":
            if not lines:
                return False
        elif o < 0x20 or 0x7F <= o <= 0x9F or o in (0x2028, 0x2029) or 0xD800 <= o <= 0xDFFF:
            return False
    return True


# --- RFC 8941 structured fields ----------------------------------------------------------------------------


class Token(str):
    """An RFC 8941 Token (as opposed to a String)."""


@dataclass(frozen=True)
class Item:
    value: Any
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class InnerList:
    items: tuple[Item, ...]
    params: tuple[tuple[str, Any], ...] = ()


class SFError(ValueError):
    pass


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def spaces(self, ows: bool = False) -> None:
        while self.peek() == " " or (ows and self.peek() == "\t"):
            self.i += 1

    def key(self) -> str:
        m = _KEY.match(self.text, self.i)
        if not m:
            raise SFError("bad key")
        self.i = m.end()
        return m.group()

    def bare(self) -> Any:
        c = self.peek()
        if c == '"':
            out, self.i = [], self.i + 1
            while True:
                c = self.peek()
                if not c:
                    raise SFError("unterminated string")
                self.i += 1
                if c == "\\":
                    nxt = self.peek()
                    if nxt not in ('"', "\\"):
                        raise SFError("bad escape")
                    out.append(nxt)
                    self.i += 1
                elif c == '"':
                    return "".join(out)
                elif not (0x20 <= ord(c) <= 0x7E):
                    raise SFError("bad string character")
                else:
                    out.append(c)
        if c == ":":
            end = self.text.find(":", self.i + 1)
            if end < 0:
                raise SFError("unterminated byte sequence")
            raw = self.text[self.i + 1 : end]
            if not re.fullmatch(r"[A-Za-z0-9+/=]*", raw):
                raise SFError("bad byte sequence")
            self.i = end + 1
            try:
                return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
            except ValueError as exc:
                raise SFError("bad byte sequence") from exc
        if c == "?":
            v = self.text[self.i + 1 : self.i + 2]
            if v not in ("0", "1"):
                raise SFError("bad boolean")
            self.i += 2
            return v == "1"
        m = re.compile(r"-?\d{1,15}(\.\d{1,3})?").match(self.text, self.i)
        if m and (c == "-" or c.isdigit()):
            self.i = m.end()
            if m.group(1):
                return float(m.group())
            if len(m.group().lstrip("-")) > 15:
                raise SFError("integer too long")
            return int(m.group())
        m = _TOKEN.match(self.text, self.i)
        if m:
            self.i = m.end()
            return Token(m.group())
        raise SFError(f"unexpected {c!r}")

    def params(self) -> tuple[tuple[str, Any], ...]:
        out: dict[str, Any] = {}
        while self.peek() == ";":
            self.i += 1
            self.spaces()
            k = self.key()
            v: Any = True
            if self.peek() == "=":
                self.i += 1
                v = self.bare()
            out[k] = v  # RFC 8941 §4.2.3.2: a repeated parameter's last value wins
        return tuple(out.items())

    def item_or_list(self) -> Item | InnerList:
        if self.peek() == "(":
            self.i += 1
            items: list[Item] = []
            while True:
                self.spaces()
                if self.peek() == ")":
                    self.i += 1
                    return InnerList(tuple(items), self.params())
                items.append(Item(self.bare(), self.params()))
                if self.peek() not in (" ", ")"):
                    raise SFError("bad inner list")
        return Item(self.bare(), self.params())


def parse_dictionary(text: str, *, refuse_repeats: bool = True) -> dict[str, Item | InnerList]:
    r = _Reader(text)
    r.spaces()
    out: dict[str, Item | InnerList] = {}
    if not r.peek():
        return out
    while True:
        k = r.key()
        if r.peek() == "=":
            r.i += 1
            v = r.item_or_list()
        else:
            v = Item(True, r.params())
        if k in out and refuse_repeats:
            raise SFError(f"repeated key {k}")
        out[k] = v
        r.spaces(ows=True)
        if not r.peek():
            return out
        if r.peek() != ",":
            raise SFError("expected a comma")
        r.i += 1
        r.spaces(ows=True)
        if not r.peek():
            raise SFError("trailing comma")


def ser_bare(v: Any) -> str:
    if isinstance(v, bool):
        return "?1" if v else "?0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        return ":" + base64.b64encode(v).decode() + ":"
    if isinstance(v, Token):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):  # RFC 8941 §4.1.5: at most three decimals, at least one
        text = f"{v:.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    raise SFError(f"cannot serialise {v!r}")


def ser_params(params: Iterable[tuple[str, Any]]) -> str:
    return "".join(f";{k}" if v is True else f";{k}={ser_bare(v)}" for k, v in params)


def ser_member(v: Item | InnerList) -> str:
    if isinstance(v, InnerList):
        return "(" + " ".join(ser_bare(i.value) + ser_params(i.params) for i in v.items) + ")" + ser_params(v.params)
    return ser_bare(v.value) + ser_params(v.params)


def ser_dictionary(d: dict[str, Item | InnerList]) -> str:
    return ", ".join(k if isinstance(v, Item) and v.value is True else f"{k}={ser_member(v)}" for k, v in d.items())


# --- HTTP messages and the signature base (request-signing.md §4-§5) ---------------------------------------


@dataclass
class Message:
    """A request (method, target_uri) or a response (status), its header field lines and body as sent."""

    headers: list[tuple[str, str]]
    body: bytes = b""
    method: str | None = None
    target_uri: str | None = None
    status: int | None = None

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def field(self, name: str) -> str | None:
        lines = self.values(name)
        return ", ".join(v.strip(" \t") for v in lines) if lines else None

    def has_body(self) -> bool:
        if self.body:
            return True
        if self.values("transfer-encoding"):
            return True
        length = self.field("content-length")
        return length is not None and length.strip() != "0"


DICTIONARY_FIELDS = {"signature", "signature-input", "content-digest", "repr-digest", "want-content-digest",
                     "accept-signature"}  # fmt: skip
DERIVED = {"@method", "@target-uri", "@authority", "@scheme", "@path", "@query", "@request-target", "@status"}


def authority_of(uri: str) -> str:
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _derived(name: str, msg: Message) -> str:
    if name == "@status":
        if msg.status is None:
            raise SFError("@status in a request")
        return f"{msg.status:03d}"
    if msg.target_uri is None or msg.method is None:
        raise SFError(f"{name} in a response")
    parts = urlsplit(msg.target_uri)
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else "?"
    return {
        "@method": msg.method,
        "@target-uri": msg.target_uri.split("#", 1)[0],
        "@authority": authority_of(msg.target_uri),
        "@scheme": parts.scheme.lower(),
        "@path": path,
        "@query": query,
        "@request-target": path + (f"?{parts.query}" if parts.query else ""),
    }[name]


def component_value(component: Item, msg: Message, request: Message | None) -> str:
    name = component.value
    params = dict(component.params)
    unknown = set(params) - {"key", "sf", "req"}
    if not isinstance(name, str) or isinstance(name, Token) or unknown:
        raise SFError("unsupported component or parameter")
    source = msg
    if params.get("req"):
        if request is None or msg.status is None:
            raise SFError(";req outside a response")
        source = request
    if name.startswith("@"):
        if name not in DERIVED or "key" in params or "sf" in params:
            raise SFError(f"unsupported derived component {name}")
        value = _derived(name, source)
    else:
        raw = source.field(name)
        if raw is None:
            raise SFError(f"covered field {name} absent")
        if "key" in params or "sf" in params:
            if name not in DICTIONARY_FIELDS or ("key" in params and "sf" in params):
                raise SFError(f";key/;sf on {name}")
            parsed = parse_dictionary(raw)
            if "sf" in params:
                value = ser_dictionary(parsed)
            else:
                member = params["key"]
                if not isinstance(member, str) or member not in parsed:
                    raise SFError(f"no member {member!r} in {name}")
                value = ser_member(parsed[member])
        else:
            value = raw
    if not all(0x20 <= ord(c) <= 0x7E or c == "\t" for c in value):
        raise SFError("value not printable ASCII")
    return value


def signature_base(components: Sequence[Item], params_text: str, msg: Message, request: Message | None) -> bytes:
    lines, seen = [], set()
    for c in components:
        ident = ser_bare(c.value) + ser_params(c.params)
        if ident in seen:
            raise SFError(f"{ident} covered twice")
        seen.add(ident)
        lines.append(f"{ident}: {component_value(c, msg, request)}")
    lines.append(f'"@signature-params": {params_text}')
    return "\n".join(lines).encode("ascii")


def content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def new_nonce() -> str:
    return b64url(os.urandom(16))


# --- keys -------------------------------------------------------------------------------------------------


@dataclass
class NodeKey:
    """An Ed25519 identity key."""

    private: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls) -> NodeKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id("ed25519", self.public)


@dataclass
class SessionKeys:
    """request-signing.md §11: the keys of one session, as the client or the server holds them."""

    session_id: str
    expires: int
    to_server: bytes
    to_client: bytes
    next_sequence: int = 1
    accepted: set[int] = field(default_factory=set)


def _sign_bytes(key: NodeKey | bytes, base: bytes) -> bytes:
    if isinstance(key, NodeKey):
        return key.private.sign(base)
    return hmac.new(key, base, hashlib.sha256).digest()


def _params_text(components: Sequence[Item], params: Sequence[tuple[str, Any]]) -> str:
    return ser_member(InnerList(tuple(components), tuple(params)))


def sign(msg: Message, *, key: NodeKey | bytes, keyid: str, alg: str, created: int, expires: int, nonce: str,
         request: Message | None = None) -> list[tuple[str, str]]:
    """Add Content-Digest (if a body), cover §4.1/§4.2's components in Satchel's order, and return the two
    signature fields added (they are appended to ``msg.headers`` too)."""  # fmt: skip
    if msg.body and msg.field("content-digest") is None:
        msg.headers.append(("Content-Digest", content_digest(msg.body)))
    names = [Item("@method"), Item("@target-uri")] if msg.status is None else [Item("@status")]
    if msg.has_body() or msg.field("content-digest") is not None:
        names.append(Item("content-digest"))
    if msg.field("content-type") is not None:
        names.append(Item("content-type"))
    if msg.status is None:
        for extra in ("satchel-envelope-id", "upload-offset", "satchel-envelope-digest"):
            if msg.field(extra) is not None:
                names.append(Item(extra))
        names.append(Item("satchel-origin"))
    else:
        names.append(Item("signature", (("req", True), ("key", "sig1"))))
    params = (("created", created), ("expires", expires), ("nonce", nonce), ("alg", alg), ("keyid", keyid))
    text = _params_text(names, params)
    base = signature_base(names, text, msg, request)
    signature = _sign_bytes(key, base)
    added = [("Signature-Input", f"sig1={text}"), ("Signature", f"sig1={ser_bare(signature)}")]
    msg.headers.extend(added)
    return added


def sign_as(msg: Message, key: NodeKey, components: Sequence[Item], params: Sequence[tuple[str, Any]],
            request: Message | None = None) -> None:  # fmt: skip
    """Sign with exactly these components and parameters, in this order: another valid serialisation than
    Satchel's own (§3, §4), which a receiver MUST accept all the same."""
    text = _params_text(components, params)
    signature = key.private.sign(signature_base(components, text, msg, request))
    msg.headers += [("Signature-Input", f"sig1={text}"), ("Signature", f"sig1={ser_bare(signature)}")]


# --- verifying (request-signing.md §7) ------------------------------------------------------------------


@dataclass
class Checked:
    """Steps 1 to 6 done: what a key lookup needs, and what verification then takes."""

    keyid: str
    alg: str | None
    nonce: str
    created: int
    expires: int
    base: bytes
    signature: bytes
    components: tuple[str, ...]


_NODE_KEYID = re.compile(r"ed25519-[0-9a-hjkmnp-tv-z]{16}")
_SESSION_KEYID = re.compile(r"hs-[A-Za-z0-9_-]{22}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,128}")


def check_signature(msg: Message, *, now: int, request: Message | None = None, skew: int = 60,
                    lifetime: int = 300, require: Iterable[str] = ("satchel-origin",)) -> Checked:  # fmt: skip
    is_request = msg.status is None
    # 1. the two fields, as Dictionaries
    si_text, sig_text = msg.field("signature-input"), msg.field("signature")
    if si_text is None or sig_text is None:
        raise Refused("signature.missing")
    try:
        si, sigs = parse_dictionary(si_text), parse_dictionary(sig_text)
    except SFError as exc:
        raise Refused("signature.malformed", detail=str(exc)) from exc
    if "sig1" not in si:
        raise Refused("signature.missing")
    entry, sig = si["sig1"], sigs.get("sig1")
    if not isinstance(entry, InnerList) or not all(
        isinstance(i.value, str) and not isinstance(i.value, Token) for i in entry.items
    ):
        raise Refused("signature.malformed", detail="sig1 is not an inner list of Strings")
    if not isinstance(sig, Item) or not isinstance(sig.value, bytes):
        raise Refused("signature.malformed", detail="Signature sig1 is not a Byte Sequence")
    # 2. parameters and identifiers
    params = dict(entry.params)
    types = {"created": int, "expires": int, "nonce": str, "keyid": str, "alg": str, "tag": str}
    for name, value in params.items():
        if name not in types or not isinstance(value, types[name]) or isinstance(value, bool | Token):
            raise Refused("signature.malformed", detail=f"parameter {name}")
    for name in ("created", "expires", "nonce", "keyid"):
        if name not in params:
            raise Refused("signature.malformed", detail=f"no {name}")
    keyid, nonce = params["keyid"], params["nonce"]
    session = bool(_SESSION_KEYID.fullmatch(keyid))
    if not (session or _NODE_KEYID.fullmatch(keyid)) or not _NONCE.fullmatch(nonce):
        raise Refused("signature.malformed", detail="keyid or nonce")
    if params["expires"] <= params["created"]:
        raise Refused("signature.malformed", detail="expires <= created")
    names = []
    for component in entry.items:
        name = component.value
        if name != name.lower() or name == "@signature-params" or not name:
            raise Refused("signature.malformed", detail=f"component {name!r}")
        names.append(name)
    # 3. coverage
    # §4: a required component is covered by its exact identifier only (parameters in any order)
    identities = {(str(i.value), frozenset(i.params)) for i in entry.items}
    covered = {name for name, params in identities if not params}
    missing = []
    if is_request:
        target = urlsplit(msg.target_uri or "")
        missing += [] if "@method" in covered else ["@method"]
        if "@target-uri" not in covered:
            need = ["@authority", "@path"] + (["@query"] if target.query else [])
            missing += [n for n in need if n not in covered]
        missing += [n for n in require if n not in covered]
    else:
        missing += [] if "@status" in covered else ["@status"]
        if ("signature", frozenset({("req", True), ("key", "sig1")})) not in identities:
            missing.append('"signature";req;key="sig1"')
    if (msg.has_body() or msg.field("content-digest") is not None) and "content-digest" not in covered:
        missing.append("content-digest")
    if msg.field("content-type") is not None and "content-type" not in covered:
        missing.append("content-type")
    if missing:
        raise Refused("signature.components_missing", detail=", ".join(missing))
    # 4. algorithm decided by the key id
    alg = params.get("alg")
    if (session and alg != "hmac-sha256") or (not session and alg not in (None, "ed25519")):
        raise Refused("signature.algorithm_unsupported")
    # 5. time
    created, expires = params["created"], params["expires"]
    if expires - created > lifetime:
        raise Refused("signature.lifetime_too_long")
    if created > now + skew:
        raise Refused("signature.not_yet_valid")
    if expires < now - skew:
        raise Refused("signature.expired")
    # 6. the base
    try:
        base = signature_base(entry.items, ser_member(entry), msg, request)
    except (SFError, KeyError) as exc:
        raise Refused("signature.malformed", detail=str(exc)) from exc
    return Checked(keyid, alg, nonce, created, expires, base, sig.value, tuple(names))


def verify_checked(checked: Checked, key: Ed25519PublicKey | bytes) -> None:
    """Step 8: Ed25519 for a node key, HMAC-SHA256 for a session key."""
    if isinstance(key, bytes):
        if not hmac.compare_digest(hmac.new(key, checked.base, hashlib.sha256).digest(), checked.signature):
            raise Refused("signature.invalid")
        return
    try:
        key.verify(checked.signature, checked.base)
    except InvalidSignature as exc:
        raise Refused("signature.invalid") from exc


def check_digest(msg: Message) -> None:
    """Step 11."""
    coding = msg.field("content-encoding")
    if coding is not None and coding.strip().lower() not in ("", "identity"):
        raise Refused("http.content_encoding")
    text = msg.field("content-digest")
    if text is None:
        if msg.body:
            raise Refused("digest.missing")
        return
    try:
        members = parse_dictionary(text)
    except SFError as exc:
        raise Refused("digest.malformed") from exc
    if not all(isinstance(m, Item) and isinstance(m.value, bytes) for m in members.values()):
        raise Refused("digest.malformed")
    algorithms = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    supported = [k for k in members if k in algorithms]
    if not supported:
        raise Refused("digest.unsupported_algorithm")
    for name in supported:
        member = members[name]
        assert isinstance(member, Item)
        if not hmac.compare_digest(algorithms[name](msg.body).digest(), member.value):
            raise Refused("digest.mismatch")


KeyResolver = Callable[[str, str | None], Ed25519PublicKey]


@dataclass
class Receiver:
    """What a node keeps to verify requests: who it is, its replay store and its sessions (server side)."""

    authority: str
    resolve: KeyResolver
    skew: int = 60
    lifetime: int = 300
    require: tuple[str, ...] = ("satchel-origin",)
    replay: dict[tuple[str, str], int] = field(default_factory=dict)
    sessions: dict[str, SessionKeys] = field(default_factory=dict)

    def verify_request(self, msg: Message, *, now: int) -> Checked:
        checked = check_signature(msg, now=now, skew=self.skew, lifetime=self.lifetime, require=self.require)
        session = self.sessions.get(checked.keyid) if checked.keyid.startswith("hs-") else None
        if checked.keyid.startswith("hs-"):
            if session is None or now >= session.expires:
                raise Refused("signature.session_unknown")
            verify_checked(checked, session.to_server)
            if authority_of(msg.target_uri or "") != self.authority:  # step 9
                raise Refused("signature.wrong_destination")
            # §11: a sequence number (22 digits, from 1), taken as soon as the HMAC verifies
            if not re.fullmatch(r"\d{22}", checked.nonce) or int(checked.nonce) == 0:
                raise Refused("signature.malformed", detail="session nonce is not a sequence number")
            number = int(checked.nonce)
            if number in session.accepted or number <= max(session.accepted, default=0) - 4096:
                raise Refused("signature.replayed")
            session.accepted.add(number)
        else:
            verify_checked(checked, self.resolve(checked.keyid, msg.field("satchel-origin")))
            if authority_of(msg.target_uri or "") != self.authority:  # step 9
                raise Refused("signature.wrong_destination")
        check_digest(msg)  # step 10
        if session is None:  # step 11: last, so that a refused request leaves nothing behind
            self.replay = {k: t for k, t in self.replay.items() if t >= now}
            if (checked.keyid, checked.nonce) in self.replay:
                raise Refused("signature.replayed")
            self.replay[(checked.keyid, checked.nonce)] = checked.expires + self.skew
        return checked


def verify_response(response: Message, request: Message, *, now: int, key: Ed25519PublicKey | bytes) -> Checked:
    """A client's check of an answer: steps 1-8 and 10, against the request exactly as it was sent."""
    checked = check_signature(response, now=now, request=request, require=())
    verify_checked(checked, key)
    check_digest(response)
    return checked


# --- sessions (request-signing.md §11) ------------------------------------------------------------------

SESSION_INFO = b"satchel/v1/http-session\x00"


def session_context(session_id: str, expires: int, client_keyid: str, server_keyid: str, origin: str) -> bytes:
    return b"\x00".join(x.encode() for x in (session_id, str(expires), client_keyid, server_keyid, origin))


def derive_session(*, own_secret: X25519PrivateKey, client_share: bytes, server_share: bytes, session_id: str,
                   expires: int, client_keyid: str, server_keyid: str, origin: str,
                   own_is_client: bool) -> SessionKeys:  # fmt: skip
    other = server_share if own_is_client else client_share
    shared = own_secret.exchange(X25519PublicKey.from_public_bytes(other))
    info = SESSION_INFO + session_context(session_id, expires, client_keyid, server_keyid, origin)
    okm = HKDF(algorithm=SHA256(), length=64, salt=client_share + server_share, info=info).derive(shared)
    return SessionKeys(session_id, expires, okm[:32], okm[32:])


def x25519_public(secret: X25519PrivateKey) -> bytes:
    return secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def parse_session_answer(body: bytes) -> tuple[str, bytes, int]:
    try:
        answer = strict_json(body)
        if not isinstance(answer, dict) or set(answer) != {"session", "share", "expires"}:
            raise ValueError("members")
        sid, share, expires = answer["session"], unb64url(answer["share"]), answer["expires"]
        if not isinstance(sid, str) or not _SESSION_KEYID.fullmatch(sid) or len(share) != 32:
            raise ValueError("session or share")
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise ValueError("expires")
    except ValueError as exc:
        raise Refused("session.offer_invalid", detail=str(exc)) from exc
    return sid, share, expires


# --- signed documents (descriptor.md "Signed document") -------------------------------------------------

DOCUMENT_MEMBERS = ("purpose", "key_id", "public_key", "payload", "signature")


def sign_document(key: NodeKey, purpose: str, payload: bytes) -> bytes:
    signature = key.private.sign(purpose.encode() + b"\x00" + payload)
    doc = {"purpose": purpose, "key_id": key.key_id, "public_key": b64url(key.public), "payload": b64url(payload),
           "signature": b64url(signature)}  # fmt: skip
    return canonical_json(doc)


def open_document(data: bytes, purpose: str, *, max_bytes: int) -> tuple[str, bytes, bytes]:
    """Steps shared by every signed document: size, the five members, purpose, key id, signature.
    Returns (key_id, public key, payload bytes)."""
    if len(data) > max_bytes:
        raise Refused("message.malformed", None, "too large")
    try:
        doc = strict_json(data)
    except DuplicateKey as exc:
        raise Refused("message.malformed", exc.key, "duplicate member") from exc
    except ValueError as exc:
        raise Refused("message.malformed", None, "not JSON") from exc
    if not isinstance(doc, dict):
        raise Refused("message.malformed", None, "not an object")
    for name in doc:
        if name not in DOCUMENT_MEMBERS:
            raise Refused("message.malformed", name, "unknown member")
    for name in DOCUMENT_MEMBERS:
        if not isinstance(doc.get(name), str):
            raise Refused("message.malformed", name, "missing or not text")
    if doc["purpose"] != purpose:
        raise Refused("message.malformed", "purpose", "another purpose")
    try:
        public = unb64url(doc["public_key"])
        if len(public) != 32:
            raise ValueError
    except ValueError as exc:
        raise Refused("message.malformed", "public_key") from exc
    if doc["key_id"] != key_id("ed25519", public):
        raise Refused("message.malformed", "key_id", "does not name public_key")
    try:
        payload, signature = unb64url(doc["payload"]), unb64url(doc["signature"])
    except ValueError as exc:
        raise Refused("message.malformed", "payload") from exc
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, purpose.encode() + b"\x00" + payload)
    except (InvalidSignature, ValueError) as exc:
        raise Refused("signature.invalid") from exc
    return doc["key_id"], public, payload


# --- descriptors (descriptor.md) --------------------------------------------------------------------------

SHOWN_TO_PEOPLE = ("name", "state", "city", "zip", "nces_id", "base_url")


@dataclass
class Descriptor:
    signed_by: str
    payload: dict[str, Any]
    identity_keys: dict[str, bytes]

    @property
    def domain(self) -> str:
        return str(self.payload["domain"])

    @property
    def base_url(self) -> str:
        return str(self.payload["base_url"])

    def serves_its_domain(self) -> bool:
        """Step 8: a descriptor met only by its URL proves its domain only when served over https from it."""
        parts = urlsplit(self.base_url)
        host = (parts.hostname or "").lower()
        return parts.scheme == "https" and (host == self.domain or host.endswith("." + self.domain))


def _no_controls(text: object) -> bool:
    return isinstance(text, str) and not any(
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or ord(c) in (0x2028, 0x2029) for c in text
    )


def verify_descriptor(data: bytes, *, domain: str | None = None) -> Descriptor:
    signer, public, payload_bytes = open_document(data, "satchel/v1/descriptor", max_bytes=256 * 1024)
    try:
        payload = strict_json(payload_bytes)
    except DuplicateKey as exc:
        raise Refused("message.malformed", exc.key) from exc
    except ValueError as exc:
        raise Refused("message.malformed", None, str(exc)) from exc
    if not isinstance(payload, dict):
        raise Refused("message.malformed", None, "payload not an object")
    if payload.get("version") != 1 or isinstance(payload.get("version"), bool):
        raise Refused("message.malformed", "version")
    if not is_domain(payload.get("domain")):
        raise Refused("message.malformed", "domain")
    for name in SHOWN_TO_PEOPLE:
        if not _no_controls(payload.get(name)):
            raise Refused("message.malformed", name)
    coordinator = payload.get("coordinator")
    if coordinator is not None:
        if not isinstance(coordinator, dict):
            raise Refused("message.malformed", "coordinator")
        for name in ("name", "title", "email", "phone"):
            if not _no_controls(coordinator.get(name)):
                raise Refused("message.malformed", f"coordinator.{name}")
    features = payload.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise Refused("message.malformed", "features")
    keys = payload.get("keys")
    if not isinstance(keys, list) or not keys:
        raise Refused("message.malformed", "keys")
    identity: dict[str, bytes] = {}
    for entry in keys:
        if not isinstance(entry, dict):
            raise Refused("message.malformed", "keys")
        try:
            raw = unb64url(entry.get("public_key"))
        except ValueError as exc:
            raise Refused("message.malformed", "keys.public_key") from exc
        if entry.get("alg") in ("ed25519", "mlkem768-x25519") and entry.get("id") != key_id(entry["alg"], raw):
            raise Refused("message.malformed", "keys.id")
        if entry.get("use") == "identity" and entry.get("alg") == "ed25519":
            identity[entry["id"]] = raw
    if public not in identity.values():
        raise Refused("descriptor.key_not_listed")
    if domain is not None and payload["domain"] != domain:
        raise Refused("descriptor.mismatch")
    return Descriptor(signer, payload, identity)


def make_descriptor(key: NodeKey, *, domain: str, base_url: str, name: str, issued_at: str,
                    encryption_public: bytes | None = None) -> bytes:  # fmt: skip
    keys = [{"alg": "ed25519", "id": key.key_id, "not_after": None, "not_before": "2026-01-01T00:00:00Z",
             "public_key": b64url(key.public), "use": "identity"}]  # fmt: skip
    if encryption_public is not None:
        keys.append({"alg": "mlkem768-x25519", "id": key_id("mlkem768-x25519", encryption_public),
                     "not_after": None, "not_before": "2026-01-01T00:00:00Z",
                     "public_key": b64url(encryption_public), "use": "encryption"})  # fmt: skip
    payload = {"version": 1, "role": "district", "domain": domain, "name": name, "state": "IL",
               "city": "Springfield", "zip": "62701", "nces_id": "", "base_url": base_url,
               "protocol_versions": ["satchel/1"], "transfers_enabled": False, "coordinator": None,
               "keys": keys, "revoked_keys": [], "issued_at": issued_at}  # fmt: skip
    return sign_document(key, "satchel/v1/descriptor", canonical_json(payload))


# --- payload checks shared by receipts and records requests ----------------------------------------------


class _Fields:
    """Strict member checks that name the member at fault by its dotted path."""

    def __init__(self, code: str, prefix: str = "") -> None:
        self.code, self.prefix = code, prefix

    def fail(self, name: str) -> Refused:
        return Refused(self.code, self.prefix + name)

    def exact(self, obj: Any, names: Sequence[str], where: str = "") -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.fail(where.rstrip(".") or "payload")
        for name in obj:
            if name not in names:
                raise self.fail(where + name)
        for name in names:
            if name not in obj:
                raise self.fail(where + name)
        return obj

    def text(self, value: Any, name: str, *, high: int, low: int = 0, lines: bool = False,
             required: bool = False, null: bool = False) -> None:  # fmt: skip
        if value is None and null:
            return
        if not isinstance(value, str) or not free_text_ok(value, lines=lines):
            raise self.fail(name)
        if not low <= len(value) <= high or (required and not value.strip()):
            raise self.fail(name)

    def integer(self, value: Any, name: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(name)
        return value


def _parse_payload(payload_bytes: bytes, code: str) -> dict[str, Any]:
    try:
        payload = strict_json(payload_bytes)
    except DuplicateKey as exc:
        raise Refused(code, exc.key) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(code, None, "not JSON") from exc
    if not isinstance(payload, dict):
        raise Refused(code, None, "not an object")
    return payload


# --- receipts (transfer.md §5) ---------------------------------------------------------------------------

RECEIPT_MEMBERS = ("version", "kind", "transfer_id", "issuer", "from_domain", "to_domain", "sequence", "created",
                   "envelope_sha256", "reason", "text", "reference", "counts")  # fmt: skip
RECEIPT_KINDS = ("delivered", "accepted", "rejected", "locked", "cancelled", "imported", "failed", "message")
COUNTS_MEMBERS = ("students_total", "students_imported", "students_with_changes", "documents", "scores", "skipped")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def parse_receipt(payload_bytes: bytes) -> dict[str, Any]:
    payload = _parse_payload(payload_bytes, "receipt.invalid")
    f = _Fields("receipt.invalid")
    f.exact(payload, RECEIPT_MEMBERS)
    version = payload["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise f.fail("version")
    if version != 1:
        raise Refused("receipt.unsupported_version", "version")
    kind = payload["kind"]
    if kind not in RECEIPT_KINDS:
        raise f.fail("kind")
    if not is_ulid(payload["transfer_id"]):
        raise f.fail("transfer_id")
    if payload["issuer"] not in ("sender", "receiver") or (
        payload["issuer"] == "sender" and kind not in ("cancelled", "message")
    ):
        raise f.fail("issuer")
    if not is_domain(payload["from_domain"]):
        raise f.fail("from_domain")
    if not is_domain(payload["to_domain"]) or payload["to_domain"] == payload["from_domain"]:
        raise f.fail("to_domain")
    f.integer(payload["sequence"], "sequence", 1, 1_000_000)
    try:
        parse_time(payload["created"])
    except ValueError as exc:
        raise f.fail("created") from exc
    digest = payload["envelope_sha256"]
    if digest is None:
        if kind == "delivered":
            raise f.fail("envelope_sha256")
    else:
        try:
            if kind == "message" or len(unb64url(digest)) != 32:
                raise ValueError
        except ValueError as exc:
            raise f.fail("envelope_sha256") from exc
    if kind in ("rejected", "cancelled", "failed"):
        f.text(payload["reason"], "reason", high=2000, lines=True, required=kind == "rejected",
               null=kind != "rejected")  # fmt: skip
    elif payload["reason"] is not None:
        raise f.fail("reason")
    if kind == "message":
        f.text(payload["text"], "text", high=8000, lines=True, required=True)
    elif payload["text"] is not None:
        raise f.fail("text")
    if kind == "failed":
        if not isinstance(payload["reference"], str) or not _REFERENCE.fullmatch(payload["reference"]):
            raise f.fail("reference")
    elif payload["reference"] is not None:
        raise f.fail("reference")
    if kind == "imported":
        _check_counts(payload["counts"])
    elif payload["counts"] is not None:
        raise f.fail("counts")
    return payload


def _check_counts(counts: Any) -> None:
    f = _Fields("receipt.invalid", "counts.")
    if not isinstance(counts, dict):
        raise Refused("receipt.invalid", "counts")
    f.exact(counts, COUNTS_MEMBERS)
    total = f.integer(counts["students_total"], "students_total", 0, 10_000_000)
    imported = f.integer(counts["students_imported"], "students_imported", 0, total)
    f.integer(counts["students_with_changes"], "students_with_changes", 0, imported)
    f.integer(counts["documents"], "documents", 0, 2**63 - 1)
    f.integer(counts["scores"], "scores", 0, 2**63 - 1)
    skipped = counts["skipped"]
    if not isinstance(skipped, list) or len(skipped) > 32:
        raise f.fail("skipped")
    entries = _Fields("receipt.invalid", "counts.skipped.")
    for entry in skipped:
        if not isinstance(entry, dict):
            raise f.fail("skipped")
        entries.exact(entry, ("reason", "count"))
        entries.text(entry["reason"], "reason", high=200, lines=True, required=True)
        entries.integer(entry["count"], "count", 1, 10_000_000)
    if sum(e["count"] for e in skipped) > total - imported:
        raise f.fail("skipped")


def verify_receipt(data: bytes, *, published: Callable[[str], Iterable[str]], check: dict[str, str] | None = None,
                   envelope_sha256: str | None = None) -> dict[str, Any]:  # fmt: skip
    """transfer.md §5.3 steps 1-5; ``published(domain)`` gives the key ids the domain publishes."""
    signer, _, payload_bytes = open_document(data, "satchel/v1/receipt", max_bytes=64 * 1024)
    receipt = parse_receipt(payload_bytes)
    if signer not in set(published(receipt["from_domain"])):
        raise Refused("receipt.wrong_signer", "key_id")
    if check is not None:
        for name in ("transfer_id", "from_domain", "to_domain", "issuer"):
            if receipt[name] != check[name]:
                raise Refused("receipt.mismatch", name)
        if envelope_sha256 is not None and receipt["envelope_sha256"] not in (None, envelope_sha256):
            raise Refused("receipt.digest_mismatch", "envelope_sha256")
    return {"signed_by": signer, "payload": payload_bytes, "receipt": receipt}


# --- records requests (requests.md §3-§4) ----------------------------------------------------------------

CEDS_GRADES = {"IT", "PR", "PK", "TK", "KG", *(f"{n:02d}" for n in range(1, 14)), "PS", "UG", "Other"}
REQUEST_MEMBERS = ("version", "request_id", "from_domain", "to_domain", "created", "student", "enrolment",
                   "requester", "comments")  # fmt: skip
RESPONSE_MEMBERS = ("version", "kind", "request_id", "from_domain", "to_domain", "created", "person", "comments",
                    "transfer_id")  # fmt: skip
STUDENT_MEMBERS = ("family_name", "given_name", "middle_name", "birth_date", "sex", "grade", "state_id",
                   "previous_school", "previous_sis_id")  # fmt: skip
ENROLMENT_MEMBERS = ("school", "grade", "start_date", "end_date", "type")
PERSON_MEMBERS = ("name", "email", "phone", "title")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")  # spec/requests.md §3, a person
_PHONE = re.compile(r"[0-9 +().x/-]*")


def _check_common(payload: dict[str, Any], f: _Fields) -> None:
    version = payload["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise f.fail("version")
    if version != 1:
        raise Refused("request.unsupported_version", "version")
    if not is_ulid(payload["request_id"]):
        raise f.fail("request_id")
    if not is_domain(payload["from_domain"]):
        raise f.fail("from_domain")
    if not is_domain(payload["to_domain"]) or payload["to_domain"] == payload["from_domain"]:
        raise f.fail("to_domain")
    try:
        parse_time(payload["created"])
    except ValueError as exc:
        raise f.fail("created") from exc


def _check_person(person: Any, where: str) -> None:
    f = _Fields("request.invalid", where + ".")
    if not isinstance(person, dict):
        raise Refused("request.invalid", where)
    f.exact(person, PERSON_MEMBERS)
    f.text(person["name"], "name", low=1, high=200, required=True)
    email = person["email"]
    f.text(email, "email", low=1, high=254, required=True)
    if not _EMAIL.fullmatch(email):
        raise f.fail("email")
    if not isinstance(person["phone"], str) or len(person["phone"]) > 40 or not _PHONE.fullmatch(person["phone"]):
        raise f.fail("phone")
    f.text(person["title"], "title", high=200)


def parse_records_request(payload_bytes: bytes) -> dict[str, Any]:
    payload = _parse_payload(payload_bytes, "request.invalid")
    f = _Fields("request.invalid")
    f.exact(payload, REQUEST_MEMBERS)
    _check_common(payload, f)
    student = payload["student"]
    s = _Fields("request.invalid", "student.")
    if not isinstance(student, dict):
        raise f.fail("student")
    s.exact(student, STUDENT_MEMBERS)
    s.text(student["family_name"], "family_name", low=1, high=200, required=True)
    s.text(student["given_name"], "given_name", low=1, high=200, required=True)
    s.text(student["middle_name"], "middle_name", high=200, null=True)
    try:
        parse_date(student["birth_date"])
    except ValueError as exc:
        raise s.fail("birth_date") from exc
    if student["sex"] not in ("F", "M", "X", None):
        raise s.fail("sex")
    if student["grade"] is not None and student["grade"] not in CEDS_GRADES:
        raise s.fail("grade")
    s.text(student["state_id"], "state_id", high=128, null=True)
    s.text(student["previous_school"], "previous_school", high=200, null=True)
    s.text(student["previous_sis_id"], "previous_sis_id", high=128, null=True)
    enrolment = payload["enrolment"]
    if enrolment is not None:
        e = _Fields("request.invalid", "enrolment.")
        if not isinstance(enrolment, dict):
            raise f.fail("enrolment")
        e.exact(enrolment, ENROLMENT_MEMBERS)
        e.text(enrolment["school"], "school", low=1, high=200, required=True)
        if enrolment["grade"] not in CEDS_GRADES:
            raise e.fail("grade")
        try:
            start = parse_date(enrolment["start_date"])
        except ValueError as exc:
            raise e.fail("start_date") from exc
        if enrolment["end_date"] is not None:
            try:
                end = parse_date(enrolment["end_date"])
            except ValueError as exc:
                raise e.fail("end_date") from exc
            if end < start:
                raise e.fail("end_date")
        if enrolment["type"] not in ("primary", "partial", "special_education"):
            raise e.fail("type")
    _check_person(payload["requester"], "requester")
    f.text(payload["comments"], "comments", high=2000, lines=True)
    return payload


def parse_request_response(payload_bytes: bytes) -> dict[str, Any]:
    payload = _parse_payload(payload_bytes, "request.invalid")
    f = _Fields("request.invalid")
    f.exact(payload, RESPONSE_MEMBERS)
    _check_common(payload, f)
    kind = payload["kind"]
    if kind not in ("released", "rejected", "release_failed", "cancelled", "message"):
        raise f.fail("kind")
    _check_person(payload["person"], "person")
    f.text(payload["comments"], "comments", high=2000, lines=True, required=kind in ("rejected", "message"))
    transfer = payload["transfer_id"]
    if kind in ("released", "release_failed"):
        if not is_ulid(transfer):
            raise f.fail("transfer_id")
    elif transfer is not None:
        raise f.fail("transfer_id")
    return payload


def verify_records_document(data: bytes, purpose: str, *,
                            published: Callable[[str], Iterable[str]]) -> dict[str, Any]:  # fmt: skip
    """requests.md §4 steps 1-4."""
    signer, _, payload_bytes = open_document(data, purpose, max_bytes=64 * 1024)
    parse = parse_records_request if purpose == "satchel/v1/records-request" else parse_request_response
    payload = parse(payload_bytes)
    if signer not in set(published(payload["from_domain"])):
        raise Refused("request.wrong_signer", "key_id")
    return {"signed_by": signer, "payload": payload_bytes, "parsed": payload}


# --- talking to a node over HTTP (aiohttp as a plain client) -------------------------------------------


@dataclass
class Exchange:
    """One signed request as it was sent, and the answer as it came back (its signature not yet checked)."""

    request: Message
    response: Message

    def json(self) -> Any:
        return strict_json(self.response.body)

    @property
    def error_code(self) -> str | None:
        body = self.json()
        return body["error"]["code"] if isinstance(body, dict) and "error" in body else None


@dataclass
class Outsider:
    """A node of another implementation: its key, its base URL (Satchel-Origin), its sessions with peers."""

    key: NodeKey
    origin: str
    sessions: dict[str, SessionKeys] = field(default_factory=dict)

    def build(self, method: str, url: str, *, body: bytes = b"", content_type: str | None = None,
              session: SessionKeys | None = None, created: int | None = None, lifetime: int = 120,
              nonce: str | None = None) -> Message:  # fmt: skip
        """A request signed as request-signing.md §6 (or §11 in a session)."""
        now = int(dt.datetime.now(dt.UTC).timestamp()) if created is None else created
        headers = [("Satchel-Origin", self.origin)]
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        msg = Message(headers=headers, body=body, method=method, target_uri=url)
        if session is not None:
            seq = session.next_sequence
            session.next_sequence += 1
            sign(msg, key=session.to_server, keyid=session.session_id, alg="hmac-sha256", created=now,
                 expires=now + lifetime, nonce=nonce or f"{seq:022d}")  # fmt: skip
        else:
            sign(msg, key=self.key, keyid=self.key.key_id, alg="ed25519", created=now, expires=now + lifetime,
                 nonce=nonce or new_nonce())  # fmt: skip
        return msg

    async def send(self, http: Any, msg: Message, *, connect_to: str | None = None,
                   host: str | None = None) -> Exchange:  # fmt: skip
        """Send ``msg`` exactly as signed (to ``connect_to``'s address when given: a request signed for another
        node, with ``host`` as its Host field); aiohttp must add no covered field of its own."""
        assert msg.target_uri is not None and msg.method is not None
        parts = urlsplit(msg.target_uri)
        query = f"?{parts.query}" if parts.query else ""
        url = (connect_to or f"{parts.scheme}://{parts.netloc}") + parts.path + query
        headers = [*msg.headers, ("Host", host or parts.netloc)]
        async with http.request(msg.method, url, data=msg.body or None, headers=headers,
                                skip_auto_headers=["Content-Type"]) as answer:  # fmt: skip
            body = await answer.read()
            response = Message(headers=list(answer.headers.items()), body=body, status=answer.status)
        return Exchange(msg, response)

    def verify(self, exchange: Exchange, peer: Descriptor, *, now: int | None = None) -> Checked:
        """A client's check of the answer (§7, steps 1-8 and 10): with the keys of the node it was sent to, or
        with the session's response key when the answer names the session the request was sent in."""
        now = int(dt.datetime.now(dt.UTC).timestamp()) if now is None else now
        checked = check_signature(exchange.response, now=now, request=exchange.request, require=())
        if checked.keyid.startswith("hs-"):
            sent_in = check_signature(exchange.request, now=now).keyid
            session = self.sessions.get(checked.keyid)
            if session is None or checked.keyid != sent_in:
                raise Refused("signature.session_unknown")
            verify_checked(checked, session.to_client)
        else:
            if checked.keyid not in peer.identity_keys:
                raise Refused("signature.key_unknown")
            verify_checked(checked, Ed25519PublicKey.from_public_bytes(peer.identity_keys[checked.keyid]))
        check_digest(exchange.response)
        return checked

    async def open_session(self, http: Any, peer: Descriptor) -> tuple[SessionKeys, Exchange]:
        """§11: offer a fresh X25519 share, signed with the node key; derive the keys from the signed answer."""
        secret = X25519PrivateKey.generate()
        share = x25519_public(secret)
        offer = canonical_json({"share": b64url(share)})
        msg = self.build("POST", peer.base_url + "/satchel/v1/sessions", body=offer, content_type="application/json")
        exchange = await self.send(http, msg)
        if exchange.response.status != 200:
            raise Refused(exchange.error_code or "peer.bad_response")
        checked = self.verify(exchange, peer)
        session_id, server_share, expires = parse_session_answer(exchange.response.body)
        keys = derive_session(own_secret=secret, client_share=share, server_share=server_share,
                              session_id=session_id, expires=expires, client_keyid=self.key.key_id,
                              server_keyid=checked.keyid, origin=self.origin, own_is_client=True)  # fmt: skip
        self.sessions[session_id] = keys
        return keys, exchange
