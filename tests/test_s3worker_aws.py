"""aws.py (s3worker.aws): the daemon's one place that builds clients: botocore's retries off,
timeouts above the long poll, the region from the environment or the instance, EC2 and
CloudWatch built on first use. Against the emulator over HTTP and a local IMDSv2."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import aiobotocore.httpsession
import pytest
from aiobotocore.hooks import AioHierarchicalEmitter
from aiobotocore.session import AioSession, get_session
from botocore.context import get_context, start_as_current_context
from botocore.httpsession import get_cert_path
from botocore.utils import parse_timestamp as botocore_timestamp
from dateutil.tz import tzutc  # type: ignore[import-untyped]
from s3worker.aws import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    ClientsContext,
    LeanEmitter,
    SharedTlsSession,
    client_config,
    parse_timestamp,
    pool_size,
    resolve_region,
)
from s3worker.errors import ConfigError

from demo.emulator import FakeImds


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    server = FakeImds("i-0123456789abcdef0", region="ap-south-1")
    yield server
    server.close()


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


def test_clients_do_not_retry_and_wait_longer_than_a_long_poll() -> None:
    config = client_config(33)
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert READ_TIMEOUT_SECONDS > 20  # SQS's longest WaitTimeSeconds
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT_SECONDS, 60)
    assert config.max_pool_connections == 33


def test_the_pool_grows_with_the_jobs_in_flight_above_a_floor() -> None:
    assert [pool_size(n) for n in (0, 1, 10, 11, 64)] == [20, 20, 20, 22, 128]


def test_resolve_region_prefers_the_environment_over_imds(
    monkeypatch: pytest.MonkeyPatch, imds: FakeImds
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert asyncio.run(resolve_region(get_session())) == "eu-north-1"
    assert imds.requests == []


def test_the_profiles_region_comes_before_the_instances(
    no_region: None, monkeypatch: pytest.MonkeyPatch, imds: FakeImds, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = sa-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    assert asyncio.run(resolve_region(get_session())) == "sa-east-1"
    assert imds.requests == []


def test_without_a_configured_region_the_instances_is_used(
    no_region: None, monkeypatch: pytest.MonkeyPatch, imds: FakeImds
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    assert asyncio.run(resolve_region(get_session())) == "ap-south-1"


def test_no_region_anywhere_is_a_configuration_error_that_says_what_to_set(
    no_region: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="no AWS region: set AWS_REGION"):
        asyncio.run(resolve_region(get_session()))


def test_the_context_builds_sqs_and_s3_now_and_ec2_and_cloudwatch_once_on_first_use(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    created: list[str] = []

    async def main() -> None:
        context = ClientsContext(in_flight=16)
        session_create = AioSession.create_client

        def spy(self: object, service: str, *args: object, **kwargs: object) -> object:
            created.append(service)
            return session_create(self, service, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(AioSession, "create_client", spy)
        async with context as clients:
            assert created == ["sqs", "s3"]
            assert clients.s3.meta.region_name == "eu-central-1"
            assert clients.sqs.meta.config.max_pool_connections == 32  # pool_size(16)
            assert (await clients.s3.list_buckets())["ResponseMetadata"]["HTTPStatusCode"] == 200
            ec2 = await clients.ec2()
            assert await clients.ec2() is ec2
            assert await clients.make_ec2() is ec2
            cloudwatch = await clients.make_cloudwatch()
            assert await clients.make_cloudwatch() is cloudwatch
            assert created == ["sqs", "s3", "ec2", "cloudwatch"]
            assert ec2.meta.config.retries == {"total_max_attempts": 1, "mode": "standard"}

    asyncio.run(main())


@pytest.fixture
def ca_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """No TLS context built yet, and each load of the CA bundle noted (its verify value)."""
    monkeypatch.setattr(SharedTlsSession, "_contexts", {})
    loads: list[object] = []

    def counted(verify: object) -> object:
        loads.append(verify)
        return get_cert_path(verify)

    monkeypatch.setattr(aiobotocore.httpsession, "get_cert_path", counted)
    return loads


def test_the_clients_load_the_ca_bundle_once_between_them(aws: str, ca_loads: list[object]) -> None:
    async def main() -> None:
        async with ClientsContext(in_flight=1) as clients:
            # When both clients make their first requests
            await clients.sqs.list_queues()
            await clients.s3.list_buckets()
            # Then the bundle was loaded once between them
            assert len(ca_loads) == 1
            cloudwatch = await clients.make_cloudwatch()
            await cloudwatch.list_metrics(Namespace="s3worker-test")
            assert len(ca_loads) == 1

    asyncio.run(main())


def test_contexts_built_at_the_same_time_load_the_ca_bundle_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As at start-up: aiobotocore builds each client's context in a thread (asyncio.to_thread),
    and the context built ahead, SQS's first request and S3's overlap."""
    # Given no TLS context built yet, and a first load that waits until a second build has
    # begun (so that the two overlap whatever the machine's speed)
    monkeypatch.setattr(SharedTlsSession, "_contexts", {})
    loads: list[object] = []
    builds: list[object] = []
    both_building = threading.Event()
    build = SharedTlsSession._build_ssl_contexts

    def entered(self: SharedTlsSession, proxy_url: str | None) -> Any:
        builds.append(proxy_url)
        if len(builds) == 2:
            both_building.set()
        return build(self, proxy_url)

    def counted(verify: object) -> object:
        loads.append(verify)
        both_building.wait(10)  # a bound, not a timing: the second build comes at once
        return get_cert_path(verify)

    monkeypatch.setattr(SharedTlsSession, "_build_ssl_contexts", entered)
    monkeypatch.setattr(aiobotocore.httpsession, "get_cert_path", counted)
    contexts: list[object] = []

    def first_request() -> None:
        contexts.append(SharedTlsSession(verify=True)._build_ssl_contexts(None))

    # When two clients of the same settings build their contexts at the same time
    threads = [threading.Thread(target=first_request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then both got the one context, and the bundle was loaded once between them
    assert len(builds) == 2
    assert contexts[0] is contexts[1]
    assert len(loads) == 1


def test_the_context_is_built_ahead_while_the_clients_are_built(
    aws: str, ca_loads: list[object]
) -> None:
    async def main() -> None:
        context = ClientsContext(in_flight=1)
        async with context as clients:
            # When the clients exist, before any request: the bundle is loaded (in a thread)
            assert context.tls_ahead is not None
            context.tls_ahead.join()
            assert len(ca_loads) == 1
            # Then their first requests use that context: no load of their own
            await asyncio.gather(clients.sqs.list_queues(), clients.s3.list_buckets())
            assert len(ca_loads) == 1

    asyncio.run(main())


def test_with_sqs_gets_the_sqs_client_before_the_s3_client_is_built(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook that lets start-up ask SQS for the queue's settings while S3's model loads."""
    created: list[str] = []
    handed: list[tuple[str, list[str]]] = []
    session_create = AioSession.create_client

    def spy(self: object, service: str, *args: object, **kwargs: object) -> object:
        created.append(service)
        return session_create(self, service, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AioSession, "create_client", spy)

    def with_sqs(sqs: Any) -> None:
        handed.append((sqs.meta.service_model.service_name, list(created)))

    async def main() -> None:
        async with ClientsContext(in_flight=1, with_sqs=with_sqs) as clients:
            assert handed == [("sqs", ["sqs"])]  # once, and S3 not built yet
            assert created == ["sqs", "s3"]
            assert (await clients.sqs.list_queues())["ResponseMetadata"]["HTTPStatusCode"] == 200

    asyncio.run(main())


def test_the_lean_emitter_calls_the_same_handlers_with_the_same_answers() -> None:
    """aiobotocore's emitter and the daemon's, given the same handlers: the same answers in the
    same order, awaitable answers awaited, and emit_until_response stopping at the same one."""
    seen: dict[str, list[tuple[str, object]]] = {}

    def build(emitter: AioHierarchicalEmitter, name: str) -> AioHierarchicalEmitter:
        calls = seen.setdefault(name, [])

        def specific(value: int, **kwargs: object) -> None:
            calls.append(("specific", kwargs["event_name"]))

        async def coroutine(value: int, **kwargs: object) -> int:
            calls.append(("coroutine", value))
            return value * 2

        def general(value: int, **kwargs: object) -> str:
            calls.append(("general", value))
            return "general"

        emitter.register("before-call.s3.PutObject", specific)
        emitter.register("before-call.s3", coroutine)
        emitter.register("before-call", general)
        return emitter

    async def answers(emitter: AioHierarchicalEmitter) -> list[object]:
        every = await emitter.emit("before-call.s3.PutObject", value=3)
        first = await emitter.emit_until_response("before-call.s3.GetObject", value=4)
        none = await emitter.emit("after-call.sqs", value=5)
        return [[r for _, r in every], first[1], none]

    theirs = asyncio.run(answers(build(AioHierarchicalEmitter(), "theirs")))
    ours = asyncio.run(answers(build(LeanEmitter(), "ours")))
    assert ours == theirs == [[None, 6, "general"], 8, []]
    assert seen["ours"] == seen["theirs"]


def test_the_user_agent_is_botocores_for_every_set_of_features(aws: str) -> None:
    """Built once per set of features: the string botocore would build, whatever features the
    call records (botocore.context), and a new one when they differ."""

    async def main() -> None:
        async with ClientsContext(in_flight=1) as clients:
            creator = clients.s3._user_agent_creator
            uncached = partial(type(creator).to_string, creator)
            assert creator.to_string() == uncached()
            with start_as_current_context():
                assert creator.to_string() == uncached()
                get_context().features.update({"b", "E"})
                assert creator.to_string() == uncached()
                assert "b" in creator.to_string().split("m/")[1]
            assert creator.to_string() == uncached()

    asyncio.run(main())


def test_requests_carry_the_headers_a_plain_aiobotocore_client_sends(aws: str) -> None:
    """The daemon's clients (lean emitter, cached user agent) against clients of a plain
    session built in the same order (SQS first: the features of the credentials' load are the
    first client's): the same headers on the wire, the same User-Agent."""
    varying = {"x-amz-date", "authorization", "amz-sdk-invocation-id", "x-amz-content-sha256"}

    def features_as_a_set(value: Any) -> Any:
        """The `m/` component lists a set of features: in no particular order."""
        if not isinstance(value, bytes) or b" m/" not in value:
            return value
        words = value.split(b" ")
        return [sorted(w.split(b",")) if w.startswith(b"m/") else w for w in words]

    def recorder(sent: list[dict[str, Any]]) -> Callable[..., None]:
        def record(request: Any, **kwargs: object) -> None:
            headers = request.headers.items()
            sent.append({k.lower(): features_as_a_set(v) for k, v in headers
                         if k.lower() not in varying})  # fmt: skip

        return record

    async def calls(s3: Any, bucket: str) -> None:
        await s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 100, ContentType="text/plain")
        await s3.head_object(Bucket=bucket, Key="k")
        resp = await s3.get_object(Bucket=bucket, Key="k")
        async with resp["Body"] as body:
            assert await body.read() == b"x" * 100

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        bucket = f"ua-{uuid.uuid4().hex[:10]}"
        async with ClientsContext(in_flight=1) as clients:
            await clients.s3.create_bucket(Bucket=bucket)
            clients.s3.meta.events.register("before-send.s3", recorder(ours))
            await calls(clients.s3, bucket)
            region = clients.s3.meta.region_name
        session, config = AioSession(), client_config(pool_size(1))
        sqs = session.create_client("sqs", region_name=region, config=config)
        async with sqs, session.create_client("s3", region_name=region, config=config) as plain:
            plain.meta.events.register("before-send.s3", recorder(theirs))
            await calls(plain, bucket)
        return ours, theirs

    ours, theirs = asyncio.run(main())
    assert len(ours) == 3
    assert ours == theirs


@pytest.mark.parametrize(
    "value",
    [
        "Thu, 03 Dec 2026 14:17:09 GMT",
        "Sat, 29 Feb 2020 23:59:59 GMT",
        "Mon, 01 Jan 1970 00:00:00 GMT",
        "Wed, 31 Feb 2024 10:00:00 GMT",  # no such day: botocore's answer (an error) either way
        "2026-12-03T14:17:09.000Z",  # ISO (listings' bodies): botocore's parser
        "2026-12-03T14:17:09+02:00",
        "1764771429",  # epoch seconds
        1764771429.5,
        "Thu, 03 Dec 2026 14:17:09 +0000",
    ],
)
def test_timestamps_parse_as_botocore_parses_them(value: object) -> None:
    try:
        expected = botocore_timestamp(value)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            parse_timestamp(value)
        return
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert type(parsed.tzinfo) is type(expected.tzinfo)
    assert parsed.utcoffset() == expected.utcoffset()


def test_the_clients_parse_s3_s_dates_with_that_parser(aws: str, name: str) -> None:
    async def main() -> None:
        async with ClientsContext(in_flight=1) as clients:
            await clients.s3.create_bucket(Bucket=name)
            await clients.s3.put_object(Bucket=name, Key="k", Body=b"x")
            head = await clients.s3.head_object(Bucket=name, Key="k")
            raw = head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]
            assert head["LastModified"] == botocore_timestamp(raw)
            assert isinstance(head["LastModified"].tzinfo, tzutc)

    asyncio.run(main())
