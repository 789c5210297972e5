"""What a region's network adds to the emulator: a proxy in front of moto with a fixed delay per
call and, for large bodies, a bandwidth cap.

- every request waits `latency` seconds before it is forwarded (one round trip to S3 or SQS
  from an instance in its region is tens of milliseconds; moto answers in about one);
- a body of LARGE_BYTES or more, up or down, is paced: each request at most `stream_rate`
  bytes/s (S3 serves one connection at a fraction of what an instance's network carries) and
  all of them together at most `link_rate` (the instance's network). So one GET stream gets
  `stream_rate`; parallel ranged GETs or multipart parts can fill the link.

Every forwarded call is counted by service and kind (`GET /_proxy/calls` answers the counts so
far, as JSON: no bucket name starts with `_`), so a benchmark can show how many calls each
consumer made per file.

A HEAD answer keeps S3's Content-Length (the object's size, with no body): the daemon sizes
and skips objects by it. It runs in its own process (`python bench/latency_proxy.py ...`),
printing its URL, so its event loop and GIL are not the measured processes'.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiohttp import web

CALLS_PATH = "/_proxy/calls"
# The signing service in `Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/...`.
SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
LARGE_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "upgrade",
    "content-length",
    "content-encoding",
    "expect",  # the proxy has read the whole body before it forwards it
}


class Pacer:
    """A virtual clock for a byte rate: `take(n)` returns when n more bytes may pass."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0

    def due(self, n: int) -> float:
        now = time.monotonic()
        self._next = max(self._next, now) + n / self.rate
        return self._next - now


class Link:
    def __init__(self, latency: float, link_rate: float, stream_rate: float) -> None:
        self.latency = latency
        self.link = Pacer(link_rate) if link_rate else None
        self.stream_rate = stream_rate

    async def pace(self, stream: Pacer | None, n: int) -> None:
        waits = [p.due(n) for p in (self.link, stream) if p is not None]
        if waits and max(waits) > 0:
            await asyncio.sleep(max(waits))

    def stream(self, size: int) -> Pacer | None:
        """A pacer for one body of `size` bytes, or None when it is not paced at all."""
        if size < LARGE_BYTES or not (self.link or self.stream_rate):
            return None
        return Pacer(self.stream_rate) if self.stream_rate else Pacer(float("inf"))


def call_kind(method: str, headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    """`sqs:ReceiveMessage`, `s3:GET`, `s3:PUT?partNumber` ...: what one request is."""
    found = SERVICE.search(headers.get("Authorization", ""))
    service = found.group(1) if found else "?"
    target = headers.get("X-Amz-Target", "")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    marks = sorted(k for k in query if k in ("uploads", "uploadId", "partNumber", "delete"))
    return f"{service}:{method}" + (f"?{'&'.join(marks)}" if marks else "")


def app(upstream: str, link: Link) -> web.Application:
    session: dict[str, aiohttp.ClientSession] = {}
    calls: Counter[str] = Counter()

    async def start(_: web.Application) -> None:
        session["s"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=120),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

    async def stop(_: web.Application) -> None:
        await session["s"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.path == CALLS_PATH:
            return web.json_response(dict(calls))
        calls[call_kind(request.method, request.headers, request.query)] += 1
        await asyncio.sleep(link.latency)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await _body(request, link)
        if not isinstance(body, bytes):  # streamed on as it arrives: keep its length
            headers["Content-Length"] = str(request.content_length)
        async with session["s"].request(
            request.method, upstream + request.path_qs, headers=headers, data=body,
            allow_redirects=False,
        ) as up:  # fmt: skip
            return await _answer(request, up, link)

    application = web.Application(client_max_size=1024**4)
    application.on_startup.append(start)
    application.on_cleanup.append(stop)
    application.router.add_route("*", "/{tail:.*}", forward)
    return application


async def _body(request: web.Request, link: Link) -> bytes | AsyncIterator[bytes]:
    """A small body whole; a large one paced, passed upstream chunk by chunk as it arrives
    (store-and-forward would add the upstream's own transfer time after the cap's)."""
    stream = link.stream(request.content_length or 0)
    if stream is None:
        return await request.read()

    async def paced() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(CHUNK_BYTES):
            await link.pace(stream, len(chunk))
            yield chunk

    return paced()


async def _answer(
    request: web.Request, up: aiohttp.ClientResponse, link: Link
) -> web.StreamResponse:
    response = web.StreamResponse(status=up.status, reason=up.reason)
    for k, v in up.headers.items():
        if k.lower() not in HOP_HEADERS:
            response.headers.add(k, v)
    size = up.headers.get("Content-Length")
    if size is not None:
        response.headers["Content-Length"] = size  # for a HEAD too: the object's size
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    stream = link.stream(int(size or 0))
    async for chunk in up.content.iter_chunked(CHUNK_BYTES):
        if stream is not None:
            await link.pace(stream, len(chunk))
        await response.write(chunk)
    await response.write_eof()
    return response


async def serve(upstream: str, link: Link, port: int) -> None:
    runner = web.AppRunner(app(upstream.rstrip("/"), link), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound: Any = runner.addresses[0]
    print(f"http://127.0.0.1:{bound[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--latency-ms", type=float, default=30)
    parser.add_argument("--link-mib-s", type=float, default=0, help="all large bodies; 0: none")
    parser.add_argument("--stream-mib-s", type=float, default=0, help="one large body; 0: none")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    link = Link(args.latency_ms / 1000, args.link_mib_s * 2**20, args.stream_mib_s * 2**20)
    try:
        asyncio.run(serve(args.upstream, link, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
