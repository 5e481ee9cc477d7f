"""Node configuration: one frozen, typed object loaded once from the home's satchel.toml and environment.

The SETTINGS table drives validation, the environment overrides (``SATCHEL_<SECTION>_<NAME>``) and the
documentation printed by ``satchel config --help``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from node.errors import ConfigError, HomeMissing
from protocol.manifest import DOMAIN_RE
from protocol.roster import CONTROL_CHARACTERS

CONFIG_FILE = "satchel.toml"

US_STATES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "AS",
        "GU",
        "MP",
        "PR",
        "VI",
    ]
)


def validate_domain(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    if not DOMAIN_RE.match(value):
        raise ConfigError(
            f"{value!r} is not a domain name", field="node.domain", hint="e.g. springfield.k12.il.us"
        )
    return value


def validate_state(value: str) -> str:
    value = value.strip().upper()
    if value not in US_STATES:
        raise ConfigError(f"{value!r} is not a two-letter US state code", field="node.state", hint="e.g. IL")
    return value


def validate_zip(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"\d{5}(-\d{4})?", value):
        raise ConfigError(f"{value!r} is not a ZIP code", field="node.zip", hint="five digits, e.g. 62701")
    return value


def validate_nces_id(value: str) -> str:
    value = value.strip()
    if value and not re.fullmatch(r"\d{7}", value):
        raise ConfigError(f"{value!r} is not an NCES district id", field="node.nces_id", hint="seven digits")
    return value


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_base_url(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"{value!r} is not a base URL", field="node.base_url", hint="e.g. https://satchel.example.org"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            "plain http is only allowed on loopback (for development)",
            field="node.base_url",
            hint="serve the node behind TLS and give its https:// URL",
        )
    return value


def _shown(name: str, *, required: bool) -> Callable[[str], str]:
    """Text other districts see in the descriptor: printable, and there when required."""

    def check(value: str) -> str:
        value = value.strip()
        if required and not value:
            raise ConfigError(f"{name} must not be empty", field=name)
        if CONTROL_CHARACTERS.search(value):  # peers refuse a descriptor that shows one
            raise ConfigError(f"{name} contains a control character or line break", field=name)
        return value

    return check


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ConfigError(f"{value} is not a TCP port", field="server.port")
    return value


def _between(name: str, low: int, high: int, note: str = "") -> Callable[[int], int]:
    """A check that an integer setting lies in [low, high]; ``note`` says what the bounds mean."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise ConfigError(f"{name} must be from {low} to {high}{note}", field=name)
        return value

    return check


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """``server.trusted_proxies``: addresses or networks separated by commas or spaces."""
    networks = []
    for item in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"server.trusted_proxies: {item[:60]!r} is not an IP address or network",
                field="server.trusted_proxies",
                hint='e.g. trusted_proxies = "127.0.0.1, ::1, 10.0.0.0/24" (the TLS terminator\'s own addresses)',
            ) from None  # fmt: skip
    return tuple(networks)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_holidays(value: str) -> frozenset[date]:
    """``requests.holidays``: ISO dates separated by commas or spaces (the district's calendar)."""
    days = set()
    for item in value.replace(",", " ").split():
        try:
            if not _ISO_DATE.fullmatch(item):
                raise ValueError(item)
            days.add(date.fromisoformat(item))
        except ValueError:
            raise ConfigError(
                f"requests.holidays: {item!r} is not a date written YYYY-MM-DD", field="requests.holidays",
                hint='e.g. holidays = "2026-11-26, 2026-11-27, 2026-12-24, 2026-12-25"',
            ) from None  # fmt: skip
    return frozenset(days)


def parse_timezone(value: str) -> tzinfo | None:
    """``requests.timezone``: an IANA time zone name; empty for the machine's own (None)."""
    name = value.strip()
    if not name:
        return None
    try:
        if "/" not in name and name != "UTC":
            raise ValueError(name)  # "CST" or "EST" name no rule for summer time, or several places
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise ConfigError(
            f"requests.timezone: {name[:60]!r} is not a time zone this machine knows", field="requests.timezone",
            hint='give its IANA name, e.g. timezone = "America/Chicago" (the list: /usr/share/zoneinfo)',
        ) from None  # fmt: skip


