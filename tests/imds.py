"""A stand-in for the EC2 instance metadata service that insists on IMDSv2 tokens."""

from __future__ import annotations

import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeImds:
    def __init__(self, instance_id: str) -> None:
        token = secrets.token_hex(8)
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_PUT(self) -> None:
                outer.requests.append(f"PUT {self.path}")
                ok = self.path == "/latest/api/token" and self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                )
                self._reply(200 if ok else 400, token if ok else "")

            def do_GET(self) -> None:
                outer.requests.append(f"GET {self.path}")
                if self.headers.get("X-aws-ec2-metadata-token") != token:
                    self._reply(401, "")  # IMDSv1 is disabled on our instances
                elif self.path == "/latest/meta-data/instance-id":
                    self._reply(200, instance_id)
                else:
                    self._reply(404, "")

            def _reply(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
