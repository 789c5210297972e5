"""The daemon's CloudWatch metrics: the per-minute recorder on its own, then a worker draining
the moto server with the stack's namespace, its metrics read back over HTTP and checked against
the README's table of names and dimensions."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from procs import Pipeline, echo_registry, eventbridge_event
from s3worker.config import Settings
from s3worker.metrics import MAX_VALUES, WORKERS, Recorder, render
from s3worker.retry import RetryPolicy
from s3worker.worker import ExitReason, serve
from tenacity import wait_none

README = Path(__file__).resolve().parents[1] / "README.md"


def documented() -> set[tuple[str, tuple[str, ...]]]:
    """(metric, dimension names) of every row of the README's metrics table."""
    section = README.read_text().split("### Metrics and dashboard", 1)[1]
    found = set()
    for row in re.findall(r"^\| `(\w+)` \| \w+ \| ([^|]+) \|", section, re.M):
        name, dims = row
        for variant in dims.split(","):
            found.add((name, tuple(re.findall(r"`(\w+)`", variant))))
    return found


# -- the recorder, pure -------------------------------------------------------------------------


def dims(datum: dict[str, Any]) -> tuple[str, ...]:
    return tuple(x["Value"] for x in datum["Dimensions"])


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_a_minute_is_sent_once_it_is_over_with_counts_of_each_value() -> None:
    clock = Clock(600.0)
    recorder = Recorder(clock)
    line = {"outcome": "processed", "processor": "sales", "duration_s": 1.5, "size": 100}
    recorder.job(line, "1970-01-01T00:09:50Z", failed=False)  # uploaded 10 s before
    recorder.job(line, None, failed=False)
    recorder.job({"outcome": "dead_letter"}, None, failed=True)
    recorder.sample(in_flight=2, draining=False)
    assert recorder.take() == []  # the minute is not over
    clock.at = 661.0
    datums = {
        (d["MetricName"], tuple(x["Value"] for x in d["Dimensions"])): d for d in recorder.take()
    }
    assert datums[("FilesProcessed", ())]["Counts"] == [2.0]
    assert datums[("FilesProcessed", ("sales",))]["Values"] == [1]
    assert datums[("ProcessingSeconds", ("sales",))]["Values"] == [1.5]
    assert datums[("UploadToResultSeconds", ())]["Values"] == [10.0]
    assert datums[("FilesFailed", ())]["Counts"] == [1.0]
    assert datums[(WORKERS, ("busy",))]["Values"] == [1.0]
    assert datums[("InFlight", ())]["Timestamp"] == datetime.fromtimestamp(600, UTC)
    assert recorder.take(everything=True) == []


def test_a_minute_with_any_job_is_busy_and_a_stop_is_draining() -> None:
    clock = Clock(0.0)
    recorder = Recorder(clock)
    recorder.sample(in_flight=1, draining=False)
    recorder.sample(in_flight=0, draining=False)
    clock.at = 60.0
    recorder.sample(in_flight=0, draining=True)
    states = [(d["Timestamp"].timestamp(), d["Dimensions"]) for d in recorder.take(True)]
    workers = [s for s in states if s[1] and s[1][0]["Name"] == "State"]
    assert workers == [(0.0, [{"Name": "State", "Value": "busy"}]),
                       (60.0, [{"Name": "State", "Value": "draining"}])]  # fmt: skip


def test_more_distinct_values_than_a_datum_holds_are_split() -> None:
    datums = list(render(0, ("ProcessingSeconds", ()), [i / 10 for i in range(400)]))
    assert [len(d["Values"]) for d in datums] == [MAX_VALUES, MAX_VALUES, 100]
    assert sum(sum(d["Counts"]) for d in datums) == 400


# -- the daemon's own metrics, from moto ----------------------------------------------------------


def statistics(namespace: str, name: str, stat: str, **dims: str) -> float:
    """One statistic over the last hour. Asked without dimensions, moto counts the datums of
    every dimension set of that name (CloudWatch only those without), so only metrics that have
    no dimensioned variant are read without dimensions here."""
    now = datetime.now(UTC)
    got = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=name, StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5), Period=3600, Statistics=[stat],  # type: ignore[list-item]
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
    )["Datapoints"]  # fmt: skip
    return sum(float(p[stat]) for p in got)  # type: ignore[literal-required]


def listed(namespace: str) -> set[tuple[str, tuple[str, ...]]]:
    pages = boto3.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace=namespace)
    return {
        (m["MetricName"], tuple(d["Name"] for d in m.get("Dimensions", [])))
        for page in pages
        for m in page["Metrics"]
    }


def fresh_upload(pipeline: Pipeline, key: str, body: bytes, age_s: float) -> None:
    """Upload, then send the event S3 sends, stamped `age_s` seconds ago."""
    resp = boto3.client("s3").put_object(Bucket=pipeline.raw, Key=key, Body=body)
    event: dict[str, Any] = eventbridge_event(
        pipeline.raw, key, len(body), resp["ETag"].strip('"'), resp.get("VersionId")
    )
    event["time"] = (datetime.now(UTC) - timedelta(seconds=age_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pipeline.send(json.dumps(event))


def test_the_daemon_publishes_the_documented_metrics(
    aws: str, name: str, scratch: Path, tmp_path: Path
) -> None:
    # Given two good files uploaded 30 s ago and a corrupt one, and the stack's namespace
    pipeline = Pipeline.create(name)
    for key in ("m/a.txt", "m/b.txt"):
        fresh_upload(pipeline, key, b"echo\nrow\n", age_s=30)
    fresh_upload(pipeline, "m/bad.txt", b"echo corrupt\n", age_s=30)
    namespace = f"S3worker/{name}"
    env = pipeline.env(scratch, S3WORKER_METRICS_NAMESPACE=namespace)
    # When a worker drains the queue and exits
    settings = Settings.from_env(env)
    retry = RetryPolicy(5, wait=wait_none())
    registry = echo_registry(tmp_path / "runlog")
    assert asyncio.run(serve(settings, processors=registry, retry=retry)) is ExitReason.IDLE
    # Then every metric it sent is in the README's table, with the dimensions it lists
    sent = listed(namespace)
    assert sent <= documented(), sent - documented()
    # And everything but what only a release or a Spot notice produces was sent
    only_on_notice = {(n, d) for n, d in documented() if n in ("Interruptions", "FilesReleased")}
    assert documented() - only_on_notice <= sent, documented() - only_on_notice - sent
    # And the values are the run's
    assert statistics(namespace, "FilesProcessed", "Sum", Processor="echo") == 2
    assert statistics(namespace, "BytesProcessed", "Sum", Processor="echo") == 2 * 9
    assert statistics(namespace, "FilesFailed", "Sum") == 1
    assert statistics(namespace, "UploadToResultSeconds", "SampleCount") == 2
    assert 30 <= statistics(namespace, "UploadToResultSeconds", "Minimum") < 30 + 120
    assert statistics(namespace, "Workers", "Sum", State="busy") >= 1
