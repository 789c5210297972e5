"""What the start Lambda's tests share: its modules (imported from the deployment zip), its event
fixtures, an injectable clock and context, settings, botocore Stubber helpers for the states and
errors moto cannot produce, and a stack's pool on the moto server over HTTP."""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from botoanswers import query_error
from botocore.awsrequest import AWSResponse
from botocore.stub import ANY, Stubber

from demo.emulator import load_start_worker

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"
REGION = "us-east-1"
POOL_KEY, POOL_VALUE = "s3worker:pool", "test-stack"
AMI = "ami-12c6146b"  # one of moto's built-in images
SPOT = {
    "MarketType": "spot",
    "SpotOptions": {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"},
}

sw = load_start_worker()  # the handler module, from the zip that deploys


def starter(name: str) -> ModuleType:
    """`starter.<name>`, from the zip load_start_worker put on the path."""
    return importlib.import_module(f"starter.{name}")


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


def settings_env(**overrides: str) -> dict[str, str]:
    env = {
        "S3WORKER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/work",
        "S3WORKER_LAUNCH_TEMPLATE_ID": "lt-0123456789abcdef0",
        "S3WORKER_POOL_TAG": f"{POOL_KEY}={POOL_VALUE}",
    }
    env.update(overrides)
    return env


# --- botocore's Stubber: states and errors moto cannot produce ----------------------------------


@dataclass
class Stubbed:
    rt: Any
    ec2: Stubber
    sqs: Stubber
    clock: FakeClock


def stubbed_runtime(**env: str) -> Iterator[Stubbed]:
    """A Runtime on stubbed EC2 and SQS clients; every queued answer must have been used."""
    ec2 = boto3.client("ec2", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    clock = FakeClock()
    rt = sw.Runtime(
        env=settings_env(**env), ec2_client=ec2, sqs_client=sqs, clock=clock, sleep=clock.sleep
    )
    with Stubber(ec2) as ec2_stub, Stubber(sqs) as sqs_stub:
        yield Stubbed(rt, ec2_stub, sqs_stub, clock)
        ec2_stub.assert_no_pending_responses()
        sqs_stub.assert_no_pending_responses()


def stubbed_ec2() -> Iterator[tuple[Any, Stubber]]:
    """An EC2 client and its Stubber; every queued answer must have been used."""
    client = boto3.client("ec2", region_name=REGION)
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def expect_queue(sqs: Stubber, visible: int) -> None:
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"ApproximateNumberOfMessages": str(visible)}},
        {"QueueUrl": ANY, "AttributeNames": ANY},
    )


def expect_pool(ec2: Stubber, next_token: str = "", **states: list[str]) -> None:
    """One DescribeInstances answer listing these members by state."""
    instances = [
        {"InstanceId": iid, "State": {"Name": state, "Code": 0}}
        for state, members in states.items()
        for iid in members
    ]
    answer: dict[str, Any] = {"Reservations": [{"Instances": instances}] if instances else []}
    if next_token:
        answer["NextToken"] = next_token
    ec2.add_response("describe_instances", answer, {"Filters": ANY, "MaxResults": 1000})


def run_params(subnet: str | None, itype: str | None, count: int = 1) -> dict[str, Any]:
    """What a RunInstances for one candidate is expected to carry."""
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


# --- a stack's pool on the moto server over HTTP ------------------------------------------------
# moto never refuses a launch for capacity: the refusals AWS gives (InsufficientInstanceCapacity
# with HTTP 500, EC2's status for its server errors; Spot-wide ones with 400) are injected at the
# botocore level, on `before-send`, so botocore parses and retries them as it would AWS's answer.


def ec2_error(code: str, status: int) -> AWSResponse:
    return query_error(code, status)


@dataclass
class HttpPool:
    """One stack's pool on the shared moto server: its own tag, template and queue. What the
    start logic asked for is read back from `provide-client-params` (once per API call)."""

    tag: str
    env: dict[str, str]
    ec2: Any
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    metric_lines: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, name: str) -> HttpPool:
        ec2, sqs = boto3.client("ec2"), boto3.client("sqs")
        lt = ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
        )["LaunchTemplate"]["LaunchTemplateId"]
        env = {
            "S3WORKER_QUEUE_URL": sqs.create_queue(QueueName=name)["QueueUrl"],
            "S3WORKER_LAUNCH_TEMPLATE_ID": lt,
            "S3WORKER_POOL_TAG": f"{POOL_KEY}={name}",
            "S3WORKER_METRICS_NAMESPACE": f"S3worker/{name}",
        }
        return cls(name, env, ec2)

    def runtime(
        self, capacity_type: str, refuse: Callable[[str], str | None] = lambda _: None, **env: str
    ) -> Any:
        """The function's Runtime with its own clients; `refuse(market)` names an error code."""
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
        filters = [{"Name": f"tag:{POOL_KEY}", "Values": [self.tag]}]
        found = self.ec2.describe_instances(Filters=filters)["Reservations"]
        return {i["InstanceId"]: i.get("InstanceLifecycle") for r in found for i in r["Instances"]}


# --- CloudFormation's pre-signed response URL ---------------------------------------------------


@contextmanager
def response_server(status: int = 200) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server standing in for CloudFormation's pre-signed S3 URL: its URL, and
    each PUT body it received (with the request's Content-Type)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"content_type": self.headers.get("Content-Type"), **json.loads(body)})
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/response?X-Amz-Signature=abc", received
    finally:
        server.shutdown()
        server.server_close()


def cfn_event(kind: str, url: str) -> dict[str, Any]:
    return {**event(f"cfn_{kind}"), "ResponseURL": url}
