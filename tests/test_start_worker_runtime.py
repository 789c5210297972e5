"""lambda/starter/runtime.py: what a warm container keeps (settings, clients built on first use,
one observation) and the reconcile loop: each event routed, observe -> decide -> act, and one
decision line and one metrics line per invocation. On botocore's Stubber (every AWS call the
runtime makes is queued, so an unexpected one fails) and against the moto server over HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from lambdakit import (
    Context,
    HttpPool,
    Stubbed,
    cfn_event,
    event,
    expect_pool,
    expect_queue,
    response_server,
    settings_env,
    starter,
    stubbed_runtime,
    sw,
)

act = starter("act")


@pytest.fixture
def stubbed() -> Iterator[Stubbed]:
    yield from stubbed_runtime(S3WORKER_MAX_WORKERS="2", S3WORKER_DECISION_CACHE_SECONDS="5")


def test_clients_are_not_built_until_used() -> None:
    rt = sw.Runtime(env=settings_env())
    assert (rt.ec2_client, rt.sqs_client, rt.ec2_act_client) == (None, None, None)
    assert rt.cached is None  # nor the observer


def test_built_clients_are_kept_and_acting_has_its_own(aws: str) -> None:
    rt = sw.Runtime(env=settings_env())

    assert rt.ec2() is rt.ec2()
    assert rt.sqs() is rt.sqs()
    assert rt.ec2_act() is not rt.ec2()
    assert rt.ec2_act().meta.config.retries["total_max_attempts"] == 2  # starter.aws.ACT_RETRIES


def test_an_injected_ec2_client_serves_acting_too() -> None:
    client: Any = object()
    rt = sw.Runtime(env=settings_env(), ec2_client=client)
    assert rt.ec2_act() is client


def test_events_that_are_no_work_touch_no_client() -> None:
    rt = sw.Runtime(env=settings_env())
    folder = event("eventbridge_object_created")
    folder["detail"]["object"].update(key="incoming/", size=0)

    assert rt.handle(event("eventbridge_object_deleted"), Context()) == {
        "action": "ignored",
        "reason": "event Object Deleted is not a creation",
    }
    assert rt.handle(folder, Context()) == {
        "action": "skipped",
        "skipped": [{"key": "incoming/", "reason": "folder marker"}],
    }
    assert (rt.ec2_client, rt.sqs_client) == (None, None)


def test_a_custom_resource_is_answered_within_the_invocations_time() -> None:
    rt = sw.Runtime(env={})  # no pool tag: nothing to terminate, no client needed
    with response_server() as (url, received):
        result = rt.handle(cfn_event("delete", url), Context(remaining_ms=30_000))
    assert result == {"action": "custom_resource", "status": "SUCCESS", "reason": ""}
    assert received[0]["Data"] == {"Terminated": 0}


def test_a_warm_container_reuses_its_observation_and_counts_each_events_objects(
    stubbed: Stubbed,
) -> None:
    # Given one observation: an empty queue and one running member
    expect_queue(stubbed.sqs, 0)
    expect_pool(stubbed.ec2, running=["i-r"])
    first = stubbed.rt.handle(event("eventbridge_object_created"), Context())
    # When the next event comes within the cache's 5 s: no AWS call (none is queued)
    stubbed.clock.now += 4
    second = stubbed.rt.handle(event("eventbridge_object_created"), Context())
    # Then the objects named by both events add up on the reused observation
    assert (first["backlog"], second["backlog"]) == (1, 2)
    assert second["active_before"] == 1
    # And after the cache's age a new event observes again
    stubbed.clock.now += 1
    expect_queue(stubbed.sqs, 0)
    expect_pool(stubbed.ec2, running=["i-r"])
    assert stubbed.rt.handle(event("eventbridge_object_created"), Context())["backlog"] == 1


def test_the_reconciler_always_observes_afresh(stubbed: Stubbed) -> None:
    expect_queue(stubbed.sqs, 3)
    expect_pool(stubbed.ec2, running=["i-r"])
    stubbed.rt.handle(event("scheduled"), Context())
    expect_queue(stubbed.sqs, 3)
    expect_pool(stubbed.ec2, running=["i-r"])

    result = stubbed.rt.handle(event("scheduled"), Context())  # at the same instant

    assert result["backlog"] == 3  # the queue's own count, no event objects added


def test_what_was_started_is_remembered_as_pending(stubbed: Stubbed) -> None:
    expect_queue(stubbed.sqs, 0)
    expect_pool(stubbed.ec2, stopped=["i-s"])
    stubbed.ec2.add_response("start_instances", {}, {"InstanceIds": ["i-s"]})

    stubbed.rt.handle(event("eventbridge_object_created"), Context())

    assert stubbed.rt.cached.pool.pending == ("i-s",)
    assert stubbed.rt.cached.pool.stopped == ()


def test_a_member_that_could_not_be_started_drops_the_observation(stubbed: Stubbed) -> None:
    expect_queue(stubbed.sqs, 900)
    expect_pool(stubbed.ec2, stopped=["i-a", "i-b"])
    stubbed.ec2.add_client_error("start_instances", "IncorrectInstanceState", http_status_code=400)
    stubbed.ec2.add_response("start_instances", {}, {"InstanceIds": ["i-a"]})
    stubbed.ec2.add_client_error("start_instances", "IncorrectInstanceState", http_status_code=400)

    result = stubbed.rt.handle(event("eventbridge_object_created"), Context())

    assert result["started"] == ["i-a"]
    assert result["deferred"] == 1  # left to the reconciler
    assert stubbed.rt.cached is None  # the observation was wrong: the next event looks again


def test_a_failed_act_drops_the_observation_records_the_shortfall_and_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="s3worker.start_worker")
    lines: list[dict[str, Any]] = []
    for s in stubbed_runtime(S3WORKER_MAX_WORKERS="2", S3WORKER_FILES_PER_WORKER="1"):
        s.rt.metrics_write = lambda line: lines.append(json.loads(line))
        # Given a warm container that launched one worker for an event
        expect_queue(s.sqs, 0)
        expect_pool(s.ec2)
        s.ec2.add_response("run_instances", {"Instances": [{"InstanceId": "i-1"}]})
        s.rt.handle(event("eventbridge_object_created"), Context())
        assert s.rt.cached is not None
        # When the next event (its observation reused) finds no capacity for a second one
        s.ec2.add_client_error("run_instances", "InsufficientInstanceCapacity")
        with pytest.raises(act.CapacityError, match="launched 0 of 1"):
            s.rt.handle(event("eventbridge_object_created"), Context(aws_request_id="req-2"))
        # Then what was seen is dropped, and the shortfall is in the decision and metrics lines
        assert s.rt.cached is None
    decision = [r for r in caplog.records if r.getMessage() == "decision"][-1]
    assert decision.levelno == logging.WARNING
    assert decision.fields["deferred"] == 1  # the launch that did not happen
    assert (lines[-1]["WorkersDeferred"], lines[-1]["CapacityErrors"]) == (1, 1)


@pytest.fixture
def pool(aws: str, name: str) -> HttpPool:
    return HttpPool.create(name)


def test_an_idle_reconcile_drops_the_cached_pool_view(pool: HttpPool) -> None:
    # Given a warm container that has just observed the pool for an event
    rt = pool.runtime("on-demand", S3WORKER_DECISION_CACHE_SECONDS="3600")
    rt.handle(event("eventbridge_object_created"), Context())
    assert rt.cached is not None
    # When the reconciler finds the queue empty
    result = rt.handle(event("scheduled"), Context())
    # Then it answers idle and the next event observes the pool afresh
    assert result == {"action": "idle", "backlog": 0}
    assert rt.cached is None
    assert pool.metric_lines[-1]["Backlog"] == 0


def test_each_decision_writes_one_emf_line_in_the_stacks_namespace(pool: HttpPool) -> None:
    rt = pool.runtime(
        "spot-then-on-demand", refuse=lambda m: "UnfulfillableCapacity" if m == "spot" else None
    )

    rt.handle(event("eventbridge_object_created"), Context())

    (line,) = pool.metric_lines
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == f"S3worker/{pool.tag}"
    names = [m["Name"] for m in directive["Metrics"]]
    assert set(names) == set(starter("metrics").METRICS)
    assert {n: line[n] for n in names} == {
        "WorkersStarted": 0,
        "WorkersLaunched": 1,
        "WorkersDeferred": 0,
        "CapacityErrors": 1,
        "SpotFallbacks": 1,
        "Backlog": 1,
        "PoolActive": 0,
        "PoolStopped": 0,
    }
