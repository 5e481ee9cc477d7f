"""The outside team's directory client and directory (tests/spec/outsider_directory.py), written from spec/ alone,
reproduces every directory and descriptor vector and works with real nodes on loopback: it verifies a real
directory's signed listings, searches them, follows a member's key rotation and revocation, joins a real directory
as a district, and serves as a directory that a real node trusts and finds a district through."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import outsider_directory as d
import pytest
from aiohttp import web

import outsider_http as o
from support import DEV_ENV, District, ServedNode, free_port, make_district, run_cli, wait_until

SPEC = Path(__file__).resolve().parents[2] / "spec"


def _load(topic: str) -> dict[str, Any]:
    return json.loads((SPEC / "vectors" / topic / "vectors.json").read_text(encoding="utf-8"))


DESCRIPTORS = _load("descriptor")
DIRECTORY = _load("directory")


# --- (a) vectors ---------------------------------------------------------------------------------------------


def test_key_ids_and_fingerprints_of_the_vector_keys() -> None:
    for key in DIRECTORY["keys"]:
        seed = bytes.fromhex(key["seed_hex"])
        public = o.NodeKey.from_seed(seed).public
        assert public.hex() == key["public_key_hex"]
        assert d.o.key_id("ed25519", public) == key["key_id"], key["name"]
        assert o.fingerprint("ed25519", public) == key["fingerprint"], key["name"]


@pytest.mark.parametrize("case", DESCRIPTORS["cases"], ids=lambda c: c["name"])
def test_descriptor_vectors(case: dict[str, Any]) -> None:
    expect = case["expect"]
    document = case["document"].encode("ascii")
    if "error" in expect:
        with pytest.raises(o.Refused) as refused:
            d.read_descriptor(document)
        assert (refused.value.code, refused.value.field) == (expect["error"], expect["field"])
    else:
        descriptor = d.read_descriptor(document, domain=expect["domain"])
        assert descriptor.serves_its_domain() is expect["serves_its_domain"]
        assert descriptor.signed_by in descriptor.vouched()


def _trusted() -> dict[str, list[bytes]]:
    publics = {k["key_id"]: bytes.fromhex(k["public_key_hex"]) for k in DIRECTORY["keys"]}
    return {domain: [publics[kid]] for domain, kid in DIRECTORY["trusted_directories"].items()}


@pytest.mark.parametrize("case", DIRECTORY["cases"], ids=lambda c: c["name"])
def test_directory_entry_vectors(case: dict[str, Any]) -> None:
    expect = case["expect"]
    document = case["document"].encode("ascii")
    assert o.unb64url(o.strict_json(document)["payload"]) == case["payload"].encode("utf-8")
    if "error" in expect:
        with pytest.raises(o.Refused) as refused:
            d.verify_entry(document, _trusted())
        assert (refused.value.code, refused.value.field) == (expect["error"], expect["field"])
        return
    entry = d.verify_entry(document, _trusted())
    assert {k: v for k, v in entry.members.items() if k != "descriptor"} == expect["entry"]
    district = entry.district
    assert {"domain": district.domain, "role": district.role, "name": district.payload["name"],
            "signer_key_id": district.signed_by} == expect["district"]  # fmt: skip
    assert entry.reencodes_to_payload is expect["reencodes_to_payload"]


def test_rotation_vector_chain() -> None:
    """descriptor.md, Key rotation: the rotated descriptor's endorsement and the key chain a peer follows."""
    rotation = DESCRIPTORS["rotation"]
    old = bytes.fromhex(rotation["old_public_key_hex"])
    new_key = rotation["endorsed_key"]
    key = d.Key(new_key["id"], "identity", new_key["alg"], o.unb64url(new_key["public_key"]), new_key["not_before"],
                None)  # fmt: skip
    assert d.endorsement_payload(key, rotation["domain"]).decode() == rotation["endorsement_payload"]
    signature = o.unb64url(new_key["endorsed_by"]["signature"])
    assert d.endorsement_valid(key, rotation["domain"], old, signature)
    for case in rotation["cases"]:
        descriptor = d.read_descriptor(case["document"].encode("ascii"), domain=rotation["domain"])
        book = d.KeyBook(rotation["domain"], {o.key_id("ed25519", old): old})
        if "error" in case["expect"]:
            with pytest.raises(o.Refused) as refused:
                book.accept(descriptor)
            assert refused.value.code == case["expect"]["error"], case["name"]
        else:
            assert book.accept(descriptor) == case["expect"]["chain"], case["name"]
            assert sorted(book.keys) == sorted(case["expect"]["identity_keys"]), case["name"]
            assert sorted(book.revoked) == sorted(case["expect"]["revoked"]), case["name"]


