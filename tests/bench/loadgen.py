"""Load for goal 5, from its own process: `python -m tests.bench.loadgen URL --count N --seconds S`.

Every request is built (and, with --sign-home, signed as that node: its own nonce and signature, as a
peer signs `satchel peers ping`; with --session too, signed in a session that node opened with the
server first, spec/request-signing.md §11, as a serving node signs) before the clock starts, so the
client spends its time on sockets only.
A few keep-alive connections each send a request and read the whole response before sending the next;
the run stops when the requests are used up or the time is over, whichever comes first. Prints one JSON
line: requests completed, seconds, rate, and the count of each HTTP status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

BODY = b"{}"


def _raw(url: str, headers: list[tuple[str, str]]) -> bytes:
    path = urlsplit(url).path
    lines = [f"POST {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers),
             f"Content-Length: {len(BODY)}"]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + BODY


def build(url: str, count: int, sign_home: Path | None, *, session: bool = False) -> list[bytes]:
    """``count`` ready-to-send requests; signed ones differ in nonce and signature."""
    authority = urlsplit(url).netloc
    if sign_home is None:
        plain = [("Host", authority), ("Content-Type", "application/json")]
        return [_raw(url, plain)] * count
    from node.home import open_node
    from node.signed_http import SessionSigner, signed_request_headers

    node = open_node(sign_home, {"SATCHEL_FEDERATION_DEV_LOOPBACK": "1"})  # the bench runs on loopback http
    try:
        key: object = node.current_keys().identity
        origin = node.config.node.base_url
        if session:
            key = asyncio.run(_open_session(node, url)).signer
    finally:
        node.close()
    assert isinstance(key, SessionSigner) or not session
    requests = []
    for _ in range(count):
        _, headers = signed_request_headers(method="POST", url=url, body=BODY, content_type="application/json",
                                            key=key, origin=origin)  # type: ignore[arg-type]  # fmt: skip
        requests.append(_raw(url, headers))
    return requests


async def _open_session(node: object, url: str) -> object:
    """The real handshake, as the node's own peer client does it (node-key signed both ways)."""
    from node.runtime import runtime

    parts = urlsplit(url)
    async with runtime(node) as rt:  # type: ignore[arg-type]
        return await rt.client.open_session(f"{parts.scheme}://{parts.netloc}")


async def _connection(url: str, requests: list[bytes], deadline: float, statuses: Counter[int]) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        while requests and time.perf_counter() < deadline:
            writer.write(requests.pop())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            statuses[int(head[9:12])] += 1
    finally:
        writer.close()


async def load(url: str, requests: list[bytes], seconds: float, connections: int) -> dict[str, object]:
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(url, requests, started + seconds, statuses) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    done = sum(statuses.values())
    return {"requests": done, "seconds": elapsed, "rate": done / elapsed, "statuses": dict(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=10_000, help="requests built, at most sent")
    parser.add_argument("--seconds", type=float, default=4.0, help="stop after this long")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--sign-home", type=Path, help="sign each request as the node in this home")
    parser.add_argument("--session", action="store_true", help="with --sign-home: sign in a session (§11)")
    parser.add_argument(
        "--distinct", type=int, help="build only this many requests and send them over and over (for a "
        "server that keeps no replay store, so that signing does not dominate the run)",
    )  # fmt: skip
    args = parser.parse_args()
    built = time.perf_counter()
    distinct = min(args.count, args.distinct or args.count)
    pool = build(args.url, distinct, args.sign_home, session=args.session)
    # Sent by pop(): reversed, so they go out in the order built (a session's sequence numbers ascend).
    requests = (pool * -(-args.count // distinct))[: args.count][::-1]
    built = time.perf_counter() - built
    result = asyncio.run(load(args.url, requests, args.seconds, args.connections))
    print(json.dumps({**result, "build_seconds": built}))


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2]
    sys.path[:0] = [str(root)]
    main()
