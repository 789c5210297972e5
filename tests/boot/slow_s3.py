"""The booted worker's AWS endpoint: a pass-through proxy in front of moto that records
every request and can make S3 slow for chosen objects.

Why: the boot test needs jobs that are still running when the daemon is killed or stopped.
Real processors on generated files finish in seconds; a real S3 download can take minutes
(a big object, a throttled link). So the first downloads of a chosen key are sent at a
capped rate, in chunks small enough that no read waits anywhere near the client's timeout;
later downloads of it go at full speed (the redo after a kill or a release).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

SKIP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "content-length",
}
CHUNK_BYTES = 4096


@dataclass
class Slow:
    bytes_per_second: int
    times: int = 1  # how many downloads of the key are slowed


@dataclass
class Traffic:
    """What the worker asked of S3: (method, "bucket/key") counts, and slow downloads begun."""

    slow: dict[str, Slow] = field(default_factory=dict)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    slow_started: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, path: str) -> Slow | None:
        """Count the call; the rate to send it at, if it is a download still to be slowed."""
        with self.lock:
            self.calls[(method, path)] += 1
            plan = self.slow.get(path)
            if method != "GET" or plan is None or self.slow_started[path] >= plan.times:
                return None
            self.slow_started[path] += 1
            return plan

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return self.calls[(method, path)]


@contextmanager
def slow_s3_proxy(upstream: str, traffic: Traffic) -> Iterator[str]:
    """Serve on a free local port for the block; yields the endpoint URL."""
    target = urlsplit(upstream)
    handler = _handler(str(target.hostname), int(target.port or 80), traffic)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _handler(host: str, port: int, traffic: Traffic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = unquote(urlsplit(self.path).path).lstrip("/")
            plan = traffic.record(self.command, path)
            upstream = http.client.HTTPConnection(host, port, timeout=120)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIP_HEADERS}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in SKIP_HEADERS:
                        self.send_header(k, v)
                # A HEAD has no body but says the object's size, as S3 does: the daemon
                # sizes its scratch reservation (and skips empty objects) by it.
                size = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", size or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self._send(data, plan)
            except (BrokenPipeError, ConnectionResetError):  # the worker was killed mid-download
                self.close_connection = True
            finally:
                upstream.close()

        def _send(self, data: bytes, plan: Slow | None) -> None:
            if plan is None:
                self.wfile.write(data)
                return
            pause = CHUNK_BYTES / plan.bytes_per_second
            for start in range(0, len(data), CHUNK_BYTES):
                self.wfile.write(data[start : start + CHUNK_BYTES])
                self.wfile.flush()
                time.sleep(pause)  # the capped link itself, not a timing assertion

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    return Handler
