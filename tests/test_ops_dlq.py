"""`s3worker dlq list|redrive` against the moto server over HTTP.

moto 5.2.5 has no StartMessageMoveTask (its server answers 500), so redrive here takes the
fallback path: receive → send → delete. The move-task path is covered with a stub client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from opstack import cli, create_stack, drain, queue_counts
from procs import eventbridge_event
from s3worker.ops.dlq import RedriveResult, _wait_for_task


def test_list_shows_the_reason_without_consuming(
    aws: str, name: str, scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a corrupt file the daemon dead-lettered (with its error attributes)
    pipeline = create_stack(name)
    pipeline.upload("bad/corrupt.txt", b"echo corrupt\n")
    drain(pipeline, scratch, tmp_path / "runlog")
    # When the operator lists the DLQ, as a table and as JSON
    code, out, _ = cli(capsys, "dlq", "list", "--stack", name)
    code2, out2, _ = cli(capsys, "dlq", "list", "--stack", name, "--json")
    # Then the input key and the error class and message are shown
    assert code == code2 == 0
    assert "bad/corrupt.txt" in out
    assert "BadDataError: line 1: this file is corrupt on purpose" in out
    [letter] = json.loads(out2)
    assert letter["keys"] == ["bad/corrupt.txt"]
    assert letter["error_source"] == "attributes"
    assert letter["report"] == f"s3://{pipeline.processed}/_errors/bad/corrupt.txt.json"
    assert letter["age_seconds"] >= 0
    # And the message is still there, visible, for the next reader
    assert queue_counts(pipeline.dlq_url) == (1, 0)


def test_list_explains_messages_that_arrived_without_attributes(
    aws: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two messages that reached the DLQ through the redrive policy (body unchanged, no
    # attributes): one whose input also has an error report, one with none at all
    pipeline = create_stack(name)
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    report = {"error": {"class": "ObjectGoneError", "message": "s3://raw/gone.csv is gone"}}
    s3.put_object(Bucket=pipeline.processed, Key="_errors/gone.csv.json", Body=json.dumps(report))
    for key in ("gone.csv", "flaky.csv"):
        body = json.dumps(eventbridge_event(pipeline.raw, key, 10, "e"))
        sqs.send_message(QueueUrl=pipeline.dlq_url, MessageBody=body)
    # When the operator lists the DLQ
    code, out, _ = cli(capsys, "dlq", "list", "--stack", name, "--json")
    # Then the reason comes from the report where there is one, else says what happened
    letters = {d["keys"][0]: d for d in json.loads(out)}
    assert code == 0
    assert letters["gone.csv"]["error_class"] == "ObjectGoneError"
    assert letters["gone.csv"]["error_source"] == "report"
    assert letters["flaky.csv"]["error_class"] == "MaxReceiveCountExceeded"
    assert "maxReceiveCount" in letters["flaky.csv"]["error_message"]
    assert queue_counts(pipeline.dlq_url) == (2, 0)


def test_list_of_an_empty_dlq(aws: str, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a stack with nothing dead-lettered
    create_stack(name)
    # When the operator lists the DLQ
    code, out, _ = cli(capsys, "dlq", "list", "--stack", name)
    # Then it says so
    assert (code, out) == (0, "the dead-letter queue is empty\n")


def test_redrive_moves_everything_back(
    aws: str, name: str, scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three dead-lettered files
    pipeline = create_stack(name)
    keys = [f"bad/{i}.txt" for i in range(3)]
    for key in keys:
        pipeline.upload(key, b"echo corrupt\n")
    drain(pipeline, scratch, tmp_path / "runlog")
    assert queue_counts(pipeline.dlq_url) == (3, 0)
    # When the operator first tries a dry run
    code, out, _ = cli(capsys, "dlq", "redrive", "--stack", name, "--dry-run")
    # Then nothing moves
    assert (code, out) == (0, "dry run: 3 message(s) would be sent back to the work queue\n")
    assert queue_counts(pipeline.dlq_url) == (3, 0)
    # When the operator redrives for real
    code, out, _ = cli(capsys, "dlq", "redrive", "--stack", name)
    # Then all three are back on the work queue, unchanged but for the failure attributes
    assert code == 0
    assert out.startswith("moved 3 message(s) back to the work queue (receive-send-delete")
    assert queue_counts(pipeline.dlq_url) == (0, 0)
    moved = _receive_all(pipeline.queue_url)
    assert sorted(json.loads(m["Body"])["detail"]["object"]["key"] for m in moved) == keys
    assert all("s3worker-error-class" not in m.get("MessageAttributes", {}) for m in moved)


def _receive_all(url: str) -> list[dict[str, Any]]:
    sqs, found = boto3.client("sqs"), list[dict[str, Any]]()
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages"):
        found += [dict(m) for m in batch]
    return found


class StubSqs:
    """ListMessageMoveTasks answers in turn: the task running, then completed."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers

    def list_message_move_tasks(self, **_: Any) -> dict[str, Any]:
        return {"Results": [self.answers.pop(0)]}


def test_move_task_is_followed_until_it_completes() -> None:
    # Given a move task that runs, then completes having moved 7 messages
    sqs = StubSqs([
        {"TaskHandle": "h", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 3},
        {"TaskHandle": "h", "Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 7},
    ])  # fmt: skip
    naps: list[float] = []
    # When the command waits for it
    result = _wait_for_task(sqs, "arn:dlq", "h", wait_seconds=60, sleep=naps.append)
    # Then it reports the final count, having polled once in between
    assert result == RedriveResult("move-task", moved=7, status="COMPLETED", detail="task h")
    assert len(naps) == 1
