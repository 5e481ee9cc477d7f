"""Who sent a verified request: the calling node's domain, the node key that vouched for it, the trust."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    domain: str
    key_id: str  # the caller's Ed25519 node key, also for requests signed in a session opened with it
    trust: str
