"""Races between versions of one input, and one key in two buckets, against the moto server:
the real worker loop in this thread, the uploads that race it from another."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from procs import Pipeline, echo_registry, runs
from structlog.testing import capture_logs
from test_worker import run_worker

WAIT_SECONDS = 60


def wait_for(what: Callable[[], bool], label: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {label}")
        time.sleep(0.02)


def in_background(fn: Callable[[], None]) -> Callable[[], None]:
    """Run `fn` in a thread; the returned callable joins it and re-raises its failure."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(WAIT_SECONDS)
        if errors:
            raise errors[0]

    return join


def assert_only_results_of(pipeline: Pipeline, key: str, event: dict) -> None:
    """One manifest, of `event`'s version, and exactly the outputs it lists under the key."""
    manifest = pipeline.manifest(key)
    assert manifest is not None
    obj = event["detail"]["object"]
    assert manifest["input"]["etag"] == obj["etag"]
    assert manifest["input"]["version_id"] == obj.get("version-id")
    assert pipeline.result_keys("_manifest.json") == [f"{key}/_manifest.json"]
    present = sorted(k for k in pipeline.result_keys() if not k.endswith("_manifest.json"))
    assert present == sorted(o["key"] for o in manifest["outputs"])
    assert pipeline.depth() == 0
    assert pipeline.depth(pipeline.dlq_url) == 0


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
@pytest.mark.parametrize("newer_gated", [False, True], ids=["newer-fast", "newer-slow-too"])
def test_an_object_overwritten_mid_job_keeps_only_the_newest_results(
    aws: str, name: str, scratch: Path, tmp_path: Path, versioned: bool, newer_gated: bool
):
    # Given a file whose processing blocks until the test opens a gate
    pipeline = Pipeline.create(name, versioned=versioned)
    key = "orders/today.txt"
    old_gate, new_gate = tmp_path / "old-gate", tmp_path / "new-gate"
    pipeline.upload(key, f"echo gate {old_gate}\nversion one\n".encode())
    newer: dict = {}

    def overwrite() -> None:
        # When it is overwritten while the old version is being processed
        wait_for(Path(f"{old_gate}.started").exists, "the old version to start")
        body = f"echo gate {new_gate}\nversion two\n" if newer_gated else "echo\nversion two\n"
        newer.update(pipeline.upload(key, body.encode()))
        if newer_gated:  # both running: the old one is let go first, then the new one
            wait_for(Path(f"{new_gate}.started").exists, "the new version to start")
            old_gate.touch()
            new_gate.touch()
        else:  # the new one finishes first, then the old, slower one
            wait_for(lambda: pipeline.manifest(key) is not None, "the new version's manifest")
            old_gate.touch()

    join = in_background(overwrite)
    runlog = tmp_path / "runlog"
    with capture_logs() as logs:
        run_worker(pipeline, scratch, echo_registry(runlog), S3WORKER_CONCURRENCY=2)
    join()
    # Then both versions ran, the old one was superseded and wrote nothing that stayed
    assert runs(runlog) == [key, key]
    outcomes = sorted(e["outcome"] for e in logs if e["event"] == "job")
    assert outcomes == ["processed", "superseded"]
    # And the results are exactly one manifest of the newest version and its outputs
    assert_only_results_of(pipeline, key, newer)
    manifest = pipeline.manifest(key) or {}
    assert next(o["rows"] for o in manifest["outputs"] if o["path"] == "lines.json") == 2


def test_a_redelivered_old_event_sweeps_what_a_killed_run_left(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    from s3worker.events import ObjectRef
    from s3worker.publish import version_tag

    # Given v1's outputs left behind by a run killed before its manifest, then v2 processed
    pipeline = Pipeline.create(name)
    key = "k/report.txt"
    v1 = pipeline.upload(key, b"echo\none\n", notify=False)["detail"]
    ref = ObjectRef(pipeline.raw, key, version_id=v1["object"]["version-id"])
    orphan = f"{key}/lines.{version_tag(ref)}.json"
    boto3.client("s3").put_object(Bucket=pipeline.processed, Key=orphan, Body=b"[]")
    v2 = pipeline.upload(key, b"echo\ntwo\n")
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    assert orphan in pipeline.result_keys()
    # When v1's event is delivered again (SQS redelivers the killed run's message)
    pipeline.send({"detail-type": "Object Created", "source": "aws.s3", "detail": v1})
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    # Then the orphan is gone and only v2's results remain
    assert_only_results_of(pipeline, key, v2)


def test_same_key_in_a_foreign_bucket_is_refused(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given the same key in this worker's input bucket and in another bucket
    pipeline = Pipeline.create(name)
    other = f"{name}-other"
    boto3.client("s3").create_bucket(Bucket=other)
    mine = pipeline.upload("same/key.txt", b"echo\nmine\n")
    pipeline.upload("same/key.txt", b"echo\ntheirs\nand more\n", bucket=other)
    # When the worker (S3WORKER_INPUT_BUCKETS = its raw bucket) drains both events
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    # Then this bucket's results are untouched by the other's object
    manifest = pipeline.manifest("same/key.txt")
    assert manifest is not None
    assert manifest["input"]["etag"] == mine["detail"]["object"]["etag"]
    # And the foreign event is reported (an event error) and dead-lettered with the reason
    assert pipeline.error_reports()[0].startswith("_errors/_events/")
    report = pipeline.assert_failed_once("WrongBucketError")
    assert "S3WORKER_INPUT_BUCKETS" in report["error"]["message"]


def test_two_input_buckets_keep_their_results_apart(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given two input buckets holding the same key with different content
    pipeline = Pipeline.create(name)
    other = f"{name}-other"
    boto3.client("s3").create_bucket(Bucket=other)
    pipeline.upload("same/key.txt", b"echo\nmine\n")
    pipeline.upload("same/key.txt", b"echo\ntheirs\nand more\n", bucket=other)
    # When the worker accepts both buckets
    run_worker(
        pipeline, scratch, echo_registry(tmp_path / "runlog"),
        S3WORKER_INPUT_BUCKETS=f"{pipeline.raw},{other}",
    )  # fmt: skip
    # Then each bucket's object has its own results, under BUCKET/KEY/
    for bucket, rows in ((pipeline.raw, 2), (other, 3)):
        manifest = pipeline.manifest(f"{bucket}/same/key.txt")
        assert manifest is not None, bucket
        assert manifest["input"]["bucket"] == bucket
        assert next(o["rows"] for o in manifest["outputs"] if o["path"] == "lines.json") == rows
    assert pipeline.manifest("same/key.txt") is None
    assert pipeline.depth() == 0
    assert pipeline.depth(pipeline.dlq_url) == 0
