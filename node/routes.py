"""The whole HTTP surface of a node, on one screen.

Routes are authenticated by default (signed requests, spec/request-signing.md); the few public ones opt
out visibly with ``public=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

from node import envelope_resume, handlers, receiving
from node.http_errors import Handler
from protocol.descriptor import WELL_KNOWN_PATH
from protocol.envelope_upload import RESUME_COMPONENTS
from protocol.http_sessions import SESSION_PATH


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    public: bool = False
    streaming: bool = False  # the handler reads the (signed, digest-checked) body as a stream
    covers: tuple[str, ...] = ()  # headers the request's signature must cover, beyond every route's


ROUTES: tuple[Route, ...] = (
    Route("GET", WELL_KNOWN_PATH, handlers.descriptor, public=True),
    Route("GET", "/satchel/v1/health", handlers.health, public=True),
    Route("POST", "/satchel/v1/ping", handlers.ping),
    # Sessions (spec/request-signing.md §11): one node-key handshake, then HMAC-signed requests.
    Route("POST", SESSION_PATH, handlers.open_session),
    # Push transfers (spec/transfer.md): the envelope streams in; receipts, messages and cancellations follow.
    Route("POST", "/satchel/v1/envelopes", receiving.receive_envelope, streaming=True),
    # An upload that broke off (§4.1): how much of it is here, then the rest.
    Route("GET", "/satchel/v1/envelopes/{envelope_id}/upload", envelope_resume.upload_state),
    Route("PATCH", "/satchel/v1/envelopes/{envelope_id}", envelope_resume.resume_envelope, streaming=True,
          covers=RESUME_COMPONENTS),
    Route("POST", "/satchel/v1/transfers/{transfer_id}/receipts", receiving.receive_receipt),
    Route("POST", "/satchel/v1/transfers/{transfer_id}/messages", receiving.receive_receipt),
    Route("POST", "/satchel/v1/transfers/{transfer_id}/cancel", receiving.receive_receipt),
    # Records requests (spec/requests.md): the new district asks, the previous one answers.
    Route("POST", "/satchel/v1/requests", handlers.records_request),
    Route("POST", "/satchel/v1/requests/{request_id}/responses", handlers.records_request_response),
    # Transfer codes (spec/codes.md §7): a destination proves it knows a code; the source seals the records.
    Route("POST", "/satchel/v1/codes/claims", handlers.code_claim),
    # Directory role (spec/directory.md): joining and updating are signed; reading is public.
    Route("POST", "/satchel/v1/directory/join", handlers.directory_join),
    Route("POST", "/satchel/v1/directory/update", handlers.directory_update),
    Route("GET", "/satchel/v1/directory/search", handlers.directory_search, public=True),
    Route("GET", "/satchel/v1/directory/keys/{key_id}", handlers.directory_keys, public=True),
    Route("GET", "/satchel/v1/directory/entries", handlers.directory_entries, public=True),
)
