"""A node known only from its own web site (trust "web", met through a stranger's Satchel-Origin) is who its
certificate says: it must be served from a host in the domain it claims, or anyone could claim another
district's domain from a host of their own, and squat it (its keys would then refuse the real district's,
met later through a directory, as a key change). And such web-only keys give way to the same domain pinned or
vetted by a directory."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crypto import EncryptionKey, IdentityKey
from node.home import init_home, open_node
from node.keyring import Keyring, OriginNotAllowed
from protocol import SatchelError
from protocol.descriptor import Descriptor, sign_descriptor, verify_descriptor
from storage import peers as peer_store

from support import node_fields, published_key


def _descriptor(identity: IdentityKey, base_url: str, domain: str = "b.example.org") -> bytes:
    return sign_descriptor(Descriptor(
        role="district", domain=domain, name="District B", state="IL", city="Shelbyville", zip="62565",
        nces_id="", base_url=base_url, transfers_enabled=True, coordinator=None,
        keys=(published_key(identity, "identity"), published_key(EncryptionKey.generate(), "encryption")),
        issued_at="2026-12-05T00:00:00Z",
    ), identity)  # fmt: skip


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, so a node can be met over real TLS on loopback."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@asynccontextmanager
async def _served_over_tls(folder: Path, body_for: dict[str, bytes]) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    cert, key = _certificate(folder)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def descriptor(request: web.Request) -> web.Response:
        return web.Response(body=body_for["descriptor"], content_type="application/json")

    app = web.Application()
    app.router.add_get("/.well-known/satchel", descriptor)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=str(cert))
    finally:
        await runner.cleanup()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "a.example.org"
    init_home(home, node=node_fields("a.example.org", "https://a.example.org"))
    return home


def test_a_node_met_by_its_url_alone_must_serve_its_claimed_domain(home: Path, tmp_path: Path) -> None:
    node = open_node(home, {})  # not development mode: origins are https, and certificates count

    async def scenario() -> None:
        body: dict[str, bytes] = {}
        async with _served_over_tls(tmp_path, body) as (url, trusting):
            body["descriptor"] = _descriptor(IdentityKey.generate(), url)  # claims b.example.org from 127.0.0.1
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as http:
                keyring = Keyring(node, lambda: http, allow_loopback_http=False)
                with pytest.raises(OriginNotAllowed, match=r"is not an https URL under b\.example\.org"):
                    await keyring.fetch_peer(url, trust="web")
                assert peer_store.get(node.db, "b.example.org") is None  # nothing squatted
                # An operator who checked the fingerprint by phone may pin it wherever it is served.
                await keyring.fetch_peer(url, trust="pinned", pinned_by="admin")
                assert peer_store.get(node.db, "b.example.org").trust == "pinned"  # type: ignore[union-attr]
                # Met again by its URL (a response signed with a key not seen yet, after a rotation): the domain
                # is pinned, so its key chain guards it, and it stays pinned.
                await keyring.fetch_peer(url, trust="web")
                assert peer_store.get(node.db, "b.example.org").trust == "pinned"  # type: ignore[union-attr]
                await keyring.close()

    try:
        asyncio.run(scenario())
    finally:
        node.close()


def test_keys_from_a_web_site_give_way_to_a_directory_and_not_the_other_way(home: Path) -> None:
    node = open_node(home, {})
    squatter, real, later = IdentityKey.generate(), IdentityKey.generate(), IdentityKey.generate()

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            keyring = Keyring(node, lambda: http, allow_loopback_http=False)
            signed = _descriptor(squatter, "https://b.example.org")
            keyring.store_descriptor(_parse(signed), signed, trust="web", trusted_via="https://b.example.org")
            signed = _descriptor(real, "https://satchel.b.example.org")
            keyring.store_descriptor(_parse(signed), signed, trust="directory", trusted_via="dir.example.gov")
            peer = peer_store.get(node.db, "b.example.org")
            assert peer is not None and peer.trust == "directory"
            ids = {k.key_id for k in peer_store.keys(node.db, "b.example.org") if k.use == "identity"}
            assert ids == {real.public_key.key_id}  # the web site's key is gone with its word
            # Once vetted, a key change from any source is refused loudly, as before.
            signed = _descriptor(later, "https://b.example.org")
            with pytest.raises(SatchelError) as refused:
                keyring.store_descriptor(_parse(signed), signed, trust="web", trusted_via="https://b.example.org")
            assert refused.value.code == "descriptor.key_changed"
            await keyring.close()

    try:
        asyncio.run(scenario())
    finally:
        node.close()


def _parse(signed: bytes) -> Descriptor:
    return verify_descriptor(signed).descriptor
