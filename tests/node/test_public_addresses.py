from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.public_addresses import PublicOnlyResolver, is_address_literal, is_public_address


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "::ffff:127.0.0.1",
     "::ffff:10.0.0.1", "ff02::1", "[::1]", "192.0.2.1", "2001:db8::1", "not an address", ""],
)  # fmt: skip
def test_addresses_of_this_network_and_reserved_ones_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "[2606:4700::1]",
                                     "::ffff:8.8.8.8"])  # fmt: skip
def test_global_unicast_addresses_are_public(address: str) -> None:
    assert is_public_address(address)


@given(st.text(max_size=60))
def test_any_text_is_answered_without_raising(text: str) -> None:
    assert is_public_address(text) in (True, False)
    assert is_address_literal(text) in (True, False)
    if is_public_address(text):
        assert is_address_literal(text)


def test_a_name_of_this_machine_does_not_resolve() -> None:
    async def resolve() -> None:
        resolver = PublicOnlyResolver()
        try:
            await resolver.resolve("localhost", 443)
        finally:
            await resolver.close()

    with pytest.raises(OSError, match="no public address"):
        asyncio.run(resolve())
