"""The pieces of node.connection_limits that need no server: the cap, the open-files limit, the busy answer."""

from __future__ import annotations

import ipaddress
import json
import resource
import weakref
from collections.abc import Iterator

import pytest

from node.config import ConfigError, load_config
from node.connection_limits import (
    _ADDRESS_BUSY,
    FILES_RESERVED,
    RETRY_AFTER_SECONDS,
    AddressBusy,
    ServerBusy,
    _busy_answer,
    _PerAddress,
    connection_cap,
    per_address_cap,
    raise_open_files_limit,
)
from node.http_errors import status_for


def test_the_cap_leaves_files_for_the_node_itself() -> None:
    assert connection_cap(512, 1_048_576) == 512  # a service unit with a generous LimitNOFILE
    assert connection_cap(512, 1024) == 512  # the usual soft limit: 512 + 256 reserved fit
    assert connection_cap(512, 600) == 600 - FILES_RESERVED
    assert connection_cap(512, 100) == 16  # a limit this low breaks the node anyway; keep it usable


@pytest.fixture
def lowered_soft_limit() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.fail(f"this machine's hard limit on open files ({hard}) is too low to test raising the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_open_files_limit_is_raised_to_the_hard_one(lowered_soft_limit: int) -> None:
    hard = lowered_soft_limit
    now = raise_open_files_limit()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = hard if hard != resource.RLIM_INFINITY else 256  # unlimited: setrlimit is not asked for more
    assert soft == expected
    assert now == (expected if expected != resource.RLIM_INFINITY else 1 << 20)


def test_the_busy_answer_is_a_whole_coded_http_response() -> None:
    raw = _busy_answer()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert fields["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert fields["Connection"] == "close"
    assert int(fields["Content-Length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["code"] == ServerBusy.code == "server.busy" and error["hint"]
    assert status_for(ServerBusy.code) == 503


def test_the_address_busy_answer_says_it_is_this_address() -> None:
    head, _, body = _ADDRESS_BUSY.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and b"Retry-After: 5" in head
    error = json.loads(body)["error"]
    assert error["code"] == AddressBusy.code == "server.address_busy" and error["hint"] == AddressBusy.default_hint
    assert status_for(AddressBusy.code) == 503


@pytest.mark.parametrize(("name", "value"), [
    ("IDLE_SECONDS", "0"), ("IDLE_SECONDS", "3601"), ("MAX_CONNECTIONS", "15"), ("MAX_CONNECTIONS", "1000001"),
    ("MAX_CONNECTIONS_PER_ADDRESS", "-1"), ("MAX_CONNECTIONS_PER_ADDRESS", "1000001"),
    ("TRUSTED_PROXIES", "127.0.0.1, nginx"), ("TRUSTED_PROXIES", "10.0.0.0/33"),
])  # fmt: skip
def test_connection_settings_out_of_range_are_refused(make_home, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(make_home(), {f"SATCHEL_SERVER_{name}": value})
    assert caught.value.field == f"server.{name.lower()}"


def test_connection_settings_default(make_home) -> None:
    home = make_home()
    server = load_config(home, {}).server
    assert (server.idle_seconds, server.max_connections) == (60, 512)
    # A quarter of the connections for one address; none for the TLS terminator on the same machine.
    assert per_address_cap(server.max_connections_per_address, 512) == 128
    assert [str(n) for n in server.trusted_proxies] == ["127.0.0.0/8", "::1/128"]
    env = {
        "SATCHEL_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "20",
        "SATCHEL_SERVER_TRUSTED_PROXIES": "10.0.0.7 2001:db8::/48",
    }
    set_here = load_config(home, env).server
    assert set_here.max_connections_per_address == 20 and per_address_cap(20, 512) == 20
    assert set_here.trusted_proxies == tuple(map(ipaddress.ip_network, ["10.0.0.7", "2001:db8::/48"]))
    assert load_config(home, {"SATCHEL_SERVER_TRUSTED_PROXIES": ""}).server.trusted_proxies == ()


def test_the_trusted_proxies_setting_names_the_address_it_cannot_read(make_home) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(make_home(), {"SATCHEL_SERVER_TRUSTED_PROXIES": "127.0.0.1, nginx"})
    assert "'nginx' is not an IP address or network" in caught.value.message and caught.value.hint


class _Peer:
    """What a connection is counted by: asyncio's transport, as far as its peer's address."""

    def __init__(self, host: str) -> None:
        self._peer = (host, 40000) if ":" not in host else (host, 40000, 0, 0)

    def get_extra_info(self, name: str) -> object:
        return self._peer if name == "peername" else None


@pytest.mark.parametrize(("host", "counted_as"), [
    ("192.0.2.7", "192.0.2.7"),
    ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client of a dual-stack socket is its IPv4 address
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # a subscriber's whole /64 is one client
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("10.0.0.7", None),  # the district's load balancer
    ("127.0.0.1", None),
])  # fmt: skip
def test_a_connection_counts_against_its_address_or_none(host: str, counted_as: str | None) -> None:
    trusted = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("127.0.0.0/8"))
    addresses = _PerAddress(4, trusted, weakref.WeakSet(), lambda handler: None)
    assert addresses._key(_Peer(host)) == counted_as  # type: ignore[arg-type]


@pytest.mark.parametrize(("trusted", "host", "counted_as"), [
    # The terminator written as the socket's peer reads on a dual-stack listener (and as the log shows it)
    ("::ffff:10.0.0.7", "::ffff:10.0.0.7", None),
    ("::ffff:10.0.0.7", "10.0.0.7", None),
    ("::ffff:10.0.0.0/120", "::ffff:10.0.0.9", None),
    ("::ffff:10.0.0.0/120", "10.0.1.9", "10.0.1.9"),
    ("::/0", "::ffff:192.0.2.7", None),  # every address
    ("2001:db8::/32", "::ffff:192.0.2.7", "192.0.2.7"),
])  # fmt: skip
def test_a_trusted_proxy_written_as_an_ipv4_mapped_address_is_trusted(
    trusted: str, host: str, counted_as: str | None
) -> None:
    addresses = _PerAddress(4, (ipaddress.ip_network(trusted),), weakref.WeakSet(), lambda handler: None)
    assert addresses._key(_Peer(host)) == counted_as  # type: ignore[arg-type]
