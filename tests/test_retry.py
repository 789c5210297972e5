from __future__ import annotations

import asyncio

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    IncompleteReadError,
    ProxyConnectionError,
    SSLError,
)
from s3worker.errors import BadDataError, TransientError
from s3worker.retry import RetryPolicy, is_transient
from tenacity import wait_none


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("ThrottlingException", 400), True),
        (client_error("RequestLimitExceeded", 400), True),
        (client_error("Whatever", 500), True),
        (client_error("Whatever", 429), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchKey", 404), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (TransientError("x"), True),
        (BadDataError("x"), False),
    ],
)
def test_classification(exc: BaseException, transient: bool):
    assert is_transient(exc) is transient


def test_retries_transient_errors_then_succeeds():
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise client_error("SlowDown", 503)
        return "ok"

    assert asyncio.run(RetryPolicy(5, wait_none()).call(flaky)) == "ok"
    assert len(calls) == 3


def test_gives_up_and_reraises_the_last_error():
    async def always() -> None:
        raise client_error("SlowDown", 503)

    with pytest.raises(ClientError, match="SlowDown"):
        asyncio.run(RetryPolicy(3, wait_none()).call(always))


def test_permanent_errors_are_not_retried():
    calls = []

    async def denied() -> None:
        calls.append(1)
        raise client_error("AccessDenied", 403)

    with pytest.raises(ClientError):
        asyncio.run(RetryPolicy(5, wait_none()).call(denied))
    assert len(calls) == 1


@pytest.mark.parametrize(
    "exc",
    [
        SSLError(endpoint_url="https://x", error="e"),
        ProxyConnectionError(proxy_url="http://p"),
        IncompleteReadError(actual_bytes=1, expected_bytes=2),
    ],
)
def test_botocore_connection_family_is_transient(exc: BaseException):
    assert is_transient(exc)
