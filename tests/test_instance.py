"""instance.py: IMDSv2 lookups against a local metadata service (tokens required), and the
instance stopping itself against the emulator's EC2 over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from s3worker import instance
from s3worker.aws import ClientsContext
from s3worker.retry import RetryPolicy
from structlog.testing import capture_logs
from tenacity import wait_none

from demo.emulator import FakeImds

INSTANCE = "i-0123456789abcdef0"
NO_WAIT = RetryPolicy(3, wait_none())


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    server = FakeImds(INSTANCE, region="eu-west-3")
    yield server
    server.close()


def test_values_are_read_with_a_token_first(imds: FakeImds) -> None:
    assert asyncio.run(instance.instance_id(imds.url)) == INSTANCE
    assert asyncio.run(instance.region(imds.url + "/")) == "eu-west-3"
    assert imds.requests == [
        "PUT /latest/api/token", "GET /latest/meta-data/instance-id",
        "PUT /latest/api/token", "GET /latest/meta-data/placement/region",
    ]  # fmt: skip


def test_the_endpoint_variable_points_at_the_service(
    imds: FakeImds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    assert asyncio.run(instance.instance_id()) == INSTANCE


def test_not_on_ec2_or_an_unknown_path_is_none_and_logged(imds: FakeImds) -> None:
    with capture_logs() as logs:
        assert asyncio.run(instance.metadata("instance-id", "http://127.0.0.1:9")) is None
        assert asyncio.run(instance.metadata("no/such/path", imds.url)) is None
    assert [(e["event"], e["path"]) for e in logs] == [
        ("imds_unavailable", "instance-id"), ("imds_unavailable", "no/such/path"),
    ]  # fmt: skip


def test_an_empty_value_is_none(imds: FakeImds) -> None:
    imds.values["tags/instance/Name"] = "  \n"
    assert asyncio.run(instance.metadata("tags/instance/Name", imds.url)) is None


def launch() -> str:
    # Any image id: the emulator does not check it (listing its images takes seconds)
    resp = boto3.client("ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )
    return str(resp["Instances"][0]["InstanceId"])


def state(instance_id: str) -> str:
    resp = boto3.client("ec2").describe_instances(InstanceIds=[instance_id])
    return str(resp["Reservations"][0]["Instances"][0]["State"]["Name"])


def stop_self(known: str | None) -> bool:
    async def main() -> bool:
        async with ClientsContext(1) as clients:
            return await instance.stop_self(clients.make_ec2, NO_WAIT, known)

    return asyncio.run(main())


def test_stop_self_stops_the_instance_it_was_given(aws: str) -> None:
    me, other = launch(), launch()
    with capture_logs() as logs:
        assert stop_self(me) is True
    assert state(me) == "stopped"
    assert state(other) == "running"  # only itself
    assert [e["event"] for e in logs] == ["stopping_instance"]


def test_stop_self_looks_its_id_up_again_when_it_was_not_known(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = launch()
    server = FakeImds(me)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url)
    monkeypatch.setattr(instance, "IMDS_RETRY_SECONDS", (0.0, 0.0, 0.0))
    try:
        assert stop_self(None) is True
    finally:
        server.close()
    assert server.requests == ["PUT /latest/api/token", "GET /latest/meta-data/instance-id"]
    assert state(me) == "stopped"


def test_without_an_id_it_gives_up_after_the_retries(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str | None] = []
    real = instance.instance_id

    async def counted(endpoint: str | None = None) -> str | None:
        lookups.append(found := await real(endpoint))
        return found

    monkeypatch.setattr(instance, "IMDS_RETRY_SECONDS", (0.0, 0.0, 0.0))
    monkeypatch.setattr(instance, "instance_id", counted)
    with capture_logs() as logs:
        assert stop_self(None) is False  # the aws fixture points IMDS at a closed port
    assert lookups == [None, None, None]
    assert logs[-1] == {
        "event": "idle_stop_impossible", "reason": "no instance id from IMDS", "log_level": "error",
    }  # fmt: skip


def test_a_refused_stop_is_reported_not_raised(aws: str) -> None:
    with capture_logs() as logs:
        assert stop_self("i-00000000000000000") is False  # no such instance
    (failed,) = [e for e in logs if e["event"] == "idle_stop_failed"]
    assert failed["instance_id"] == "i-00000000000000000"
    assert "InvalidInstanceID" in failed["error"]


def test_stop_instance_goes_through_the_retry_policy() -> None:
    calls: list[dict[str, Any]] = []

    class Ec2:
        async def stop_instances(self, **params: Any) -> dict[str, Any]:
            calls.append(params)
            if len(calls) == 1:
                raise ConnectionResetError("reset")
            return {}

    asyncio.run(instance.stop_instance(Ec2(), NO_WAIT, "i-1"))
    assert calls == [{"InstanceIds": ["i-1"]}] * 2
