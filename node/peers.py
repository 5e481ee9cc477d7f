"""Talking to other nodes: fetching and verifying their descriptors."""

from __future__ import annotations

import aiohttp

from node.bounded_read import read_body
from protocol import SatchelError
from protocol.descriptor import MAX_DESCRIPTOR_BYTES, WELL_KNOWN_PATH, VerifiedDescriptor, verify_descriptor

TIMEOUT = aiohttp.ClientTimeout(total=15)


class PeerUnreachable(SatchelError):
    code = "peer.unreachable"
    default_hint = "check the URL and that the other node is running; Satchel retries deliveries by itself"


class PeerBadResponse(SatchelError):
    code = "peer.bad_response"
    default_hint = "the other node answered something that is not a Satchel descriptor; tell its operator"


# Answers that only say "not now", and that a node cannot sign (spec/request-signing.md §7.2): a node at its
# connection limit answers 503 before reading the request; the TLS terminator in front of a node that is down
# or restarting answers 502-504, a rate limiter 429. Believed no further: the call is retried later.
TRY_LATER_STATUSES = frozenset({429, 502, 503, 504})


def not_now(url: str, status: int, how: str = "") -> PeerUnreachable:
    """The error for a ``TRY_LATER_STATUSES`` answer; ``how`` qualifies it (" without a signature")."""
    return PeerUnreachable(
        f"{url} answered HTTP {status}{how}: the node is busy, or down behind its proxy", field="url",
        hint="Satchel tries again by itself; if it lasts, tell the other district's IT",
    )  # fmt: skip


async def fetch_descriptor(
    session: aiohttp.ClientSession, base_url: str, *, expected_domain: str | None = None
) -> VerifiedDescriptor:
    """GET the peer's well-known descriptor and verify its signature before believing anything in it."""
    return verify_descriptor(await fetch_descriptor_bytes(session, base_url), expected_domain=expected_domain)


async def fetch_descriptor_bytes(session: aiohttp.ClientSession, base_url: str) -> bytes:
    """The exact bytes served at the peer's well-known URL (unverified: verify before use)."""
    url = base_url.rstrip("/") + WELL_KNOWN_PATH
    try:
        async with session.get(url, timeout=TIMEOUT, allow_redirects=False) as response:
            if response.status in TRY_LATER_STATUSES:
                raise not_now(url, response.status)
            if response.status != 200:
                raise PeerBadResponse(f"{url} answered HTTP {response.status}", field="url")
            body = await read_body(response.content, MAX_DESCRIPTOR_BYTES)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PeerUnreachable(f"could not reach {url}: {type(exc).__name__}", field="url") from exc
    except ValueError as exc:
        # A host name no resolver can take (a label empty or over 63 characters): the IDNA codec raises
        # UnicodeError from getaddrinfo, past aiohttp. Often a stranger's Satchel-Origin, never our fault.
        raise PeerUnreachable(
            f"could not reach {url}: its host name cannot be looked up ({type(exc).__name__})", field="url"
        ) from exc
    if len(body) > MAX_DESCRIPTOR_BYTES:
        raise PeerBadResponse(
            f"{url} sent a descriptor larger than {MAX_DESCRIPTOR_BYTES} bytes", field="url"
        )
    return body
