"""A fault-injecting HTTP proxy in front of the emulator: throttling, 5xx, SlowDown, resets,
added latency, and (opt-in) lost responses: the request is served, the answer never arrives.

Each request is forwarded to the upstream unless the dice say otherwise; the error bodies
are shaped like the real service's, so botocore parses codes exactly as it would from AWS.
"""

from __future__ import annotations

import http.client
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass
class FaultPlan:
    """Error rate per service ('s3', 'sqs', 'ec2') and what was injected.

    `latency`: service -> (probability, max seconds) of an added delay, uniform up to the max.
    `extra`: service -> more fault kinds drawn with the built-in ones (e.g. "lost_response").
    """

    rates: dict[str, float]
    seed: int = 7
    latency: dict[str, tuple[float, float]] = field(default_factory=dict)
    extra: dict[str, list[str]] = field(default_factory=dict)
    injected: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def pick(self, service: str) -> str | None:
        with self._lock:
            if self._random.random() >= self.rates.get(service, 0.0):
                self.forwarded[service] += 1
                return None
            kind = self._random.choice(FAULTS[service] + self.extra.get(service, []))
            self.injected[f"{service}:{kind}"] += 1
            return kind

    def delay(self, service: str) -> float:
        chance, most = self.latency.get(service, (0.0, 0.0))
        with self._lock:
            if not most or self._random.random() >= chance:
                return 0.0
            self.injected[f"{service}:latency"] += 1
            return self._random.uniform(0, most)


# service -> fault kinds; each kind -> (status, content type, body)
FAULTS = {
    "s3": ["SlowDown", "InternalError", "ServiceUnavailable", "reset"],
    "sqs": ["ThrottlingException", "InternalFailure", "ServiceUnavailable", "reset"],
    "ec2": ["RequestLimitExceeded", "InternalError", "reset"],
}


def error_response(service: str, kind: str) -> tuple[int, str, bytes]:
    status = 400 if kind in ("ThrottlingException", "RequestLimitExceeded") else 503
    if kind in ("InternalError", "InternalFailure"):
        status = 500
    if service == "sqs":  # the JSON protocol
        body = f'{{"__type": "com.amazonaws.sqs#{kind}", "message": "injected"}}'
        return status, "application/x-amz-json-1.0", body.encode()
    if service == "ec2":
        error = f"<Error><Code>{kind}</Code><Message>injected</Message></Error>"
        body = f"<Response><Errors>{error}</Errors></Response>"
        return status, "text/xml", body.encode()
    body = f"<Error><Code>{kind}</Code><Message>injected</Message></Error>"
    return status, "application/xml", body.encode()


def service_of(headers: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    # SigV4 credential scope: .../DATE/REGION/SERVICE/aws4_request
    parts = auth.split("Credential=")[-1].split(",")[0].split("/")
    return parts[3] if len(parts) >= 5 else "s3"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client killed mid-request (the chaos run's SIGKILL) is expected, not news.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FaultProxy:
    def __init__(self, upstream: str, plan: FaultPlan) -> None:
        target = urlsplit(upstream)
        self.plan = plan
        handler = _handler(str(target.hostname), int(target.port or 80), plan)
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(host: str, port: int, plan: FaultPlan) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            kind = plan.pick(service_of(headers))
            if delay := plan.delay(service_of(headers)):
                time.sleep(delay)  # the injected latency itself
            if kind == "reset":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if kind and kind != "lost_response":
                self._reply(*error_response(service_of(headers), kind), {})
                return
            upstream = http.client.HTTPConnection(host, port, timeout=60)
            fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            upstream.request(self.command, self.path, body=body, headers=fwd)
            resp = upstream.getresponse()
            data = resp.read()
            extra = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS}
            upstream.close()
            if kind == "lost_response":  # done upstream; the client sees a dropped connection
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self._reply(resp.status, extra.pop("Content-Type", ""), data, extra)

        def _reply(self, status: int, ctype: str, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() != "content-length":
                    self.send_header(k, v)
            if ctype:
                self.send_header("Content-Type", ctype)
            # A HEAD answer has no body but tells the object's length, as the upstream said.
            length = headers.get("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (killed)
                    self.close_connection = True

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

    return Handler
