"""The app factory: routes authenticated by default, coded JSON errors, no tracebacks to peers."""

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.app import create_app
from node.appkeys import PUBLIC_ROUTES
from node.config import load_config
from node.http_errors import STATUS_BY_CODE, status_for
from protocol import NotFound


async def _client(home, extra_routes=(), *, public: bool = False) -> TestClient:
    app = create_app(load_config(home, {}))
    for method, path, handler in extra_routes:
        app.router.add_route(method, path, handler)
        if public:
            app[PUBLIC_ROUTES] = app[PUBLIC_ROUTES] | {(method, path)}
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client


async def test_routes_are_authenticated_by_default(make_home) -> None:
    reached = []

    async def private(request: web.Request) -> web.Response:
        reached.append(True)
        return web.Response(text="secret")

    client = await _client(make_home(), [("POST", "/satchel/v1/private", private)])
    try:
        response = await client.post("/satchel/v1/private", data=b"{}")
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "signature.missing"
        assert reached == []
        assert (await client.get("/satchel/v1/health")).status == 200
    finally:
        await client.close()


async def test_coded_errors_and_internal_errors(make_home) -> None:
    async def missing(request: web.Request) -> web.Response:
        raise NotFound("no such transfer", field="id", hint="list them")

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("student record details that must not leak")

    routes = [("GET", "/x/missing", missing), ("GET", "/x/broken", broken)]
    client = await _client(make_home(), routes, public=True)
    try:
        response = await client.get("/x/missing")
        assert response.status == 404
        assert await response.json() == {
            "error": {"code": "not_found", "message": "no such transfer", "field": "id", "hint": "list them"}
        }
        response = await client.get("/x/broken")
        body = await response.text()
        assert response.status == 500 and "satchel.internal" in body and "student record" not in body
    finally:
        await client.close()


def test_status_table() -> None:
    assert status_for("envelope.anything") == 400
    assert status_for("no.such.code") is None
    assert all(100 <= s < 600 for s in STATUS_BY_CODE.values())


async def test_a_route_taking_any_method_is_judged_per_method(make_home) -> None:
    # The middleware works out what it does for a route at the route's first request (node.signed_http
    # RoutePlan); a route taking every method is public for POST alone here, and a GET after a POST must
    # still be refused unsigned.
    async def anything(request: web.Request) -> web.Response:
        return web.Response(text="reached")

    app = create_app(load_config(make_home(), {}))
    app.router.add_route("*", "/x/any", anything)
    app[PUBLIC_ROUTES] = app[PUBLIC_ROUTES] | {("POST", "/x/any")}
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        for _ in range(2):
            assert (await client.post("/x/any")).status == 200
            response = await client.get("/x/any")
            assert response.status == 401 and (await response.json())["error"]["code"] == "signature.missing"
    finally:
        await client.close()
