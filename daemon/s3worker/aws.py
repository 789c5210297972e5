"""The one place that builds AWS clients for the daemon.

botocore's own retries are switched off: transient errors are retried by the one tenacity
policy in `retry.py`, so every retry is classified, logged and bounded in one place.
`AWS_ENDPOINT_URL` and credentials are read by botocore as usual; the region is resolved here
(`resolve_region`), because the pinned botocore reads only `AWS_DEFAULT_REGION` while the
worker's env file, the AWS CLI and the Lambda runtime all set `AWS_REGION`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import datetime
from inspect import isawaitable
from types import TracebackType
from typing import Any, ClassVar

from aiobotocore.config import AioConfig
from aiobotocore.hooks import AioHierarchicalEmitter
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore.context import get_context
from botocore.utils import parse_timestamp as botocore_timestamp
from dateutil.tz import tzutc  # type: ignore[import-untyped]  # botocore's (its dependency)

from s3worker import instance
from s3worker.errors import ConfigError
from s3worker.regions import configured_region

# Longer than SQS's 20-second long poll, so a poll is never cut short by the client.
READ_TIMEOUT_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 5
# An HTTP date as S3 writes it in headers (Last-Modified): "Thu, 03 Dec 2026 14:17:09 GMT".
HTTP_DATE = re.compile(
    r"[A-Z][a-z]{2}, (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT"
)
MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


class SharedTlsSession(AIOHTTPSession):
    """aiobotocore's HTTP session, with one TLS context for every client of the same settings.

    aiobotocore builds a context per client (on its first request), each loading the CA bundle
    again: about 35 ms of CPU apiece, two of them before READY=1. An SSLContext may serve any
    number of connections, so clients with the same verify, certificate and proxy share one.

    aiobotocore builds it in a thread (asyncio.to_thread), and SQS's first request and S3's
    are in flight together at start-up: the lock makes the second wait for the first's context
    rather than load the bundle beside it."""

    _contexts: ClassVar[dict[tuple[Any, ...], Any]] = {}
    _building: ClassVar[threading.Lock] = threading.Lock()

    def _build_ssl_contexts(self, proxy_url: str | None) -> Any:
        # aiobotocore's own (private, of the pinned version); its stubs do not declare them.
        key = tuple(getattr(self, name) for name in ("_verify", "_cert_file", "_key_file"))
        key += (proxy_url,)
        with self._building:
            if key not in self._contexts:
                self._contexts[key] = super()._build_ssl_contexts(proxy_url)  # type: ignore[misc]
            return self._contexts[key]

    @classmethod
    def build_ahead(cls, session: AioSession, config: AioConfig) -> threading.Thread:
        """Build, in a thread, the context the clients of `session` and `config` will ask for
        (without a proxy), while the clients themselves are built: the bundle's load runs
        without the GIL, so it costs the start-up no time where a second core is free. The
        verify value is botocore's (session.create_client, EndpointCreator): the session's
        ca_bundle, else REQUESTS_CA_BUNDLE, else True."""
        verify: Any = session.get_config_variable("ca_bundle")
        if verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or True
        http = cls(verify=verify, client_cert=getattr(config, "client_cert", None))

        def build() -> None:
            with suppress(Exception):  # a bad bundle: the first request says so
                http._build_ssl_contexts(None)

        thread = threading.Thread(target=build, name="tls-context", daemon=True)
        thread.start()
        return thread


class LeanEmitter(AioHierarchicalEmitter):
    """aiobotocore's event emitter, minus its cost per handler: every call emits about ten
    events to about forty handlers, and aiobotocore wraps each handler's answer in a coroutine
    of its own (`resolve_awaitable`) and formats a debug line for it. The same handlers in the
    same order with the same answers; a handler's awaitable answer is awaited as there."""

    async def _emit(
        self, event_name: str, kwargs: dict[str, Any], stop_on_response: bool = False
    ) -> list[tuple[Any, Any]]:
        emitter: Any = self  # botocore's own attributes (of the pinned version), undeclared
        handlers = emitter._lookup_cache.get(event_name)
        if handlers is None:
            handlers = emitter._handlers.prefix_search(event_name)
            emitter._lookup_cache[event_name] = handlers
        elif not handlers:
            return []
        kwargs["event_name"] = event_name
        responses = []
        for handler in handlers:
            response = handler(**kwargs)
            if response is not None and isawaitable(response):
                response = await response
            responses.append((handler, response))
            if stop_on_response and response is not None:
                return responses
        return responses


