"""Signed-HTTP sessions between real nodes (spec/request-signing.md §11).

A is `satchel serve` in its own process; B's side is B's node opened here with a peer client that signs
in sessions, as a serving node's does. Covers: one handshake for many calls, answers signed with the
session's key, replay and tampering refused, a restart of A forgetting every session (old requests are
refused, the client opens a new session by itself), revocation of either key a session was opened with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from node.home import init_home, open_node
from node.keyring import Keyring
from node.peer_client import PeerClient
from node.signed_http import SessionSigner, signed_request_headers
from protocol.http_sessions import SESSION_PATH, offer_body
from protocol.http_signatures import SignatureKeyRevoked
from storage import peers as peer_store

from cutting_proxy import CuttingProxy
from support import DEV_ENV, ServedNode, free_port, node_fields, run_cli

PING = "/satchel/v1/ping"


def _district(tmp: Path, domain: str) -> Path:
    home = tmp / domain
    init_home(home, node=node_fields(domain, f"http://127.0.0.1:{free_port()}"))
    run_cli(home, "users", "add", "ada", "--email", f"ada@{domain}", "--name", "Ada", "--role", "admin")
    return home


@pytest.fixture
def two(tmp_path: Path) -> Iterator[dict[str, object]]:
    homes = {"a": _district(tmp_path, "a.example.org"), "b": _district(tmp_path, "b.example.org")}
    served = {key: ServedNode(home, DEV_ENV) for key, home in homes.items()}
    run_cli(homes["a"], "peers", "add", served["b"].url, "--yes", "--as", "ada", env=DEV_ENV)
    run_cli(homes["b"], "peers", "add", served["a"].url, "--yes", "--as", "ada", env=DEV_ENV)
    state: dict[str, object] = {"homes": homes, "served": served}
    try:
        yield state
    finally:
        for node in state["served"].values():  # type: ignore[attr-defined]
            node.stop()


async def _with_client(home: Path, scenario) -> object:
    node = open_node(home, DEV_ENV)
    try:
        # No keep-alive: a connection pooled before A restarts would be dead after it.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            keyring = Keyring(node, lambda: http, allow_loopback_http=True)
            return await scenario(PeerClient(node, http, keyring, sessions=True), node, http)
    finally:
        node.close()


def _signed(url: str, body: bytes, key, origin: str) -> list[tuple[str, str]]:
    return signed_request_headers(method="POST", url=url, body=body, content_type="application/json", key=key,
                                  origin=origin)[1]  # fmt: skip


async def _raw_post(http: aiohttp.ClientSession, url: str, headers: list[tuple[str, str]], body: bytes):
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(), response.headers


def test_many_calls_share_one_session_and_answers_are_signed_with_it(two) -> None:
    homes, served = two["homes"], two["served"]
    url_a = served["a"].url

    async def scenario(client: PeerClient, node, http):
        answers = await asyncio.gather(*(client.call(url_a, "POST", PING, body=b"{}",
                                                     content_type="application/json") for _ in range(40)))  # fmt: skip
        assert {a.json()["pong"] for a in answers} == {"a.example.org"}
        # One handshake: every answer was signed with the same session's key, none with A's node key.
        assert len({a.key_id for a in answers}) == 1
        assert answers[0].key_id.startswith("hs-")
        # A knows who is calling: the node key that opened the session.
        assert answers[0].json()["caller_key"] == node.current_keys().identity.public_key.key_id
        return answers[0].key_id

    assert asyncio.run(_with_client(homes["b"], scenario)).startswith("hs-")


def test_replayed_tampered_and_unknown_session_requests_are_refused(two) -> None:
    homes, served = two["homes"], two["served"]
    url_a = served["a"].url

    async def scenario(client: PeerClient, node, http):
        session = await client.open_session(url_a)
        origin = node.config.node.base_url
        headers = _signed(url_a + PING, b"{}", session.signer, origin)
        status, body, answer_headers = await _raw_post(http, url_a + PING, headers, b"{}")
        assert status == 200 and f'keyid="{session.keys.session_id}"' in answer_headers["Signature-Input"]
        # The same bytes again: the sequence number was used.
        status, body, _ = await _raw_post(http, url_a + PING, headers, b"{}")
        assert (status, body["error"]["code"]) == (401, "signature.replayed")
        # A changed body with the same signature.
        fresh = _signed(url_a + PING, b"{}", session.signer, origin)
        status, body, _ = await _raw_post(http, url_a + PING, fresh, b'{"x":1}')
        assert (status, body["error"]["code"]) == (400, "digest.mismatch")
        # Its sequence number was taken when the signature verified, before the body (§11): not again.
        status, body, _ = await _raw_post(http, url_a + PING, fresh, b"{}")
        assert (status, body["error"]["code"]) == (401, "signature.replayed")
        # Signed with a key of the right shape that is not the session's.
        forged = SessionSigner(type(session.keys.to_server)(session.keys.session_id, b"\x07" * 32))
        wrong = _signed(url_a + PING, b"{}", forged, origin)
        status, body, _ = await _raw_post(http, url_a + PING, wrong, b"{}")
        assert (status, body["error"]["code"]) == (401, "signature.invalid")
        # A session A never opened.
        stranger = SessionSigner(type(session.keys.to_server)("hs-" + "Q" * 22, b"\x07" * 32))
        unknown = _signed(url_a + PING, b"{}", stranger, origin)
        status, body, _ = await _raw_post(http, url_a + PING, unknown, b"{}")
        assert (status, body["error"]["code"]) == (401, "signature.session_unknown")
        # A session is opened with the node key, never from inside another session.
        nested = _signed(url_a + SESSION_PATH, offer_body(b"\x09" * 32), session.signer, origin)
        status, body, _ = await _raw_post(http, url_a + SESSION_PATH, nested, offer_body(b"\x09" * 32))
        assert (status, body["error"]["code"]) == (400, "session.offer_invalid")
        # A low-order share: well-formed, but no key can be agreed with it.
        low = _signed(url_a + SESSION_PATH, offer_body(bytes(32)), node.current_keys().identity, origin)
        status, body, _ = await _raw_post(http, url_a + SESSION_PATH, low, offer_body(bytes(32)))
        assert (status, body["error"]["code"]) == (400, "session.offer_invalid")
        # A malformed offer signed with the node key.
        bad = _signed(url_a + SESSION_PATH, b'{"share":"x"}', node.current_keys().identity, origin)
        status, body, _ = await _raw_post(http, url_a + SESSION_PATH, bad, b'{"share":"x"}')
        assert (status, body["error"]["code"], body["error"]["field"]) == (
            400,
            "session.offer_invalid",
            "share",
        )

    asyncio.run(_with_client(homes["b"], scenario))


def test_a_restart_forgets_sessions_and_the_client_opens_a_new_one(two) -> None:
    homes, served = two["homes"], two["served"]
    url_a = served["a"].url

    async def scenario(client: PeerClient, node, http):
        first = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        _, recorded = signed_request_headers(
            method="POST", url=url_a + PING, body=b"{}", content_type="application/json",
            key=client._sessions[url_a].signer, origin=node.config.node.base_url,
        )  # fmt: skip
        served["a"].stop()
        served["a"] = ServedNode(homes["a"], DEV_ENV)
        # A request made in the old session, never sent before: A no longer knows the session.
        status, body, _ = await _raw_post(http, url_a + PING, recorded, b"{}")
        assert (status, body["error"]["code"]) == (401, "signature.session_unknown")
        # The client is told the same, opens a new session and sends again, without the caller noticing.
        second = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        assert second.json()["pong"] == "a.example.org"
        assert second.key_id.startswith("hs-") and second.key_id != first.key_id

    asyncio.run(_with_client(homes["b"], scenario))


def _rotate_and_revoke(home: Path, refreshed_by: Path, domain: str, old_key: str) -> None:
    """`keys rotate --identity`, `keys revoke OLD` at ``home``; the other node learns it (`peers refresh`)."""
    run_cli(home, "keys", "rotate", "--identity", "--as", "ada", env=DEV_ENV)
    run_cli(home, "keys", "revoke", old_key, "--as", "ada", env=DEV_ENV)
    run_cli(refreshed_by, "peers", "refresh", domain, env=DEV_ENV)
    time.sleep(1.1)  # a session re-checks the other side's key at most once a second


def _identity_key_id(node, domain: str) -> str:
    [key] = [k.key_id for k in peer_store.keys(node.db, domain) if k.use == "identity" and k.status != "revoked"]
    return key


def test_revoking_the_key_a_session_was_opened_with_ends_the_session_and_the_client_opens_a_new_one(two) -> None:
    homes, served = two["homes"], two["served"]
    url_a = served["a"].url

    async def scenario(client: PeerClient, node, http):
        first = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        old_key = node.current_keys().identity.public_key.key_id
        recorded = _signed(url_a + PING, b"{}", client._sessions[url_a].signer, node.config.node.base_url)
        # commands run their own event loop
        await asyncio.to_thread(_rotate_and_revoke, homes["b"], homes["a"], "b.example.org", old_key)
        # B's next call is not refused (its outbox would give the job up for good): B signs with its new key
        # now, so it opens a session with that one, and does not try the old one first.
        again = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        new_key = node.current_keys().identity.public_key.key_id
        assert new_key != old_key and again.json()["caller_key"] == new_key
        assert again.key_id.startswith("hs-") and again.key_id != first.key_id
        assert "refused: signature.key_revoked" not in served["a"].log()
        # The old session, which A still holds, is ended by the revocation.
        status, body, _ = await _raw_post(http, url_a + PING, recorded, b"{}")
        assert (status, body["error"]["code"]) == (401, "signature.key_revoked")

    asyncio.run(_with_client(homes["b"], scenario))


def test_a_session_whose_server_key_was_revoked_is_not_used_again(two) -> None:
    homes, served = two["homes"], two["served"]
    url_a = served["a"].url

    async def scenario(client: PeerClient, node, http):
        first = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        a_key = _identity_key_id(node, "a.example.org")
        await asyncio.to_thread(_rotate_and_revoke, homes["a"], homes["b"], "a.example.org", a_key)
        assert {k.key_id: k.status for k in peer_store.keys(node.db, "a.example.org")}[a_key] == "revoked"
        # A would still answer in the session it opened with its revoked key; B does not send in it.
        again = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        assert again.key_id.startswith("hs-") and again.key_id != first.key_id

    asyncio.run(_with_client(homes["b"], scenario))


def test_a_server_ends_the_sessions_its_own_revoked_key_vouched_for(two) -> None:
    homes, served = two["homes"], two["served"]
    url_a = served["a"].url

    async def scenario(client: PeerClient, node, http):
        first = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        a_key = _identity_key_id(node, "a.example.org")
        recorded = _signed(url_a + PING, b"{}", client._sessions[url_a].signer, node.config.node.base_url)

        def rotate_and_revoke() -> None:  # by A's commands; B is not told (no `peers refresh`)
            run_cli(homes["a"], "keys", "rotate", "--identity", "--as", "ada", env=DEV_ENV)
            run_cli(homes["a"], "keys", "revoke", a_key, "--as", "ada", env=DEV_ENV)
            time.sleep(1.1)  # A re-checks a session at most once a second

        await asyncio.to_thread(rotate_and_revoke)
        # A's serving node, which reloaded its keys, no longer holds the session: B opens a new one.
        status, body, _ = await _raw_post(http, url_a + PING, recorded, b"{}")
        assert (status, body["error"]["code"]) == (401, "signature.session_unknown")
        assert f"opened under this node's identity key {a_key}, which it has revoked" in body["error"]["message"]
        # B's client is refused the same way; the refusal, signed with A's new key, teaches it that key and the
        # revocation, and it opens a new session and sends again by itself.
        again = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        assert again.json()["pong"] == "a.example.org"
        assert again.key_id.startswith("hs-") and again.key_id != first.key_id
        assert {k.key_id: k.status for k in peer_store.keys(node.db, "a.example.org")}[a_key] == "revoked"

    asyncio.run(_with_client(homes["b"], scenario))

# -- keys revoked while a request is on its way ----------------------------------------------------------


@pytest.fixture
def a_behind_a_proxy(tmp_path: Path) -> Iterator[tuple[dict[str, Path], str, CuttingProxy]]:
    """A and B serving; B's calls to A go through a proxy that can hold a ping before A sees any of it."""
    proxy_port = free_port()
    homes = {"a": tmp_path / "a.example.org", "b": _district(tmp_path, "b.example.org")}
    init_home(homes["a"], node=node_fields("a.example.org", f"http://127.0.0.1:{proxy_port}"))
    run_cli(homes["a"], "users", "add", "ada", "--email", "ada@a.example.org", "--name", "Ada", "--role", "admin")
    with CuttingProxy(proxy_port, free_port(), path=PING) as proxy:
        a = ServedNode(homes["a"], DEV_ENV, port=proxy.target_port)
        b = ServedNode(homes["b"], DEV_ENV)
        try:
            run_cli(homes["a"], "peers", "add", b.url, "--yes", "--as", "ada", env=DEV_ENV)
            run_cli(homes["b"], "peers", "add", a.url, "--yes", "--as", "ada", env=DEV_ENV)
            yield homes, a.url, proxy
        finally:
            a.stop()
            b.stop()