def _one_of(name: str, *choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}", field=name)
        return value

    return check


@dataclass(frozen=True, slots=True)
class Setting:
    section: str
    name: str
    kind: type
    default: Any
    help: str
    check: Callable[[Any], Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"SATCHEL_{self.section}_{self.name}".upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "node",
        "role",
        str,
        "district",
        "district or directory",
        _one_of("node.role", "district", "directory"),
    ),
    Setting(
        "node", "domain", str, None, "the district's internet domain, its name among nodes", validate_domain
    ),
    Setting("node", "name", str, None, "the district's official name", _shown("node.name", required=True)),
    Setting("node", "state", str, None, "two-letter state code", validate_state),
    Setting("node", "city", str, "", "city of the district office", _shown("node.city", required=False)),
    Setting("node", "zip", str, None, "ZIP code of the district office", validate_zip),
    Setting("node", "nces_id", str, "", "seven-digit NCES district id (optional)", validate_nces_id),
    Setting(
        "node", "base_url", str, None, "public https base URL peers reach this node at", validate_base_url
    ),
    Setting("server", "host", str, "127.0.0.1", "address `satchel serve` listens on (TLS is in front of it)"),
    Setting("server", "port", int, 8440, "port `satchel serve` listens on", _port),
    Setting(
        "server",
        "body_idle_seconds",
        int,
        120,
        "a peer's request body that sends nothing for this many seconds is dropped (what arrived of an envelope"
        " is kept for its sender to resume: envelope.partial_keep_hours)",
        _between("server.body_idle_seconds", 1, 3600),
    ),
    Setting(
        "server",
        "idle_seconds",
        int,
        60,
        "a connection that has not sent a whole request head this many seconds after it opened or after its"
        " last answer is closed, and one whose client takes none of an answer for as long is reset",
        _between("server.idle_seconds", 1, 3600),
    ),
    Setting(
        "server",
        "max_connections",
        int,
        512,
        "connections held at once; beyond them a new one is answered 503 server.busy and closed (never more"
        " than the process's open-files limit less 256)",
        _between("server.max_connections", 16, 1_000_000),
    ),
    Setting(
        "server",
        "max_connections_per_address",
        int,
        0,
        "connections one client address (an IPv6 client's /64) holds at once; beyond them a new one from it is"
        " answered 503 server.address_busy and closed; 0: a quarter of server.max_connections. Not applied to"
        " server.trusted_proxies",
        _between("server.max_connections_per_address", 0, 1_000_000),
    ),
    Setting(
        "server",
        "trusted_proxies",
        str,
        "127.0.0.0/8, ::1",
        "addresses or networks (as 10.0.0.0/24) of the district's own TLS terminator or load balancer, separated"
        " by commas: each connection from them may carry any district, so server.max_connections_per_address"
        " does not apply to them (server.max_connections does)",
        parse_networks,
    ),
    Setting("smtp", "host", str, "", "SMTP server for notifications; empty disables e-mail"),
    Setting("smtp", "port", int, 25, "SMTP port", _port),
    Setting(
        "smtp",
        "tls",
        str,
        "starttls",
        "none, starttls or tls",
        _one_of("smtp.tls", "none", "starttls", "tls"),
    ),
    Setting("smtp", "username", str, "", "SMTP user name (empty: no authentication)"),
    Setting(
        "smtp", "password", str, "", "SMTP password; prefer the SATCHEL_SMTP_PASSWORD environment variable"
    ),
    Setting("smtp", "sender", str, "", "From: address of notifications"),
    Setting("envelope", "argon2_time_cost", int, 3, "Argon2id passes when sealing (spec/security.md)"),
    Setting("envelope", "argon2_memory_kib", int, 262144, "Argon2id memory in KiB when sealing"),
    Setting("envelope", "min_argon2_time_cost", int, 3, "least Argon2id passes accepted when opening"),
    Setting(
        "envelope", "min_argon2_memory_kib", int, 65536, "least Argon2id memory (KiB) accepted when opening"
    ),
    Setting("envelope", "max_size_mib", int, 65536, "largest envelope accepted, in MiB"),
    Setting(
        "envelope", "default_expiry_days", int, 30, "days a transfer stays open when --expires is not given"
    ),
    Setting(
        "envelope",
        "unlisted_inbox_mib",
        int,
        4096,
        "most MiB of sealed envelopes waiting for a code from districts known only from their own web site"
        " (neither pinned nor in a trusted directory); more from them is refused until some are accepted,"
        " rejected or expire",
        _between("envelope.unlisted_inbox_mib", 0, 1 << 20, " (1 TiB)"),
    ),
    Setting(
        "envelope",
        "partial_keep_hours",
        int,
        72,
        "hours what arrived of an envelope whose upload broke off is kept for its sender to send only the rest;"
        " 0 keeps nothing (every upload starts over)",
        _between("envelope.partial_keep_hours", 0, 720, " (30 days)"),
    ),
    Setting(
        "requests", "overdue_working_days", int, 10, "working days before an unanswered request is flagged",
        _between("requests.overdue_working_days", 1, 365),
    ),
    Setting(
        "requests",
        "holidays",
        str,
        "",
        "days that are not working days for the overdue rule: dates YYYY-MM-DD, separated by commas",
        parse_holidays,
    ),
    Setting(
        "requests",
        "timezone",
        str,
        "",
        "the district's time zone, which says when a day starts for the overdue rule (an IANA name, e.g."
        " America/Chicago); empty: the machine's own, which is often UTC in a container",
        parse_timezone,
    ),
    Setting(
        "imports",
        "batch_students",
        int,
        200,
        "most students `satchel import run` writes per transaction (each student stays all or nothing)",
        _between("imports.batch_students", 1, 10_000),
    ),
    Setting(
        "storage",
        "reserve_mib",
        int,
        256,
        "free disk space (MiB) left untouched: envelopes and documents that would eat into it are refused"
        " up front, before a byte is written",
        _between("storage.reserve_mib", 0, 1 << 20, " (1 TiB)"),
    ),
    Setting(
        "federation",
        "dev_loopback",
        bool,
        False,
        "development only: allow peers and directory members on plain http loopback URLs",
    ),
    Setting(
        "federation",
        "key_lookups_per_minute",
        int,
        30,
        "most unknown keys that strangers' requests make this node look up (in its directories and at the"
        " request's Satchel-Origin) per minute; pinned and listed peers are not counted",
        _between("federation.key_lookups_per_minute", 1, 10_000),
    ),
)


