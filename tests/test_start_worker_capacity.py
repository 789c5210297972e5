"""The start Lambda's capacity types, retries and decision metrics, against the moto server over
HTTP with the function's own botocore clients (their retry configuration included).

moto launches a RunInstances with market options as a Spot instance but never refuses one for
capacity: the refusals AWS gives (InsufficientInstanceCapacity with HTTP 500, EC2's status for
its server errors; MaxSpotInstanceCountExceeded and SpotMaxPriceTooLow with 400) are injected at
the botocore level, on the `before-send` event, so botocore parses and retries them as it would
AWS's answer. What the start logic asked for is read back from the `provide-client-params` event
(once per API call) and from moto's instances."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from demo.emulator import load_start_worker

sw = load_start_worker()
observe = importlib.import_module("starter.observe")
aws = importlib.import_module("starter.aws")
AMI = "ami-12c6146b"  # one of moto's built-in images
SPOT = {
    "MarketType": "spot",
    "SpotOptions": {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"},
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def ec2_error(code: str, status: int) -> AWSResponse:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Errors><Error><Code>{code}</Code><Message>injected {code}</Message>"
        "</Error></Errors><RequestID>injected</RequestID></Response>"
    ).encode()
    return AWSResponse("https://ec2.injected", status, {}, _Raw(body))


@dataclass
class Context:
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Pool:
    """One stack's pool on the shared moto server: its own tag, template and queue."""

    tag: str
    env: dict[str, str]
    ec2: Any
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    metric_lines: list[dict[str, Any]] = field(default_factory=list)

    def runtime(
        self, capacity_type: str, refuse: Callable[[str], str | None] = lambda _: None, **env: str
    ) -> Any:
        rt = sw.Runtime(
            env={**self.env, "S3WORKER_CAPACITY_TYPE": capacity_type, **env},
            metrics_write=lambda line: self.metric_lines.append(json.loads(line)),
        )
        for client in (rt.ec2(), rt.ec2_act()):
            client.meta.events.register("provide-client-params.ec2", self._record)
        rt.ec2_act().meta.events.register(
            "before-send.ec2.RunInstances", lambda request, **_: self._refuse(request, refuse)
        )
        return rt

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def _refuse(self, request: Any, refuse: Callable[[str], str | None]) -> AWSResponse | None:
        body = request.body if isinstance(request.body, str) else request.body.decode()
        market = "spot" if "InstanceMarketOptions.MarketType=spot" in body else "on-demand"
        self.attempts.append(market)
        code = refuse(market)
        if code is None:
            return None
        return ec2_error(code, 500 if code.startswith("Insufficient") else 400)

    def runs(self) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == "RunInstances"]

    def members(self) -> dict[str, str | None]:
        """Pool instance id -> its lifecycle as EC2 reports it (None: on-demand)."""
        filters = [{"Name": "tag:s3worker:pool", "Values": [self.tag]}]
        found = self.ec2.describe_instances(Filters=filters)["Reservations"]
        return {i["InstanceId"]: i.get("InstanceLifecycle") for r in found for i in r["Instances"]}


@pytest.fixture
def pool(aws: str, name: str) -> Pool:
    ec2, sqs = boto3.client("ec2"), boto3.client("sqs")
    lt = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    env = {
        "S3WORKER_QUEUE_URL": queue,
        "S3WORKER_LAUNCH_TEMPLATE_ID": lt,
        "S3WORKER_POOL_TAG": f"s3worker:pool={name}",
        "S3WORKER_METRICS_NAMESPACE": f"S3worker/{name}",
    }
    return Pool(name, env, ec2)


def object_created() -> dict[str, Any]:
    from pathlib import Path

    path = Path(__file__).parent / "events" / "lambda_eventbridge_object_created.json"
    return json.loads(path.read_text())


# --- one test per capacity type: what the start logic calls ------------------------------------


def test_on_demand_launches_without_market_options(pool: Pool) -> None:
    result = pool.runtime("on-demand").handle(object_created(), Context())

    (run,) = pool.runs()
    assert "InstanceMarketOptions" not in run
    assert [t["ResourceType"] for t in run["TagSpecifications"]] == ["instance", "volume"]
    assert pool.members() == dict.fromkeys(result["launched"], None)
    assert result["markets"] == dict.fromkeys(result["launched"], "on-demand")


def test_spot_launches_a_persistent_stoppable_spot_request_tagged_with_the_pool(pool: Pool) -> None:
    result = pool.runtime("spot").handle(object_created(), Context())

    (run,) = pool.runs()
    assert run["InstanceMarketOptions"] == SPOT
    assert {
        "ResourceType": "spot-instances-request",
        "Tags": [{"Key": "s3worker:pool", "Value": pool.tag}],
    } in run["TagSpecifications"]
    assert pool.members() == dict.fromkeys(result["launched"], "spot")  # moto's view
    assert result["fallbacks"] == 0


