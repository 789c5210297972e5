"""The start Lambda: EC2 API calls per 1,000-event burst (moto in-process, calls counted on the
client as tests/test_start_worker.py does) and decisions per second of the pure `decide`.

    .venv/bin/python bench/bench_start.py
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
POOL_KEY, POOL_VALUE = "s3worker:pool", "bench"
AMI = "ami-12c6146b"  # one of moto's built-in images


sys.path.insert(0, str(ROOT))
from demo.emulator import load_start_worker  # noqa: E402 (the Lambda as it deploys: its zip)

sw = load_start_worker()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Context:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def object_created() -> dict[str, Any]:
    return json.loads((ROOT / "tests/events/lambda_eventbridge_object_created.json").read_text())


def _ample_capacity(params: dict[str, Any], **_: Any) -> None:
    params["MinCount"] = params.get("MaxCount", params.get("MinCount", 1))


def burst(events: int, max_workers: int, seconds: float) -> dict[str, Any]:
    """`events` Object Created events over `seconds` on one warm container, one stopped member."""
    with mock_aws():
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "testing")
        os.environ.pop("AWS_ENDPOINT_URL", None)  # in-process moto, not the server
        ec2 = boto3.client("ec2", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        lt = ec2.create_launch_template(
            LaunchTemplateName="bench",
            LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"},
        )["LaunchTemplate"]["LaunchTemplateId"]
        queue = sqs.create_queue(QueueName="bench-work")["QueueUrl"]
        tags = [{"ResourceType": "instance", "Tags": [{"Key": POOL_KEY, "Value": POOL_VALUE}]}]
        iid = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=tags)
        ec2.stop_instances(InstanceIds=[iid["Instances"][0]["InstanceId"]])
        # Emulator gap: moto launches MinCount instances, EC2 up to MaxCount when it has the
        # capacity. Play EC2 with ample capacity, as the burst test does.
        ec2.meta.events.register("provide-client-params.ec2.RunInstances", _ample_capacity)
        calls: dict[str, list[str]] = {"ec2": [], "sqs": []}
        ec2.meta.events.register(
            "before-call.ec2", lambda model, **_: calls["ec2"].append(model.name)
        )
        sqs.meta.events.register(
            "before-call.sqs", lambda model, **_: calls["sqs"].append(model.name)
        )
        clock = FakeClock()
        env = {
            "S3WORKER_QUEUE_URL": queue,
            "S3WORKER_LAUNCH_TEMPLATE_ID": lt,
            "S3WORKER_POOL_TAG": f"{POOL_KEY}={POOL_VALUE}",
            "S3WORKER_MAX_WORKERS": str(max_workers),
            "S3WORKER_FILES_PER_WORKER": "300",
        }
        rt = sw.Runtime(env=env, ec2_client=ec2, sqs_client=sqs, clock=clock, sleep=clock.sleep)
        event = object_created()
        for n in range(events):
            if n % 10 == 0:  # the queue fills as EventBridge delivers to both targets
                entries = [{"Id": str(k), "MessageBody": "{}"} for k in range(10)]
                sqs.send_message_batch(QueueUrl=queue, Entries=entries)
            rt.handle(event, Context(f"req-{n}"))
            clock.now += seconds / events
        ec2_calls = list(calls["ec2"])
        members = ec2.describe_instances(
            Filters=[{"Name": f"tag:{POOL_KEY}", "Values": [POOL_VALUE]}]
        )["Reservations"]
        running = sum(1 for r in members for i in r["Instances"] if i["State"]["Name"] == "running")
        sqs_calls = [c for c in calls["sqs"] if c == "GetQueueAttributes"]
    by_name = {name: ec2_calls.count(name) for name in sorted(set(ec2_calls))}
    return {
        "events": events,
        "over_s": seconds,
        "max_workers": max_workers,
        "ec2_calls": len(ec2_calls),
        "ec2_calls_by_name": by_name,
        "workers_running_after": running,
        "sqs_get_queue_attributes": len(sqs_calls),
        "naive_ec2_calls": events * 2,  # describe + start per event, without cache or decision
    }


def decisions_per_second(n: int = 200_000) -> dict[str, Any]:
    rng = random.Random(7)
    inputs = []
    for _ in range(1000):
        pool = sw.Pool(
            pending=tuple(f"p{i}" for i in range(rng.randint(0, 3))),
            running=tuple(f"r{i}" for i in range(rng.randint(0, 8))),
            stopping=tuple(f"s{i}" for i in range(rng.randint(0, 3))),
            stopped=tuple(f"x{i}" for i in range(rng.randint(0, 8))),
        )
        backlog = sw.Backlog(rng.randint(0, 100_000), rng.randint(0, 100), rng.randint(0, 10))
        inputs.append((backlog, pool, rng.choice((1, 4, 16)), 500))
    decide = sw.decide
    t0 = time.perf_counter()
    for i in range(n):
        decide(*inputs[i % 1000])
    seconds = time.perf_counter() - t0
    return {"decisions": n, "seconds": round(seconds, 3), "per_s": round(n / seconds)}


def run() -> dict[str, Any]:
    return {
        "burst": [burst(1000, w, 20.0) for w in (1, 3, 16)],
        "decide": decisions_per_second(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
