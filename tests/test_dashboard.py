"""The stack's CloudWatch dashboard names only metrics something really publishes: SQS's own, or
the daemon's (the README's table, which tests/test_metrics.py checks against what the daemon
sends), with dimension values the daemon uses; and the metrics namespace is one value across the
template (env file, IAM condition, boot metric, alarm, dashboard, output)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]
from s3worker.interruption import INTERRUPTION, REBALANCE
from s3worker.metrics import STATE_RANK

from demo.emulator import load_start_worker
from tests.test_metrics import documented

load_start_worker()  # from the deployment zip: puts its `starter` package on the path
LAMBDA_METRICS = set(importlib.import_module("starter.metrics").METRICS)

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy/cloudformation.yaml"
NAMESPACE = "S3worker/${AWS::StackName}"
# The body as CloudFormation renders it for a stack named `demo-stack`.
RENDERED = {
    "${AWS::StackName}": "demo-stack",
    "${AWS::Region}": "us-east-1",
    "${WorkQueue.QueueName}": "demo-stack-WorkQueue-1A2B",
    "${DeadLetterQueue.QueueName}": "demo-stack-DeadLetterQueue-3C4D",
}
STACK_NAMESPACE = "S3worker/demo-stack"
# What SQS publishes per queue (dimension QueueName), every minute:
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
SQS_METRICS = {
    "ApproximateAgeOfOldestMessage",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesVisible",
    "NumberOfEmptyReceives",
    "NumberOfMessagesDeleted",
    "NumberOfMessagesReceived",
    "NumberOfMessagesSent",
    "SentMessageSize",
}
STACK_QUEUES = {RENDERED["${WorkQueue.QueueName}"], RENDERED["${DeadLetterQueue.QueueName}"]}
DIMENSION_VALUES = {"State": set(STATE_RANK), "Notice": {INTERRUPTION, REBALANCE}}
Json = dict[str, Any]


@pytest.fixture(scope="module")
def template() -> Json:
    loaded: Json = cfn_yaml.load(str(TEMPLATE))
    return loaded


@pytest.fixture(scope="module")
def widgets(template: Json) -> list[Json]:
    body: str = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for name, value in RENDERED.items():
        body = body.replace(name, value)
    assert "${" not in body, "a substitution the test does not render"
    found: list[Json] = json.loads(body)["widgets"]
    return found


def metric_lines(widget: Json) -> list[list[Any]]:
    return list(widget["properties"]["metrics"])


def named(line: list[Any]) -> tuple[str, str, dict[str, str], Json]:
    """(namespace, metric, dimensions, options) of one metric line (no '...' shorthand)."""
    options = line[-1] if isinstance(line[-1], dict) else {}
    parts = [p for p in line if not isinstance(p, dict)]
    namespace, metric, *pairs = parts
    return namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True)), options


def searched(expression: str) -> tuple[str, tuple[str, ...], str]:
    """(namespace, dimension names, metric) of a SEARCH('{NS,DIM...} MetricName="M"', ...)."""
    schema = re.search(r"\{([^}]*)\}", expression)
    metric = re.search(r'MetricName=\\?"(\w+)\\?"', expression)
    assert schema, expression
    assert metric, expression
    namespace, *dims = (p.strip().strip('"') for p in schema.group(1).split(","))
    return namespace, tuple(dims), metric.group(1)


def check_daemon_metric(metric: str, dims: dict[str, str]) -> None:
    if metric in LAMBDA_METRICS:  # the start Lambda's decision lines have no dimensions
        assert dims == {}, (metric, dims)
        return
    assert (metric, tuple(dims)) in documented(), (metric, dims)
    for dim, value in dims.items():
        assert value in DIMENSION_VALUES[dim], (metric, dim, value)


def test_every_widget_names_a_metric_that_is_really_published(widgets: list[Json]) -> None:
    for widget in widgets:
        lines = metric_lines(widget)
        assert lines, widget["properties"]["title"]
        for line in lines:
            if "expression" in line[0]:
                namespace, dim_names, metric = searched(line[0]["expression"])
                assert namespace == STACK_NAMESPACE
                assert (metric, dim_names) in documented(), line
                continue
            namespace, metric, dims, _ = named(line)
            if namespace == "AWS/SQS":
                assert metric in SQS_METRICS, metric
                assert set(dims) == {"QueueName"}
                assert dims["QueueName"] in STACK_QUEUES
            else:
                assert namespace == STACK_NAMESPACE, namespace
                check_daemon_metric(metric, dims)


def test_the_dashboard_shows_what_an_operator_asks_for(widgets: list[Json]) -> None:
    shown: dict[str, set[str]] = {}
    for widget in widgets:
        default = widget["properties"].get("stat", "")
        for line in metric_lines(widget):
            if "expression" in line[0]:
                continue
            _, metric, _, options = named(line)
            shown.setdefault(metric, set()).add(options.get("stat", default))
    # backlog and oldest age; workers by state; throughput; failures; latency; interruptions
    assert {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Workers",
        "FilesProcessed",
        "FilesFailed",
        "Interruptions",
        "PoolActive",
        "WorkersStarted",
        "SpotFallbacks",
    } <= set(shown)
    assert {"p50", "p95"} <= shown["UploadToResultSeconds"]


def test_the_metrics_namespace_is_one_value_across_the_template(template: Json) -> None:
    resources, outputs = template["Resources"], template["Outputs"]
    lt = resources["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    user_data = lt["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert f"S3WORKER_METRICS_NAMESPACE={NAMESPACE}\n" in user_data
    assert f"put-metric-data --namespace '{NAMESPACE}'" in user_data
    worker = resources["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (metrics,) = [s for s in worker if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": {"Fn::Sub": NAMESPACE}}
    }
    alarm = resources["BootFailureAlarm"]["Properties"]
    assert alarm["Namespace"] == {"Fn::Sub": NAMESPACE}
    assert outputs["MetricsNamespace"]["Value"] == {"Fn::Sub": NAMESPACE}
    assert "#dashboards:name=${Dashboard}" in outputs["DashboardUrl"]["Value"]["Fn::Sub"]
