"""A directory and two districts on loopback: join, approval, search, signed requests, attacks, rotation."""

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from crypto import IdentityKey
from node.directory_service import sync_mirrors
from node.home import init_home, open_node
from node.keyring import Keyring
from node.signed_http import signed_request_headers
from protocol.content_digest import content_digest_header
from protocol.directory import DirectoryEntry, read_entry
from protocol.http_signatures import HttpRequestView, encode_nonce, sign_request

from support import DEV_ENV, ServedNode, free_port, node_fields, run_cli

DIRECTORY = "directory.example.gov"


def _cli(home: Path, *args: str, ok: bool = True):
    return run_cli(home, *args, ok=ok, env=DEV_ENV)


def _district(tmp: Path, domain: str) -> Path:
    home = tmp / domain
    init_home(home, node=node_fields(domain, f"http://127.0.0.1:{free_port()}"))
    _cli(home, "users", "add", "ada", "--email", f"ada@{domain}", "--name", "Ada", "--role", "admin")
    _cli(home, "contact", "set", "--as", "ada", "--name", f"Coordinator of {domain}", "--title", "Registrar",
         "--email", f"reg@{domain}", "--phone", "+1 217-555-0100")  # fmt: skip
    _cli(home, "transfers", "enable", "--as", "ada")
    return home


class Federation(tuple):
    """(homes, urls), plus the served nodes so a test can stop or replace one."""

    served: dict[str, ServedNode]


@pytest.fixture
def federation(tmp_path: Path):
    directory = tmp_path / DIRECTORY
    _cli(directory, "directory", "init", "--domain", DIRECTORY, "--name", "State Board", "--state", "IL",
         "--city", "Springfield", "--zip", "62777", "--url", f"http://127.0.0.1:{free_port()}")  # fmt: skip
    _cli(
        directory, "users", "add", "op", "--email", "op@example.gov", "--name", "Operator", "--role", "admin"
    )
    homes = {
        "dir": directory,
        "a": _district(tmp_path, "a.example.org"),
        "b": _district(tmp_path, "b.example.org"),
    }
    served = {key: ServedNode(home) for key, home in homes.items()}
    result = Federation((homes, {key: s.url for key, s in served.items()}))
    result.served = served
    try:
        yield result
    finally:
        for node in served.values():
            node.stop()


def _directory_fingerprint(home: Path) -> str:
    info = json.loads(_cli(home, "info", "--json").output)
    return next(k["fingerprint"] for k in info["keys"] if k["use"] == "identity")


def _join_and_approve(homes: dict[str, Path], urls: dict[str, str]) -> None:
    fp = _directory_fingerprint(homes["dir"])
    for key in ("a", "b"):
        assert "pending" in _cli(homes[key], "directory", "join", urls["dir"], "--as", "ada").output
        _cli(homes[key], "directories", "add", urls["dir"], "--fingerprint", fp, "--as", "ada")
    pending = json.loads(_cli(homes["dir"], "directory", "list", "--status", "pending", "--json").output)
    assert {p["domain"] for p in pending} == {"a.example.org", "b.example.org"}
    for domain in ("a.example.org", "b.example.org"):
        _cli(homes["dir"], "directory", "approve", domain, "--as", "op")