# --- listings the outsider makes and verifies (its own directory side) ---------------------------------------

NOW = "2026-12-06T00:00:00Z"


def _district_doc(key: o.NodeKey, domain: str, **extra: Any) -> bytes:
    keys = [d.key_object("ed25519", "identity", key.public, not_before=NOW)]
    return d.make_descriptor(key, role="district", domain=domain, base_url=f"https://satchel.{domain}",
                             name=f"District {domain}", issued_at=NOW, keys=keys, **extra)  # fmt: skip


def test_listing_entries_are_checked_against_the_listing_signer_and_sources() -> None:
    state, national, district, stranger = (o.NodeKey.generate() for _ in range(4))
    doc = _district_doc(district, "a.example.org")
    own = d.make_entry(national, directory="national.example", descriptor=doc, domain="a.example.org",
                       approved_at=NOW, issued_at=NOW)  # fmt: skip
    mirrored = d.make_entry(state, directory="state.example", descriptor=doc, domain="a.example.org",
                            approved_at=NOW, issued_at=NOW)  # fmt: skip
    forged = d.make_entry(stranger, directory="state.example", descriptor=doc, domain="a.example.org",
                          approved_at=NOW, issued_at=NOW)  # fmt: skip
    listing = d.make_listing(national, directory="national.example", entries=[own, mirrored, forged],
                             issued_at=NOW, sources=[("state.example", state.public)])  # fmt: skip
    read = d.verify_listing(listing, directory="national.example", pinned=national.public)
    assert [e.members["directory"] for e in read.entries] == ["national.example", "state.example"]
    assert [(i, r.code) for i, r in read.dropped] == [(2, "directory.entry_invalid")]
    # Without the source, the mirrored entry's directory is untrusted; another directory's listing is malformed.
    bare = d.make_listing(national, directory="national.example", entries=[mirrored], issued_at=NOW)
    assert [r.code for _, r in d.verify_listing(bare, directory="national.example", pinned=national.public).dropped] \
        == ["directory.untrusted"]  # fmt: skip
    with pytest.raises(o.Refused) as refused:
        d.verify_listing(bare, directory="state.example", pinned=national.public)
    assert (refused.value.code, refused.value.field) == ("message.malformed", "directory")
    with pytest.raises(d.SignerNotPinned):
        d.verify_listing(bare, directory="national.example", pinned=state.public)


def test_null_next_and_truncated_read_as_absent() -> None:
    key = o.NodeKey.generate()
    payload = {"version": 1, "directory": "dir.example", "issued_at": NOW, "sources": [], "entries": [],
               "next": None, "truncated": None}  # fmt: skip
    read = d.verify_listing(o.sign_document(key, d.LISTING, o.canonical_json(payload)), directory="dir.example",
                            pinned=key.public)  # fmt: skip
    assert read.next is None and read.truncated is False


# --- (b) against real nodes on loopback ----------------------------------------------------------------------

DIR_DOMAIN = "directory.example.gov"
OUTSIDE_DISTRICT = "outside.example.org"
OUTSIDE_DIRECTORY = "directory.outside.example"


