"""A real node fed authenticated nonsense: every answer is a coded client error and nothing it stores changes.

The protocol parsers have their own property tests; this one goes through the whole stack of a served node
(signature checks, routing, handlers, storage), as a peer that holds a trusted key but sends anything: any
bytes, JSON or msgpack, under any content type, to every signed endpoint, with path parameters valid or not,
and signed documents whose signature is good but whose payload is arbitrary. A's database, read beside the
running server, must be the same afterwards (but for the replay table, which records every nonce checked).

Public endpoints (a directory's search, key discovery, mirror feed; the descriptor; health) get any path
and query string: each answers 200 or a coded 4xx, and the directory's database does not change.

Then receipts that are well formed and well signed but say anything (any kind, issuer, sequence, digest,
counts) about real transfers in both directions and about unknown ones, one after another, so that later
ones meet the states earlier ones left: each is taken (2xx) or refused with a code (4xx), never a 500, and
A can still show every transfer.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.clock import new_id
from node.home import open_node
from node.http_errors import status_for
from node.signed_http import signed_request_headers
from protocol.receipts import (
    ISSUERS,
    ImportCounts,
    Receipt,
    ReceiptKind,
    SkippedStudents,
    receipt_path,
    sign_receipt,
)
from protocol.signed_document import sign_document

from support import DEV_ENV, FAST_ENVELOPES, District, ServedNode, free_port, make_district, run_cli

# Signed endpoints taking a body; {id} is filled in by the test.
ENDPOINTS = (
    "/satchel/v1/sessions",
    "/satchel/v1/envelopes",
    "/satchel/v1/transfers/{id}/receipts",
    "/satchel/v1/transfers/{id}/messages",
    "/satchel/v1/transfers/{id}/cancel",
    "/satchel/v1/requests",
    "/satchel/v1/requests/{id}/responses",
    "/satchel/v1/codes/claims",
    "/satchel/v1/directory/join",
    "/satchel/v1/directory/update",
)
CONTENT_TYPES = (
    "application/json", "application/msgpack", "application/octet-stream", "text/plain",
    "application/vnd.satchel.envelope", "application/satchel-receipt+json",
    "application/satchel-records-request+json", "application/satchel-request-response+json",
    "application/satchel-directory-entry+json", "multipart/form-data; boundary=x",
)  # fmt: skip
PURPOSES = (
    "satchel/v1/receipt", "satchel/v1/records-request", "satchel/v1/records-response",
    "satchel/v1/directory-entry", "satchel/v1/descriptor",
)  # fmt: skip
ENV = {**DEV_ENV, **FAST_ENVELOPES}
# Tables a refused request may still write: the replay table keeps every nonce it has checked.
CHANGES_ALLOWED = {"seen_nonces"}

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
_objects = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)  # fmt: skip
_maps = st.dictionaries(st.text(max_size=12), _objects, max_size=6)
_payloads = (
    st.binary(max_size=300)
    | _objects.map(lambda o: json.dumps(o).encode())
    | _maps.map(lambda o: json.dumps(o).encode())
    | _maps.map(lambda o: msgpack.packb(o))
)
_path_ids = st.sampled_from(["ulid"]) | st.text(min_size=1, max_size=30)


def _peered(root: Path) -> dict[str, District]:
    """Districts A and B (tests/support.make_district), serving, each having pinned the other."""
    districts = {name: make_district(root, f"{name}.example.org") for name in ("a", "b")}
    for district in districts.values():
        district.start()
    try:
        districts["a"].cli("peers", "add", districts["b"].url, "--yes", "--as", "coord")
        districts["b"].cli("peers", "add", districts["a"].url, "--yes", "--as", "coord")
    except BaseException:
        for district in districts.values():
            district.kill()
        raise
    return districts


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A serving, with B pinned; B's key is all the test needs of B."""
    districts = _peered(tmp_path_factory.mktemp("garbage"))
    try:
        districts["b"].stop()
        b = open_node(districts["b"].home, ENV)
        try:
            yield {"url": districts["a"].url, "db": districts["a"].home / "satchel.db", "b": b}
        finally:
            b.close()
    finally:
        districts["a"].stop()


def _snapshot(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables
                if t not in CHANGES_ALLOWED}  # fmt: skip
    finally:
        conn.close()


