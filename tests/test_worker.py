"""The daemon's loop against the moto server over HTTP, run in-process until it goes idle."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from procs import LAYOUT, Pipeline, echo_registry, peak_running, runs
from s3worker.config import Settings
from s3worker.contract import CONTRACT_VERSION, MANIFEST_NAME, Manifest, source_metadata
from s3worker.errors import ConfigError
from s3worker.processors.registry import Registry
from s3worker.retry import RetryPolicy
from s3worker.systemd import Notifier
from s3worker.worker import ExitReason, Worker, serve
from structlog.testing import capture_logs
from tenacity import wait_none


def run_worker(
    pipeline: Pipeline, scratch: Path, registry: Registry, attempts: int = 5, **env: Any
) -> ExitReason:
    settings = Settings.from_env(pipeline.env(scratch, **env))
    # Retries without waits: the tests assert outcomes, not backoff timings.
    retry = RetryPolicy(attempts, wait=wait_none())
    return asyncio.run(serve(settings, processors=registry, retry=retry))


def test_fifty_uploads_give_fifty_manifests(aws: str, name: str, scratch: Path, tmp_path: Path):
    # Given 50 uploaded files and their events
    pipeline = Pipeline.create(name)
    keys = [f"batch/file-{i:02d}.txt" for i in range(50)]
    for key in keys:
        pipeline.upload(key, b"echo\nrow 1\nrow 2\n")
    # When the worker drains the queue
    reason = run_worker(
        pipeline, scratch, echo_registry(tmp_path / "runlog"), S3WORKER_CONCURRENCY=4
    )
    # Then every file has a manifest at the contract path, and both queues are empty
    assert reason is ExitReason.IDLE
    manifests = pipeline.result_keys(f"/{MANIFEST_NAME}")
    assert sorted(manifests) == sorted(LAYOUT.manifest_key(k) for k in keys)
    manifest = Manifest.parse(pipeline.manifest(keys[0]))
    assert manifest.contract == CONTRACT_VERSION
    assert manifest.input.key == keys[0]
    assert manifest.input.version_id
    assert (manifest.processor_name, manifest.processor_version) == ("echo", "1.0")
    lines = manifest.output_named("lines.json")
    assert lines is not None
    assert lines.rows == 3
    assert lines.key.startswith(f"{keys[0]}/lines.")  # lines.<tag>.json
    assert manifest.output_named("summary.json") is not None
    # And the manifest object's metadata names the input version it is the result of
    head = boto3.client("s3").head_object(Bucket=pipeline.processed, Key=manifests[0])
    done = Manifest.parse(pipeline.manifest(manifests[0].removesuffix(f"/{MANIFEST_NAME}")))
    assert head["Metadata"] == source_metadata(done.input.etag, done.input.version_id)
    assert pipeline.depth() == 0
    assert pipeline.depth(pipeline.dlq_url) == 0
    assert list(scratch.iterdir()) == []


def test_duplicate_event_is_processed_once(aws: str, name: str, scratch: Path, tmp_path: Path):
    # Given the same event delivered twice (at-least-once delivery)
    pipeline = Pipeline.create(name)
    event = pipeline.upload("dup/a.txt", b"echo gate-free\n")
    pipeline.send(event)
    runlog = tmp_path / "runlog"
    # When a worker with room for both drains the queue
    run_worker(pipeline, scratch, echo_registry(runlog), S3WORKER_CONCURRENCY=2)
    # Then the processor ran once and both messages are gone
    assert runs(runlog) == ["dup/a.txt"]
    assert pipeline.depth() == 0
    # And a redelivery after completion is acknowledged without work
    pipeline.send(event)
    run_worker(pipeline, scratch, echo_registry(runlog))
    assert runs(runlog) == ["dup/a.txt"]
    assert pipeline.depth() == 0


def test_corrupt_file_goes_to_dlq_at_once(aws: str, name: str, scratch: Path, tmp_path: Path):
    # Given one corrupt file among good ones
    pipeline = Pipeline.create(name, max_receive=5)
    for i in range(5):
        pipeline.upload(f"good/{i}.txt", b"echo\nok\n")
    pipeline.upload("bad/corrupt.txt", b"echo corrupt\n")
    runlog = tmp_path / "runlog"
    # When the worker drains the queue
    run_worker(pipeline, scratch, echo_registry(runlog))
    # Then an error report names the input and the error, after one attempt
    report = pipeline.error_report("bad/corrupt.txt")
    assert report is not None
    assert report["error"]["class"] == "BadDataError"
    assert "corrupt on purpose" in report["error"]["message"]
    assert report["attempts"] == 1
    assert report["input"]["key"] == "bad/corrupt.txt"
    assert runs(runlog).count("bad/corrupt.txt") == 1
    # And the message is in the DLQ with the reason, the others completed
    dead = pipeline.dlq_bodies()
    assert len(dead) == 1
    assert json.loads(dead[0]["body"])["detail"]["object"]["key"] == "bad/corrupt.txt"
    assert dead[0]["attributes"]["s3worker-error-class"]["StringValue"] == "BadDataError"
    assert len(pipeline.result_keys("/_manifest.json")) == 5
    assert pipeline.depth() == 0


def test_unknown_format_is_a_permanent_error(aws: str, name: str, scratch: Path, tmp_path: Path):
    pipeline = Pipeline.create(name)
    pipeline.upload("x/binary.bin", bytes(range(256)))
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    report = pipeline.error_report("x/binary.bin")
    assert report is not None
    assert report["error"]["class"] == "UnknownFormatError"
    assert "no processor recognises" in report["error"]["message"]
    assert len(pipeline.dlq_bodies()) == 1


def test_heartbeat_keeps_a_long_job_invisible(aws: str, name: str, scratch: Path, tmp_path: Path):
    # Given a queue whose visibility timeout is far shorter than the job
    pipeline = Pipeline.create(name, visibility_timeout=2)
    pipeline.upload("slow/a.txt", b"echo slow 5\n")
    runlog = tmp_path / "runlog"
    # When a worker with spare slots processes it
    with capture_logs() as logs:
        run_worker(pipeline, scratch, echo_registry(runlog), S3WORKER_CONCURRENCY=2)
    # Then it was delivered exactly once: no second copy arrived (not even one that the
    # duplicate check would have absorbed), and it was processed once
    jobs = [e for e in logs if e["event"] == "job"]
    assert [j["outcome"] for j in jobs] == ["processed"]
    assert runs(runlog) == ["slow/a.txt"]
    assert pipeline.depth() == 0


def test_bad_and_skipped_events(aws: str, name: str, scratch: Path, tmp_path: Path):
    pipeline = Pipeline.create(name)
    events = Path(__file__).parent / "events"
    # Given a body that is not JSON, a test event, a delete and a folder marker
    pipeline.send("this is not an event")
    pipeline.send((events / "s3_test_event.json").read_text())
    pipeline.send((events / "eventbridge_object_deleted.json").read_text())
    # (whose second record is a zero-byte object: skipped by the size S3 reports)
    folder = (events / "s3_notification_folder_marker.json").read_text()
    empty = json.loads(folder)["Records"][1]["s3"]["object"]["key"]
    boto3.client("s3").put_object(Bucket=pipeline.raw, Key=empty, Body=b"")
    pipeline.send(folder.replace('"raw-bucket"', f'"{pipeline.raw}"'))
    # When the worker drains the queue
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    # Then only the unparseable one is reported and dead-lettered; the rest are acknowledged
    reports = pipeline.result_keys()
    assert len(reports) == 1
    assert reports[0].startswith("_errors/_events/")
    dead = pipeline.dlq_bodies()
    assert [d["body"] for d in dead] == ["this is not an event"]
    assert pipeline.depth() == 0


def test_object_gone_is_reported(aws: str, name: str, scratch: Path, tmp_path: Path):
    # Given an event whose object version was deleted before the worker got to it
    pipeline = Pipeline.create(name)
    event = pipeline.upload("gone/a.txt", b"echo\n")
    version = event["detail"]["object"]["version-id"]
    boto3.client("s3").delete_object(Bucket=pipeline.raw, Key="gone/a.txt", VersionId=version)
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    report = pipeline.error_report("gone/a.txt")
    assert report is not None
    assert report["error"]["class"] == "ObjectGoneError"
    assert len(pipeline.dlq_bodies()) == 1


HOSTILE_KEYS = [
    "../../etc/passwd",
    "a/../../b",
    "/leading/slash.txt",
    "x" * 300 + "/long-component.txt",
    "k/" + "y" * 976,  # 978 bytes: its results (names + version tag) still fit 1,024 bytes
    "k/" + "z" * 1010,  # 1,012 bytes: results cannot fit under that limit
    "ünïcødé/データ/файл.txt",
    "with spaces/and+plus%20percent.txt",
]


def test_hostile_keys_stay_inside_scratch(aws: str, name: str, scratch: Path, tmp_path: Path):
    # Given keys that try to escape scratch or exceed file-name limits
    pipeline = Pipeline.create(name)
    for key in HOSTILE_KEYS:
        pipeline.upload(key, b"echo\nhostile\n")
    # When the worker drains the queue
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    # Then each one is processed or reported, and the queue is empty
    for key in HOSTILE_KEYS:
        done = pipeline.manifest(key) is not None
        reported = any(k.startswith("_errors/") for k in pipeline.result_keys()) and not done
        assert done or reported, key
    assert pipeline.manifest("../../etc/passwd") is not None
    assert pipeline.manifest("k/" + "y" * 976) is not None
    assert pipeline.depth() == 0
    long_report = [k for k in pipeline.result_keys() if k.startswith("_errors/")]
    assert len(long_report) == 1  # only the key whose results cannot fit
    # And nothing was written outside scratch, and scratch is clean again
    root = scratch.parent
    assert [p.name for p in root.iterdir()] == ["scratch"]
    assert list(scratch.iterdir()) == []


def test_file_larger_than_scratch_is_a_clear_error(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given scratch capped at 16 MiB and a 12 MiB file (it needs twice that)
    pipeline = Pipeline.create(name)
    pipeline.upload("big/huge.txt", b"echo\n" + b"x" * (12 * 1024 * 1024))
    pipeline.upload("small/ok.txt", b"echo\n")
    runlog = tmp_path / "runlog"
    run_worker(
        pipeline, scratch, echo_registry(runlog), S3WORKER_SCRATCH_MAX_BYTES=16 * 1024 * 1024
    )
    # Then the big one is reported as too large, before any download, and dead-lettered
    report = pipeline.error_report("big/huge.txt")
    assert report is not None
    assert report["error"]["class"] == "TooLargeError"
    assert "needs 24.0 MiB of scratch space" in report["error"]["message"]
    assert "S3WORKER_SCRATCH_MAX_BYTES" in report["error"]["message"]
    assert len(pipeline.dlq_bodies()) == 1
    # And nothing is lost: the other file completed
    assert runs(runlog) == ["small/ok.txt"]
    assert pipeline.manifest("small/ok.txt") is not None


def test_throttling_and_5xx_lose_nothing(
    aws: str, name: str, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from faults import FaultPlan, FaultProxy

    # Given 20 files, and 30% of the worker's S3 and SQS calls failing with throttling/5xx/resets
    pipeline = Pipeline.create(name)
    keys = [f"faulty/{i}.txt" for i in range(20)]
    for key in keys:
        pipeline.upload(key, b"echo\nrow\n")
    plan = FaultPlan(rates={"s3": 0.3, "sqs": 0.3})
    runlog = tmp_path / "runlog"
    with FaultProxy(aws, plan) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        # When the worker drains the queue through the faults (enough attempts to ride them out)
        run_worker(pipeline, scratch, echo_registry(runlog), attempts=12, S3WORKER_CONCURRENCY=4)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    # Then faults really happened, and every file was processed with nothing dead-lettered
    assert sum(plan.injected.values()) >= 30, plan.injected
    assert {k.split(":")[0] for k in plan.injected} == {"s3", "sqs"}
    assert sorted(
        k.removesuffix("/_manifest.json") for k in pipeline.result_keys("/_manifest.json")
    ) == sorted(keys)
    assert pipeline.depth() == 0
    assert pipeline.depth(pipeline.dlq_url) == 0


def test_a_redelivered_copy_gets_its_own_slot_and_heartbeat(
    aws: str, name: str, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from s3worker.aws import ClientsContext
    from s3worker.sqs import Heartbeat
    from s3worker.worker import Worker

    # Given a 1 s visibility timeout and no heartbeat, so SQS hands the message out again
    monkeypatch.setattr(Heartbeat, "interval", property(lambda self: 3600.0))
    pipeline = Pipeline.create(name, visibility_timeout=1)
    gate = tmp_path / "gate"
    pipeline.upload("dup/gated.txt", f"echo gate {gate}\n".encode())
    runlog = tmp_path / "runlog"
    settings = Settings.from_env(pipeline.env(scratch, S3WORKER_CONCURRENCY=3))

    async def scenario() -> tuple[int, int]:
        async with ClientsContext(3) as clients:
            worker = Worker(settings, clients, processors=echo_registry(runlog))
            task = asyncio.create_task(worker.run())
            deadline = asyncio.get_running_loop().time() + 30
            # When the second copy arrives while the first is still running
            while len(worker.tasks) < 2:
                assert asyncio.get_running_loop().time() < deadline, "no second copy tracked"
                await asyncio.sleep(0.05)
            tracked = len(worker.tasks)
            assert worker.heartbeat is not None
            beating = len(worker.heartbeat._messages)
            gate.touch()
            await asyncio.wait_for(task, 60)
            return tracked, beating

    tracked, beating = asyncio.run(scenario())
    # Then each copy holds its own slot and heartbeat entry, and the file was processed once
    assert tracked >= 2
    assert beating >= 2
    assert runs(runlog) == ["dup/gated.txt"]
    assert pipeline.depth() == 0


def test_a_late_event_of_an_older_version_does_not_replace_newer_results(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given two versions of a key whose events arrive newest first (a release, a late retry)
    pipeline = Pipeline.create(name)
    v1 = pipeline.upload("orders/today.txt", b"echo\nversion one\n", notify=False)
    v2 = pipeline.upload("orders/today.txt", b"echo\nversion two\n", notify=False)
    pipeline.send(v2)
    pipeline.send(v1)
    runlog = tmp_path / "runlog"
    # When one worker drains them in that order
    run_worker(pipeline, scratch, echo_registry(runlog), S3WORKER_CONCURRENCY=1)
    # Then the results are v2's, v1 was acknowledged without work, and nothing failed
    manifest = pipeline.manifest("orders/today.txt")
    assert manifest is not None
    assert manifest["input"]["version_id"] == v2["detail"]["object"]["version-id"]
    assert runs(runlog) == ["orders/today.txt"]
    assert pipeline.depth() == 0
    assert pipeline.depth(pipeline.dlq_url) == 0


def test_one_bad_record_does_not_hold_back_the_others(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given one S3 notification naming a deleted object first and a good one second
    pipeline = Pipeline.create(name)
    gone = pipeline.upload("multi/gone.txt", b"echo\n", notify=False)["detail"]["object"]
    good = pipeline.upload("multi/good.txt", b"echo\nfine\n", notify=False)["detail"]["object"]
    boto3.client("s3").delete_object(
        Bucket=pipeline.raw, Key="multi/gone.txt", VersionId=gone["version-id"]
    )
    records = [
        {
            "eventName": "ObjectCreated:Put",
            "s3": {
                "bucket": {"name": pipeline.raw},
                "object": {"key": o["key"], "size": o["size"], "versionId": o["version-id"]},
            },
        }
        for o in (gone, good)
    ]
    pipeline.send({"Records": records})
    runlog = tmp_path / "runlog"
    # When the worker handles the message
    run_worker(pipeline, scratch, echo_registry(runlog))
    # Then the good object is processed, the gone one reported, and the message dead-lettered
    assert pipeline.manifest("multi/good.txt") is not None
    assert runs(runlog) == ["multi/good.txt"]
    report = pipeline.error_report("multi/gone.txt")
    assert report is not None
    assert report["error"]["class"] == "ObjectGoneError"
    assert len(pipeline.dlq_bodies()) == 1


def test_a_new_version_removes_outputs_it_no_longer_writes(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given v1 of a file whose outputs are a.json and b.json, processed
    pipeline = Pipeline.create(name)
    pipeline.upload("daily/report.txt", b"echo outputs a b\n")
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    # When v2 writes b.json and c.json instead
    pipeline.upload("daily/report.txt", b"echo outputs b c\n")
    run_worker(pipeline, scratch, echo_registry(tmp_path / "runlog"))
    # Then only v2's outputs remain under the key, exactly those its manifest lists
    manifest = pipeline.manifest("daily/report.txt")
    assert manifest is not None
    listed = sorted(o["key"] for o in manifest["outputs"])
    present = sorted(k for k in pipeline.result_keys() if not k.endswith("_manifest.json"))
    assert present == listed
    assert sorted(o["path"] for o in manifest["outputs"]) == [
        "b.json", "c.json", "lines.json", "summary.json"
    ]  # fmt: skip


def test_files_that_fit_scratch_one_at_a_time_wait_for_room(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given scratch room for one 6 MiB file at a time (each needs 12 MiB), and two of them
    pipeline = Pipeline.create(name, max_receive=2)
    for key in ("big/first.txt", "big/second.txt"):
        pipeline.upload(key, b"echo\n" + b"x" * (6 * 1024 * 1024))
    runlog = tmp_path / "runlog"
    # When a worker with two slots takes both at once
    run_worker(
        pipeline, scratch, echo_registry(runlog), S3WORKER_SCRATCH_MAX_BYTES=22 * 1024 * 1024
    )
    # Then the second waited in the worker for the first to finish: both processed on their
    # first delivery, nothing bounced back to the queue, nothing dead-lettered
    for key in ("big/first.txt", "big/second.txt"):
        manifest = pipeline.manifest(key)
        assert manifest is not None, key
        assert manifest["message"]["receive_count"] == 1
    assert pipeline.depth(pipeline.dlq_url) == 0


def test_a_job_past_its_timeout_is_ended_and_reported(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    # Given a processor that would run for a minute, and a 2-second job timeout
    pipeline = Pipeline.create(name)
    pipeline.upload("hang/forever.txt", b"echo slow 60\n")
    pipeline.upload("hang/then-fine.txt", b"echo\n")
    runlog = tmp_path / "runlog"
    # When one worker (one slot) takes them in turn
    run_worker(
        pipeline, scratch, echo_registry(runlog),
        S3WORKER_CONCURRENCY=1, S3WORKER_JOB_TIMEOUT_SECONDS=2,
    )  # fmt: skip
    # Then the overrun is reported and dead-lettered, and the worker went on to the next file
    report = pipeline.error_report("hang/forever.txt")
    assert report is not None
    assert report["error"]["class"] == "JobTimeoutError"
    assert "S3WORKER_JOB_TIMEOUT_SECONDS" in report["error"]["message"]
    assert len(pipeline.dlq_bodies()) == 1
    assert pipeline.manifest("hang/then-fine.txt") is not None


def test_exit_during_a_poll_hands_its_messages_back_at_once(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    from s3worker.aws import ClientsContext
    from s3worker.worker import Worker

    # Given a poll in flight when the exit request comes, and a 300 s visibility timeout
    pipeline = Pipeline.create(name, visibility_timeout=300)
    pipeline.upload("late/a.txt", b"echo\n")
    settings = Settings.from_env(pipeline.env(scratch))

    async def scenario() -> None:
        async with ClientsContext(1) as clients:
            worker = Worker(settings, clients, processors=echo_registry(tmp_path / "r"))
            poll = asyncio.ensure_future(worker.queue.receive(1, 1))
            # When the worker winds down instead of starting what the poll brings
            await worker._hand_back(poll)

    asyncio.run(scenario())
    # Then the message is visible again now, not in five minutes
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"


def test_in_flight_and_processing_are_both_bounded(
    aws: str, name: str, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Given 12 slow files, one processor at a time and room for three messages held
    pipeline = Pipeline.create(name)
    for i in range(12):
        pipeline.upload(f"bounded/{i}.txt", b"echo slow 0.2\n")
    asked = record_receives(monkeypatch)
    runlog = tmp_path / "runlog"
    # When the worker drains them
    run_worker(
        pipeline, scratch, echo_registry(runlog),
        S3WORKER_CONCURRENCY=1, S3WORKER_MAX_IN_FLIGHT=3,
    )  # fmt: skip
    # Then it never asked for more than its free slots, held up to three, at most two of them
    # waiting for the one process, and ran one at a time
    assert all(want + held <= 3 for want, held in asked), asked
    assert max(want for want, _ in asked) == 2
    assert max(want + held for want, held in asked) == 3
    assert peak_running(runlog) == 1
    assert len(runs(runlog)) == 12


def test_intake_stops_at_what_waits_for_a_process(
    aws: str, name: str, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from s3worker.aws import ClientsContext
    from s3worker.worker import Worker

    # Given one process, room for ten messages held, and eight files that hold the process
    # until a gate opens
    pipeline = Pipeline.create(name)
    gate = tmp_path / "gate"
    for i in range(8):
        pipeline.upload(f"gated/{i}.txt", f"echo gate {gate}\n".encode())
    asked = record_receives(monkeypatch)
    runlog = tmp_path / "runlog"
    settings = Settings.from_env(
        pipeline.env(scratch, S3WORKER_CONCURRENCY=1, S3WORKER_MAX_IN_FLIGHT=10)
    )

    async def scenario() -> tuple[list[tuple[int, int]], int, int]:
        # When the first file runs and the two behind it are downloaded
        filled = when_intake(monkeypatch, lambda intake: (intake.held, intake.ahead) == (3, 2))
        async with ClientsContext(settings.max_in_flight) as clients:
            worker = Worker(settings, clients, processors=echo_registry(runlog))
            task = asyncio.create_task(worker.run())
            await asyncio.wait_for(filled.wait(), 30)
            gated = list(asked)
            assert worker.heartbeat is not None
            beating = len(worker.heartbeat._messages)
            gate.touch()
            await asyncio.wait_for(task, 60)
            return gated, beating, len(worker.tasks)

    gated, beating, left = asyncio.run(scenario())
    # Then it held three (one processing, two ready), not ten: the other five stayed in the
    # queue for other workers, and every held one was heart-beaten
    assert all(want + held <= 3 for want, held in gated), gated
    assert beating == 3
    assert len(runs(runlog)) == 8
    assert left == 0
    assert pipeline.depth() == 0


def when_intake(monkeypatch: pytest.MonkeyPatch, reached: Callable[[Any], bool]) -> asyncio.Event:
    """An event set once the worker's intake, after one of its own transitions, is in the
    state `reached` names (patched on the class: the worker binds its methods at start)."""
    from s3worker.intake import Intake

    event = asyncio.Event()
    for name in ("received", "processing", "done"):
        original = getattr(Intake, name)

        def step(self: Intake, delivery: str, original: Callable[..., None] = original) -> None:
            original(self, delivery)
            if reached(self):
                event.set()

        monkeypatch.setattr(Intake, name, step)
    return event


def record_receives(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every ReceiveMessage's (messages asked for, messages held then: received, not deleted)."""
    from s3worker.sqs import Queue

    asked: list[tuple[int, int]] = []
    in_flight = {"now": 0}
    original, original_delete = Queue.receive, Queue.delete

    async def receive(self: Queue, max_messages: int, wait_seconds: int) -> list:
        asked.append((max_messages, in_flight["now"]))
        messages = await original(self, max_messages, wait_seconds)
        in_flight["now"] += len(messages)
        return messages

    async def delete(self: Queue, messages: list) -> None:
        await original_delete(self, messages)
        in_flight["now"] -= len(list(messages))

    monkeypatch.setattr(Queue, "receive", receive)
    monkeypatch.setattr(Queue, "delete", delete)
    return asked


