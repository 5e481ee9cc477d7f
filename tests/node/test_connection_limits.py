"""The pieces of node.connection_limits that need no server: the cap, the open-files limit, the busy answer."""

from __future__ import annotations

import json
import resource
from collections.abc import Iterator

import pytest

from node.config import ConfigError, load_config
from node.connection_limits import (
    FILES_RESERVED,
    RETRY_AFTER_SECONDS,
    ServerBusy,
    _busy_answer,
    connection_cap,
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


@pytest.mark.parametrize(("name", "value"), [
    ("IDLE_SECONDS", "0"), ("IDLE_SECONDS", "3601"), ("MAX_CONNECTIONS", "15"), ("MAX_CONNECTIONS", "1000001"),
])  # fmt: skip
def test_connection_settings_out_of_range_are_refused(make_home, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(make_home(), {f"SATCHEL_SERVER_{name}": value})
    assert caught.value.field == f"server.{name.lower()}"


def test_connection_settings_default(make_home) -> None:
    server = load_config(make_home(), {}).server
    assert (server.idle_seconds, server.max_connections) == (60, 512)
