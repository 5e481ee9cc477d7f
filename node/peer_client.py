"""Outgoing signed requests to other nodes, with the response's signature and digest verified."""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node.home import Node
from node.keyring import Keyring
from node.peers import PeerUnreachable
from node.signed_http import MAX_BODY, signed_request_headers
from protocol import SatchelError
from protocol.content_digest import verify_body_digest
from protocol.http_signatures import HttpResponseView, check_response_signature
from protocol.json_strict import loads_object

# No total limit: an envelope of gigabytes takes a while; a stalled peer is caught by the read timeout.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)


class PeerRefused(SatchelError):
    """The other node answered with a coded error; its code and message are kept for the operator."""

    code = "peer.refused"
    default_hint = "see the other node's reason above; nothing was changed there"

    def __init__(self, message: str, *, status: int, peer_code: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.status = status
        self.peer_code = peer_code


@dataclass(frozen=True, slots=True)
class PeerResponse:
    status: int
    body: bytes
    content_type: str
    peer_domain: str

    def json(self) -> dict[str, Any]:
        return loads_object(self.body, what="peer response")


class PeerClient:
    def __init__(self, node: Node, session: aiohttp.ClientSession, keyring: Keyring) -> None:
        self._node = node
        self._session = session
        self._keyring = keyring

    async def call(
        self,
        base_url: str,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        expect_domain: str | None = None,
        body_file: Path | None = None,
        body_digest: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> PeerResponse:
        """Send a signed request; return the verified response, or raise PeerRefused for a coded error.

        A large body is streamed from ``body_file`` (memory stays flat), with its precomputed Content-Digest
        header value in ``body_digest``.
        """
        url = self._keyring.check_origin(base_url) + path
        view, headers = signed_request_headers(
            method=method, url=url, body=body, content_type=content_type, key=self._node.current_keys().identity,
            origin=self._node.config.node.base_url, body_digest=body_digest, extra_headers=extra_headers,
        )  # fmt: skip
        try:
            with body_file.open("rb") if body_file is not None else nullcontext() as handle:
                data_arg = handle if handle is not None else (body or None)
                async with self._session.request(
                    method, url, data=data_arg, headers=headers, timeout=TIMEOUT, allow_redirects=False
                ) as response:
                    data = await response.content.read(MAX_BODY + 1)
                    status, response_headers = response.status, tuple(response.headers.items())
                    content_type_got = response.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerUnreachable(f"could not reach {url}: {type(exc).__name__}", field="url") from exc
        peer = await self._verify(view, status, response_headers, data, base_url, expect_domain)
        if status >= 400:
            raise _refusal(status, data, url)
        return PeerResponse(status, data, content_type_got, peer)

    async def _verify(
        self, view: Any, status: int, headers: tuple, data: bytes, base_url: str, expect_domain: str | None
    ) -> str:
        unverified = check_response_signature(
            HttpResponseView(status=status, headers=headers, request=view), now=int(time.time()),
            has_body=bool(data),
        )  # fmt: skip
        resolved = await self._keyring.resolve(unverified.key_id, origin=base_url, domain=expect_domain)
        verified = unverified.verify(resolved)
        verify_body_digest(verified.content_digest, data)
        return resolved.domain


def _refusal(status: int, data: bytes, url: str) -> PeerRefused:
    try:
        error = json.loads(data)["error"]
        code, message, hint = str(error["code"]), str(error["message"]), error.get("hint")
    except (ValueError, KeyError, TypeError):
        code, message, hint = "http.error", f"HTTP {status}", None
    return PeerRefused(
        f"{url} refused: {message} ({code})", status=status, peer_code=code,
        hint=str(hint) if hint else None,
    )  # fmt: skip


PEER_CLIENT = web.AppKey("peer_client", PeerClient)
