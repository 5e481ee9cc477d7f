"""The whole HTTP surface of a node, on one screen.

Routes are authenticated by default (signed requests, spec/request-signing.md); the few public ones opt
out visibly with ``public=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

from node import handlers
from node.http_errors import Handler
from protocol.descriptor import WELL_KNOWN_PATH


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    public: bool = False


ROUTES: tuple[Route, ...] = (
    Route("GET", WELL_KNOWN_PATH, handlers.descriptor, public=True),
    Route("GET", "/satchel/v1/health", handlers.health, public=True),
)