@dataclass(frozen=True, slots=True)
class NodeSection:
    role: str
    domain: str
    name: str
    state: str
    city: str
    zip: str
    nces_id: str
    base_url: str


@dataclass(frozen=True, slots=True)
class ServerSection:
    host: str
    port: int
    body_idle_seconds: int
    idle_seconds: int
    max_connections: int
    max_connections_per_address: int
    trusted_proxies: tuple[Network, ...]


@dataclass(frozen=True, slots=True)
class SmtpSection:
    host: str
    port: int
    tls: str
    username: str
    password: str = field(repr=False)
    sender: str


@dataclass(frozen=True, slots=True)
class EnvelopeSection:
    argon2_time_cost: int
    argon2_memory_kib: int
    min_argon2_time_cost: int
    min_argon2_memory_kib: int
    max_size_mib: int
    default_expiry_days: int
    unlisted_inbox_mib: int
    partial_keep_hours: int

    @property
    def unlisted_inbox_bytes(self) -> int:
        return self.unlisted_inbox_mib << 20


@dataclass(frozen=True, slots=True)
class RequestsSection:
    overdue_working_days: int
    holidays: frozenset[date]
    timezone: tzinfo | None = None  # None: the machine's own


@dataclass(frozen=True, slots=True)
class ImportsSection:
    batch_students: int


@dataclass(frozen=True, slots=True)
class StorageSection:
    reserve_mib: int

    @property
    def reserve_bytes(self) -> int:
        return self.reserve_mib << 20


@dataclass(frozen=True, slots=True)
class FederationSection:
    dev_loopback: bool
    key_lookups_per_minute: int


@dataclass(frozen=True, slots=True)
class NodeConfig:
    home: Path
    node: NodeSection
    server: ServerSection
    smtp: SmtpSection
    envelope: EnvelopeSection
    requests: RequestsSection
    imports: ImportsSection
    storage: StorageSection
    federation: FederationSection

    @property
    def db_path(self) -> Path:
        return self.home / "satchel.db"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def envelopes_dir(self) -> Path:
        """Sealed envelopes: ``out/`` waiting for delivery, ``in/`` received and still sealed."""
        return self.home / "envelopes"

    @property
    def staging_dir(self) -> Path:
        """Where an older version opened accepted envelopes (one file each); now they open into blobs."""
        return self.home / "staging"


