# protocol/_sigfast.c: the compiled request reader (see there and protocol.signature_fast.read_request).
from collections.abc import Iterable

def read_request(
    headers: Iterable[tuple[str, str]],
    method: str,
    target_uri: str,
    label: str,
    require: tuple[str, ...],
    has_body: bool | None,
    /,
) -> tuple[str, str | None, int, int, str, str, bytes, str | None, bytes] | None: ...
