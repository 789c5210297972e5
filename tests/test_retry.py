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
from structlog.testing import capture_logs
from tenacity import RetryCallState, wait_none


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


def test_a_call_that_fails_is_attempted_waited_for_and_logged_as_tenacity_does() -> None:
    """The first attempt is made outside tenacity: a transient failure of it is tenacity's
    first attempt all the same (its log line, its wait, the attempts left)."""
    calls: list[int] = []
    waits: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise client_error("SlowDown", 503)
        return "ok"

    def wait(state: RetryCallState) -> float:
        waits.append(state.attempt_number)
        return 0.0

    with capture_logs() as logs:
        assert asyncio.run(RetryPolicy(5, wait).call(flaky)) == "ok"
    assert len(calls) == 3
    assert waits == [1, 2]
    assert [(e["event"], e["attempt"], e["call"]) for e in logs] == [
        ("aws_retry", 1, "flaky"),
        ("aws_retry", 2, "flaky"),
    ]


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_a_transient_error_is_tried_as_many_times_as_the_policy_says(attempts: int) -> None:
    calls: list[int] = []

    async def always() -> None:
        calls.append(1)
        raise client_error("SlowDown", 503)

    with pytest.raises(ClientError, match="SlowDown"):
        asyncio.run(RetryPolicy(attempts, wait_none()).call(always))
    assert len(calls) == attempts


def test_arguments_reach_the_call_on_every_attempt() -> None:
    seen: list[tuple[object, ...]] = []

    async def put(key: str, *, body: bytes) -> str:
        seen.append((key, body))
        if len(seen) == 1:
            raise ConnectionResetError()
        return key

    assert asyncio.run(RetryPolicy(3, wait_none()).call(put, "k", body=b"b")) == "k"
    assert seen == [("k", b"b"), ("k", b"b")]