def _info(home: Path) -> dict[str, Any]:
    return json.loads(run_cli(home, "info", "--json", env=DEV_ENV).output)


def _identity_fingerprint(home: Path) -> str:
    return next(k["fingerprint"] for k in _info(home)["keys"] if k["use"] == "identity" and not k.get("not_after"))


def _served_directory(
    home: Path, domain: str, place: tuple[str, str, str, str], operator: tuple[str, str, str]
) -> Iterator[tuple[Path, str]]:
    """A real directory node at ``home``, serving: ``place`` is its name, state, city and ZIP, ``operator`` its
    admin's user name, e-mail and name."""
    name, state, city, zip_code = place
    run_cli(home, "directory", "init", "--domain", domain, "--name", name, "--state", state, "--city", city,
            "--zip", zip_code, "--url", f"http://127.0.0.1:{free_port()}", env=DEV_ENV)  # fmt: skip
    user, email, full_name = operator
    run_cli(home, "users", "add", user, "--email", email, "--name", full_name, "--role", "admin", env=DEV_ENV)
    served = ServedNode(home, env=DEV_ENV)
    try:
        yield home, served.url
    finally:
        served.stop()


@pytest.fixture
def real_directory(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real directory node, serving; its operator is `op`."""
    yield from _served_directory(tmp_path / DIR_DOMAIN, DIR_DOMAIN, ("State Board", "IL", "Springfield", "62777"),
                                 ("op", "op@example.gov", "Operator"))  # fmt: skip


NATIONAL = "national.example.gov"


@pytest.fixture
def national(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real national directory, serving, mirroring nothing yet; its operator is `nat`."""
    yield from _served_directory(tmp_path / NATIONAL, NATIONAL, ("National", "DC", "Washington", "20001"),
                                 ("nat", "nat@example.gov", "Nat"))  # fmt: skip


@pytest.fixture
def members(tmp_path: Path, real_directory: tuple[Path, str]) -> Iterator[dict[str, District]]:
    """Two real districts, serving, that joined the real directory and were approved."""
    home, url = real_directory
    nodes = {domain: make_district(tmp_path, domain) for domain in ("a.example.org", "b.example.org")}
    for node in nodes.values():
        node.start()
    try:
        for domain, node in nodes.items():
            assert "pending" in node.cli("directory", "join", url, "--as", "coord").output
            run_cli(home, "directory", "approve", domain, "--as", "op", env=DEV_ENV)
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


async def test_the_outsider_verifies_searches_and_walks_a_real_directory(
    real_directory: tuple[Path, str], members: dict[str, District]
) -> None:  # fmt: skip
    home, url = real_directory
    async with aiohttp.ClientSession() as http:
        # The fingerprint the directory's operator reads out is the one the outsider computes from its descriptor.
        pinned = await d.pin_directory(http, url, _identity_fingerprint(home))
        assert pinned.domain == DIR_DOMAIN
        everyone = await d.search(http, pinned, state="IL")
        assert not everyone.dropped and not everyone.truncated
        # By name (Shelbyville before Springfield), not by domain.
        assert [e.members["domain"] for e in everyone.entries] == ["b.example.org", "a.example.org"]
        entry = everyone.entries[0]
        assert entry.members["directory"] == DIR_DOMAIN and entry.signed_by == pinned.key_id
        assert entry.district.base_url == members["b.example.org"].url
        served = await d.fetch_descriptor(http, members["b.example.org"].url, domain="b.example.org")
        assert entry.district.signed_by == served.signed_by
        # By name, city and ZIP prefix, in the state asked for; no state is refused with its code.
        for query in ({"q": "shelby"}, {"city": "Shelbyville"}, {"zip": "625"}, {"q": "b.example.org"}):
            found = await d.search(http, pinned, state="IL", **query)
            assert [e.members["domain"] for e in found.entries] == ["b.example.org"], query
        assert (await d.search(http, pinned, state="WI")).entries == []
        with pytest.raises(o.Refused) as refused:
            await d.search(http, pinned, state=None)
        assert refused.value.code == "directory.state_required"
        # Key look-up, and the mirror feed a page at a time.
        [by_key] = (await d.lookup_key(http, pinned, served.signed_by)).entries
        assert by_key.members["domain"] == "b.example.org"
        fed = await d.walk_feed(http, pinned, limit=1)
        assert [e.members["domain"] for e in fed] == ["a.example.org", "b.example.org"]


async def test_the_outsider_verifies_a_real_mirror_by_its_sources(
    real_directory: tuple[Path, str], members: dict[str, District], national: tuple[Path, str]
) -> None:  # fmt: skip
    home, url = real_directory
    nat_home, nat_url = national
    await asyncio.to_thread(run_cli, nat_home, "directory", "mirror", url, "--fingerprint",
                            _identity_fingerprint(home), "--as", "nat", env=DEV_ENV)  # fmt: skip
    async with aiohttp.ClientSession() as http:
        state = await d.pin_directory(http, url, _identity_fingerprint(home))
        pinned = await d.pin_directory(http, nat_url, _identity_fingerprint(nat_home))
        found = await d.search(http, pinned, state="IL")
        # The national directory signs the listing; each entry keeps the state directory's signature, and the
        # listing vouches for that directory's key in `sources`.
        assert pinned.domain == NATIONAL and found.directory == NATIONAL and not found.dropped
        assert [(e.members["domain"], e.members["directory"]) for e in found.entries] == \
            [("b.example.org", DIR_DOMAIN), ("a.example.org", DIR_DOMAIN)]  # fmt: skip
        assert (DIR_DOMAIN, state.public) in found.sources
        assert all(o.strict_json(e.document)["key_id"] == state.key_id for e in found.entries)
        assert {e.members["domain"] for e in await d.walk_feed(http, pinned, limit=1)} == set(members)


async def _entry_of(http: aiohttp.ClientSession, pinned: d.PinnedDirectory, domain: str) -> d.Entry | None:
    found = await d.search(http, pinned, state="IL", q=domain)
    return next((e for e in found.entries if e.members["domain"] == domain), None)


async def _poll(http: aiohttp.ClientSession, pinned: d.PinnedDirectory, domain: str, condition: Any) -> d.Entry:
    """Wait (in a thread of its own, so the loop runs) until the directory's entry for ``domain`` holds."""
    result: list[d.Entry] = []

    def check() -> bool:
        entry = asyncio.run_coroutine_threadsafe(_entry_of(http, pinned, domain), loop).result()
        if entry is not None and condition(entry):
            result.append(entry)
            return True
        return False

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(wait_until, check, 30)
    return result[-1]


async def test_the_outsider_follows_a_members_rotation_and_revocation(
    real_directory: tuple[Path, str], members: dict[str, District]
) -> None:  # fmt: skip
    home, url = real_directory
    b = members["b.example.org"]
    async with aiohttp.ClientSession() as http:
        pinned = await d.pin_directory(http, url, _identity_fingerprint(home))
        before = await _entry_of(http, pinned, "b.example.org")
        assert before is not None
        old = before.district.signed_by
        book = d.KeyBook("b.example.org", before.district.vouched())
        assert list(book.keys) == [old]

        await asyncio.to_thread(b.cli, "keys", "rotate", "--identity", "--as", "admin")
        rotated = await _poll(http, pinned, "b.example.org", lambda e: e.district.signed_by != old)
        new = rotated.district.signed_by
        # The new key is endorsed by the old one, which stays listed (with an end) during the overlap.
        assert rotated.district.keys[new].endorsed_by == old and rotated.district.keys[old].not_after is not None
        assert book.accept(rotated.district) == [new, old]
        assert set(book.keys) == {old, new}
        # The node's own descriptor says the same as the directory's copy of it.
        served = await d.fetch_descriptor(http, b.url, domain="b.example.org")
        assert served.signed_by == new and d.KeyBook("b.example.org", {old: book.keys[old]}).accept(served)

        await asyncio.to_thread(b.cli, "keys", "revoke", old, "--as", "admin")
        revoked = await _poll(http, pinned, "b.example.org", lambda e: old in e.district.revoked)
        assert old not in revoked.district.keys and revoked.district.signed_by == new
        assert book.accept(revoked.district) == [new]
        assert book.revoked == {old} and list(book.keys) == [new]
        with pytest.raises(o.Refused) as refused:
            book.check_signer(old)
        assert refused.value.code == "descriptor.key_revoked"
        with pytest.raises(o.Refused) as refused:  # the descriptor the old key signed is refused from now on
            book.accept(before.district)
        assert refused.value.code == "descriptor.key_revoked"
        # A peer that pinned only the old key and was away all along still follows: what it endorsed stands.
        late = d.KeyBook("b.example.org", {old: before.district.signer_public})
        assert late.accept(revoked.district) == [new, old] and list(late.keys) == [new]
        # Someone who lists b's new key beside their own signer gains nothing: only the signer is vouched for.
        stranger = o.NodeKey.generate()
        keys = [d.key_object("ed25519", "identity", stranger.public, not_before=NOW),
                d.key_object("ed25519", "identity", book.keys[new], not_before=NOW)]  # fmt: skip
        copied = d.read_descriptor(d.make_descriptor(stranger, role="district", domain="b.example.org",
                                                     base_url=b.url, name="B", issued_at=NOW, keys=keys))  # fmt: skip
        assert list(copied.vouched()) == [stranger.key_id]
        with pytest.raises(o.Refused) as refused:
            late.accept(copied)
        assert refused.value.code == "descriptor.key_changed"


# --- the outsider as a district that joins a real directory ---------------------------------------------------


@pytest.fixture
async def outside_district() -> AsyncIterator[dict[str, Any]]:
    """The outside district: its key(s), the descriptor it serves at its base URL (where a directory fetches it)."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    key = o.NodeKey.generate()
    state: dict[str, Any] = {"key": key, "origin": origin, "outsider": o.Outsider(key=key, origin=origin)}
    state["keys"] = [d.key_object("ed25519", "identity", key.public, not_before=o.format_time(int(time.time())))]
    state["document"] = _outside_descriptor(state)

    async def well_known(request: web.Request) -> web.Response:
        return web.Response(body=state["document"], content_type=d.DESCRIPTOR_TYPE)

    app = web.Application()
    app.router.add_get("/.well-known/satchel", well_known)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield state
    finally:
        await runner.cleanup()


def _outside_descriptor(state: dict[str, Any], revoked: list[str] = []) -> bytes:  # noqa: B006
    return d.make_descriptor(state["key"], role="district", domain=OUTSIDE_DISTRICT, base_url=state["origin"],
                             name="Outside Unified", issued_at=o.format_time(int(time.time())), keys=state["keys"],
                             revoked=revoked, city="Peoria", zip="61602")  # fmt: skip


async def test_the_outsider_joins_a_real_directory_and_rotates_its_key(
    real_directory: tuple[Path, str], outside_district: dict[str, Any]
) -> None:  # fmt: skip
    home, url = real_directory
    me = outside_district
    async with aiohttp.ClientSession() as http:
        pinned = await d.pin_directory(http, url, _identity_fingerprint(home))
        directory = o.verify_descriptor((await d.fetch_descriptor(http, url)).document)
        joined = await d.post_membership(http, me["outsider"], url, me["document"])
        assert joined.response.status == 202 and joined.json() == {"status": "pending", "domain": OUTSIDE_DISTRICT}
        me["outsider"].verify(joined, directory)  # the directory's answer is signed (request-signing.md)
        assert await _entry_of(http, pinned, OUTSIDE_DISTRICT) is None  # nothing published before approval
        await asyncio.to_thread(run_cli, home, "directory", "approve", OUTSIDE_DISTRICT, "--as", "op", env=DEV_ENV)
        listed = await _entry_of(http, pinned, OUTSIDE_DISTRICT)
        assert listed is not None and listed.district.document == me["document"]  # its own bytes, unchanged

        # It rotates: the new key endorsed by the old one, the descriptor signed by the new key, sent as an update.
        old = me["key"]
        new = o.NodeKey.generate()
        now = o.format_time(int(time.time()))
        me["keys"] = [{**me["keys"][0], "not_after": o.format_time(int(time.time()) + 7 * 86400)},
                      d.endorse(old, d.key_object("ed25519", "identity", new.public, not_before=now),
                                OUTSIDE_DISTRICT)]  # fmt: skip
        me["key"] = new
        me["outsider"] = o.Outsider(key=new, origin=me["origin"])
        me["document"] = _outside_descriptor(me)
        updated = await d.post_membership(http, me["outsider"], url, me["document"], update=True)
        assert updated.response.status == 200, updated.json()
        listed = await _entry_of(http, pinned, OUTSIDE_DISTRICT)
        assert listed is not None and listed.district.signed_by == new.key_id
        assert listed.members["approved_at"] <= listed.members["issued_at"]

        # It rotates again and revokes the key the directory knows it by, before its next update reaches the
        # directory: the revoked key still leads to the key it endorsed before its revocation (Joining, step 5).
        third = o.NodeKey.generate()
        now = o.format_time(int(time.time()))
        me["keys"] = [d.endorse(new, d.key_object("ed25519", "identity", third.public, not_before=now),
                                OUTSIDE_DISTRICT)]  # fmt: skip
        me["key"], me["outsider"] = third, o.Outsider(key=third, origin=me["origin"])
        me["document"] = _outside_descriptor(me, revoked=[old.key_id, new.key_id])
        updated = await d.post_membership(http, me["outsider"], url, me["document"], update=True)
        assert updated.response.status == 200, updated.json()
        listed = await _entry_of(http, pinned, OUTSIDE_DISTRICT)
        assert listed is not None and listed.district.signed_by == third.key_id
        assert listed.district.revoked == {old.key_id, new.key_id}
        new = third

        # A key with no endorsement from the listed ones is refused (a rebuilt home must phone the operator): the
        # directory knows the domain's keys, so the request's own signature is refused first (Joining, step 1).
        stranger = o.NodeKey.generate()
        me["key"], me["keys"] = stranger, [d.key_object("ed25519", "identity", stranger.public, not_before=now)]
        me["outsider"] = o.Outsider(key=stranger, origin=me["origin"])
        me["document"] = _outside_descriptor(me)
        refused = await d.post_membership(http, me["outsider"], url, me["document"], update=True)
        assert refused.error_code == "signature.key_unknown", refused.json()
        listed = await _entry_of(http, pinned, OUTSIDE_DISTRICT)
        assert listed is not None and listed.district.signed_by == new.key_id


# --- the outsider as a directory that real nodes join and trust ----------------------------------------------


def _sign_answer(directory: d.OutsideDirectory, received: o.Message | None, status: int, body: bytes,
                 content_type: str) -> web.Response:  # fmt: skip
    """An answer to a signed request is signed over it (request-signing.md); a public read goes unsigned, as its
    listing carries its own signature (directory.md)."""
    if received is None or received.field("signature") is None:
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})
    response = o.Message(headers=[("Content-Type", content_type)], body=body, status=status)
    now = int(time.time())
    o.sign(response, key=directory.key, keyid=directory.key.key_id, alg="ed25519", created=now, expires=now + 60,
           nonce=o.new_nonce(), request=received)  # fmt: skip
    return web.Response(status=status, body=body, headers=response.headers)


def _error(directory: d.OutsideDirectory, received: o.Message | None, status: int, code: str) -> web.Response:
    body = o.canonical_json({"error": {"code": code, "message": code}})
    return _sign_answer(directory, received, status, body, "application/json")


@pytest.fixture
async def outside_directory() -> AsyncIterator[d.OutsideDirectory]:
    port = free_port()
    key = o.NodeKey.generate()
    directory = d.OutsideDirectory(key=key, domain=OUTSIDE_DIRECTORY, base_url=f"http://127.0.0.1:{port}")
    http = aiohttp.ClientSession()

    def received_of(request: web.Request, body: bytes) -> o.Message:
        return o.Message(headers=list(request.headers.items()), body=body, method=request.method,
                         target_uri=f"http://{request.host}{request.raw_path}")  # fmt: skip

    async def well_known(request: web.Request) -> web.Response:
        return web.Response(body=directory.document, content_type=d.DESCRIPTOR_TYPE)

    def listing(request: web.Request, found: list[d.Descriptor], **more: Any) -> web.Response:
        body = directory.listing(found, o.format_time(int(time.time())), **more)
        return _sign_answer(directory, received_of(request, b""), 200, body, d.LISTING_TYPE)

    async def search(request: web.Request) -> web.Response:
        q = request.query
        if not q.get("state"):
            return _error(directory, received_of(request, b""), 400, "directory.state_required")
        found = [x for x in directory.published() if d.search_matches(
            x, state=q["state"], q=q.get("q", ""), city=q.get("city", ""), zip=q.get("zip", ""))]  # fmt: skip
        return listing(request, found[:100], truncated=len(found) > 100)

    async def keys(request: web.Request) -> web.Response:
        keyid = request.match_info["keyid"]
        return listing(request, [x for x in directory.published() if keyid in x.keys])

    async def entries(request: web.Request) -> web.Response:
        after, limit = request.query.get("after", ""), int(request.query.get("limit", "1000"))
        ordered = sorted((x for x in directory.published() if x.domain.encode() > after.encode()),
                         key=lambda x: x.domain.encode())  # fmt: skip
        page = ordered[:limit]
        return listing(request, page, next=page[-1].domain if len(ordered) > limit else None)

    async def membership(request: web.Request) -> web.Response:
        received = received_of(request, await request.read())
        try:
            status, answer = await directory.handle_membership(http, received, update=request.path.endswith("update"),
                                                               now=int(time.time()))  # fmt: skip
        except o.Refused as refused:
            return _error(directory, received, 403 if refused.code.startswith("descriptor") else 400, refused.code)
        return _sign_answer(directory, received, status, o.canonical_json(answer), "application/json")

    app = web.Application()
    app.router.add_get("/.well-known/satchel", well_known)
    app.router.add_get("/satchel/v1/directory/search", search)
    app.router.add_get("/satchel/v1/directory/keys/{keyid}", keys)
    app.router.add_get("/satchel/v1/directory/entries", entries)
    app.router.add_post("/satchel/v1/directory/join", membership)
    app.router.add_post("/satchel/v1/directory/update", membership)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield directory
    finally:
        await runner.cleanup()
        await http.close()


async def test_real_nodes_join_and_trust_an_outside_directory(
    tmp_path: Path, outside_directory: d.OutsideDirectory, national: tuple[Path, str]
) -> None:  # fmt: skip
    directory = outside_directory
    # The CLI runs its own event loop, so it runs in a thread here while this loop serves the outside directory.
    a, b = [await asyncio.to_thread(make_district, tmp_path, domain) for domain in ("a.example.org", "b.example.org")]
    for node in (a, b):
        await asyncio.to_thread(node.start)
    try:
        # B joins the outside directory: the outsider verifies its signed request and descriptor, then approves.
        joined = await asyncio.to_thread(b.cli, "directory", "join", directory.base_url, "--as", "coord")
        assert "pending" in joined.output, joined.output
        assert directory.members["b.example.org"].status == "pending"
        directory.approve("b.example.org", o.format_time(int(time.time())))
        # A pins the outside directory by the fingerprint its operator reads out, and finds B through it.
        fingerprint = o.fingerprint("ed25519", directory.key.public)
        await asyncio.to_thread(a.cli, "directories", "add", directory.base_url, "--fingerprint", fingerprint, "--as",
                                "admin")  # fmt: skip
        found = json.loads((await asyncio.to_thread(a.cli, "directory", "search", "shelby", "--json")).output)
        [result] = found["results"]
        assert result["domain"] == "b.example.org" and result["directory"] == OUTSIDE_DIRECTORY, found
        # B switches transfers off: its node sends the update, which the outsider takes as a member's.
        await asyncio.to_thread(b.cli, "transfers", "disable", "--as", "coord")
        updated = lambda: directory.members["b.example.org"].descriptor.payload["transfers_enabled"] is False  # noqa: E731
        await asyncio.to_thread(wait_until, updated)
        assert directory.members["b.example.org"].status == "approved"
        # A real national directory mirrors the outside one, walking its feed: its listings vouch for the
        # outsider's key in `sources`, and the outsider's entry for B reaches A's peers unchanged.
        nat_home, nat_url = national
        fingerprint_nat = await asyncio.to_thread(_identity_fingerprint, nat_home)
        await asyncio.to_thread(run_cli, nat_home, "directory", "mirror", directory.base_url, "--fingerprint",
                                fingerprint, "--as", "nat", env=DEV_ENV)  # fmt: skip
        async with aiohttp.ClientSession() as http:
            pinned = await d.pin_directory(http, nat_url, fingerprint_nat)
            [mirrored] = (await d.search(http, pinned, state="IL")).entries
            assert mirrored.members["directory"] == OUTSIDE_DIRECTORY and mirrored.members["domain"] == "b.example.org"
            assert (OUTSIDE_DIRECTORY, directory.key.public) in (await d.search(http, pinned, state="IL")).sources
        # A knows B's key from the outside directory: it pings B, signed both ways.
        ping = await asyncio.to_thread(a.cli, "peers", "ping", "b.example.org")
        assert "b.example.org answered, signed" in ping.output, ping.output

        # The outside directory rotates its key: listings signed by the new key, its entries still by the old one,
        # which they vouch for in `sources`. A follows the endorsement to the new key and still finds B.
        old = directory.rotate(int(time.time()))
        assert await asyncio.to_thread(_search_domains, a) == {"b.example.org": OUTSIDE_DIRECTORY}
        trusted = json.loads((await asyncio.to_thread(a.cli, "directories", "list", "--json")).output)["trusted"]
        assert [t["key_id"] for t in trusted] == [directory.key.key_id]
        followed = json.loads((await asyncio.to_thread(a.cli, "audit", "--json")).output)
        assert any(e["action"] == "directories.key_followed" and e["details"]["from"] == old.key_id for e in followed)
        # Signed again with the new key, the listing names no earlier key; A reads it all the same, and reads
        # `"next": null, "truncated": null` as their absence (directory.md: a receiver MUST accept both forms).
        directory.entry_key, directory.nulls = None, True
        assert await asyncio.to_thread(_search_domains, a) == {"b.example.org": OUTSIDE_DIRECTORY}
        # An impostor's key, with no endorsement from the pinned one, is refused with the hint to phone.
        directory.key, directory.keys = o.NodeKey.generate(), []
        directory.__post_init__()
        refused = await asyncio.to_thread(a.cli, "directory", "search", "--json", ok=False)
        assert "directory.entry_invalid" in refused.stderr and "--fingerprint" in refused.stderr, refused.stderr
    finally:
        for node in (a, b):
            node.stop()


def _search_domains(node: District) -> dict[str, str]:
    results = json.loads(node.cli("directory", "search", "--json").output)["results"]
    return {r["domain"]: r["directory"] for r in results}