def cache_user_agent(client: Any) -> Any:
    """`client`, its User-Agent string built once per set of features instead of twice per
    call. botocore rebuilds it for every request (about a hundred small string operations):
    what it is made of is fixed when the client is built (versions, platform, the client's
    config and features) but for the features the call itself records (botocore.context),
    which are the key here, with the client's own (a set botocore may still add to). The
    same header; the features, a set, in the order of the string's first build."""
    creator = client._user_agent_creator  # botocore's (private, of the pinned version)
    build = creator.to_string
    strings: dict[tuple[frozenset[str], frozenset[str] | None], str] = {}

    def to_string() -> str:
        ctx = get_context()
        key = (frozenset(creator._client_features or ()), frozenset(ctx.features) if ctx else None)
        if (found := strings.get(key)) is None:
            found = strings[key] = str(build())
        return found

    creator.to_string = to_string
    return client


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, with the HTTP date of S3's headers read directly: botocore
    hands every one to dateutil (a tenth of a GET's CPU, for its Last-Modified). The same
    datetime (UTC as dateutil's tzutc); anything else goes to botocore's."""
    if isinstance(value, str) and (m := HTTP_DATE.fullmatch(value)) and m[2] in MONTHS:
        with suppress(ValueError):  # not a date (31 Feb): botocore's says how
            day, hms = int(m[1]), (int(m[4]), int(m[5]), int(m[6]))
            return datetime(int(m[3]), MONTHS[m[2]], day, *hms, tzinfo=tzutc())
    parsed: datetime = botocore_timestamp(value)
    return parsed


def client_config(max_pool_connections: int = 20) -> AioConfig:
    return AioConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_pool_connections=max_pool_connections,
        http_session_cls=SharedTlsSession,
    )


def pool_size(in_flight: int) -> int:
    """Connections per client: each job in flight holds up to a few S3 connections (its
    transfers share this bound, transfers.py); heartbeats and polls need their own."""
    return max(20, in_flight * 2)


@dataclass
class Clients:
    """The daemon's clients. EC2 is built on first use: only stopping the instance needs it,
    and building a client costs a tenth of a second a cold worker should not wait for."""

    s3: Any
    sqs: Any
    make_ec2: Callable[[], Awaitable[Any]]
    make_cloudwatch: Callable[[], Awaitable[Any]]  # the metrics (metrics.py), also on first use

    async def ec2(self) -> Any:
        return await self.make_ec2()


class ClientsContext:
    """`with_sqs`: called with the SQS client as soon as it exists, before the S3 client is
    built, so that start-up calls to SQS are on their way while S3's model loads (worker.py)."""

    def __init__(self, in_flight: int, with_sqs: Callable[[Any], object] | None = None) -> None:
        self._stack = AsyncExitStack()
        self._config = client_config(pool_size(in_flight))
        self._with_sqs = with_sqs
        self.tls_ahead: threading.Thread | None = None

    async def __aenter__(self) -> Clients:
        session = AioSession(event_hooks=LeanEmitter())  # get_session(), with that emitter
        parsers = session.get_component("response_parser_factory")
        parsers.set_parser_defaults(timestamp_parser=parse_timestamp)
        self.tls_ahead = SharedTlsSession.build_ahead(session, self._config)
        region = await resolve_region(session)

        def make(service: str) -> Any:
            create: Any = session.create_client  # typed per service name; ours are plain strings
            return create(service, region_name=region, config=self._config)

        async def enter(service: str) -> Any:
            return cache_user_agent(await self._stack.enter_async_context(make(service)))

        sqs = await enter("sqs")
        if self._with_sqs is not None:
            self._with_sqs(sqs)
        s3 = await enter("s3")
        built: dict[str, Any] = {}

        def lazy(service: str) -> Callable[[], Awaitable[Any]]:
            async def get() -> Any:
                if service not in built:
                    built[service] = await enter(service)
                return built[service]

            return get

        return Clients(s3=s3, sqs=sqs, make_ec2=lazy("ec2"), make_cloudwatch=lazy("cloudwatch"))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()


async def resolve_region(session: AioSession) -> str:
    """AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else this instance's (IMDSv2)."""
    found = configured_region(session.get_config_variable("region"))
    if found:
        return found
    found = await instance.region()
    if found:
        return found
    raise ConfigError(
        "no AWS region: set AWS_REGION (the worker's env file does) or AWS_DEFAULT_REGION, "
        "or a profile region; on EC2 it is read from the instance metadata"
    )
