# protocol/_sigfast.c: the compiled parts of protocol.signature_fast and http_signatures (check_request_headers,
# sign_answer).
from collections.abc import Callable, Iterable

# key id, alg, created, expires, nonce, the component list's text, signature, Content-Digest, base, Signature
_Read = tuple[str, str | None, int, int, str, str, bytes, str | None, bytes, str]

def read_request(
    headers: Iterable[tuple[str, str]],
    method: str,
    target_uri: str,
    label: str,
    require: tuple[str, ...],
    has_body: bool | None,
    /,
) -> _Read | None: ...

def check_request(
    headers: Iterable[tuple[str, str]],
    method: str,
    target_uri: str,
    label: str,
    require: tuple[str, ...],
    has_body: bool | None,
    now: int,
    max_skew: int,
    max_lifetime: int,
    /,
) -> _Read | None: ...

def answer_base(
    status: int,
    content_digest: str,
    content_type: str,
    request_signature: str | None,
    label: str,
    request_label: str,
    created: int,
    expires: int,
    nonce: str,
    alg: str | None,
    key_id: str,
    /,
) -> tuple[str, bytes] | None: ...

def signed_answer(
    status: int,
    content_digest: str,
    content_type: str,
    request_signature: str | None,
    label: str,
    request_label: str,
    created: int,
    expires: int,
    nonce: str,
    key_id: str,
    include_alg: bool,
    sign: Callable[[bytes], bytes],
    /,
) -> tuple[str, str] | None: ...
