"""The start Lambda (lambda/start_worker.py, lambda/starter/): the decision (pure,
property-tested), the AWS side against moto for the happy paths and against botocore's Stubber
for what moto cannot show (`stopping`, capacity errors), the 1,000-event call budget, and the
CloudFormation cleanup resource. Events: test_start_worker_events.py; capacity types, retries
and metrics over HTTP: test_start_worker_capacity.py."""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto import mock_aws

from demo.emulator import load_start_worker

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"
REGION = "us-east-1"
POOL_KEY, POOL_VALUE = "s3worker:pool", "test-stack"
AMI = "ami-12c6146b"  # one of moto's built-in images


sw = load_start_worker()


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"lambda_{name}.json").read_text())


@dataclass
class FakeClock:
    """Injectable time: `sleep` advances it and records the delays; nothing really waits."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Context:
    aws_request_id: str = "req-1"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


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


def settings_env(**overrides: str) -> dict[str, str]:
    env = {
        "S3WORKER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/work",
        "S3WORKER_LAUNCH_TEMPLATE_ID": "lt-0123456789abcdef0",
        "S3WORKER_POOL_TAG": f"{POOL_KEY}={POOL_VALUE}",
    }
    env.update(overrides)
    return env


# --- settings ---------------------------------------------------------------------------------


def test_settings_defaults_follow_the_contract() -> None:
    s = sw.Settings.from_env(settings_env())
    assert (s.max_workers, s.files_per_worker, s.cache_seconds) == (1, 500, 5)
    assert s.launch_template_version == "$Latest"
    assert s.pool_tag == (POOL_KEY, POOL_VALUE)
    assert (s.subnet_ids, s.instance_types) == ((), ())


def test_settings_parse_lists() -> None:
    s = sw.Settings.from_env(
        settings_env(S3WORKER_SUBNET_IDS="subnet-a, subnet-b,", S3WORKER_INSTANCE_TYPES="m6i.large")
    )
    assert s.subnet_ids == ("subnet-a", "subnet-b")
    assert s.instance_types == ("m6i.large",)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("S3WORKER_QUEUE_URL", ""),
        ("S3WORKER_LAUNCH_TEMPLATE_ID", ""),
        ("S3WORKER_POOL_TAG", "no-equals-sign"),
        ("S3WORKER_POOL_TAG", "key="),
        ("S3WORKER_MAX_WORKERS", "0"),
        ("S3WORKER_MAX_WORKERS", "two"),
        ("S3WORKER_FILES_PER_WORKER", "-1"),
        ("S3WORKER_DECISION_CACHE_SECONDS", "-1"),
    ],
)
def test_invalid_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        sw.Settings.from_env(settings_env(**{name: value}))


# --- the decision -----------------------------------------------------------------------------


def ids(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"i-{prefix}{k}" for k in range(n))


def pool(pending: int = 0, running: int = 0, stopping: int = 0, stopped: int = 0) -> Any:
    return sw.Pool(ids("p", pending), ids("r", running), ids("x", stopping), ids("s", stopped))


@pytest.mark.parametrize(
    ("backlog", "members", "max_w", "fpw", "start", "launch", "deferred"),
    [
        (0, pool(stopped=1), 1, 500, 0, 0, 0),  # nothing to do
        (1, pool(stopped=1), 1, 500, 1, 0, 0),  # the classic: start the stopped worker
        (1, pool(), 1, 500, 0, 1, 0),  # no member yet: launch one
        (1, pool(running=1), 1, 500, 0, 0, 0),  # already running counts as done
        (1, pool(stopping=1), 1, 500, 0, 0, 1),  # stopping: deferred, not lost
        (1200, pool(stopped=1), 4, 500, 1, 2, 0),  # stopped first, then launch
        (1200, pool(running=1, stopping=1), 3, 500, 0, 1, 1),  # cap counts stopping
        (10**6, pool(stopped=5), 3, 500, 3, 0, 0),  # never above the cap
    ],
)
def test_decide_examples(
    backlog: int, members: Any, max_w: int, fpw: int, start: int, launch: int, deferred: int
) -> None:
    d = sw.decide(sw.Backlog(visible=backlog), members, max_w, fpw)
    assert (len(d.start), d.launch, d.deferred) == (start, launch, deferred)


def check_invariants(backlog: Any, p: Any, max_w: int, fpw: int) -> None:
    d = sw.decide(backlog, p, max_w, fpw)
    total = backlog.total
    wanted = min(max_w, -(-total // fpw))
    need = max(0, wanted - p.active)
    assert d.wanted == wanted
    assert min(len(d.start), d.launch, d.deferred) >= 0  # never negative
    assert len(d.start) + d.launch + d.deferred == need  # every need is acted on or deferred
    if total > 0:
        assert d.wanted >= 1  # at least one worker while there is a backlog
    assert set(d.start) <= set(p.stopped)  # only stopped members are started
    if d.launch:
        assert len(d.start) == len(p.stopped)  # stopped members before new ones
    if d.start or d.launch:  # counting pending/running/stopping the cap holds after acting
        assert p.active + len(p.stopping) + len(d.start) + d.launch <= max_w
    if d.launch:
        assert p.size + d.launch <= max_w  # the pool itself never grows above the cap
    if d.deferred:
        assert p.stopping  # only a member that cannot be started yet defers the need


def test_decide_invariants_exhaustive_small_grid() -> None:
    backlogs = [*range(13), 499, 500, 501, 999, 1000, 1001, 10**6]
    checked = 0
    for total, states, max_w, fpw in itertools.product(
        backlogs, itertools.product(range(4), repeat=4), range(1, 6), (1, 2, 3, 500)
    ):
        check_invariants(sw.Backlog(visible=total), pool(*states), max_w, fpw)
        checked += 1
    assert checked == 20 * 256 * 5 * 4


def test_decide_invariants_random_large_inputs() -> None:
    rng = random.Random(20261126)  # seeded: a failure reproduces
    for _ in range(20_000):
        backlog = sw.Backlog(
            *(rng.choice([0, rng.randint(0, 50), rng.randint(0, 10**7)]) for _ in "vdo")
        )
        p = pool(*(rng.randint(0, 40) for _ in range(4)))
        check_invariants(backlog, p, rng.randint(1, 60), rng.randint(1, 5000))


def test_decide_counts_event_objects_when_the_queue_still_reads_zero() -> None:
    d = sw.decide(sw.Backlog(visible=0, delayed=0, from_events=1), pool(stopped=1), 1, 500)
    assert len(d.start) == 1


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


def test_clients_are_not_built_until_used() -> None:
    rt = sw.Runtime(env=settings_env())
    assert rt.ec2_client is None
    assert rt.sqs_client is None


# --- Stubber: states and errors moto cannot produce -------------------------------------------


@dataclass
class Stubbed:
    rt: Any
    ec2: Stubber
    sqs: Stubber
    clock: FakeClock


@pytest.fixture
def stubbed() -> Iterator[Stubbed]:
    ec2 = boto3.client("ec2", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    clock = FakeClock()
    env = settings_env(
        S3WORKER_MAX_WORKERS="2",
        S3WORKER_SUBNET_IDS="subnet-a,subnet-b",
        S3WORKER_INSTANCE_TYPES="m6i.large",
    )
    rt = sw.Runtime(env=env, ec2_client=ec2, sqs_client=sqs, clock=clock, sleep=clock.sleep)
    with Stubber(ec2) as ec2_stub, Stubber(sqs) as sqs_stub:
        yield Stubbed(rt, ec2_stub, sqs_stub, clock)
        ec2_stub.assert_no_pending_responses()
        sqs_stub.assert_no_pending_responses()


def expect_queue(s: Stubbed, visible: int) -> None:
    s.sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"ApproximateNumberOfMessages": str(visible)}},
        {"QueueUrl": ANY, "AttributeNames": ANY},
    )


def expect_pool(s: Stubbed, **states: list[str]) -> None:
    instances = [
        {"InstanceId": iid, "State": {"Name": state, "Code": 0}}
        for state, members in states.items()
        for iid in members
    ]
    s.ec2.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": instances}]} if instances else {"Reservations": []},
        {"Filters": ANY, "MaxResults": 1000},
    )


def test_stopping_member_is_deferred_loudly_then_started_by_the_reconciler(
    stubbed: Stubbed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="s3worker.start_worker")
    rt = sw.Runtime(  # max_workers 1: no room to launch around the stopping member
        env=settings_env(),
        ec2_client=stubbed.rt.ec2_client,
        sqs_client=stubbed.rt.sqs_client,
        clock=stubbed.clock,
        sleep=stubbed.clock.sleep,
    )
    # Given: the only member is stopping when a file arrives.
    expect_queue(stubbed, 0)
    expect_pool(stubbed, stopping=["i-stop"])

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
    expect_queue(stubbed, 1)
    expect_pool(stubbed, stopped=["i-stop"])
    stubbed.ec2.add_response("start_instances", {}, {"InstanceIds": ["i-stop"]})

    second = rt.handle(event("scheduled"), Context())
    assert second["started"] == ["i-stop"]
    assert second["deferred"] == 0


def test_incorrect_instance_state_falls_back_to_one_start_per_member(stubbed: Stubbed) -> None:
    expect_queue(stubbed, 900)
    expect_pool(stubbed, stopped=["i-a", "i-b"])
    stubbed.ec2.add_client_error("start_instances", "IncorrectInstanceState", http_status_code=400)
    stubbed.ec2.add_response("start_instances", {}, {"InstanceIds": ["i-a"]})
    stubbed.ec2.add_client_error("start_instances", "IncorrectInstanceState", http_status_code=400)

    result = stubbed.rt.handle(event("eventbridge_object_created"), Context())

    assert result["started"] == ["i-a"]
    assert result["deferred"] == 1
    assert stubbed.rt.cached is None  # the observation was wrong: the next event looks again


def run_params(subnet: str | None, itype: str | None, count: int = 1) -> dict[str, Any]:
    params: dict[str, Any] = {
        "LaunchTemplate": ANY,
        "MinCount": 1,
        "MaxCount": count,
        "TagSpecifications": ANY,
        "ClientToken": ANY,
    }
    if subnet:
        params["SubnetId"] = subnet
    if itype:
        params["InstanceType"] = itype
    return params


def test_capacity_errors_try_the_next_subnet_then_the_next_type(stubbed: Stubbed) -> None:
    expect_queue(stubbed, 0)
    expect_pool(stubbed)
    for subnet in ("subnet-a", "subnet-b"):
        stubbed.ec2.add_client_error(
            "run_instances",
            "InsufficientInstanceCapacity",
            expected_params=run_params(subnet, None),
        )
    stubbed.ec2.add_response(
        "run_instances",
        {"Instances": [{"InstanceId": "i-new"}]},
        run_params("subnet-a", "m6i.large"),
    )

    result = stubbed.rt.handle(event("eventbridge_object_created"), Context())

    assert result["launched"] == ["i-new"]


@pytest.mark.parametrize(
    ("members", "operation", "failures", "match"),
    [
        ({}, "run_instances", 4, "launched 0 of 1"),  # 2 subnets x (template type + fallback)
        ({"stopped": ["i-s"]}, "start_instances", 1, "i-s"),  # a stopped member keeps its AZ
    ],
)
def test_no_capacity_anywhere_raises_so_the_invocation_is_retried(
    stubbed: Stubbed, members: dict[str, list[str]], operation: str, failures: int, match: str
) -> None:
    expect_queue(stubbed, 0)
    expect_pool(stubbed, **members)
    for _ in range(failures):
        stubbed.ec2.add_client_error(operation, "InsufficientInstanceCapacity")

    with pytest.raises(sw.CapacityError, match=match):
        stubbed.rt.handle(event("eventbridge_object_created"), Context())
    assert stubbed.rt.cached is None


def test_an_unhandled_error_raises(stubbed: Stubbed) -> None:
    expect_queue(stubbed, 0)
    expect_pool(stubbed)
    stubbed.ec2.add_client_error("run_instances", "UnauthorizedOperation", http_status_code=403)

    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        stubbed.rt.handle(event("eventbridge_object_created"), Context())


# --- CloudFormation custom resource -----------------------------------------------------------


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server standing in for CloudFormation's pre-signed S3 URL."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"content_type": self.headers.get("Content-Type"), **json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response?X-Amz-Signature=abc", received
    server.shutdown()
    server.server_close()


def cfn_event(kind: str, url: str) -> dict[str, Any]:
    return {**event(f"cfn_{kind}"), "ResponseURL": url}


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
    assert reply["content_type"] == ""  # part of what the pre-signed URL signs
    assert reply["Status"] == "SUCCESS"
    assert reply["Data"] == {"Terminated": 2}
    delete = event("cfn_delete")
    for key in ("StackId", "RequestId", "LogicalResourceId", "PhysicalResourceId"):
        assert reply[key] == delete[key]


def test_create_validates_the_settings_and_answers(
    world: World, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = response_url

    ok = world.runtime().handle(cfn_event("create", url), Context())
    bad = world.runtime(S3WORKER_MAX_WORKERS="0").handle(cfn_event("create", url), Context())

    assert ok["status"] == "SUCCESS"
    assert bad["status"] == "FAILED"
    assert [r["Status"] for r in received] == ["SUCCESS", "FAILED"]
    assert "S3WORKER_MAX_WORKERS" in received[1]["Reason"]
    assert received[0]["PhysicalResourceId"] == event("cfn_create")["RequestId"]


def test_delete_without_a_pool_tag_has_nothing_to_clean(
    response_url: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = response_url
    rt = sw.Runtime(env={}, clock=FakeClock())

    assert rt.handle(cfn_event("delete", url), Context())["status"] == "SUCCESS"
    assert received[0]["Data"] == {"Terminated": 0}


def test_delete_that_runs_out_of_time_answers_failed(
    stubbed: Stubbed, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = response_url
    expect_pool(stubbed, running=["i-a"])
    stubbed.ec2.add_response("terminate_instances", {}, {"InstanceIds": ["i-a"]})
    # 30 s left - 10 s margin = 20 s: polls at 5, 10, 15, 20 s see it still shutting down.
    for _ in range(4):  # shutting-down is not terminated yet; not terminated again either
        expect_pool(stubbed, **{"shutting-down": ["i-a"]})

    result = stubbed.rt.handle(cfn_event("delete", url), Context(remaining_ms=30_000))

    assert result["status"] == "FAILED"
    assert received[0]["Status"] == "FAILED"
    assert "still terminating" in received[0]["Reason"]
    assert stubbed.clock.slept == [sw.CLEANUP_POLL_S] * 4


def test_delete_cancels_the_spot_requests_of_its_members_before_terminating_them(
    stubbed: Stubbed, response_url: tuple[str, list[dict[str, Any]]]
) -> None:
    # moto's RunInstances makes no Spot request: the member's request id comes from the stub
    url, received = response_url
    spot = {"InstanceId": "i-spot", "State": {"Name": "stopped", "Code": 80},
            "SpotInstanceRequestId": "sir-1"}  # fmt: skip
    ondemand = {"InstanceId": "i-od", "State": {"Name": "running", "Code": 16}}
    stubbed.ec2.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [spot, ondemand]}]},
        {"Filters": ANY, "MaxResults": 1000},
    )
    # A persistent request still open would launch a replacement for the terminated member
    stubbed.ec2.add_response(
        "cancel_spot_instance_requests", {}, {"SpotInstanceRequestIds": ["sir-1"]}
    )
    stubbed.ec2.add_response("terminate_instances", {}, {"InstanceIds": ["i-spot", "i-od"]})
    expect_pool(stubbed)  # all gone

    result = stubbed.rt.handle(cfn_event("delete", url), Context())

    assert result["status"] == "SUCCESS"
    assert received[0]["Data"] == {"Terminated": 2}


def test_an_unreachable_response_url_raises_so_lambda_retries() -> None:
    clock = FakeClock()
    with pytest.raises(OSError):
        sw.send_response("http://127.0.0.1:9/unreachable", {"Status": "SUCCESS"}, clock.sleep)
    assert clock.slept == [1.0, 2.0]


# --- logging ----------------------------------------------------------------------------------


def test_log_lines_are_json_with_their_fields() -> None:
    record = logging.LogRecord(
        "s3worker.start_worker", logging.WARNING, "", 0, "decision", (), None
    )
    record.fields = {"deferred": 1, "stopping": ["i-x"]}

    line = json.loads(sw.JsonFormatter().format(record))

    assert line["event"] == "decision"
    assert line["level"] == "warning"
    assert line["deferred"] == 1
    assert line["stopping"] == ["i-x"]