def _coerce(setting: Setting, raw: Any, source: str) -> Any:
    try:
        if setting.kind is int and isinstance(raw, str):
            value: Any = int(raw)
        elif setting.kind is bool and isinstance(raw, str):
            value = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            value = raw
    except ValueError as exc:
        raise ConfigError(f"{setting.key} from {source} is not a number", field=setting.key) from exc
    if not isinstance(value, setting.kind) or (setting.kind is int and isinstance(value, bool)):
        raise ConfigError(f"{setting.key} from {source} must be a {setting.kind.__name__}", field=setting.key)
    return setting.check(value) if setting.check else value


def build_config(
    home: Path, values: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str]
) -> NodeConfig:
    """Validate ``values`` (sections of a parsed TOML) with environment overrides into a NodeConfig."""
    sections: dict[str, dict[str, Any]] = {}
    known = {s.key for s in SETTINGS}
    for section, items in values.items():
        for name in items if isinstance(items, Mapping) else ():
            if f"{section}.{name}" not in known:
                raise ConfigError(f"unknown setting {section}.{name}", field=f"{section}.{name}")
    for setting in SETTINGS:
        if setting.env in environ:
            raw, source = environ[setting.env], setting.env
        else:
            raw, source = values.get(setting.section, {}).get(setting.name, setting.default), CONFIG_FILE
        if raw is None:
            raise ConfigError(f"{setting.key} is required", field=setting.key, hint=setting.help)
        sections.setdefault(setting.section, {})[setting.name] = _coerce(setting, raw, source)
    return NodeConfig(
        home=home,
        node=NodeSection(**sections["node"]),
        server=ServerSection(**sections["server"]),
        smtp=SmtpSection(**sections["smtp"]),
        envelope=EnvelopeSection(**sections["envelope"]),
        requests=RequestsSection(**sections["requests"]),
        imports=ImportsSection(**sections["imports"]),
        storage=StorageSection(**sections["storage"]),
        federation=FederationSection(**sections["federation"]),
    )


def load_config(home: Path, environ: Mapping[str, str] | None = None) -> NodeConfig:
    path = home / CONFIG_FILE
    restore = f"put {CONFIG_FILE} back from the latest backup (`satchel backup` copies it; see Restoring in the README)"
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise HomeMissing(f"{home} is not a Satchel home (no {CONFIG_FILE})") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a directory, not a file", field=CONFIG_FILE, hint=restore) from exc
    except UnicodeDecodeError as exc:
        # TOML is UTF-8 text: other bytes are disk damage or another file copied over it, not a typo to fix.
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} cannot be read): it is damaged", field=CONFIG_FILE,
            hint=restore,
        ) from exc  # fmt: skip
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", field=CONFIG_FILE) from exc
    return build_config(home, values, os.environ if environ is None else environ)


def render_toml(values: Mapping[str, Mapping[str, Any]]) -> str:
    """Write the sections back as TOML, with each setting's help as a comment, and every other setting commented
    out with its default: the file an operator edits is where they find what can be set."""
    helps = {s.key: s.help for s in SETTINGS}
    lines = [
        "# Satchel node configuration. Every setting can be overridden by SATCHEL_<SECTION>_<NAME>.",
        "# A setting commented out shows its default: to change it, remove the # before it (and before its",
        "# [section] line when that is commented out too).",
        "",
    ]
    for section in dict.fromkeys([*values, *(s.section for s in SETTINGS)]):
        given = values.get(section, {})
        lines.append(f"[{section}]" if given else f"# [{section}]")
        for name, value in given.items():
            lines.append(f"# {helps.get(f'{section}.{name}', '')}")
            lines.append(f"{name} = {_toml_value(value)}")
        for setting in SETTINGS:
            if setting.section == section and setting.name not in given and setting.default is not None:
                lines.append(f"# {setting.help}")
                lines.append(f"# {setting.name} = {_toml_value(setting.default)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
