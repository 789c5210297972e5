"""Spot interruption notices: the drain rule on its own, then a notice served mid-job by a local
IMDSv2 to a worker draining the moto server: nothing lost, nothing duplicated."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from procs import Pipeline, echo_registry, runs
from s3worker.config import Settings
from s3worker.interruption import (
    INTERRUPTION,
    RELEASE_MARGIN_SECONDS,
    Notice,
    Running,
    budget,
    parse_instance_action,
    parse_rebalance,
    plan,
)
from s3worker.worker import ExitReason, Worker
from test_races import WAIT_SECONDS, wait_for

from demo.emulator import FakeImds
from tests.test_metrics import statistics

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


# -- the notices and the rule, pure -----------------------------------------------------------


def test_an_instance_action_is_a_notice_with_the_time_left() -> None:
    body = '{"action": "terminate", "time": "2026-12-01T12:02:00Z"}'
    notice = parse_instance_action(body, NOW)
    assert notice == Notice(INTERRUPTION, "terminate", "2026-12-01T12:02:00Z", 120.0)


def test_an_unreadable_time_leaves_no_time_and_other_bodies_are_no_notice() -> None:
    notice = parse_instance_action('{"action": "stop", "time": "soon"}', NOW)
    assert notice is not None
    assert notice.seconds_left == 0.0
    assert parse_instance_action("<html>404 - Not Found</html>", NOW) is None
    assert parse_instance_action('{"time": "2026-12-01T12:02:00Z"}', NOW) is None


def test_a_rebalance_recommendation_has_no_deadline() -> None:
    notice = parse_rebalance('{"noticeTime": "2026-12-01T11:59:00Z"}')
    assert notice is not None
    assert (notice.kind, notice.seconds_left) == ("rebalance", None)
    assert budget(notice, drain_seconds=90, elapsed=30) == 90
    assert parse_rebalance("{}") is None


def test_the_budget_is_the_notice_less_the_release_margin() -> None:
    notice = Notice(INTERRUPTION, "terminate", "t", 120.0)
    assert budget(notice, drain_seconds=90, elapsed=20) == 100 - RELEASE_MARGIN_SECONDS
    assert budget(notice, drain_seconds=90, elapsed=200) == 0


def test_plan_keeps_only_files_that_can_finish_within_the_budget() -> None:
    jobs = [
        Running("waiting", started=None, expected_s=None),  # not started: back at once
        Running("uploading", started=0.0, expected_s=500.0, processed=True),
        Running("nearly-done", started=0.0, expected_s=100.0),  # 100 - 90 = 10 s left
        Running("long", started=0.0, expected_s=900.0),  # 810 s left
        Running("young", started=80.0, expected_s=None),  # as long again as it ran: 10 s
        Running("old", started=0.0, expected_s=None),  # 90 s more
    ]
    keep, release = plan(jobs, now=90.0, budget=60.0)
    assert keep == ["uploading", "nearly-done", "young"]
    assert release == ["waiting", "long", "old"]


def test_after_a_notice_the_daemon_exits_0_which_the_unit_does_not_restart() -> None:
    from s3worker import exits
    from s3worker.worker import exit_code

    from tests.test_systemd_unit import UNIT, directives

    # systemd.service(5): on-failure restarts on a non-zero exit code, a signal, a timeout or
    # the watchdog; never after a clean exit
    assert directives(UNIT.read_text())["Restart"] == ["on-failure"]
    assert exit_code(ExitReason.INTERRUPTED) == exits.OK
    assert exit_code(ExitReason.REBALANCE) == exits.OK
    assert exit_code(ExitReason.IDLE_STOP_FAILED) != exits.OK


# -- a notice mid-job, against the moto server --------------------------------------------------


def not_visible(pipeline: Pipeline) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesNotVisible"])


def visible_bodies(pipeline: Pipeline) -> list[str]:
    """Every visible message's body, each received once, then made visible again."""
    sqs, held = boto3.client("sqs"), []
    while got := sqs.receive_message(
        QueueUrl=pipeline.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
    ).get("Messages"):
        held += got
    for m in held:
        sqs.change_message_visibility(
            QueueUrl=pipeline.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    return [m["Body"] for m in held]


class WorkerThread(threading.Thread):
    def __init__(self, settings: Settings, runlog: Path) -> None:
        super().__init__(daemon=True)
        self.settings, self.runlog = settings, runlog
        self.reason: ExitReason | None = None

    def run(self) -> None:
        from s3worker.aws import ClientsContext

        async def scenario() -> ExitReason:
            async with ClientsContext(self.settings.max_in_flight) as clients:
                worker = Worker(self.settings, clients, processors=echo_registry(self.runlog))
                worker.interruption.poll_seconds = 0.1  # EC2's own pace is 5 s: not a test's
                return await worker.run()

        self.reason = asyncio.run(scenario())


def test_a_notice_mid_job_loses_nothing_and_duplicates_nothing(
    aws: str, name: str, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given four gated files held by a worker with two processes: two run, two wait
    imds = FakeImds("i-0spot")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    pipeline = Pipeline.create(name, visibility_timeout=300)
    gates = {f"spot/{i}.txt": tmp_path / f"gate-{i}" for i in range(4)}
    events = {k: pipeline.upload(k, f"echo gate {gate}\n".encode()) for k, gate in gates.items()}
    namespace = f"S3worker/{name}"
    env = pipeline.env(
        scratch, S3WORKER_CONCURRENCY=2, S3WORKER_MAX_IN_FLIGHT=4,
        S3WORKER_METRICS_NAMESPACE=namespace,
    )  # fmt: skip
    env["S3WORKER_IDLE_ACTION"] = "none"  # only the notice ends this worker
    runlog = tmp_path / "runlog"
    worker = WorkerThread(Settings.from_env(env), runlog)
    begun = time.monotonic()
    worker.start()
    started = lambda: [k for k, g in gates.items() if Path(f"{g}.started").exists()]  # noqa: E731
    # (the markers are another process's files and the count SQS's: polled, with a deadline)
    wait_for(lambda: len(started()) == 2 and not_visible(pipeline) == 4, "all four held")
    running = started()
    # When EC2 serves a termination notice that leaves the running files as long again as they
    # have run at most (the drain rule keeps both), and one of them finishes in time, the other
    # never does
    path = imds.notify("terminate", RELEASE_MARGIN_SECONDS + time.monotonic() - begun + 5)
    assert imds.wait_served(path, WAIT_SECONDS), "the notice was never read"
    gates[running[0]].touch()
    worker.join(WAIT_SECONDS)
    imds.close()
    # Then the worker exits on its own, as interrupted (exit code 0: systemd does not restart it)
    assert worker.reason is ExitReason.INTERRUPTED
    # And the file that could finish has its results and its message is gone
    assert pipeline.manifest(running[0]) is not None
    # And every other file is back on the queue, once, with no results and no error report
    back = visible_bodies(pipeline)
    others = [k for k in gates if k != running[0]]
    assert sorted(back) == sorted(json.dumps(events[k]) for k in others)
    assert all(pipeline.manifest(k) is None for k in others)
    assert pipeline.error_reports() == []
    assert pipeline.depth(pipeline.dlq_url) == 0
    # And the two that waited for a process never started
    assert sorted(runs(runlog)) == sorted(running)
    assert not any(Path(f"{gates[k]}.started").exists() for k in others if k not in running)
    assert list(scratch.iterdir()) == []
    # And its metrics, sent before it exited, count the notice and the three messages handed back
    assert statistics(namespace, "Interruptions", "Sum", Notice="interruption") == 1
    assert statistics(namespace, "FilesReleased", "Sum") == 3
    assert statistics(namespace, "Workers", "Sum", State="draining") >= 1
    # And a worker after it (no notice) completes each of them exactly once
    for gate in gates.values():
        gate.touch()
    after = WorkerThread(Settings.from_env(pipeline.env(scratch)), runlog)
    after.run()
    assert after.reason is ExitReason.IDLE
    assert all(pipeline.manifest(k) is not None for k in gates)
    assert pipeline.depth() == 0
    completed: dict[str, Any] = {k: runs(runlog).count(k) for k in gates}
    assert completed == {k: 2 if k == running[1] else 1 for k in gates}


def test_a_rebalance_recommendation_drains_then_stops_the_instance(
    aws: str, name: str, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3worker.retry import RetryPolicy
    from s3worker.worker import serve
    from tenacity import wait_none

    from tests.test_idle_stop import launch, state

    # Given a worker whose instance EC2 recommends rebalancing, with the env file's idle action
    (me,) = launch(1)
    imds = FakeImds(me)
    imds.notify("rebalance", 0)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    pipeline = Pipeline.create(name)
    settings = Settings.from_env(
        {**pipeline.env(scratch), "S3WORKER_IDLE_ACTION": "stop", "S3WORKER_IDLE_SECONDS": "600"}
    )
    # When it runs
    registry = echo_registry(tmp_path / "runlog")
    reason = asyncio.run(
        serve(settings, processors=registry, retry=RetryPolicy(3, wait=wait_none()))
    )
    imds.close()
    # Then it leaves at once (not after the idle time) and stops its own instance
    assert reason is ExitReason.REBALANCE
    assert state(me) == "stopped"