class ReadyNotifier(Notifier):
    """The systemd notifier with no socket, noting the order of READY=1 and the ready hook."""

    def __init__(self, order: list[str]) -> None:
        super().__init__({})
        self.order = order

    def ready(self, status: str) -> None:
        self.order.append("READY=1")


def test_the_ready_hook_runs_once_ready_is_sent(
    aws: str, name: str, scratch: Path, monkeypatch: pytest.MonkeyPatch
):
    # Given a worker whose start-up checks pass
    pipeline = Pipeline.create(name)
    settings = Settings.from_env(pipeline.env(scratch))
    order: list[str] = []
    open_jobs = Worker.open_jobs

    def opened(self: Worker) -> None:
        order.append("job path")
        open_jobs(self)

    monkeypatch.setattr(Worker, "open_jobs", opened)
    # When it starts and goes idle
    hook = lambda: order.append("hook")  # noqa: E731
    asyncio.run(serve(settings, notifier=ReadyNotifier(order), on_ready=hook))
    # Then the job path was built after READY=1 (READY=1 does not wait for its imports), and
    # the hook (the daemon's: the collector on again) came right after it, once
    assert order == ["READY=1", "job path", "hook"]


def test_the_daemon_imports_no_job_path_before_ready() -> None:
    # Given a fresh interpreter, when it imports what `s3worker run` imports before READY=1
    code = (
        "import sys\n"
        "import s3worker.cli, s3worker.config, s3worker.worker\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    # Then none of the job path's modules came with it (Worker.open_jobs imports them)
    job_path = {"jobs", "storage", "tables", "publish", "transfers", "pool", "processors.bi"}
    assert sorted(m for m in job_path if f"s3worker.{m}" in loaded) == []
    assert "s3worker.worker" in loaded


def test_a_settings_problem_is_reported_even_when_the_queue_fails_too(
    aws: str, name: str, scratch: Path
):
    # Given a missing output bucket and a work queue that does not exist (read at the same time)
    pipeline = Pipeline.create(name)
    env = pipeline.env(scratch, S3WORKER_OUTPUT_BUCKET=f"{name}-missing")
    env["S3WORKER_QUEUE_URL"] = pipeline.queue_url.replace("-work", "-gone")
    order: list[str] = []
    # When the worker starts, then it stops on the bucket, named, and never reports READY=1
    with pytest.raises(ConfigError, match=f"S3WORKER_OUTPUT_BUCKET={name}-missing: no such"):
        asyncio.run(serve(Settings.from_env(env), notifier=ReadyNotifier(order)))
    assert order == []