def _post(served: dict[str, object], path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    url = str(served["url"]) + path
    b = served["b"]
    _view, headers = signed_request_headers(
        method="POST", url=url, body=body, content_type=content_type, key=b.current_keys().identity,  # type: ignore[attr-defined]
        origin=b.config.node.base_url,  # type: ignore[attr-defined]
    )  # fmt: skip
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path, body=body, headers=dict(headers))
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _check_refused(status: int, answer: dict, path: str) -> None:
    assert status != 500 and 400 <= status < 500, (status, answer, path)
    error = answer["error"]
    assert status_for(error["code"]) == status, (status, error)
    assert error["message"] and "Traceback" not in json.dumps(answer)


def _path(template: str, raw_id: str) -> str:
    return template.replace("{id}", quote(new_id() if raw_id == "ulid" else raw_id, safe=""))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_signed_requests_with_any_body_are_refused_with_a_code_and_change_nothing(served, data) -> None:
    before = _snapshot(served["db"])
    path = _path(data.draw(st.sampled_from(ENDPOINTS)), data.draw(_path_ids))
    body = data.draw(_payloads)
    content_type = data.draw(st.sampled_from(CONTENT_TYPES))
    status, answer = _post(served, path, body, content_type)
    _check_refused(status, answer, path)
    assert _snapshot(served["db"]) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_well_signed_documents_with_any_payload_are_refused_with_a_code_and_change_nothing(
    served, data
) -> None:
    before = _snapshot(served["db"])
    path = _path(data.draw(st.sampled_from(ENDPOINTS)), data.draw(_path_ids))
    purpose = data.draw(st.sampled_from(PURPOSES))
    document = sign_document(purpose, data.draw(_payloads), served["b"].current_keys().identity)
    content_type = data.draw(st.sampled_from(CONTENT_TYPES))
    status, answer = _post(served, path, document, content_type)
    _check_refused(status, answer, path)
    assert _snapshot(served["db"]) == before


