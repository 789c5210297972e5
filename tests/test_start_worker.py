"""The start Lambda end to end (lambda/start_worker.py's handler and its Runtime): events in,
EC2 and SQS calls out, against moto's EC2 and SQS in-process (`mock_aws`) for real launch
templates, instances and queues, and botocore's Stubber for a `stopping` member moto cannot
hold; the 1,000-event call budget and the CloudFormation cleanup through the handler. Each
starter module's own tests: tests/test_start_worker_<module>.py; the deployment zip:
tests/test_lambda_build.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from lambdakit import (
    AMI,
    POOL_KEY,
    POOL_VALUE,
    REGION,
    Context,
    FakeClock,
    Stubbed,
    cfn_event,
    event,
    expect_pool,
    expect_queue,
    response_server,
    settings_env,
    stubbed_runtime,
    sw,
)
from moto import mock_aws


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # What the Lambda runtime sets for every function (its reserved variables):
        # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


# --- moto: real launch template, real instances, real queue -----------------------------------


@dataclass
class World:
    ec2: Any
    sqs: Any
    env: dict[str, str]
    other_instance: str
    ec2_calls: list[str] = field(default_factory=list)

    def runtime(self, clock: FakeClock | None = None, **env: str) -> Any:
        clock = clock or FakeClock()
        return sw.Runtime(
            env={**self.env, **env},
            ec2_client=self.ec2,
            sqs_client=self.sqs,
            clock=clock,
            sleep=clock.sleep,
        )

    def pool_instances(self, *states: str) -> dict[str, str]:
        filters = [{"Name": f"tag:{POOL_KEY}", "Values": [POOL_VALUE]}]
        if states:
            filters.append({"Name": "instance-state-name", "Values": list(states)})
        found = self.ec2.describe_instances(Filters=filters)["Reservations"]
        return {i["InstanceId"]: i["State"]["Name"] for r in found for i in r["Instances"]}

    def add_member(self, state: str = "running") -> str:
        tags = [{"ResourceType": "instance", "Tags": [{"Key": POOL_KEY, "Value": POOL_VALUE}]}]
        iid = self.ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=tags)[
            "Instances"
        ][0]["InstanceId"]
        if state == "stopped":
            self.ec2.stop_instances(InstanceIds=[iid])
        return str(iid)

    def send(self, n: int) -> None:
        url = self.env["S3WORKER_QUEUE_URL"]
        for start in range(0, n, 10):
            entries = [
                {"Id": str(k), "MessageBody": "{}"} for k in range(start, min(n, start + 10))
            ]
            self.sqs.send_message_batch(QueueUrl=url, Entries=entries)


def _ample_capacity(params: dict[str, Any], **_: Any) -> None:
    params["MinCount"] = params.get("MaxCount", params.get("MinCount", 1))


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        lt = ec2.create_launch_template(
            LaunchTemplateName="s3worker-test",
            LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
        )["LaunchTemplate"]["LaunchTemplateId"]
        queue = sqs.create_queue(QueueName="s3worker-work")["QueueUrl"]
        # An instance outside the pool: nothing here may ever touch it.
        other = ec2.run_instances(
            ImageId=AMI,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": POOL_VALUE}]}
            ],
        )["Instances"][0]["InstanceId"]
        env = settings_env(S3WORKER_QUEUE_URL=queue, S3WORKER_LAUNCH_TEMPLATE_ID=lt)
        w = World(ec2, sqs, env, other)
        # Emulator gap: moto launches MinCount instances, EC2 launches up to MaxCount when it
        # has the capacity. Play EC2 with ample capacity (the product asks MinCount=1).
        ec2.meta.events.register("provide-client-params.ec2.RunInstances", _ample_capacity)
        ec2.meta.events.register(
            "before-call.ec2", lambda model, **_: w.ec2_calls.append(model.name)
        )
        yield w


def test_object_created_launches_a_tagged_worker_from_the_template(world: World) -> None:
    result = world.runtime().handle(event("eventbridge_object_created"), Context())

    assert result["action"] == "scaled"
    assert len(result["launched"]) == 1
    (iid,) = result["launched"]
    inst = world.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["InstanceType"] == "t3.micro"  # from the launch template
    assert {"Key": POOL_KEY, "Value": POOL_VALUE} in inst["Tags"]
    volume_ids = [m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"]]
    volumes = world.ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]
    assert all({"Key": POOL_KEY, "Value": POOL_VALUE} in v.get("Tags", []) for v in volumes)
    assert world.pool_instances() == {iid: "running"}


def test_a_stopped_member_is_started_instead_of_launching(world: World) -> None:
    stopped = world.add_member("stopped")

    result = world.runtime().handle(event("eventbridge_object_created"), Context())

    assert result["started"] == [stopped]
    assert result["launched"] == []
    assert world.pool_instances() == {stopped: "running"}


def test_a_running_member_means_nothing_to_do(world: World) -> None:
    running = world.add_member("running")

    result = world.runtime().handle(event("eventbridge_object_created"), Context())

    assert result["action"] == "none"
    assert result["wanted"] == 1
    assert world.pool_instances() == {running: "running"}


def test_scaling_out_starts_stopped_then_launches_up_to_the_cap(world: World) -> None:
    stopped = world.add_member("stopped")
    world.send(9)
    clock = FakeClock()
    rt = world.runtime(clock, S3WORKER_MAX_WORKERS="3", S3WORKER_FILES_PER_WORKER="2")

    first = rt.handle(event("scheduled"), Context())
    clock.now += 60  # the cache expires: the next event observes the real state again
    second = rt.handle(event("eventbridge_object_created"), Context())

    assert first["started"] == [stopped]
    assert len(first["launched"]) == 2
    assert second["action"] == "none"
    assert sorted(world.pool_instances().values()) == ["running"] * 3
    assert world.ec2.describe_instances(InstanceIds=[world.other_instance])["Reservations"]


def test_s3_notification_counts_its_created_records(world: World) -> None:
    rt = world.runtime(S3WORKER_MAX_WORKERS="5", S3WORKER_FILES_PER_WORKER="1")

    result = rt.handle(event("s3_notification"), Context())

    assert result["backlog"] == 2
    assert len(result["launched"]) == 2


def test_reconciler_with_an_empty_queue_makes_no_ec2_call(world: World) -> None:
    world.add_member("stopped")
    world.ec2_calls.clear()

    result = world.runtime().handle(event("scheduled"), Context())

    assert result == {"action": "idle", "backlog": 0}
    assert world.ec2_calls == []


def test_reconciler_starts_a_worker_for_a_lost_event(world: World) -> None:
    stopped = world.add_member("stopped")
    world.send(3)  # the queue has work but the start event never arrived

    result = world.runtime().handle(event("scheduled"), Context())

    assert result["started"] == [stopped]
    assert result["backlog"] == 3


def test_unknown_events_are_logged_and_ignored(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="s3worker.start_worker")
    world.ec2_calls.clear()

    result = world.runtime().handle(event("eventbridge_object_deleted"), Context())

    assert result["action"] == "ignored"
    assert world.ec2_calls == []
    assert any(r.getMessage() == "ignored" for r in caplog.records)


def test_burst_of_1000_events_stays_within_25_ec2_calls(world: World) -> None:
    world.add_member("stopped")
    clock = FakeClock()
    rt = world.runtime(clock, S3WORKER_MAX_WORKERS="3", S3WORKER_FILES_PER_WORKER="300")
    world.ec2_calls.clear()
    sqs_calls: list[str] = []
    world.sqs.meta.events.register(
        "before-call.sqs", lambda model, **_: sqs_calls.append(model.name)
    )

    for n in range(1000):
        if n % 10 == 0:
            world.send(10)  # the queue fills as EventBridge delivers to both targets
        rt.handle(event("eventbridge_object_created"), Context(aws_request_id=f"req-{n}"))
        clock.now += 0.02  # 1,000 events over 20 s on one warm container

    product_calls = list(world.ec2_calls)  # before the assertions below add their own
    print(f"EC2 calls for 1,000 events: {len(product_calls)} {product_calls}")
    assert len(product_calls) <= 25, product_calls
    assert sorted(world.pool_instances().values()) == ["running"] * 3  # scaled to the cap
    print(f"SQS GetQueueAttributes for 1,000 events: {sqs_calls.count('GetQueueAttributes')}")


def test_handler_builds_its_clients_lazily_from_the_environment(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    sw._default_runtime.cache_clear()
    try:
        result = sw.handler(event("eventbridge_object_created"), Context())
        rt = sw._default_runtime()
        assert rt.ec2_client is not None
        assert rt.sqs_client is not None
    finally:
        sw._default_runtime.cache_clear()
        for name in ("s3worker.start_worker", "s3worker.start_worker_metrics"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    assert len(result["launched"]) == 1
    # stdout (CloudWatch Logs in Lambda): JSON log lines, and the EMF line as a bare document
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines if "event" in line][-1] == "decision"
    (emf,) = [line for line in lines if "_aws" in line]
    assert emf["WorkersLaunched"] == 1
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == f"S3worker/{POOL_VALUE}"


# --- Stubber: a member moto cannot hold `stopping` ---------------------------------------------


@pytest.fixture
def stubbed() -> Iterator[Stubbed]:
    # max_workers 1: no room to launch around the stopping member
    yield from stubbed_runtime()


def test_stopping_member_is_deferred_loudly_then_started_by_the_reconciler(
    stubbed: Stubbed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="s3worker.start_worker")
    rt = stubbed.rt
    # Given: the only member is stopping when a file arrives.
    expect_queue(stubbed.sqs, 0)
    expect_pool(stubbed.ec2, stopping=["i-stop"])

    first = rt.handle(event("eventbridge_object_created"), Context())

    # Then: no start call (it would fail), the need is logged as deferred with the instance.
    assert first["deferred"] == 1
    assert first["started"] == []
    assert first["launched"] == []
    warning = next(r for r in caplog.records if r.getMessage() == "decision")
    assert warning.levelno == logging.WARNING
    assert warning.fields["stopping"] == ["i-stop"]

    # When: the reconciler runs after the member has stopped, it starts it.
    stubbed.clock.now += 120
    expect_queue(stubbed.sqs, 1)
    expect_pool(stubbed.ec2, stopped=["i-stop"])
    stubbed.ec2.add_response("start_instances", {}, {"InstanceIds": ["i-stop"]})

    second = rt.handle(event("scheduled"), Context())
    assert second["started"] == ["i-stop"]
    assert second["deferred"] == 0


# --- CloudFormation custom resource (tests/test_start_worker_cleanup.py has its cases) ----------


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with response_server() as server:
        yield server


def test_delete_terminates_the_pool_and_nothing_else(
    world: World, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = response_url
    members = {world.add_member("running"), world.add_member("stopped")}

    result = world.runtime().handle(cfn_event("delete", url), Context())

    assert result["status"] == "SUCCESS"
    assert world.pool_instances() == dict.fromkeys(members, "terminated")
    other = world.ec2.describe_instances(InstanceIds=[world.other_instance])["Reservations"][0]
    assert other["Instances"][0]["State"]["Name"] == "running"
    (reply,) = received
    assert (reply["Status"], reply["Data"]) == ("SUCCESS", {"Terminated": 2})
    assert reply["RequestId"] == event("cfn_delete")["RequestId"]
