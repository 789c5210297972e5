"""The one retry policy for AWS calls, and the classification of errors it relies on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import structlog
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import WaitBaseT

from s3worker.errors import TransientError

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Error codes AWS uses for "slow down" and "try again" across S3, SQS and EC2.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "BandwidthLimitExceeded",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "KMS.ThrottlingException",
        "AWS.SimpleQueueService.ServiceUnavailable",
        "AWS.SimpleQueueService.KmsThrottled",
    }
)
NETWORK_ERRORS = (
    BotocoreConnectionError,  # SSLError, ProxyConnectionError, ...
    IncompleteReadError,  # a body shorter than its Content-Length
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    HTTPClientError,
    ResponseStreamingError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def http_status(exc: BaseException) -> int:
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return 0


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx, timeouts and connection resets are worth another try."""
    if isinstance(exc, (TransientError, *NETWORK_ERRORS)):
        return True
    if isinstance(exc, ClientError):
        return error_code(exc) in TRANSIENT_CODES or http_status(exc) in (429, *range(500, 600))
    return False


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    fn = getattr(state.fn, "__qualname__", repr(state.fn))
    log.warning("aws_retry", call=fn, attempt=state.attempt_number, error=repr(exc))


class RetryPolicy:
    """Exponential backoff with jitter over transient errors; the last error is re-raised."""

    def __init__(self, attempts: int = 5, wait: WaitBaseT | None = None) -> None:
        self._retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(attempts),
            wait=wait
            if wait is not None
            else wait_exponential_jitter(multiplier=0.1, max=10, jitter=0.5),
            before_sleep=_log_retry,
            reraise=True,
        )

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        # The first attempt is made here, outside tenacity (whose set-up costs about a tenth
        # of an AWS call's CPU): almost every call succeeds at once. A transient failure goes
        # to tenacity as its first attempt, so the waits, the log lines and the number of
        # attempts are those of a call tenacity made from the start.
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            seen = [exc]

        # aiobotocore's methods are plain functions returning coroutines, which tenacity would
        # not await: wrap them. A copy per call, as jobs retry concurrently.
        async def attempt() -> T:
            if seen:
                raise seen.pop()
            return await fn(*args, **kwargs)

        attempt.__qualname__ = getattr(fn, "__name__", "call")
        return await self._retrying.copy()(attempt)