def test_spot_then_on_demand_launches_spot_when_there_is_capacity(pool: Pool) -> None:
    result = pool.runtime("spot-then-on-demand").handle(object_created(), Context())

    assert [r.get("InstanceMarketOptions") for r in pool.runs()] == [SPOT]
    assert set(result["markets"].values()) == {"spot"}


def test_spot_then_on_demand_falls_back_on_spot_capacity_errors(pool: Pool) -> None:
    # Given Spot has no capacity (EC2's 500), in either of two subnets
    env = {"S3WORKER_SUBNET_IDS": "", "S3WORKER_INSTANCE_TYPES": "t3.small"}
    rt = pool.runtime(
        "spot-then-on-demand",
        refuse=lambda m: "InsufficientInstanceCapacity" if m == "spot" else None,
        **env,
    )

    result = rt.handle(object_created(), Context())

    # Then both Spot candidates (template type, fallback type) were tried, each retried once
    # by botocore (a 500 is transient to it), then on-demand launched, and the line says so
    markets = [
        r.get("InstanceMarketOptions", {}).get("MarketType", "on-demand") for r in pool.runs()
    ]
    assert markets == ["spot", "spot", "on-demand"]
    assert pool.attempts == ["spot"] * 2 * aws.ACT_MAX_ATTEMPTS + ["on-demand"]
    assert pool.members() == dict.fromkeys(result["launched"], None)
    assert result["fallbacks"] == 1
    assert result["capacity_errors"] == 2
    assert result["refusals"] == [
        "spot/template/template: InsufficientInstanceCapacity",
        "spot/t3.small/template: InsufficientInstanceCapacity",
    ]


@pytest.mark.parametrize("code", ["MaxSpotInstanceCountExceeded", "SpotMaxPriceTooLow"])
def test_a_spot_wide_refusal_goes_straight_to_on_demand(pool: Pool, code: str) -> None:
    rt = pool.runtime(
        "spot-then-on-demand",
        refuse=lambda m: code if m == "spot" else None,
        S3WORKER_INSTANCE_TYPES="t3.small,t3.medium",
    )

    result = rt.handle(object_created(), Context())

    # One Spot try (a 400: not retried), no other type, then on-demand
    assert pool.attempts == ["spot", "on-demand"]
    assert result["fallbacks"] == 1
    assert result["refusals"] == [f"spot/template/template: {code}"]


def test_spot_alone_never_falls_back_and_raises_for_the_retry(pool: Pool) -> None:
    rt = pool.runtime("spot", refuse=lambda m: "InsufficientInstanceCapacity")

    with pytest.raises(sw.CapacityError, match="launched 0 of 1"):
        rt.handle(object_created(), Context())

    assert pool.attempts == ["spot"] * aws.ACT_MAX_ATTEMPTS
    assert pool.members() == {}
    assert rt.cached is None  # the next event observes again
    (line,) = pool.metric_lines
    assert (line["CapacityErrors"], line["WorkersDeferred"], line["SpotFallbacks"]) == (1, 1, 0)


def test_stopped_spot_members_are_started_like_on_demand_ones(pool: Pool) -> None:
    # Given a Spot member that stopped itself (the daemon's idle stop: StopInstances)
    first = pool.runtime("spot").handle(object_created(), Context())
    (member,) = first["launched"]
    pool.ec2.stop_instances(InstanceIds=[member])
    pool.calls.clear()

    second = pool.runtime("spot").handle(object_created(), Context(aws_request_id="req-2"))

    assert second["started"] == [member]
    assert [name for name, _ in pool.calls].count("RunInstances") == 0


# --- the observation: interrupted Spot members are held, not startable ------------------------


def instance(iid: str, state: str, reason: str = "") -> dict[str, Any]:
    inst: dict[str, Any] = {"InstanceId": iid, "State": {"Name": state, "Code": 80}}
    if reason:
        inst["StateReason"] = {"Code": reason, "Message": reason}
    return inst


def test_a_member_an_interruption_stopped_is_held() -> None:
    found = observe.pool_of(
        [
            instance("i-idle", "stopped", "Client.UserInitiatedShutdown"),
            instance("i-int", "stopped", "Server.SpotInstanceShutdown"),
            instance("i-run", "running"),
        ]
    )

    assert found == sw.Pool(running=("i-run",), stopped=("i-idle",), held=("i-int",))