async def _held_ping(client: PeerClient, url: str, proxy: CuttingProxy, body: bytes = b"{}", after: int = 1
                     ) -> asyncio.Task:  # fmt: skip
    proxy.hold_next_upload(after=after)
    call = asyncio.ensure_future(client.call(url, "POST", PING, body=body, content_type="application/json"))
    assert await asyncio.to_thread(proxy.held.wait, 30), "the ping did not reach the proxy"
    return call


def test_a_request_refused_for_the_key_rotated_while_it_was_on_its_way_is_sent_again_in_a_new_session(
    a_behind_a_proxy,
) -> None:
    homes, url_a, proxy = a_behind_a_proxy

    async def scenario(client: PeerClient, node, http):
        first = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        old_key = node.current_keys().identity.public_key.key_id
        call = await _held_ping(client, url_a, proxy)  # sent in the session opened with the old key
        await asyncio.to_thread(_rotate_and_revoke, homes["b"], homes["a"], "b.example.org", old_key)
        proxy.release()  # A refuses it: signature.key_revoked, which B's new key cures
        answer = await call
        assert answer.json()["caller_key"] == node.current_keys().identity.public_key.key_id != old_key
        assert answer.key_id.startswith("hs-") and answer.key_id != first.key_id

    asyncio.run(_with_client(homes["b"], scenario))


def test_an_answer_in_a_session_whose_server_key_was_revoked_meanwhile_is_not_taken(a_behind_a_proxy) -> None:
    homes, url_a, proxy = a_behind_a_proxy

    async def scenario(client: PeerClient, node, http):
        await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        a_key = _identity_key_id(node, "a.example.org")
        # Held once A has taken the request's head and verified it in the session, before its body is whole:
        # A, which re-checks its own key before it takes a request in a session, not before it answers,
        # answers in the session its key vouched for after that key is revoked.
        padded = b'{"pad":"' + b"x" * 200_000 + b'"}'
        call = await _held_ping(client, url_a, proxy, body=padded, after=150_000)
        await asyncio.to_thread(_rotate_and_revoke, homes["a"], homes["b"], "a.example.org", a_key)
        proxy.release()  # A answers in the session it opened with the key B now knows to be revoked
        with pytest.raises(SignatureKeyRevoked):
            await call
        assert url_a not in client._sessions  # forgotten: the next call opens a new session
        again = await client.call(url_a, "POST", PING, body=b"{}", content_type="application/json")
        assert again.json()["pong"] == "a.example.org"

    asyncio.run(_with_client(homes["b"], scenario))
