"""Answers put in place of AWS's on botocore's `before-send` event: botocore parses them (and
retries them) exactly as it would the service's, which a Stubber or a mock would skip."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def answer(status: int, body: str) -> AWSResponse:
    """An HTTP answer with this status and body."""
    return AWSResponse("https://aws.injected", status, {}, _Raw(body.encode()))


def query_error(code: str, status: int, message: str = "") -> AWSResponse:
    """An error of the query protocol's services (EC2's, CloudFormation's and S3's parsers read
    the Code and Message elements wherever they are nested)."""
    text = message or f"injected {code}"
    return answer(
        status,
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{text}</Message>"
        "</Error></Errors><RequestID>injected</RequestID></Response>",
    )