def test_held_members_count_toward_the_cap_and_defer_the_need() -> None:
    d = sw.decide(sw.Backlog(visible=5), sw.Pool(held=("i-int",)), 1, 500)

    assert (d.start, d.launch, d.deferred) == ((), 0, 1)


# --- botocore's retries, nothing on top ---------------------------------------------------------


def test_throttling_is_retried_by_botocore_alone(pool: Pool) -> None:
    rt = pool.runtime("on-demand")
    seen: list[int] = []

    def throttle_twice(**_: Any) -> AWSResponse | None:
        seen.append(1)
        return ec2_error("RequestLimitExceeded", 503) if len(seen) <= 2 else None

    rt.ec2().meta.events.register("before-send.ec2.DescribeInstances", throttle_twice)

    result = rt.handle(object_created(), Context())

    assert len(seen) == 3  # two throttled attempts, then the answer: one API call
    assert [name for name, _ in pool.calls].count("DescribeInstances") == 1
    assert len(result["launched"]) == 1


def test_clients_use_standard_mode_with_bounded_attempts() -> None:
    for config, attempts in ((aws.RETRIES, aws.MAX_ATTEMPTS), (aws.ACT_RETRIES, 2)):
        assert config.retries == {"mode": "standard", "total_max_attempts": attempts}


# --- decision metrics: Embedded Metric Format lines ---------------------------------------------


def test_each_decision_writes_one_emf_line_in_the_stacks_namespace(pool: Pool) -> None:
    rt = pool.runtime(
        "spot-then-on-demand", refuse=lambda m: "UnfulfillableCapacity" if m == "spot" else None
    )

    rt.handle(object_created(), Context())

    (line,) = pool.metric_lines
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == f"S3worker/{pool.tag}"
    assert directive["Dimensions"] == [[]]
    names = [m["Name"] for m in directive["Metrics"]]
    assert set(names) == set(sw_metrics().METRICS)
    assert all(m["Unit"] == "Count" for m in directive["Metrics"])
    assert isinstance(line["_aws"]["Timestamp"], int)
    assert {n: line[n] for n in names} == {
        "WorkersStarted": 0,
        "WorkersLaunched": 1,
        "WorkersDeferred": 0,
        "CapacityErrors": 1,
        "SpotFallbacks": 1,
        "Backlog": 1,
        "PoolActive": 0,
        "PoolStopped": 0,
    }


def sw_metrics() -> Any:
    return importlib.import_module("starter.metrics")


def test_the_namespace_defaults_to_the_stack_of_the_pool_tag() -> None:
    env = {
        "S3WORKER_QUEUE_URL": "q",
        "S3WORKER_LAUNCH_TEMPLATE_ID": "lt-1",
        "S3WORKER_POOL_TAG": "s3worker:pool=prod",
    }
    assert sw.Settings.from_env(env).metrics_namespace == "S3worker/prod"


def test_an_unknown_capacity_type_names_the_variable() -> None:
    env = {
        "S3WORKER_QUEUE_URL": "q",
        "S3WORKER_LAUNCH_TEMPLATE_ID": "lt-1",
        "S3WORKER_POOL_TAG": "s3worker:pool=prod",
        "S3WORKER_CAPACITY_TYPE": "reserved",
    }
    with pytest.raises(ValueError, match="S3WORKER_CAPACITY_TYPE"):
        sw.Settings.from_env(env)


def test_an_idle_reconcile_drops_the_cached_pool_view(pool: Pool) -> None:
    # Given a warm container that has just observed the pool for an event
    rt = pool.runtime("on-demand", S3WORKER_DECISION_CACHE_SECONDS="3600")
    rt.handle(object_created(), Context())
    assert rt.cached is not None
    # When the reconciler finds the queue empty
    result = rt.handle({"source": "aws.events", "detail-type": "Scheduled Event"}, Context())
    # Then it answers idle and the next event observes the pool afresh
    assert result["action"] == "idle"
    assert rt.cached is None


# --- the template and the function agree ---------------------------------------------------------


def test_the_template_passes_its_capacity_type_and_namespace_to_the_function() -> None:
    from cfnlint.decode import cfn_yaml

    from demo.emulator import TEMPLATE

    template = cfn_yaml.load(str(TEMPLATE))
    parameter = template["Parameters"]["CapacityType"]
    env = template["Resources"]["StartWorkerFunction"]["Properties"]["Environment"]["Variables"]

    assert parameter["AllowedValues"] == [c.value for c in sw.CapacityType]
    assert parameter["Default"] == sw.CapacityType.ON_DEMAND.value
    assert env["S3WORKER_CAPACITY_TYPE"] == {"Ref": "CapacityType"}
    assert env["S3WORKER_METRICS_NAMESPACE"] == {"Fn::Sub": "S3worker/${AWS::StackName}"}
