"""Request handlers. Authenticated ones run only after node.signed_http verified the request."""

from __future__ import annotations

import time

from aiohttp import web

from node import codes_flow, directory_service, requests_flow
from node.appkeys import NODE
from node.descriptor import signed_descriptor
from node.feed_cache import FEED_CACHE
from node.http_sessions import SESSIONS
from node.keyring import KEYRING
from node.request_answers import RESPONSE_TYPE
from node.signed_http import ANSWER_KEY, BODY, ORIGIN_HEADER, PEER, SESSION
from protocol.http_sessions import SessionOfferInvalid, answer_body, parse_offer

DESCRIPTOR_TYPE = "application/satchel-descriptor+json"
LISTING_TYPE = "application/satchel-directory-listing+json"


async def descriptor(request: web.Request) -> web.Response:
    body = signed_descriptor(request.app[NODE])
    return web.Response(body=body, content_type=DESCRIPTOR_TYPE, headers={"Cache-Control": "max-age=300"})


async def health(request: web.Request) -> web.Response:
    node = request.app[NODE]
    node.db.execute("SELECT 1").fetchone()
    return web.json_response(
        {"status": "ok", "domain": node.config.node.domain, "role": node.config.node.role}
    )


async def open_session(request: web.Request) -> web.Response:
    """spec/request-signing.md §11: the caller's node key vouched for the offer; answer with our share."""
    if request.get(SESSION) is not None:
        raise SessionOfferInvalid(
            "a session is opened with a request signed by the node key, not inside another session",
            field="Signature-Input",
        )
    node = request.app[NODE]
    request[ANSWER_KEY] = server_key = node.current_keys().identity  # the key the answer is signed with
    answer = request.app[SESSIONS].open(
        peer=request[PEER], client_share=parse_offer(request[BODY]), server_key=server_key,
        client_origin=request.headers[ORIGIN_HEADER], now=int(time.time()),
    )  # fmt: skip
    return web.Response(body=answer_body(answer), content_type="application/json")


async def ping(request: web.Request) -> web.Response:
    """A signed no-op: proves both nodes can authenticate each other."""
    peer = request[PEER]
    return web.json_response({"pong": request.app[NODE].config.node.domain, "caller": peer.domain,
                              "caller_key": peer.key_id, "trust": peer.trust})  # fmt: skip


async def directory_join(request: web.Request) -> web.Response:
    result = await directory_service.handle_join(
        request.app[NODE], request.app[KEYRING], caller=request[PEER].domain, body=request[BODY], update=False
    )
    return web.json_response(result, status=202 if result["status"] == "pending" else 200)


async def directory_update(request: web.Request) -> web.Response:
    result = await directory_service.handle_join(
        request.app[NODE], request.app[KEYRING], caller=request[PEER].domain, body=request[BODY], update=True
    )
    return web.json_response(result)


async def directory_search(request: web.Request) -> web.Response:
    q = request.query
    body = directory_service.search(
        request.app[NODE], state=q.get("state"), text=q.get("q"), city=q.get("city"), zip_code=q.get("zip")
    )
    return web.Response(body=body, content_type=LISTING_TYPE)


async def directory_keys(request: web.Request) -> web.Response:
    body = directory_service.entries_with_key(request.app[NODE], request.match_info["key_id"])
    return web.Response(body=body, content_type=LISTING_TYPE)


async def directory_entries(request: web.Request) -> web.Response:
    after, limit = directory_service.feed_query(request.query.get("after"), request.query.get("limit"))
    body = await request.app[FEED_CACHE].feed(request.app[NODE], after=after, limit=limit)
    return web.Response(body=body, content_type=LISTING_TYPE)


async def records_request(request: web.Request) -> web.Response:
    state, resent = requests_flow.receive_request(request.app[NODE], caller=request[PEER].domain,
                                                  signed=request[BODY])  # fmt: skip
    if resent is not None:
        return web.Response(body=resent, content_type=RESPONSE_TYPE)
    return web.json_response({"state": state})


async def records_request_response(request: web.Request) -> web.Response:
    state = requests_flow.receive_response(
        request.app[NODE], caller=request[PEER].domain, request_id=request.match_info["request_id"],
        signed=request[BODY],
    )  # fmt: skip
    return web.json_response({"state": state})


async def code_claim(request: web.Request) -> web.Response:
    answer = await codes_flow.handle_claim(request.app[NODE], caller=request[PEER].domain, body=request[BODY])
    return web.json_response(answer)
