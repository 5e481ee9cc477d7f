"""The aiohttp application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from node.appkeys import NODE, PUBLIC_ROUTES, REQUIRED_COMPONENTS, STREAMING_ROUTES
from node.background_errors import log_failure
from node.config import NodeConfig
from node.directory_client import queue_directory_updates
from node.envelope_resume import adopt_orphans
from node.feed_cache import FEED_CACHE, FeedCache
from node.home import Node, load_keys
from node.http_sessions import SESSIONS, SessionStore
from node.keyring import KEYRING, Keyring
from node.outbox_worker import outbox_worker
from node.partial_envelopes import UPLOADS, Uploads
from node.peer_client import PEER_CLIENT, PeerClient
from node.routes import ROUTES
from node.signed_http import (
    ANSWER_NONCES,
    REQUIRED_EVERYWHERE,
    ROUTE_PLANS,
    AnswerNonces,
    signed_http_middleware,
)
from node.workers import (
    disk_watch_worker,
    expiry_worker,
    mirror_worker,
    overdue_worker,
    resign_worker,
    temp_sweep_worker,
)
from storage.blobs import BlobStore
from storage.database import open_database, write_transaction

log = logging.getLogger("satchel.server")


def create_app(config: NodeConfig) -> web.Application:
    # Verify signatures before any handler runs, turn errors into coded JSON, sign every answer to a signed request.
    app = web.Application(middlewares=[signed_http_middleware], client_max_size=1024**2)
    # HEAD is answered wherever GET is (RFC 9110 §9.3.2): uptime monitors ask with it.
    public = [(r.method, r.path) for r in ROUTES if r.public]
    app[PUBLIC_ROUTES] = frozenset([*public, *(("HEAD", path) for method, path in public if method == "GET")])
    app[STREAMING_ROUTES] = frozenset((r.method, r.path) for r in ROUTES if r.streaming)
    app[REQUIRED_COMPONENTS] = {(r.method, r.path): (*REQUIRED_EVERYWHERE, *r.covers) for r in ROUTES if r.covers}
    app[UPLOADS] = Uploads()
    app[SESSIONS] = SessionStore()
    app[FEED_CACHE] = FeedCache()
    app[ANSWER_NONCES] = AnswerNonces()
    app[ROUTE_PLANS] = {}
    for route in ROUTES:
        if route.method == "GET":
            app.router.add_get(route.path, route.handler, allow_head=True)
        else:
            app.router.add_route(route.method, route.path, route.handler)

    async def node_context(app: web.Application) -> AsyncIterator[None]:
        db = open_database(config.db_path)
        node = Node(config, load_keys(config, db), db, BlobStore(config.blobs_dir))
        app[NODE] = node
        adopt_orphans(node, app[UPLOADS])  # before the first request: a sender may ask about them at once
        _publish_changes(node)
        session = aiohttp.ClientSession()
        app[KEYRING] = Keyring(node, lambda: session, allow_loopback_http=config.federation.dev_loopback)
        # A serving node talks to the same peers again and again: it signs in sessions (§11).
        app[PEER_CLIENT] = PeerClient(node, session, app[KEYRING], sessions=True)
        yield
        await app[KEYRING].close()
        await session.close()
        db.close()

    app.cleanup_ctx.append(node_context)
    app.cleanup_ctx.append(outbox_worker)
    app.cleanup_ctx.append(expiry_worker)
    app.cleanup_ctx.append(overdue_worker)
    app.cleanup_ctx.append(temp_sweep_worker)
    app.cleanup_ctx.append(disk_watch_worker)
    if config.node.role == "directory":
        app.cleanup_ctx.append(mirror_worker)
        app.cleanup_ctx.append(resign_worker)
    return app


def _publish_changes(node: Node) -> None:
    """What the node publishes may have changed while it was stopped (an upgrade's migration made its contact
    one line; IT changed its URL in satchel.toml): the directories it joined get its descriptor now, through
    the outbox, not at its next change. A failure is logged: the node serves all the same."""
    try:
        with write_transaction(node.db):
            queue_directory_updates(node)
    except Exception as exc:
        log_failure(log, "sending this node's descriptor to its directories", exc)
