"""Test processors and AWS helpers for the daemon's integration tests.

`EchoProcessor` recognises files whose first line starts with `echo` and acts on that line:
`echo` (count lines), `echo corrupt` (raise BadDataError), `echo slow SECONDS`,
`echo gate PATH` (write PATH.started, wait until PATH exists), `echo outputs A B` (also
write A.json and B.json), `echo bomb MIB` (allocate MIB MiB, touched), `echo raise NAME` (raise
the built-in exception NAME, e.g. RecursionError), `echo enospc` (a full disk), `echo die`
(the process ends with SIGKILL). Every run appends the key to
`runlog/` so tests can count how often a file was processed, across processes.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from s3worker.contract import ATTR_ERROR_CLASS, Layout
from s3worker.errors import BadDataError, KeyTooLongError
from s3worker.processors.base import JobContext, Processor, ProcessResult, Sample
from s3worker.processors.registry import Registry

GATE_TIMEOUT_SECONDS = 60
# The daemons these tests start write results without a prefix, one input bucket.
LAYOUT = Layout()


class EchoProcessor(Processor):
    name = "echo"
    version = "1.0"

    def __init__(self, runlog: Path) -> None:
        self.runlog = runlog

    def sniff(self, sample: Sample) -> float:
        return 1.0 if sample.head.startswith(b"echo") else 0.0

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        self.runlog.mkdir(parents=True, exist_ok=True)
        run = uuid.uuid4().hex
        (self.runlog / run).write_text(ctx.key)
        # How many copies run at this moment (markers of runs in progress), for the tests.
        running = self.runlog.parent / f"{self.runlog.name}.running"
        running.mkdir(exist_ok=True)
        (running / run).touch()
        try:
            return self._process(src, out_dir, len(list(running.iterdir())))
        finally:
            (running / run).unlink()

    def _process(self, src: Path, out_dir: Path, running: int) -> ProcessResult:
        with (self.runlog.parent / f"{self.runlog.name}.peak").open("a") as peaks:
            peaks.write(f"{running}\n")
        lines = src.read_bytes().decode().splitlines()
        words = lines[0].split(maxsplit=2)
        if words[1:2] == ["corrupt"]:
            raise BadDataError("line 1: this file is corrupt on purpose")
        if words[1:2] == ["slow"]:
            time.sleep(float(words[2]))  # the workload itself, not a test's timing
        if words[1:2] == ["gate"]:
            wait_for_gate(Path(words[2]))
        if words[1:2] == ["bomb"]:  # a file that needs far more memory than it is large
            hoard = bytearray(int(float(words[2]) * 2**20))
            hoard[::4096] = b"x" * len(hoard[::4096])
        if words[1:2] == ["raise"]:
            raise getattr(builtins, words[2])(f"raised on purpose by {words[2]}")
        if words[1:2] == ["enospc"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        if words[1:2] == ["die"]:
            os.kill(os.getpid(), signal.SIGKILL)
        if words[1:2] == ["outputs"]:  # outputs whose names depend on the content
            for output in words[2].split():
                (out_dir / f"{output}.json").write_text("[]")
        (out_dir / "lines.json").write_text(json.dumps(lines))
        return ProcessResult(summary={"lines": len(lines)}, rows={"lines.json": len(lines)})


def wait_for_gate(gate: Path) -> None:
    Path(f"{gate}.started").touch()
    deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(0.02)


def peak_running(runlog: Path) -> int:
    """The most processor runs seen at the same moment."""
    return max(int(n) for n in (runlog.parent / f"{runlog.name}.peak").read_text().split())


def runs(runlog: Path) -> list[str]:
    return sorted(p.read_text() for p in runlog.iterdir()) if runlog.exists() else []


def echo_registry(runlog: Path) -> Registry:
    reg = Registry(load_installed=False)
    reg.register(EchoProcessor(runlog))
    return reg


@dataclass
class Pipeline:
    """The AWS side of one test: raw and processed buckets, a work queue and its DLQ."""

    raw: str
    processed: str
    queue_url: str
    dlq_url: str

    @classmethod
    def create(
        cls,
        name: str,
        visibility_timeout: int = 30,
        max_receive: int = 5,
        versioned: bool = True,
        dlq_max_bytes: int | None = None,
    ) -> Pipeline:
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        s3.create_bucket(Bucket=f"{name}-raw")
        if versioned:
            s3.put_bucket_versioning(
                Bucket=f"{name}-raw", VersioningConfiguration={"Status": "Enabled"}
            )
        s3.create_bucket(Bucket=f"{name}-processed")
        dlq_attrs = {"MaximumMessageSize": str(dlq_max_bytes)} if dlq_max_bytes else {}
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes=dlq_attrs)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
        queue_url = sqs.create_queue(
            QueueName=f"{name}-work",
            Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": redrive},
        )["QueueUrl"]
        return cls(f"{name}-raw", f"{name}-processed", queue_url, dlq_url)

    def env(self, scratch: Path, **extra: Any) -> dict[str, str]:
        # The scratch mount exists before the daemon starts (the boot mounts it); the daemon
        # refuses a missing one rather than creating it.
        scratch.mkdir(parents=True, exist_ok=True)
        env = {
            "S3WORKER_QUEUE_URL": self.queue_url,
            "S3WORKER_OUTPUT_BUCKET": self.processed,
            "S3WORKER_INPUT_BUCKETS": self.raw,
            "S3WORKER_SCRATCH_DIR": str(scratch),
            "S3WORKER_CONCURRENCY": "2",
            "S3WORKER_IDLE_SECONDS": "0",
            "S3WORKER_IDLE_CONFIRM_SECONDS": "0",
            "S3WORKER_IDLE_ACTION": "exit",
            "S3WORKER_POLL_SECONDS": "1",
            "S3WORKER_LOG_FORMAT": "json",
        }
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def upload(
        self, key: str, body: bytes, notify: bool = True, bucket: str | None = None
    ) -> dict[str, Any]:
        """Put an object and send the EventBridge event S3 would have sent."""
        bucket = bucket or self.raw
        resp = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        event = eventbridge_event(
            bucket, key, len(body), resp["ETag"].strip('"'), resp.get("VersionId")
        )
        if notify:
            self.send(event)
        return event

    def send(self, event: dict[str, Any] | str) -> None:
        body = event if isinstance(event, str) else json.dumps(event)
        boto3.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)

    def manifest(self, key: str) -> dict[str, Any] | None:
        try:
            where = LAYOUT.manifest_key(key)
        except KeyTooLongError:  # no manifest can exist for it
            return None
        return self._json(where)

    def output_key(self, key: str, path: str) -> str:
        """Where the manifest of `key` says its output `path` (e.g. `summary.json`) is: output
        names carry the input version's tag."""
        manifest = self.manifest(key)
        assert manifest is not None, f"no manifest for {key}"
        return next(str(o["key"]) for o in manifest["outputs"] if o.get("path") == path)

    def output_json(self, key: str, path: str) -> Any:
        return self._json(self.output_key(key, path))

    def output_bytes(self, key: str, path: str) -> bytes:
        obj = boto3.client("s3").get_object(Bucket=self.processed, Key=self.output_key(key, path))
        data: bytes = obj["Body"].read()
        return data

    def error_report(self, key: str) -> dict[str, Any] | None:
        return self._json(LAYOUT.error_key(key))

    def _json(self, key: str) -> dict[str, Any] | None:
        try:
            body = boto3.client("s3").get_object(Bucket=self.processed, Key=key)["Body"]
        except boto3.client("s3").exceptions.NoSuchKey:
            return None
        doc: dict[str, Any] = json.loads(body.read())
        return doc

    def result_keys(self, suffix: str = "") -> list[str]:
        pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.processed)
        return [o["Key"] for p in pages for o in p.get("Contents", []) if o["Key"].endswith(suffix)]

    def depth(self, url: str | None = None) -> int:
        attrs = boto3.client("sqs").get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def error_reports(self) -> list[str]:
        return [k for k in self.result_keys() if k.startswith(LAYOUT.errors_root())]

    def assert_failed_once(self, error_class: str | None = None) -> dict[str, Any]:
        """Exactly one error report and one DLQ message, both naming the same error, and an
        empty work queue; returns the report."""
        reports = self.error_reports()
        assert len(reports) == 1, reports
        report = self._json(reports[0])
        assert report is not None
        dead = self.dlq_bodies()
        assert len(dead) == 1, dead
        carried = dead[0]["attributes"][ATTR_ERROR_CLASS]["StringValue"]
        assert carried == report["error"]["class"]
        if error_class:
            assert carried == error_class, report["error"]
        assert self.depth() == 0
        return report

    def dlq_bodies(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        bodies = []
        while msgs := sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages"):
            for m in msgs:
                bodies.append({"body": m["Body"], "attributes": m.get("MessageAttributes", {})})
                sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"])
        return bodies


def eventbridge_event(
    bucket: str, key: str, size: int, etag: str, version_id: str | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": size, "etag": etag, "sequencer": "00AB"}
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-26T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }
