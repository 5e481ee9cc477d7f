"""Connecting only to public addresses, for a URL a stranger chose (spec/request-signing.md §7.1 step 3).

A request's ``Satchel-Origin`` names where its sender's descriptor is; anyone may send one, so outside
development mode the node must not be talked into connecting to its own network (loopback, private,
link-local, carrier-grade NAT, multicast, reserved). The check is made on the addresses a name resolves to
at connect time, inside the connector, so a name that changes its answer between a check and the connection
(DNS rebinding) cannot slip past it.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver


def is_public_address(address: str) -> bool:
    """True for a global unicast address; False for anything else, and for what is not an address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_address_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    return True


class PublicOnlyResolver(AbstractResolver):
    """Resolves as aiohttp would, keeping only public addresses (none left: the name cannot be reached)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[Any]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public_address(entry["host"])]
        if not public:
            raise OSError(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


def public_only_session() -> aiohttp.ClientSession:
    """A client session that connects to public addresses only (address literals are checked by the caller:
    aiohttp does not ask a resolver about them)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=PublicOnlyResolver()))