def test_join_approve_search_and_signed_exchange(federation) -> None:
    homes, urls = federation
    # Before approval nothing is published.
    fp = _directory_fingerprint(homes["dir"])
    _cli(homes["a"], "directories", "add", urls["dir"], "--fingerprint", fp, "--as", "ada")
    assert json.loads(_cli(homes["a"], "directory", "search", "--json").output)["results"] == []
    wrong = _cli(homes["b"], "directories", "add", urls["dir"], "--fingerprint", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA",
                 "--as", "ada", ok=False)  # fmt: skip
    assert "directory.fingerprint_mismatch" in wrong.stderr
    _join_and_approve(homes, urls)

    found = json.loads(
        _cli(homes["a"], "directory", "search", "shelbyville", "--state", "IL", "--json").output
    )
    [entry] = found["results"]
    assert entry["domain"] == "b.example.org" and entry["transfers_enabled"] is True
    assert entry["coordinator"]["phone"] == "+1 217-555-0100" and entry["directory"] == DIRECTORY
    assert (
        json.loads(_cli(homes["a"], "directory", "search", "--state", "WI", "--json").output)["results"] == []
    )

    # Signed requests both ways; each side learned the other's key from the directory, not by pinning.
    _cli(homes["b"], "directory", "search", "--json")
    assert "b.example.org answered, signed" in _cli(homes["a"], "peers", "ping", "b.example.org").output
    assert "a.example.org answered, signed" in _cli(homes["b"], "peers", "ping", "a.example.org").output
    trust = {p["domain"]: p["trust"] for p in json.loads(_cli(homes["a"], "peers", "list", "--json").output)}
    assert trust["b.example.org"] == "directory"

    # A district switching transfers off updates the directory it joined, which signs its entry again at once:
    # still approved when its operator approved it.
    approved = _own_entry(homes["dir"], "b.example.org")
    time.sleep(1.1)  # times are to the second
    _cli(homes["b"], "transfers", "disable", "--as", "ada")
    assert _search_b(homes["a"])["transfers_enabled"] is False
    updated = _own_entry(homes["dir"], "b.example.org")
    assert updated.issued_at > approved.issued_at and updated.approved_at == approved.approved_at


def _own_entry(directory: Path, domain: str) -> DirectoryEntry:
    with sqlite3.connect(directory / "satchel.db") as db:
        (raw,) = db.execute("SELECT entry FROM directory_entries WHERE domain = ? AND origin = ?",
                            [domain, DIRECTORY]).fetchone()  # fmt: skip
    return read_entry(bytes(raw))[0]


def _search_b(home: Path) -> dict:
    results = json.loads(_cli(home, "directory", "search", "--json").output)["results"]
    return next(r for r in results if r["domain"] == "b.example.org")


def _identity(home: Path, key_file: str = "identity.key") -> IdentityKey:
    return IdentityKey.import_secret((home / "keys" / key_file).read_text())


