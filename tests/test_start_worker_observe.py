"""lambda/starter/observe.py: the queue's backlog and the pool's members against the moto server
over HTTP, paging and Spot interruptions through botocore's Stubber (moto shows neither), and the
warm container's short cache of one observation."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from lambdakit import AMI, REGION, FakeClock, expect_pool, starter

observe = starter("observe")
decide = starter("decide")
Backlog, Pool = decide.Backlog, decide.Pool


def instance(iid: str, state: str, reason: str = "") -> dict[str, Any]:
    inst: dict[str, Any] = {"InstanceId": iid, "State": {"Name": state, "Code": 80}}
    if reason:
        inst["StateReason"] = {"Code": reason, "Message": reason}
    return inst


def test_a_member_an_interruption_stopped_is_held() -> None:
    found = observe.pool_of(
        [
            instance("i-idle", "stopped", "Client.UserInitiatedShutdown"),
            instance("i-int", "stopped", "Server.SpotInstanceShutdown"),
            instance("i-run", "running"),
        ]
    )

    assert found == Pool(running=("i-run",), stopped=("i-idle",), held=("i-int",))


def test_members_are_grouped_by_state_and_sorted() -> None:
    found = observe.pool_of(
        [instance("i-b", "pending"), instance("i-a", "pending"), instance("i-x", "stopping")]
    )
    assert found == Pool(pending=("i-a", "i-b"), stopping=("i-x",))
    assert observe.members_by_state([instance("i-b", "running"), instance("i-a", "running")]) == {
        "running": ["i-b", "i-a"]
    }


def test_the_backlog_is_the_queues_visible_and_delayed_counters(aws: str, name: str) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=900)

    assert observe.queue_backlog(sqs, url) == Backlog(visible=3, delayed=1)


def test_members_are_found_by_the_pool_tag_in_the_asked_states_only(aws: str, name: str) -> None:
    ec2 = boto3.client("ec2")

    def launch(tag_key: str, tag_value: str) -> str:
        tags = [{"ResourceType": "instance", "Tags": [{"Key": tag_key, "Value": tag_value}]}]
        reply = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=tags)
        return str(reply["Instances"][0]["InstanceId"])

    running, stopped = launch("s3worker:pool", name), launch("s3worker:pool", name)
    ec2.stop_instances(InstanceIds=[stopped])
    launch("s3worker:pool", f"{name}-other")  # another stack's pool
    launch("Name", name)  # the stack's name, but not the pool tag

    found = observe.describe_members(ec2, ("s3worker:pool", name), ("running", "stopped"))
    only_running = observe.describe_members(ec2, ("s3worker:pool", name), ("running",))

    assert observe.members_by_state(found) == {"running": [running], "stopped": [stopped]}
    assert [i["InstanceId"] for i in only_running] == [running]


def test_every_page_of_members_is_read() -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    with Stubber(ec2) as stub:
        expect_pool(stub, next_token="page-2", running=["i-1"])
        stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [instance("i-2", "stopped")]}]},
            {"Filters": ANY, "MaxResults": 1000, "NextToken": "page-2"},
        )

        found = observe.describe_members(ec2, ("k", "v"), ("running", "stopped"))

        stub.assert_no_pending_responses()
    assert [i["InstanceId"] for i in found] == ["i-1", "i-2"]


def test_an_observation_adds_event_objects_and_what_acting_set_on_its_way() -> None:
    obs = observe.Observation(5.0, Backlog(visible=2, from_events=1), Pool(stopped=("a", "b")))

    later = obs.with_events(3).after(started=["a"], launched=["n1"])

    assert later.backlog == Backlog(visible=2, from_events=4)
    assert later.pool == Pool(pending=("a", "n1"), stopped=("b",))
    assert later.at == 5.0
    assert obs.pool.stopped == ("a", "b")  # frozen: the original is unchanged


class Unused:
    """A client the test expects never to be called."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


@pytest.mark.parametrize(("age", "reused"), [(0.0, True), (4.9, True), (5.0, False)])
def test_an_observation_is_reused_only_while_younger_than_the_cache(
    age: float, reused: bool
) -> None:
    clock = FakeClock()
    observer = observe.Observer(Unused, Unused, "q", ("k", "v"), 5, clock)
    obs = observe.Observation(clock(), Backlog(visible=1), Pool())
    observer.remember(obs)
    clock.now += age

    assert (observer.reusable() is obs) == reused
    observer.forget()
    assert observer.reusable() is None


def test_a_fresh_observation_reads_the_pool_at_the_clocks_time() -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    clock = FakeClock(now=42.0)
    observer = observe.Observer(Unused, lambda: ec2, "q", ("k", "v"), 5, clock)
    with Stubber(ec2) as stub:
        expect_pool(stub, running=["i-r"], stopped=["i-s"])
        obs = observer.fresh(Backlog(visible=7))
    assert obs == observe.Observation(
        42.0, Backlog(visible=7), Pool(running=("i-r",), stopped=("i-s",))
    )
    assert observer.reusable() is None  # fresh() reads; only remember() keeps