@pytest.fixture(scope="module")
def transfers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A serving, with one transfer from B waiting to be accepted and one it sent B that B received."""
    districts = _peered(tmp_path_factory.mktemp("receipts"))
    try:
        ids = {}
        for sender, receiver in (("a", "b"), ("b", "a")):
            sent = districts[sender].cli("send", "--to", f"{receiver}.example.org", "--student", "100001", "--as",
                                         "coord", "--json")  # fmt: skip
            ids[sender] = json.loads(sent.stdout)["transfer_id"]
        districts["b"].stop()  # from here on, B is whatever sends A these receipts
        conn = sqlite3.connect(districts["a"].home / "satchel.db")
        digest = conn.execute(
            "SELECT envelope_digest FROM transfers WHERE transfer_id = ?", [ids["a"]]
        ).fetchone()[0]
        conn.close()
        b = open_node(districts["b"].home, ENV)
        try:
            yield {"url": districts["a"].url, "home": districts["a"].home, "b": b, "outgoing": ids["a"],
                   "incoming": ids["b"], "digest": digest}  # fmt: skip
        finally:
            b.close()
    finally:
        for district in districts.values():
            district.stop()


@st.composite
def _receipts(draw: st.DrawFn, ids: tuple[str, ...], digest: bytes) -> Receipt:
    kind = draw(st.sampled_from(list(ReceiptKind)))
    issuer = draw(st.sampled_from(sorted(ISSUERS[kind])))
    fields = {"envelope_digest": None, "reason": None, "text": None, "reference": None, "counts": None}
    if kind is not ReceiptKind.MESSAGE and draw(st.booleans()):
        fields["envelope_digest"] = draw(st.sampled_from([digest, bytes(32)]))
    if kind is ReceiptKind.DELIVERED:
        fields["envelope_digest"] = fields["envelope_digest"] or digest
    if kind in (ReceiptKind.REJECTED, ReceiptKind.CANCELLED, ReceiptKind.FAILED):
        fields["reason"] = draw(st.sampled_from(["wrong student", "x" * 500]) | st.none())
    if kind is ReceiptKind.REJECTED:
        fields["reason"] = fields["reason"] or "wrong student"
    if kind is ReceiptKind.MESSAGE:
        fields["text"] = draw(st.sampled_from(["please call", "y" * 2000]))
    if kind is ReceiptKind.FAILED:
        fields["reference"] = draw(st.sampled_from(["IMP-7K2Q-9XDR", "ref.1"]))
    if kind is ReceiptKind.IMPORTED:
        total = draw(st.integers(0, 5))
        imported = draw(st.integers(0, total))
        skipped = (SkippedStudents(reason="conflict", count=total - imported),) if imported < total else ()
        fields["counts"] = ImportCounts(students_total=total, students_imported=imported, skipped=skipped)
    return Receipt(
        kind=kind, transfer_id=draw(st.sampled_from(ids)), issuer=issuer, from_domain="b.example.org",
        to_domain="a.example.org", sequence=draw(st.integers(1, 6) | st.integers(1, 1_000_000)),
        created=datetime.now(UTC) - timedelta(seconds=draw(st.sampled_from([0, 0, 3600, 86400 * 400]))),
        **fields,
    )  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_well_formed_receipts_saying_anything_are_taken_or_refused_with_a_code(transfers, data) -> None:
    ids = (str(transfers["outgoing"]), str(transfers["incoming"]), new_id())
    receipt = data.draw(_receipts(ids, transfers["digest"]))
    document = sign_receipt(receipt, transfers["b"].current_keys().identity)
    path = data.draw(
        st.sampled_from([receipt_path(receipt), f"/satchel/v1/transfers/{receipt.transfer_id}/receipts"])
    )
    status, answer = _post(transfers, path, document, "application/satchel-receipt+json")
    if status >= 300:
        _check_refused(status, answer, path)
    for transfer_id in ids[:2]:
        shown = json.loads(
            run_cli(transfers["home"], "transfers", "show", transfer_id, "--json", env=ENV).stdout
        )
        assert shown["transfer_id"] == transfer_id


PUBLIC_GETS = (
    "/satchel/v1/directory/search", "/satchel/v1/directory/keys/{id}", "/satchel/v1/directory/entries",
    "/.well-known/satchel", "/satchel/v1/health",
)  # fmt: skip
_query_values = st.sampled_from(
    ["IL", "il", "", "%", "_", "'", "Shelby%", "62", "a.example.org", "x" * 500]
) | st.text(max_size=20)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A directory serving, with district A's entry approved."""
    root = tmp_path_factory.mktemp("directory")
    home = root / "directory.example.gov"
    run_cli(home, "directory", "init", "--domain", "directory.example.gov", "--name", "State Board", "--state",
            "IL", "--city", "Springfield", "--zip", "62777", "--url", f"http://127.0.0.1:{free_port()}",
            env=ENV)  # fmt: skip
    run_cli(
        home, "users", "add", "op", "--email", "op@example.gov", "--name", "Op", "--role", "admin", env=ENV
    )
    district = make_district(root, "a.example.org")
    nodes = {"dir": ServedNode(home, ENV), "a": ServedNode(district.home, ENV)}
    try:
        district.cli("directory", "join", nodes["dir"].url, "--as", "coord")
        run_cli(home, "directory", "approve", "a.example.org", "--as", "op", env=ENV)
        key_id = json.loads(district.cli("info", "--json").output)["keys"][0]["id"]
        yield {"url": nodes["dir"].url, "db": home / "satchel.db", "key_id": key_id}
    finally:
        for node in nodes.values():
            node.stop()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_public_endpoints_answer_any_query_with_a_listing_or_a_code(directory, data) -> None:
    before = _snapshot(directory["db"])
    raw_id = data.draw(st.sampled_from([str(directory["key_id"])]) | _path_ids)
    path = _path(data.draw(st.sampled_from(PUBLIC_GETS)), raw_id)
    query = data.draw(
        st.dictionaries(st.sampled_from(["state", "q", "city", "zip", "x"]), _query_values, max_size=4)
    )
    parts = urlsplit(str(directory["url"]))
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path + ("?" + urlencode(query) if query else ""))
        response = conn.getresponse()
        status, body = response.status, response.read()
    finally:
        conn.close()
    if status != 200:
        _check_refused(status, json.loads(body), path)
    assert _snapshot(directory["db"]) == before
