"""The one table from error codes to HTTP statuses, and the canonical JSON error body.

Body: ``{"error": {"code": "...", "message": "...", "field": "...", "hint": "..."}}`` (spec/errors.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from node.clock import new_id
from protocol import SatchelError
from storage.errors import as_storage_error

log = logging.getLogger("satchel.http")

# Prefix rules keep the table short; exact codes override prefixes.
STATUS_BY_CODE: dict[str, int] = {
    "satchel.internal": 500,
    "input.invalid": 400,
    "message.malformed": 400,
    "signature.invalid": 401,
    "not_found": 404,
    "conflict": 409,
    "storage.error": 500,
    "storage.busy": 503,
    "signature.key_lookup_limited": 503,
    "storage.full": 507,
    "transfer.unlisted_inbox_full": 507,  # 5xx: the sender's outbox tries again later
    "storage.schema_newer": 500,
    "storage.database_damaged": 500,
    "storage.permission_denied": 500,
    "transfer.envelope_missing": 500,
    "server.cannot_listen": 500,
    "server.busy": 503,
    "server.address_busy": 503,
    "backup.incomplete": 500,
    "backup.destination_failed": 500,
    "storage.blob_missing": 500,
    "storage.blob_corrupt": 500,
    "audit.chain_broken": 500,
    "config.invalid": 500,
    "home.missing": 500,
    "home.keys_expired": 500,
    "home.exists": 409,
    "operator.required": 401,
    "operator.unknown": 403,
    "operator.disabled": 403,
    "operator.forbidden": 403,
    "descriptor.mismatch": 400,
    "descriptor.key_not_listed": 400,
    "roster.rows_invalid": 422,
    "roster.ids_held": 422,
    "assessments.rows_invalid": 422,
    "http.body_too_large": 413,
    "http.body_stalled": 408,
    "http.body_incomplete": 400,
    "http.content_encoding": 415,
    "signature.malformed": 400,
    "session.offer_invalid": 400,
    "signature.wrong_destination": 421,
    "descriptor.key_changed": 409,
    "descriptor.key_revoked": 401,
    "directory.domain_not_verified": 403,
    "directory.entry_invalid": 502,
    "directory.entry_outdated": 409,
    "directory.fingerprint_mismatch": 400,
    "directory.not_a_directory": 404,
    "directory.not_member": 403,
    "directory.state_required": 400,
    "directory.untrusted": 502,
    "peer.origin_not_allowed": 400,
    "peer.refused": 502,
    "envelope.unsupported_version": 422,
    "envelope.unsupported_suite": 422,
    "envelope.unsupported_content_type": 422,
    "envelope.too_large": 413,
    "envelope.signature_invalid": 401,
    "envelope.not_recipient": 403,
    "envelope.expired": 410,
    "envelope.not_yet_valid": 422,
    "envelope.weak_kdf_params": 422,
    "envelope.excessive_kdf_params": 422,
    "envelope.wrong_code_or_key": 403,
    "envelope.corrupt": 422,
    "envelope.manifest_mismatch": 422,
    "envelope.document_digest_mismatch": 422,
    "envelope.payload_length_mismatch": 409,
    "manifest.malformed": 422,
    "manifest.signature_invalid": 401,
    "code.typo": 422,
    "transfer.transition_not_allowed": 409,
    "transfer.already_accepted": 409,
    "transfer.locked": 423,
    "transfer.expired": 410,
    "transfer.rejected": 409,
    "transfer.cancelled": 409,
    "transfer.actor_not_allowed": 403,
    "transfer.envelope_conflict": 409,
    "transfer.upload_unknown": 404,  # nothing kept of that envelope from the caller: it sends it whole
    "transfer.upload_offset_mismatch": 409,
    "transfer.upload_in_progress": 409,  # retried: the other upload ends or times out
    "transfer.wrong_code": 403,
    "transfer.disabled": 403,
    "transfer.too_large": 413,
    "receipt.invalid": 400,
    "receipt.unsupported_version": 400,
    "receipt.wrong_signer": 401,
    "receipt.mismatch": 409,
    "receipt.conflict": 409,
    "thread.full": 409,
    "receipt.digest_mismatch": 409,
    "request.invalid": 400,
    "request.unsupported_version": 400,
    "request.wrong_signer": 401,
    "request.mismatch": 409,
    "request.not_received": 409,
    "request.answer_deferred": 409,
    "request.student_not_enrolled": 422,
    "request.student_not_matched": 409,
    "request.transition_not_allowed": 409,
    "request.already_answered": 409,
    "request.cancelled": 409,
    "request.actor_not_allowed": 403,
    "code.source_invalid": 400,
    "code.same_node": 400,
    "code.unknown": 404,
    "code.wrong_destination": 403,
    "code.used": 410,
    "code.expired": 410,
    "code.revoked": 410,
    "code.locked": 423,
    "code.in_use": 409,
    "code.no_students": 409,
    "code.throttled": 429,
    "code.transition_not_allowed": 409,
    "code.actor_not_allowed": 403,
    "mail.failed": 502,
    "mail.refused": 502,
    "transfer.peer_unknown": 404,
    "transfer.peer_untrusted": 403,
    "transfer.peer_disabled": 409,
    "transfer.deferred": 409,
    "document.provenance_broken": 409,
    "document.active_copy": 409,
    "import.not_ready": 409,
    "import.cancelled": 409,
    "import.decisions_invalid": 422,
    "code.not_delivered": 504,
}

# Codes the HTTP layer itself answers with (no exception class behind them).
HTTP_LAYER_CODES: dict[str, int] = {
    "http.not_found": 404,
    "http.method_not_allowed": 405,
    "http.bad_request": 400,
}
STATUS_BY_CODE.update(HTTP_LAYER_CODES)

STATUS_BY_PREFIX: dict[str, int] = {
    "roster.": 400,
    "assessments.": 400,
    "csv.": 400,
    "envelope.": 400,
    "manifest.": 400,
    "code.": 400,
    "signature.": 401,
    "digest.": 400,
    "structured_field.": 400,
    "msgpack.": 400,
    "peer.": 502,
}


def status_for(code: str) -> int | None:
    if code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code]
    for prefix, status in STATUS_BY_PREFIX.items():
        if code.startswith(prefix):
            return status
    return None


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, hint: str | None = None
) -> web.Response:
    body: dict[str, str] = {"code": code, "message": message}
    if field:
        body["field"] = field
    if hint:
        body["hint"] = hint
    return web.json_response({"error": body}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Codes after which nothing more of the request is coming: its connection closes as soon as the answer is
# sent. Otherwise aiohttp lingers up to 10 s reading what is left of the body (for a client still sending one
# that was refused early), and a stalled body never sends any: the connection, one of server.max_connections,
# was held ten times the idle limit.
_CLOSE_AFTER = frozenset({"http.body_stalled"})


class _LastAnswer(web.Response):
    """The answer after which its connection closes at once (``Connection: close``, no lingering close)."""

    def __init__(self, request: web.BaseRequest, answer: web.Response) -> None:
        super().__init__(body=answer.body, status=answer.status, headers=answer.headers)
        self._closes = request
        self.force_close()

    async def write_eof(self, data: bytes = b"") -> None:
        await super().write_eof(data)
        # Buffered bytes of the answer are still sent: an asyncio transport flushes them before it closes.
        self._closes.protocol.force_close()


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The coded JSON answer to a request whose handling raised ``exc``, which an HTTP redirect is not (the
    caller raises that again: aiohttp sends it).

    node.signed_http's middleware calls it for whatever its handler raised, so a peer never sees a traceback:
    Satchel's errors with their code and status, storage failures as what the peer may do about them, and
    anything else as an internal error with a reference in the log."""
    if isinstance(exc, SatchelError):
        status = status_for(exc.code) or 500
        log.info("request %s %s refused: %s", request.method, request.path, exc.code)
        response = error_response(status, exc.code, exc.message, field=exc.field, hint=exc.hint)
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int):
            response.headers["Retry-After"] = str(retry_after)
        if exc.code in _CLOSE_AFTER:
            return _LastAnswer(request, response)
        return response
    if isinstance(exc, web.HTTPException):
        code = {404: "http.not_found", 405: "http.method_not_allowed"}.get(exc.status, "http.bad_request")
        return error_response(exc.status, code, exc.reason)
    known = as_storage_error(exc)
    if known is not None:
        # The operator reads what and where (no business of the peer); the peer, that it may retry.
        log.warning("request %s %s failed: %s; %s", request.method, request.path, known.message, known.hint)
        told = "this node's disk is full" if known.code == "storage.full" else "this node cannot use its storage"
        return error_response(
            status_for(known.code) or 500, known.code, told,
            hint="try again later; the node's operator has been told in its log",
        )  # fmt: skip
    # Never a traceback to a peer: log it here under a reference a person can quote.
    reference = new_id()
    log.error("internal error, reference %s", reference, exc_info=exc)
    return error_response(
        500,
        "satchel.internal",
        f"internal error (reference {reference})",
        hint="tell the node's operator this reference",
    )
