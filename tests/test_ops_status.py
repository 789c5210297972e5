"""`s3worker status` against the moto server over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from opstack import cli, create_stack, drain, launch_worker


def test_status_shows_queues_workers_results_and_errors(
    aws: str, name: str, scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two processed files, one failed file, two files waiting, and a pool of two workers
    # (one running, one stopped), plus an instance of another stack
    pipeline = create_stack(name)
    pipeline.upload("ok/1.txt", b"echo\na\n")
    pipeline.upload("ok/2.txt", b"echo\na\nb\n")
    pipeline.upload("bad/x.txt", b"echo corrupt\n")
    drain(pipeline, scratch, tmp_path / "runlog")
    pipeline.upload("later/3.txt", b"echo\n")
    pipeline.upload("later/4.txt", b"echo\n")
    running = launch_worker(name)
    stopped = launch_worker(name, state="stopped")
    other = launch_worker(f"{name}-other")
    # When the operator asks for the status as JSON
    code, out, _ = cli(capsys, "status", "--stack", name, "--json")
    status = json.loads(out)
    # Then the queue depths are the queues'
    assert code == 0
    assert status["queue"]["visible"] == 2
    assert status["queue"]["in_flight"] == 0
    assert status["dead_letter"]["visible"] == 1
    # And the oldest age is unknown rather than invented (moto publishes no SQS metrics)
    assert status["queue"]["oldest_age_seconds"] is None
    assert status["queue"]["oldest_age_source"].startswith("unknown")
    # And each pool member is listed with its state; uptime only while it runs
    workers = {w["id"]: w for w in status["workers"]}
    assert set(workers) == {running, stopped}
    assert other not in workers
    assert workers[running]["state"] == "running"
    assert workers[running]["type"] == "t4g.small"
    assert workers[running]["uptime_seconds"] >= 0
    assert workers[stopped]["state"] == "stopped"
    assert workers[stopped]["uptime_seconds"] is None
    # And the recent results and errors come from the processed bucket
    assert sorted(r["key"] for r in status["recent_results"]) == ["ok/1.txt", "ok/2.txt"]
    assert {r["processor"] for r in status["recent_results"]} == {"echo"}
    [error] = status["recent_errors"]
    assert (error["key"], error["class"]) == ("bad/x.txt", "BadDataError")


def test_status_table_and_limit(
    aws: str, name: str, scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three processed files and a running worker
    pipeline = create_stack(name)
    for i in range(3):
        pipeline.upload(f"t/{i}.txt", b"echo\n")
    drain(pipeline, scratch, tmp_path / "runlog")
    worker = launch_worker(name)
    # When the operator asks for the human status, limited to 2 recent results
    code, out, _ = cli(capsys, "status", "--stack", name, "--limit", "2")
    # Then the table shows the worker's id and state, and only 2 results
    assert code == 0
    assert f"stack {name} (us-east-1)" in out
    assert "work queue   visible 0  delayed 0  in flight 0  oldest -" in out
    line = next(x for x in out.splitlines() if x.startswith(worker))
    assert line.split()[1:3] == ["running", "t4g.small"]
    assert "recent results (2)" in out
    assert "recent errors (0)" in out


def test_status_reads_the_age_from_cloudwatch_when_present(
    aws: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an ApproximateAgeOfOldestMessage datapoint for the work queue (what SQS publishes
    # on AWS; moto does not, so the test puts it there)
    pipeline = create_stack(name)
    queue_name = pipeline.queue_url.rsplit("/", 1)[-1]
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[{
            "MetricName": "ApproximateAgeOfOldestMessage", "Value": 192.0,
            "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
            "Timestamp": datetime.now(UTC),
        }],
    )  # fmt: skip
    # When the operator asks for the status
    code, out, _ = cli(capsys, "status", "--stack", name, "--json")
    # Then the age is CloudWatch's
    queue = json.loads(out)["queue"]
    assert code == 0
    assert queue["oldest_age_seconds"] == 192.0
    assert queue["oldest_age_source"].startswith("CloudWatch")
