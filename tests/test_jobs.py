"""jobs.py: one SQS message start to finish (parse, then per object the version check, route,
process, upload, manifest), the verdict it returns and the S3 calls it makes, against the
emulator's S3 over HTTP.

The processors run in `InlinePool`, a thread instead of a pebble process (the pool's own
behaviour, processes and their deaths, is tests/test_pool.py's): what is tested here is what the
job runner makes of what a processor returns or raises. One test runs the real pool."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from procs import LAYOUT, Pipeline, echo_registry, eventbridge_event, runs
from s3worker.aws import ClientsContext
from s3worker.config import Settings
from s3worker.contract import Manifest
from s3worker.jobs import JobRunner
from s3worker.pool import ProcessPool
from s3worker.processors.registry import Registry, registry
from s3worker.publish import version_tag
from s3worker.retry import RetryPolicy
from s3worker.scratch import Scratch
from s3worker.sqs import Message
from s3worker.storage import Storage
from s3worker.verdict import Decision, Verdict
from structlog.testing import capture_logs
from tenacity import wait_none

T = TypeVar("T")
INSTANCE = "i-0abc"


class InlinePool(ProcessPool):
    """ProcessPool's contract (`run`, `too_large`) in a thread of this process."""

    async def run(self, fn: Callable[..., T], *args: Any, **options: Any) -> T:
        if (on_start := options.get("on_start")) is not None:
            on_start()  # the file's processing begins
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), options.get("limit"))


def message(body: dict[str, Any] | str, receive_count: int = 1, ident: str = "m-1") -> Message:
    text = body if isinstance(body, str) else json.dumps(body)
    return Message(ident, f"rh-{ident}-{receive_count}", text, receive_count)


def handle(
    pipeline: Pipeline,
    scratch: Path,
    runlog: Path,
    *messages: Message,
    pool: ProcessPool | None = None,
    processors: Registry | None = None,
    calls: list[tuple[str, str, str]] | None = None,
    **env: Any,
) -> list[Decision]:
    """Each message through one JobRunner, all at once; the queue allows 5 receives.
    `calls`: each S3 call made, appended as (operation, bucket, key)."""
    settings = Settings.from_env(pipeline.env(scratch, **env))

    def note(model: Any, params: dict[str, Any], **_: Any) -> None:
        if calls is not None:
            calls.append((model.name, params.get("Bucket", ""), params.get("Key", "")))

    async def main() -> list[Decision]:
        async with ClientsContext(2) as clients:
            clients.s3.meta.events.register("before-parameter-build.s3.*", note)
            storage = Storage(clients.s3, RetryPolicy(3, wait_none()), pipeline.processed, LAYOUT)
            runner = JobRunner(
                settings, storage, Scratch(scratch), pool or InlinePool(2),
                processors or echo_registry(runlog), lambda: INSTANCE,
            )  # fmt: skip
            runner.max_receives = 5
            return list(await asyncio.gather(*(runner.handle(m) for m in messages)))

    return asyncio.run(main())


def job_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "job"]


@pytest.fixture
def pipeline(aws: str, name: str) -> Pipeline:
    return Pipeline.create(name)


@pytest.fixture
def runlog(tmp_path: Path) -> Path:
    return tmp_path / "runlog"


def test_a_file_is_processed_and_its_manifest_says_what_and_by_whom(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    event = pipeline.upload("in/a.txt", b"echo\nrow 1\nrow 2\n", notify=False)
    with capture_logs() as logs:
        (decision,) = handle(pipeline, scratch, runlog, message(event, receive_count=2))
    assert decision == Decision(Verdict.ACK)
    manifest = Manifest.parse(pipeline.manifest("in/a.txt"))
    obj = event["detail"]["object"]
    assert (manifest.input.version_id, manifest.input.size) == (obj["version-id"], 17)
    assert (manifest.processor_name, manifest.processor_version) == ("echo", "1.0")
    lines = manifest.output_named("lines.json")
    assert lines is not None
    assert lines.rows == 3
    assert lines.key == f"in/a.txt/lines.{version_tag(_ref(pipeline, event))}.json"
    assert (manifest.message_id, manifest.receive_count) == ("m-1", 2)
    assert manifest.worker.instance_id == INSTANCE
    assert {"download_s", "process_s", "upload_s", "started_at", "finished_at"} <= set(
        manifest.timings
    )
    (line,) = job_lines(logs)
    assert (line["outcome"], line["processor"], line["output_rows"]) == ("processed", "echo", 3)
    assert (line["key"], line["size"], line["log_level"]) == ("in/a.txt", 17, "info")
    assert line["duration_s"] >= 0
    assert list(scratch.iterdir()) == []  # the job's scratch directory is gone


def test_a_small_file_costs_one_get_of_its_input_and_one_head_before_the_swap(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    # Given a small file whose event names its version and size
    event = pipeline.upload("in/a.txt", b"echo\nrow 1\n", notify=False)
    calls: list[tuple[str, str, str]] = []
    # When it is processed
    handle(pipeline, scratch, runlog, message(event), calls=calls)
    # Then S3 saw, in order: the input checked and read in one GET, its results' manifest,
    # the outputs, the input's version checked again, the manifest swapped in
    manifest = LAYOUT.manifest_key("in/a.txt")
    outputs = Manifest.parse(pipeline.manifest("in/a.txt")).output_keys
    n = len(outputs)
    assert calls[:2] == [
        ("GetObject", pipeline.raw, "in/a.txt"),
        ("GetObject", pipeline.processed, manifest),
    ]
    assert sorted(calls[2 : 2 + n]) == sorted(("PutObject", pipeline.processed, k) for k in outputs)
    assert calls[2 + n :] == [
        ("HeadObject", pipeline.raw, "in/a.txt"),
        ("PutObject", pipeline.processed, manifest),
    ]


def test_a_small_sales_file_makes_the_calls_its_contract_needs_and_no_more(
    pipeline: Pipeline, scratch: Path, runlog: Path, tmp_path: Path
) -> None:
    # Given a small sales file (its outputs are BI tables: the table index is written too)
    from s3worker.samples import write_sample

    write_sample("sales", 60, tmp_path / "day.csv", seed=3)
    event = pipeline.upload("sales/day.csv", (tmp_path / "day.csv").read_bytes(), notify=False)
    calls: list[tuple[str, str, str]] = []
    # When it is processed
    (decision,) = handle(pipeline, scratch, runlog, message(event), processors=registry,
                         calls=calls)  # fmt: skip
    assert decision.verdict is Verdict.ACK
    # Then per kind: GET the input and the manifest; HEAD the input before the swap; PUT
    # each output, the manifest, each entry (the first manifest's entries, created where there
    # are none, are not followed by a read of the manifest)
    outputs = Manifest.parse(pipeline.manifest("sales/day.csv")).output_keys
    entries = [k for k in pipeline.result_keys() if k.startswith("_tables/")]
    assert (len(outputs), len(entries)) == (12, 10)
    assert Counter(op for op, _, _ in calls) == {
        "GetObject": 2,
        "HeadObject": 1,
        "PutObject": len(outputs) + 1 + len(entries),
    }
    assert calls[0] == ("GetObject", pipeline.raw, "sales/day.csv")  # no HEAD before it
    assert sorted(calls[-len(entries) :]) == sorted(
        ("PutObject", pipeline.processed, k) for k in entries
    )


def test_a_large_file_is_sized_by_a_head_before_its_scratch_space_is_taken(
    pipeline: Pipeline, scratch: Path, runlog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3worker.storage

    monkeypatch.setattr(s3worker.storage, "WHOLE_GET_BYTES", 4)  # 11 bytes count as large
    event = pipeline.upload("in/a.txt", b"echo\nrow 1\n", notify=False)
    calls: list[tuple[str, str, str]] = []
    handle(pipeline, scratch, runlog, message(event), calls=calls)
    assert calls[:3] == [
        ("HeadObject", pipeline.raw, "in/a.txt"),
        ("GetObject", pipeline.processed, LAYOUT.manifest_key("in/a.txt")),
        ("GetObject", pipeline.raw, "in/a.txt"),
    ]
    assert pipeline.output_json("in/a.txt", "lines.json") == ["echo", "row 1"]


def test_an_event_that_understates_the_size_is_processed_at_s3s_size(
    pipeline: Pipeline, scratch: Path, runlog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3worker.storage

    monkeypatch.setattr(s3worker.storage, "WHOLE_GET_BYTES", 8)
    body = b"echo\nrow 1\nrow 2\n"
    resp = boto3.client("s3").put_object(Bucket=pipeline.raw, Key="in/a.txt", Body=body)
    event = eventbridge_event(pipeline.raw, "in/a.txt", 3, resp["ETag"].strip('"'),
                              resp["VersionId"])  # fmt: skip
    calls: list[tuple[str, str, str]] = []
    (decision,) = handle(pipeline, scratch, runlog, message(event), calls=calls)
    assert decision.verdict is Verdict.ACK
    assert Manifest.parse(pipeline.manifest("in/a.txt")).input.size == len(body)
    assert pipeline.output_json("in/a.txt", "lines.json") == ["echo", "row 1", "row 2"]
    # The first GET told the real size and its body was left unread; the download read it
    assert [c for c in calls if c[1] == pipeline.raw][:2] == [("GetObject", pipeline.raw,
                                                              "in/a.txt")] * 2  # fmt: skip


def _ref(pipeline: Pipeline, event: dict[str, Any]) -> Any:
    from s3worker.events import ObjectRef

    obj = event["detail"]["object"]
    return ObjectRef(pipeline.raw, obj["key"], version_id=obj["version-id"])


def test_a_version_done_already_is_acknowledged_without_processing_again(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    event = pipeline.upload("in/a.txt", b"echo\n", notify=False)
    handle(pipeline, scratch, runlog, message(event))
    with capture_logs() as logs:
        (again,) = handle(pipeline, scratch, runlog, message(event, ident="m-2"))
    assert again.verdict is Verdict.ACK
    assert [line["outcome"] for line in job_lines(logs)] == ["duplicate"]
    assert runs(runlog) == ["in/a.txt"]


def test_two_copies_of_one_version_at_once_process_it_once(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    event = pipeline.upload("in/a.txt", b"echo slow 0.5\n", notify=False)
    with capture_logs() as logs:
        decisions = handle(pipeline, scratch, runlog, message(event), message(event, ident="m-2"))
    assert [d.verdict for d in decisions] == [Verdict.ACK, Verdict.ACK]
    assert sorted(line["outcome"] for line in job_lines(logs)) == ["duplicate", "processed"]
    assert runs(runlog) == ["in/a.txt"]


def test_a_new_version_replaces_the_outputs_of_the_one_before(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    v1 = pipeline.upload("in/a.txt", b"echo outputs extra\n", notify=False)
    handle(pipeline, scratch, runlog, message(v1))
    old = set(Manifest.parse(pipeline.manifest("in/a.txt")).output_keys)
    v2 = pipeline.upload("in/a.txt", b"echo\n", notify=False)
    handle(pipeline, scratch, runlog, message(v2, ident="m-2"))
    manifest = Manifest.parse(pipeline.manifest("in/a.txt"))
    assert manifest.input.version_id == v2["detail"]["object"]["version-id"]
    assert set(manifest.replaced_outputs) == old
    assert set(pipeline.result_keys()) == {*manifest.output_keys, "in/a.txt/_manifest.json"}


def test_an_older_versions_late_event_is_acknowledged_and_its_leftovers_swept(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    v1 = pipeline.upload("in/a.txt", b"echo\none\n", notify=False)
    orphan = f"in/a.txt/lines.{version_tag(_ref(pipeline, v1))}.json"  # a killed run's output
    boto3.client("s3").put_object(Bucket=pipeline.processed, Key=orphan, Body=b"[]")
    pipeline.upload("in/a.txt", b"echo\ntwo\n", notify=False)
    with capture_logs() as logs:
        (decision,) = handle(pipeline, scratch, runlog, message(v1))
    assert decision.verdict is Verdict.ACK
    (line,) = job_lines(logs)
    assert line["outcome"] == "superseded"
    assert pipeline.result_keys() == []
    assert runs(runlog) == []


def test_an_empty_object_is_skipped_whatever_size_the_event_claims(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    resp = boto3.client("s3").put_object(Bucket=pipeline.raw, Key="in/empty.csv", Body=b"")
    event = eventbridge_event(pipeline.raw, "in/empty.csv", 99, resp["ETag"].strip('"'),
                              resp["VersionId"])  # fmt: skip
    with capture_logs() as logs:
        (decision,) = handle(pipeline, scratch, runlog, message(event))
    assert decision.verdict is Verdict.ACK
    (line,) = job_lines(logs)
    assert (line["outcome"], line["size"], line["reason"]) == ("skipped", 0, "zero-byte object")
    assert pipeline.result_keys() == []


def report_at(pipeline: Pipeline, key: str) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=pipeline.processed, Key=key)["Body"].read()
    return dict(json.loads(body))


@pytest.mark.parametrize(
    ("first_line", "error_class", "says"),
    [
        (b"echo corrupt", "BadDataError", "this file is corrupt on purpose"),
        (b"echo raise ValueError", "BadDataError", "processor echo failed: ValueError("),
        (b"echo raise MemoryError", "JobTooLargeError", "needs more memory than one job may use"),
    ],
)
def test_a_file_the_processor_cannot_take_is_reported_and_dead_lettered(
    pipeline: Pipeline, scratch: Path, runlog: Path, first_line: bytes, error_class: str, says: str
) -> None:
    event = pipeline.upload("in/bad.txt", first_line + b"\n", notify=False)
    with capture_logs() as logs:
        (decision,) = handle(pipeline, scratch, runlog, message(event, receive_count=1))
    assert decision.verdict is Verdict.DEAD_LETTER
    assert decision.report_key == LAYOUT.error_key("in/bad.txt")
    report = report_at(pipeline, LAYOUT.error_key("in/bad.txt"))
    assert report["error"]["class"] == error_class
    assert says in report["error"]["message"]
    assert report["input"]["key"] == "in/bad.txt"
    assert report["attempts"] == 1
    (line,) = job_lines(logs)
    assert (line["outcome"], line["log_level"]) == ("dead_letter", "warning")
    assert pipeline.manifest("in/bad.txt") is None


def test_a_full_disk_while_processing_is_retried_not_reported(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    event = pipeline.upload("in/full.txt", b"echo enospc\n", notify=False)
    (decision,) = handle(pipeline, scratch, runlog, message(event))
    assert decision.verdict is Verdict.RELEASE
    assert "scratch space ran out while processing" in str(decision.error)
    assert pipeline.result_keys() == []


def test_an_overrunning_processor_is_ended_and_reported(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    event = pipeline.upload("in/slow.txt", b"echo slow 3\n", notify=False)
    (decision,) = handle(pipeline, scratch, runlog, message(event), S3WORKER_JOB_TIMEOUT_SECONDS=1)
    assert decision.verdict is Verdict.DEAD_LETTER
    report = report_at(pipeline, LAYOUT.error_key("in/slow.txt"))
    assert report["error"]["class"] == "JobTimeoutError"
    assert report["error"]["message"] == (
        "processor echo ran longer than 1 s (S3WORKER_JOB_TIMEOUT_SECONDS); "
        "its worker process was ended"
    )


def test_the_final_receive_reports_the_attempts_that_died(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    event = pipeline.upload("in/k.txt", b"echo\n", notify=False)
    (decision,) = handle(pipeline, scratch, runlog, message(event, receive_count=5))
    assert decision.verdict is Verdict.DEAD_LETTER
    report = report_at(pipeline, LAYOUT.error_key("in/k.txt"))
    assert report["error"]["class"] == "AttemptsExhaustedError"
    assert "was received 5 times and no attempt finished" in report["error"]["message"]
    assert runs(runlog) == []  # not processed once more on the queue's last delivery


def test_an_event_of_a_foreign_bucket_is_reported_per_message(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    event = eventbridge_event("someone-elses", "in/a.txt", 5, "e")
    (decision,) = handle(pipeline, scratch, runlog, message(event, ident="m-9"))
    assert decision.verdict is Verdict.DEAD_LETTER
    report = report_at(pipeline, LAYOUT.event_error_key("m-9"))
    assert report["error"]["class"] == "WrongBucketError"
    assert f"S3WORKER_INPUT_BUCKETS={pipeline.raw}" in report["error"]["message"]
    assert "input" not in report or report["input"] is None


def test_a_body_that_is_no_event_is_reported_with_the_body(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    (decision,) = handle(pipeline, scratch, runlog, message("not json {", ident="m-7"))
    assert decision.verdict is Verdict.DEAD_LETTER
    report = report_at(pipeline, LAYOUT.event_error_key("m-7"))
    assert report["error"]["class"] == "BadEventError"
    assert report["message"]["body"] == "not json {"


def test_when_the_report_cannot_be_written_the_message_is_released(
    aws: str, name: str, scratch: Path, runlog: Path
) -> None:
    pipeline = Pipeline.create(name)
    boto3.client("s3").delete_bucket(Bucket=pipeline.processed)  # nowhere to write it
    event = eventbridge_event("someone-elses", "in/a.txt", 5, "e")
    with capture_logs() as logs:
        (decision,) = handle(pipeline, scratch, runlog, message(event))
    assert decision.verdict is Verdict.RELEASE
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["error_report_failed"]


def test_every_record_of_a_message_is_attempted_and_the_worst_verdict_wins(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    good = pipeline.upload("in/good.txt", b"echo\n", notify=False)
    bad = pipeline.upload("in/bad.txt", b"echo corrupt\n", notify=False)
    records = {
        "Records": [
            {"eventName": "ObjectCreated:Put", "eventSource": "aws:s3",
             "s3": {"bucket": {"name": pipeline.raw},
                    "object": {"key": e["detail"]["object"]["key"],
                               "size": e["detail"]["object"]["size"],
                               "versionId": e["detail"]["object"]["version-id"]}}}
            for e in (bad, good)
        ]
    }  # fmt: skip
    (decision,) = handle(pipeline, scratch, runlog, message(records))
    assert decision.verdict is Verdict.DEAD_LETTER
    assert pipeline.manifest("in/good.txt") is not None  # the bad record held nothing back
    assert pipeline.error_report("in/bad.txt") is not None


def test_the_real_process_pool_runs_the_processor(
    pipeline: Pipeline, scratch: Path, runlog: Path
) -> None:
    event = pipeline.upload("in/a.txt", b"echo\nx\n", notify=False)
    pool = ProcessPool(1)
    try:
        (decision,) = handle(pipeline, scratch, runlog, message(event), pool=pool)
    finally:
        pool.shutdown(kill=True)
    assert decision.verdict is Verdict.ACK
    assert pipeline.output_json("in/a.txt", "lines.json") == ["echo", "x"]
