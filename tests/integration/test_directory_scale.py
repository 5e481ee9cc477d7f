"""A state directory the size of a real state's: searched in full, and mirrored page by page.

Entries are real: each district's descriptor (identity and hybrid encryption keys) signed, then approved
and signed by the directory through its own code, about 6.5 KB each. A listing of 100 of them is larger
than a generic signed document may be, and a whole state's feed larger than one page.
"""

from __future__ import annotations

import json
from pathlib import Path

from crypto import EncryptionKey, IdentityKey
from node import directory_service
from node.home import init_home, open_node
from protocol.descriptor import Descriptor, sign_descriptor
from protocol.directory import FEED_PAGE_BYTES
from storage import directory as store
from storage.database import write_transaction
from storage.directory import SEARCH_LIMIT

from support import DEV_ENV, ServedNode, free_port, node_fields, published_key, run_cli

STATE = "isbe.example.gov"
NOW = "2026-12-04T00:00:00Z"
DISTRICTS = 450  # more than a feed page holds at about 6.5 KB an entry


def _cli(home: Path, *args: str):
    return run_cli(home, *args, env=DEV_ENV)


def _directory(tmp: Path, domain: str, state: str) -> Path:
    home = tmp / domain
    _cli(home, "directory", "init", "--domain", domain, "--name", f"Directory {domain}", "--state", state,
         "--city", "Capital", "--zip", "62700", "--url", f"http://127.0.0.1:{free_port()}")  # fmt: skip
    _cli(home, "users", "add", "op", "--email", f"op@{domain}", "--name", "Operator", "--role", "admin")
    return home



def _approve_districts(home: Path, count: int) -> int:
    """``count`` districts join (stored pending, as a join stores them) and the operator approves each;
    returns the size of one signed entry."""
    identity, encryption = IdentityKey.generate(), EncryptionKey.generate()
    keys = (published_key(identity, "identity"), published_key(encryption, "encryption"))
    node = open_node(home, DEV_ENV)
    try:
        for i in range(count):
            domain = f"d{i:04}.k12.il.example"
            descriptor = Descriptor(
                role="district", domain=domain, name=f"Community Unit School District {i}", state="IL",
                city="Springfield", zip="62701", nces_id=f"17{i:05}", base_url=f"https://satchel.{domain}",
                transfers_enabled=True, coordinator=None, keys=keys, issued_at=NOW,
            )  # fmt: skip
            with write_transaction(node.db):
                store.upsert_entry(node.db, descriptor, sign_descriptor(descriptor, identity), status="pending",
                                   origin=STATE, entry=None, now=NOW, own=STATE)  # fmt: skip
            directory_service.decide(node, actor="op", domain=domain, approve=True)
        entry = store.get_entry(node.db, "d0000.k12.il.example", STATE)
        assert entry is not None and entry.entry is not None
        return len(entry.entry)
    finally:
        node.close()


def test_a_whole_state_is_searched_and_mirrored(tmp_path: Path) -> None:
    state = _directory(tmp_path, STATE, "IL")
    one = _approve_districts(state, DISTRICTS)
    assert DISTRICTS * one > FEED_PAGE_BYTES  # the feed takes more than one page
    served_state = ServedNode(state)
    national = _directory(tmp_path, "national.example.gov", "DC")
    served_national = ServedNode(national)
    try:
        info = json.loads(_cli(state, "info", "--json").output)
        fp = next(k["fingerprint"] for k in info["keys"] if k["use"] == "identity")
        out = _cli(national, "directory", "mirror", served_state.url, "--fingerprint", fp, "--as", "op").output
        assert f"{DISTRICTS} entries" in out
        # A district that trusts only the national directory searches the whole state: a full answer.
        district = tmp_path / "c.example.org"
        init_home(district, node=node_fields("c.example.org", f"http://127.0.0.1:{free_port()}"))
        _cli(district, "users", "add", "ada", "--email", "ada@c.example.org", "--name", "Ada", "--role", "admin")
        info = json.loads(_cli(national, "info", "--json").output)
        fp = next(k["fingerprint"] for k in info["keys"] if k["use"] == "identity")
        _cli(district, "directories", "add", served_national.url, "--fingerprint", fp, "--as", "ada")
        found = json.loads(_cli(district, "directory", "search", "--state", "IL", "--json").output)
        assert len(found["results"]) == SEARCH_LIMIT
        assert {r["directory"] for r in found["results"]} == {STATE}
        assert found["truncated"] == ["national.example.gov"]  # and the district is told there is more
        table = _cli(district, "directory", "search", "--state", "IL").output
        assert "national.example.gov has more matches than it shows; narrow the search" in table
        narrow = json.loads(_cli(district, "directory", "search", "District 44", "--state", "IL", "--json").output)
        assert len(narrow["results"]) == 11 and narrow["truncated"] == []  # 44 and 440-449
    finally:
        served_national.stop()
        served_state.stop()