async def _post(url: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json()


async def _get(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


def _signed(sender: Path, url: str, body: bytes, sender_url: str) -> list[tuple[str, str]]:
    _, headers = signed_request_headers(
        method="POST",
        url=url,
        body=body,
        content_type="application/json",
        key=_identity(sender),
        origin=sender_url,
    )
    return headers


def test_attacks_are_refused_with_their_codes(federation) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    _cli(homes["b"], "directory", "search", "--json")
    ping_b = urls["b"] + "/satchel/v1/ping"
    body = b"{}"

    async def scenario() -> None:
        headers = _signed(homes["a"], ping_b, body, urls["a"])
        assert (await _post(ping_b, headers, body))[0] == 200
        status, error = await _post(ping_b, headers, body)
        assert (status, error["error"]["code"]) == (401, "signature.replayed")

        headers = _signed(homes["a"], ping_b, b'{"x": 1}', urls["a"])
        status, error = await _post(ping_b, headers, b'{"x": 2}')
        assert (status, error["error"]["code"]) == (400, "digest.mismatch")

        # Signed for node A's address but delivered to B: authentic, yet not for B.
        ping_a = urls["a"] + "/satchel/v1/ping"
        headers = [h for h in _signed(homes["a"], ping_a, body, urls["a"])]
        status, error = await _post(ping_b, headers, body)
        assert (status, error["error"]["code"]) == (421, "signature.wrong_destination")

        headers = _expired_headers(homes["a"], ping_b, body, urls["a"])
        status, error = await _post(ping_b, headers, body)
        assert (status, error["error"]["code"]) == (401, "signature.expired")

        status, error = await _post(ping_b, [("Content-Type", "application/json")], body)
        assert (status, error["error"]["code"]) == (401, "signature.missing")

        stranger = IdentityKey.generate()
        _, headers = signed_request_headers(method="POST", url=ping_b, body=body, content_type="application/json",
                                            key=stranger, origin=urls["a"])  # fmt: skip
        status, error = await _post(ping_b, headers, body)
        assert (status, error["error"]["code"]) == (401, "signature.key_unknown")

    asyncio.run(scenario())
    # Refused requests stored nothing: the only nonce B keeps from A is the one accepted request.
    with sqlite3.connect(homes["b"] / "satchel.db") as conn:
        assert conn.execute("SELECT count(*) FROM seen_nonces").fetchone()[0] == 1


def test_a_signed_body_that_arrives_in_pieces_is_read_whole(federation) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    _cli(homes["b"], "directory", "search", "--json")
    ping_b = urls["b"] + "/satchel/v1/ping"
    body = json.dumps({"pad": "x" * 300_000}).encode()

    async def pieces():
        for start in range(0, len(body), 64 * 1024):  # as a slow link delivers it: a piece at a time
            yield body[start : start + 64 * 1024]
            await asyncio.sleep(0.05)

    async def scenario() -> tuple[int, dict]:
        headers = _signed(homes["a"], ping_b, body, urls["a"])
        async with aiohttp.ClientSession() as session, session.post(ping_b, data=pieces(), headers=headers) as answer:
            return answer.status, await answer.json()

    status, answer = asyncio.run(scenario())
    assert (status, answer["caller"]) == (200, "a.example.org")


def _expired_headers(sender: Path, url: str, body: bytes, origin: str) -> list[tuple[str, str]]:
    key = _identity(sender)
    headers = [("Satchel-Origin", origin), ("Content-Type", "application/json"),
               ("Content-Digest", content_digest_header(body)), ("Host", url.split("/")[2])]  # fmt: skip
    view = HttpRequestView(method="POST", target_uri=url, headers=tuple(headers))
    created = int(time.time()) - 1000
    signature = sign_request(
        view, key_id=key.public_key.key_id, sign=key.sign_raw, created=created, expires=created + 300,
        nonce=encode_nonce(os.urandom(16)),
        components=("@method", "@target-uri", "content-digest", "content-type", "satchel-origin"),
    )  # fmt: skip
    return [*headers, *signature]


def test_rotation_keeps_traffic_flowing_and_revocation_stops_the_old_key(federation) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    for key in ("a", "b"):
        _cli(homes[key], "directory", "search", "--json")
    assert "answered" in _cli(homes["a"], "peers", "ping", "b.example.org").output
    old_key = _identity(homes["b"])

    new_key = _cli(homes["b"], "keys", "rotate", "--identity", "--as", "ada").output.split()[3].rstrip(";")
    assert new_key.startswith("ed25519-") and new_key != old_key.public_key.key_id
    # Both directions keep working at once: A learns B's new key through the directory and the chain.
    assert "answered" in _cli(homes["b"], "peers", "ping", "a.example.org").output
    assert "answered" in _cli(homes["a"], "peers", "ping", "b.example.org").output
    keys_seen_by_a = json.loads(_cli(homes["a"], "peers", "show", "b.example.org", "--json").output)["keys"]
    assert new_key in {k["key_id"] for k in keys_seen_by_a}

    # The old key is still within its overlap, so a request it signs is still accepted...
    ping_a = urls["a"] + "/satchel/v1/ping"
    assert asyncio.run(_post(ping_a, _signed_with(old_key, ping_a, urls["b"]), b"{}"))[0] == 200
    # ...until B revokes it; A learns that when it refreshes B (or from the directory) and refuses it.
    _cli(homes["b"], "keys", "revoke", old_key.public_key.key_id, "--as", "ada")
    _cli(homes["a"], "peers", "refresh", "b.example.org")
    status, error = asyncio.run(_post(ping_a, _signed_with(old_key, ping_a, urls["b"]), b"{}"))
    assert (status, error["error"]["code"]) == (401, "signature.key_revoked")
    assert "answered" in _cli(homes["b"], "peers", "ping", "a.example.org").output
    entry = _search_b(homes["a"])
    assert old_key.public_key.key_id not in entry["fingerprints"]


def _signed_with(key: IdentityKey, url: str, origin: str) -> list[tuple[str, str]]:
    _, headers = signed_request_headers(method="POST", url=url, body=b"{}", content_type="application/json",
                                        key=key, origin=origin)  # fmt: skip
    return headers


def test_a_changed_key_without_a_chain_is_refused_loudly(federation, tmp_path: Path) -> None:
    homes, urls = federation
    # A node is not its own peer: pinning its own URL, or sending to its own domain, is refused plainly.
    itself = _cli(homes["a"], "peers", "add", urls["a"], "--yes", "--as", "ada", ok=False)
    assert "is this node itself (a.example.org)" in itself.stderr and "(error code input.invalid)" in itself.stderr
    assert _cli(homes["a"], "peers", "list", "--json").output.count("a.example.org") == 0
    to_self = _cli(homes["a"], "send", "--to", "a.example.org", "--student", "100001", "--as", "ada", ok=False)
    assert "is this district itself" in to_self.stderr and "Field: --to" in to_self.stderr
    _cli(homes["a"], "peers", "add", urls["b"], "--yes", "--as", "ada")
    assert "answered" in _cli(homes["a"], "peers", "ping", "b.example.org").output
    # B is rebuilt from scratch at the same address: a new identity that no old key endorses.
    federation.served["b"].stop()
    impostor = tmp_path / "rebuilt-b"
    init_home(impostor, node=node_fields("b.example.org", urls["b"]))
    federation.served["b"] = ServedNode(impostor)
    refused = _cli(homes["a"], "peers", "refresh", "b.example.org", ok=False)
    assert (
        refused.exit_code == 2 and "descriptor.key_changed" in refused.stderr and "--repin" in refused.stderr
    )
    ping = _cli(homes["a"], "peers", "ping", "b.example.org", ok=False)
    assert "peer.refused" in ping.stderr or "signature.key_unknown" in ping.stderr
    # After the coordinators confirm the new fingerprint by phone, an operator re-pins it.
    _cli(homes["a"], "peers", "add", urls["b"], "--yes", "--repin", "--as", "ada")
    _cli(homes["a"], "peers", "refresh", "b.example.org")


def test_interoperates_with_an_independent_rfc9421_implementation(federation) -> None:
    """PyPI http-message-signatures signs a request the node accepts, and verifies one the node signs."""
    import datetime
    from dataclasses import dataclass

    import http_message_signatures as hms
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from http_message_signatures import algorithms
    from http_message_signatures.structures import CaseInsensitiveDict

    homes, urls = federation
    _cli(homes["b"], "peers", "add", urls["a"], "--yes", "--as", "ada")
    _cli(homes["a"], "peers", "add", urls["b"], "--yes", "--as", "ada")
    seed = (homes["a"] / "keys" / "identity.key").read_text().split()[1]
    import base64

    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed))
    key_id = _identity(homes["a"]).public_key.key_id
    resolver = hms.MappingKeyResolver(
        public_keys={key_id: private.public_key()}, private_keys={key_id: private}
    )

    @dataclass
    class Message:
        method: str
        url: str
        headers: CaseInsensitiveDict

    url = urls["b"] + "/satchel/v1/ping"
    body = b'{"hello": "b"}'
    message = Message("POST", url, CaseInsensitiveDict({"Content-Type": "application/json",
                                                        "Satchel-Origin": urls["a"]}))  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    hms.HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=resolver).sign(
        message, key_id=key_id, label="sig1", nonce=base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="),
        body=body, created=now, expires=now + datetime.timedelta(seconds=120),
        covered_component_ids=("@method", "@target-uri", "content-digest", "content-type", "satchel-origin"),
    )  # fmt: skip
    status, answer = asyncio.run(_post(url, list(message.headers.items()), body))
    assert status == 200 and answer["caller"] == "a.example.org"

    _, ours = signed_request_headers(method="POST", url=url, body=body, content_type="application/json",
                                     key=_identity(homes["a"]), origin=urls["a"])  # fmt: skip
    verifier = hms.HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
    [result] = verifier.verify(Message("POST", url, CaseInsensitiveDict(ours)), body=body)
    assert result.parameters["keyid"] == key_id


