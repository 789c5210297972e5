"""Idle detection and the `stop` action: the right instance, never with work in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from procs import Pipeline, echo_registry, runs
from s3worker.config import Settings
from s3worker.retry import RetryPolicy
from s3worker.worker import ExitReason, serve
from tenacity import wait_none

from demo.emulator import FakeImds


def launch(count: int) -> list[str]:
    ec2 = boto3.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    resp = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.micro")
    return [i["InstanceId"] for i in resp["Instances"]]


def state(instance: str) -> str:
    resp = boto3.client("ec2").describe_instances(InstanceIds=[instance])
    return str(resp["Reservations"][0]["Instances"][0]["State"]["Name"])


@pytest.fixture
def me_and_other(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    me, other = launch(2)
    imds = FakeImds(me)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    yield me, other
    imds.close()


async def wait_until(condition: object, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_idle_stop_waits_for_work_then_stops_itself(
    me_and_other: tuple[str, str], name: str, scratch: Path, tmp_path: Path
):
    me, other = me_and_other
    pipeline = Pipeline.create(name)
    gate = tmp_path / "gate"
    pipeline.upload("slow/gated.txt", f"echo gate {gate}\n".encode())
    runlog = tmp_path / "runlog"
    settings = Settings.from_env(pipeline.env(scratch, S3WORKER_IDLE_ACTION="stop"))

    async def scenario() -> ExitReason:
        worker = asyncio.create_task(
            serve(settings, processors=echo_registry(runlog), retry=RetryPolicy(3, wait_none()))
        )
        # Given a job in flight on an otherwise idle worker
        await wait_until(Path(f"{gate}.started").exists)
        # Then the worker does not stop itself while the job runs
        assert state(me) == "running"
        assert not worker.done()
        # When the job finishes and the queue stays empty
        gate.touch()
        return await asyncio.wait_for(worker, 60)

    reason = asyncio.run(scenario())
    # Then it stopped exactly its own instance, after the work was durable
    assert reason is ExitReason.IDLE
    assert pipeline.manifest("slow/gated.txt") is not None
    assert state(me) == "stopped"
    assert state(other) == "running"


def test_delayed_messages_keep_the_worker_up(
    me_and_other: tuple[str, str], name: str, scratch: Path, tmp_path: Path
):
    me, _ = me_and_other
    pipeline = Pipeline.create(name)
    # Given a message that becomes visible only after a delay (counted as backlog meanwhile)
    event = pipeline.upload("later/a.txt", b"echo\n", notify=False)
    import json

    boto3.client("sqs").send_message(
        QueueUrl=pipeline.queue_url, MessageBody=json.dumps(event), DelaySeconds=2
    )
    runlog = tmp_path / "runlog"
    settings = Settings.from_env(pipeline.env(scratch, S3WORKER_IDLE_ACTION="stop"))
    # When an idle worker with a zero idle time starts
    reason = asyncio.run(serve(settings, processors=echo_registry(runlog)))
    # Then it waited for the delayed message, processed it, and only then stopped
    assert reason is ExitReason.IDLE
    assert runs(runlog) == ["later/a.txt"]
    assert state(me) == "stopped"


def test_action_none_never_stops(aws: str, name: str, scratch: Path, tmp_path: Path):
    from s3worker.aws import ClientsContext
    from s3worker.worker import Worker

    pipeline = Pipeline.create(name)
    settings = Settings.from_env(pipeline.env(scratch, S3WORKER_IDLE_ACTION="none"))

    async def scenario() -> None:
        async with ClientsContext(1) as clients:
            worker = Worker(settings, clients, processors=echo_registry(tmp_path / "r"))
            task = asyncio.create_task(worker.run())
            # Given an idle worker with action `none`: it reports idle and keeps polling
            await wait_until(lambda: worker._idle_logged)
            assert not task.done()
            # When asked to exit, it exits for that reason
            worker.request_exit()
            assert await asyncio.wait_for(task, 30) is ExitReason.SIGNAL

    asyncio.run(scenario())
