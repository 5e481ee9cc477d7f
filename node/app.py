"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from node.appkeys import NODE, PUBLIC_ROUTES
from node.config import NodeConfig
from node.home import Node, load_keys
from node.http_errors import Handler, error_middleware, error_response
from node.routes import ROUTES
from storage.blobs import BlobStore
from storage.database import open_database


@web.middleware
async def authentication_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.resource
    canonical = route.canonical if route is not None else None
    if (request.method, canonical) in request.app[
        PUBLIC_ROUTES
    ] or request.match_info.http_exception is not None:
        return await handler(request)
    # Peer endpoints arrive with the signed-HTTP layer; until a request can be verified it is refused.
    return error_response(
        401,
        "http.unauthenticated",
        "this endpoint needs a signed request",
        hint="sign requests as described in spec/request-signing.md",
    )


def create_app(config: NodeConfig) -> web.Application:
    app = web.Application(middlewares=[error_middleware, authentication_middleware], client_max_size=1024**2)
    app[PUBLIC_ROUTES] = frozenset((r.method, r.path) for r in ROUTES if r.public)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)

    async def node_context(app: web.Application) -> AsyncIterator[None]:
        db = open_database(config.db_path)
        app[NODE] = Node(config, load_keys(config), db, BlobStore(config.blobs_dir))
        yield
        db.close()

    app.cleanup_ctx.append(node_context)
    return app
