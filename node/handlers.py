"""Request handlers. Each one receives a request that the middleware has already authenticated."""

from __future__ import annotations

from aiohttp import web

from node.appkeys import NODE
from node.descriptor import signed_descriptor

DESCRIPTOR_TYPE = "application/satchel-descriptor+json"


async def descriptor(request: web.Request) -> web.Response:
    body = signed_descriptor(request.app[NODE])
    return web.Response(body=body, content_type=DESCRIPTOR_TYPE, headers={"Cache-Control": "max-age=300"})


async def health(request: web.Request) -> web.Response:
    node = request.app[NODE]
    node.db.execute("SELECT 1").fetchone()
    return web.json_response(
        {"status": "ok", "domain": node.config.node.domain, "role": node.config.node.role}
    )