def test_working_from_cache_when_the_directory_is_down(federation) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    for key in ("a", "b"):
        _cli(homes[key], "directory", "search", "--json")
    federation.served["dir"].stop()
    result = _cli(homes["a"], "directory", "search", "--json")
    found = json.loads(result.output)
    assert found["from_cache"] == [DIRECTORY]
    assert {r["domain"] for r in found["results"]} == {"a.example.org", "b.example.org"}
    assert "answered" in _cli(homes["a"], "peers", "ping", "b.example.org").output
    assert "answered" in _cli(homes["b"], "peers", "ping", "a.example.org").output


def test_a_national_directory_mirrors_a_state_one(federation, tmp_path: Path) -> None:
    homes, urls = federation
    _join_and_approve(homes, urls)
    # Mirroring itself would take its own entries back as a mirror's, over what members asked for here.
    listed = _cli(homes["dir"], "directory", "list", "--json").output
    itself = _cli(homes["dir"], "directory", "mirror", urls["dir"], "--fingerprint",
                  _directory_fingerprint(homes["dir"]), "--as", "op", ok=False)  # fmt: skip
    assert "is this directory itself" in itself.stderr and "(error code input.invalid)" in itself.stderr
    assert _cli(homes["dir"], "directory", "list", "--json").output == listed
    national = tmp_path / "national.example.gov"
    _cli(
        national,
        "directory",
        "init",
        "--domain",
        "national.example.gov",
        "--name",
        "National Locator",
        "--state",
        "DC",
        "--city",
        "Washington",
        "--zip",
        "20202",
        "--url",
        f"http://127.0.0.1:{free_port()}",
    )
    _cli(national, "users", "add", "nat", "--email", "nat@example.gov", "--name", "Nat", "--role", "admin")
    served = ServedNode(national)
    try:
        out = _cli(national, "directory", "mirror", urls["dir"], "--fingerprint", _directory_fingerprint(homes["dir"]),
                   "--as", "nat").output  # fmt: skip
        assert "2 entries" in out
        # A third district that trusts only the national directory finds B, signed by the state directory.
        c = _district(tmp_path, "c.example.org")
        _cli(
            c,
            "directories",
            "add",
            served.url,
            "--fingerprint",
            _directory_fingerprint(national),
            "--as",
            "ada",
        )
        found = json.loads(_cli(c, "directory", "search", "shelbyville", "--state", "IL", "--json").output)
        [entry] = found["results"]
        assert entry["domain"] == "b.example.org" and entry["directory"] == DIRECTORY
        # Searching needs a state, as a district locator does (the CLI defaults it to the district's own).
        status, error = asyncio.run(_get(served.url + "/satchel/v1/directory/search?q=shelbyville"))
        assert (status, error["error"]["code"]) == (400, "directory.state_required")
        # The feed comes in pages, each signed on its own: pulled one entry per page, both still arrive.
        pulled = asyncio.run(_sync_mirrors_in_process(national, page_size=1))
        assert (pulled[DIRECTORY].entries, pulled[DIRECTORY].removed, pulled[DIRECTORY].pages) == (2, 0, 2)
        # The state directory drops B: the next pull drops it from the national one, so C cannot find it.
        _cli(homes["dir"], "directory", "reject", "b.example.org", "--reason", "left the state", "--as", "op")
        assert f"{DIRECTORY}: 1 entries, 1 removed" in _cli(national, "directory", "sync").output
        found = json.loads(_cli(c, "directory", "search", "shelbyville", "--state", "IL", "--json").output)
        assert found["results"] == []
        audit = json.loads(_cli(national, "audit", "--json").output)
        [removal] = [e for e in audit if e["action"] == "directory.mirror.removed"]
        assert removal["details"] == {"domains": ["b.example.org"], "count": 1}
    finally:
        served.stop()


async def _sync_mirrors_in_process(home: Path, *, page_size: int):
    node = open_node(home, DEV_ENV)
    try:
        async with aiohttp.ClientSession() as http:
            return await sync_mirrors(node, Keyring(node, lambda: http, allow_loopback_http=True),
                                      page_size=page_size)  # fmt: skip
    finally:
        node.close()
