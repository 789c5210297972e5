"""The one rule from an exception to a verdict (pure), and its integration: every input the
daemon gives up on has one error report and one DLQ message that carries the error."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import boto3
import pytest
from procs import Pipeline, echo_registry, runs
from s3worker.errors import BadDataError, SupersededError, TransientError
from s3worker.events import ObjectRef
from s3worker.publish import version_tag
from s3worker.sqs import message_bytes
from s3worker.verdict import UNKNOWN_ATTEMPTS, Verdict, is_final_receive, verdict_for
from test_worker import run_worker

ACK, DEAD, RELEASE = Verdict.ACK, Verdict.DEAD_LETTER, Verdict.RELEASE


@pytest.mark.parametrize(
    ("exc", "attempt", "max_receives", "verdict"),
    [
        (SupersededError("newer"), 1, 5, ACK),
        (BadDataError("bad"), 1, 5, DEAD),
        (RecursionError("deep JSON"), 1, 5, DEAD),
        (OverflowError("cannot convert float infinity to integer"), 1, 5, DEAD),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), 1, 5, DEAD),
        (MemoryError(), 1, 5, DEAD),
        (OSError(errno.ENOSPC, "No space left on device"), 1, 5, RELEASE),
        (OSError(errno.ENOSPC, "No space left on device"), 5, 5, DEAD),  # the last receive
        (TransientError("throttled"), 3, 5, RELEASE),
        # The 4th of 5 receives is the last attempt: the 5th is kept to report a dead attempt.
        (TransientError("throttled"), 4, 5, DEAD),
        (TransientError("throttled"), 5, 5, DEAD),
        (TransientError("throttled"), 50, None, RELEASE),  # no redrive policy: SQS decides
        (KeyError("a bug"), 1, 5, RELEASE),
        (KeyError("a bug"), UNKNOWN_ATTEMPTS, 5, DEAD),  # unknown errors: bounded retries
        (KeyError("a bug"), 2, 2, DEAD),
        (KeyError("a bug"), UNKNOWN_ATTEMPTS, None, DEAD),
    ],
)
def test_one_rule_maps_every_exception(
    exc: BaseException, attempt: int, max_receives: int | None, verdict: Verdict
):
    assert verdict_for(exc, attempt, max_receives) is verdict


def _event(pipeline: Pipeline, key: str, size: object) -> str:
    obj = {"key": key, "size": size, "etag": "0" * 32}
    detail = {"bucket": {"name": pipeline.raw}, "object": obj}
    return json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": detail})


HOSTILE_BODIES = {
    "nested-json": "[" * 100_000,
    "size-1e400": None,  # built per pipeline below
    "lone-surrogate-key": None,
    "too-many-records": json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}] * 101}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
def test_each_hostile_body_gets_one_report_and_one_dlq_message(
    aws: str, name: str, scratch: Path, tmp_path: Path, case: str
):
    pipeline = Pipeline.create(name)
    body = (
        HOSTILE_BODIES[case]
        or {
            "size-1e400": lambda: _event(pipeline, "a.txt", 1e400).replace("Infinity", "1e400"),
            "lone-surrogate-key": lambda: _event(pipeline, "a\ud800.txt", 10),
        }[case]()
    )
    pipeline.send(body)
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    pipeline.assert_failed_once("BadEventError")


def test_routing_a_deeply_nested_json_file_is_reported(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    from s3worker.processors.registry import Registry

    # Given a JSON file nested too deeply for the sniffers (RecursionError while routing)
    pipeline = Pipeline.create(name)
    pipeline.upload("deep/x.json", b'{"a":' * 30_000)
    run_worker(pipeline, scratch, Registry())
    report = pipeline.assert_failed_once("RecursionError")
    assert report["kind"] == "permanent"


def test_a_full_disk_on_the_last_receive_is_reported_by_the_daemon(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given a queue that allows one receive, and a file whose processing finds the disk full
    pipeline = Pipeline.create(name, max_receive=1)
    pipeline.upload("disk/full.txt", b"echo enospc\n")
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    # Then the daemon wrote the report and sent the DLQ message itself (SQS's redrive would
    # move it there without either)
    report = pipeline.assert_failed_once("TransientError")
    assert "scratch space ran out" in report["error"]["message"]
    assert report["attempts"] == 1


def test_a_lying_event_size_does_not_decide_the_scratch_reservation(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given an event that says 5 bytes for a 12 MiB object, and 16 MiB of scratch
    pipeline = Pipeline.create(name)
    event = pipeline.upload("lie/big.txt", b"echo\n" + b"x" * (12 * 2**20), notify=False)
    event["detail"]["object"]["size"] = 5
    pipeline.send(event)
    run_worker(
        pipeline, scratch, echo_registry(tmp_path / "runlog"),
        S3WORKER_SCRATCH_MAX_BYTES=16 * 2**20,
    )  # fmt: skip
    # Then the real size was reserved: too large, before any byte was downloaded
    report = pipeline.assert_failed_once("TooLargeError")
    assert "12.0 MiB" in report["error"]["message"]


def test_a_dlq_message_at_the_queue_size_limit_still_arrives(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given a DLQ that takes 1,024 bytes at most, and a bad event of about that size
    pipeline = Pipeline.create(name, dlq_max_bytes=1024)
    body = json.dumps({"not": "an event", "pad": "p" * 990})
    pipeline.send(body)
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    # Then it reached the DLQ, cut to fit with its attributes counted; the report has it whole
    dead = pipeline.dlq_bodies()
    assert len(dead) == 1
    attrs = {k: v["StringValue"] for k, v in dead[0]["attributes"].items()}
    assert message_bytes(dead[0]["body"], attrs) <= 1024
    assert attrs["s3worker-body-truncated"] == f"{len(body)} bytes"
    assert body.startswith(dead[0]["body"])
    report = pipeline._json(pipeline.error_reports()[0])
    assert report is not None
    assert report["message"]["body"] == body


@pytest.mark.parametrize(
    ("attempt", "max_receives", "final"),
    [(1, 1, False), (1, 2, False), (2, 2, True), (4, 5, False), (5, 5, True), (9, None, False)],
)
def test_the_final_receive_is_kept_for_reporting_a_dead_attempt(
    attempt: int, max_receives: int | None, final: bool
):
    assert is_final_receive(attempt, max_receives) is final


def test_a_message_whose_every_attempt_died_is_reported_not_left_to_the_redrive(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given a queue allowing 3 receives, and a file whose two attempts died without a verdict
    # (the message came back each time, as after a SIGKILL), one leaving an output behind
    pipeline = Pipeline.create(name, max_receive=3)
    event = pipeline.upload("dies/twice.txt", b"echo\n")
    obj = event["detail"]["object"]
    tag = version_tag(
        ObjectRef(pipeline.raw, obj["key"], obj["size"], obj["etag"], obj["version-id"])
    )
    left = f"dies/twice.txt/lines.{tag}.json"
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.put_object(Bucket=pipeline.processed, Key=left, Body=b"[]")
    for _ in range(2):
        msg = sqs.receive_message(QueueUrl=pipeline.queue_url, WaitTimeSeconds=1)["Messages"][0]
        sqs.change_message_visibility(
            QueueUrl=pipeline.queue_url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0
        )
    runlog = tmp_path / "runlog"
    # When a worker gets its third and final receive
    run_worker(pipeline, scratch, echo_registry(runlog))
    # Then it did not process it again: it wrote the report and sent the DLQ message itself,
    # and removed what the dead attempt had uploaded
    assert runs(runlog) == []
    report = pipeline.assert_failed_once("AttemptsExhaustedError")
    assert report["attempts"] == 3
    assert "no attempt finished" in report["error"]["message"]
    assert left not in pipeline.result_keys()


def test_a_final_receive_after_the_results_were_published_is_acknowledged(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given a queue allowing 3 receives and a file whose results are published, but whose
    # message came back (its worker died after the manifest, before the delete) and was
    # received twice more by workers that died before they could act on it
    pipeline = Pipeline.create(name, max_receive=3)
    event = pipeline.upload("done/late.txt", b"echo\n")
    runlog = tmp_path / "runlog"
    run_worker(pipeline, scratch, echo_registry(runlog))
    manifest = pipeline.manifest("done/late.txt")
    assert manifest is not None
    pipeline.send(event)
    sqs = boto3.client("sqs")
    for _ in range(2):
        msg = sqs.receive_message(QueueUrl=pipeline.queue_url, WaitTimeSeconds=1)["Messages"][0]
        sqs.change_message_visibility(
            QueueUrl=pipeline.queue_url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0
        )
    # When a worker gets its third and final receive
    run_worker(pipeline, scratch, echo_registry(runlog))
    # Then it is done: acknowledged, not processed again, no error report, nothing in the DLQ,
    # and the results are those of the first run
    assert runs(runlog) == ["done/late.txt"]
    assert pipeline.error_reports() == []
    assert pipeline.dlq_bodies() == []
    assert pipeline.depth() == 0
    assert pipeline.manifest("done/late.txt") == manifest
