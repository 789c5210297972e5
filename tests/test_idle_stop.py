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


def test_idle_stop_without_an_instance_id_fails_loudly(
    aws: str, name: str, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import s3worker.instance as instance_module

    # Given no metadata service answers (the aws fixture points IMDS at a closed port)
    monkeypatch.setattr(instance_module, "IMDS_RETRY_SECONDS", (0.0, 0.0))
    pipeline = Pipeline.create(name)
    settings = Settings.from_env(pipeline.env(scratch, S3WORKER_IDLE_ACTION="stop"))
    # When the worker goes idle with action `stop`
    reason = asyncio.run(serve(settings, processors=echo_registry(tmp_path / "r")))
    # Then it says it could not stop (and `s3worker run` exits 1, so systemd restarts it)
    assert reason is ExitReason.IDLE_STOP_FAILED


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_queue_read_means_not_idle(tmp_path: Path):
    from types import SimpleNamespace

    from s3worker.worker import Worker

    # Given a worker idle for long enough, whose confirmation window is 60 s
    clock = Clock()
    settings = Settings(
        queue_url="q", output_bucket="b", scratch_dir=tmp_path, idle_seconds=0,
        idle_confirm_seconds=60, idle_action="exit",
    )  # fmt: skip
    clients = SimpleNamespace(s3=None, sqs=None, make_ec2=None, make_cloudwatch=None)
    worker = Worker(settings, clients, processors=echo_registry(tmp_path / "r"), clock=clock)  # type: ignore[arg-type]
    reads: list[int | Exception] = [0, TimeoutError("GetQueueAttributes timed out"), 0, 0]

    async def backlog() -> int:
        read = reads.pop(0)
        if isinstance(read, Exception):
            raise read
        return read

    worker.queue.backlog = backlog  # type: ignore[method-assign]

    async def check_at(moments: list[float]) -> list[bool]:
        results = []
        for moment in moments:
            clock.now = moment
            results.append(await worker._idle_confirmed())
        return results

    # When the queue reads empty at 0 s, cannot be read at 30 s, reads empty at 61 s and 121 s
    confirmed = asyncio.run(check_at([0.0, 30.0, 61.0, 121.0]))
    # Then the failed read is not idle (and does not crash) and restarts the window: 61 s after
    # the first empty read is not confirmed, a full window after the failure is
    assert confirmed == [False, False, False, True]
