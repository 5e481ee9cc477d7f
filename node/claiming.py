"""Entering a transfer code at the destination: claim it at its source, then open what arrives.

The code never leaves this node: the claim carries only an identifier and a proof derived from it
(crypto claims). The source answers with the transfer it sealed for us; once the envelope arrives it is
opened at once and previewed, so the coordinator sees the source district and school before anything is
imported, and can go back (which frees the code at its source).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass

from crypto import parse_code, transfer_code_credentials, transfer_code_proof
from node.clock import now_iso
from node.home import Node
from node.import_preview import Preview, preview
from node.operators import authorize, record
from node.peers import PeerUnreachable
from node.runtime import Runtime
from node.transfer_actions import accept, reject
from protocol import MalformedMessage, NotFound, SatchelError
from protocol.json_strict import dumps_canonical, loads_object, take
from protocol.transfer_code import check_usable_here, parse_transfer_code
from storage import peers
from storage import transfers as store
from storage.database import write_transaction

CLAIM_PATH = "/satchel/v1/codes/claims"
ARRIVAL_TIMEOUT = 120.0


class ClaimNotDelivered(SatchelError):
    """The source accepted the claim but its records have not arrived yet."""

    code = "code.not_delivered"
    default_hint = "the source will keep trying; run `satchel claim` with the same code again later"


@dataclass(frozen=True, slots=True)
class Claimed:
    transfer_id: str
    district: str
    school: str
    preview: Preview


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def claim(node: Node, rt: Runtime, *, actor: str | None, text: str, school: str | None) -> Claimed:
    user = authorize(node, actor, "transfers.act")
    transfer_code = parse_transfer_code(text, parse_code=parse_code)
    check_usable_here(transfer_code, own_domain=node.config.node.domain)
    source = transfer_code.source_domain
    peer = peers.get(node.db, source)
    if peer is None:
        raise NotFound(f"{source}, which made this code, is not a known district", field="CODE",
                       hint=f"find it with `satchel directory search {source.split('.')[0]}` first")  # fmt: skip
    code_id, key = await asyncio.to_thread(transfer_code_credentials, transfer_code.code, source)
    nonce = os.urandom(16)
    proof = transfer_code_proof(key, destination=node.config.node.domain, nonce=nonce)
    body = dumps_canonical({"code_id": _b64(code_id), "nonce": _b64(nonce), "proof": _b64(proof)})
    try:
        response = await rt.client.call(peer.base_url, "POST", CLAIM_PATH, body=body,
                                        content_type="application/json", expect_domain=source)  # fmt: skip
    except PeerUnreachable as exc:
        # Nothing retries a claim (only deliveries are retried): the coordinator must enter the code again.
        exc.hint = (f"{source} did not answer, so nothing was claimed and the code is not used up: enter it "
                    f"again later (`satchel claim CODE`), or call {source}'s coordinator if it lasts")  # fmt: skip
        raise
    answer = loads_object(response.body, what=f"{source}'s answer to the claim")  # signed, but still checked
    transfer_id = take(answer, "transfer_id", str, what="the claim's answer")
    # A repeated claim's answer may leave the code out (spec/codes.md §7.5): the first answer's is kept here.
    given_code = take(answer, "envelope_code", str, what="the claim's answer", optional=True)
    with write_transaction(node.db):
        known = node.db.execute(
            "SELECT code FROM code_claims WHERE transfer_id = ?", [transfer_id]
        ).fetchone()
        if known is None and given_code is None:
            raise MalformedMessage(
                f"{source} answered the claim without the code of transfer {transfer_id}, and none is kept here",
                field="envelope_code", hint=f"ask {source}'s transfer coordinator to read you the code of transfer "
                                            f"{transfer_id}, then `satchel accept {transfer_id} --code CODE`",
            )  # fmt: skip
        if known is None:
            node.db.execute(
                "INSERT INTO code_claims (transfer_id, source_domain, code, school, claimed_at) VALUES (?, ?, ?, ?, ?)",
                [transfer_id, source, given_code, school, now_iso()],
            )
            record(node, user.username, "code.claimed", transfer_id, {"source": source})
    envelope_code = known[0] if known else given_code
    await _arrival(node, transfer_id)
    row = store.require(node.db, transfer_id, local_domain=node.config.node.domain)
    if row.state == "received":
        accept(node, actor=user.username, transfer_id=transfer_id, code_text=envelope_code)
    shown = preview(node, actor=user.username, transfer_id=transfer_id, school=school)
    return Claimed(transfer_id, str(answer.get("district", source)), str(answer.get("school", "")), shown)


async def _arrival(node: Node, transfer_id: str) -> None:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while store.get(node.db, transfer_id, local_domain=node.config.node.domain) is None:
        if time.monotonic() > deadline:
            raise ClaimNotDelivered(f"the records for {transfer_id} have not arrived yet")
        await asyncio.sleep(0.3)


def is_claimed(node: Node, transfer_id: str) -> bool:
    return (
        node.db.execute("SELECT 1 FROM code_claims WHERE transfer_id = ?", [transfer_id]).fetchone()
        is not None
    )


def go_back(node: Node, *, actor: str | None, transfer_id: str) -> None:
    """Give the records back: the source frees the code, which can then be entered again."""
    reject(node, actor=actor, transfer_id=transfer_id, reason="the destination went back before importing")
