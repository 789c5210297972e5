"""lambda/starter/cleanup.py: the `Custom::WorkerPoolCleanup` resource. Delete terminates the
pool (by its tag, against the moto server over HTTP), cancels members' Spot requests and gives up
at its deadline (botocore's Stubber: states moto cannot hold); every request is answered on the
pre-signed URL (a local HTTP server), which is retried a few times."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from lambdakit import (
    AMI,
    POOL_KEY,
    FakeClock,
    cfn_event,
    event,
    expect_pool,
    response_server,
    settings_env,
    starter,
    stubbed_ec2,
)

cleanup = starter("cleanup")
Server = tuple[str, list[dict[str, Any]]]


@pytest.fixture
def response_url() -> Iterator[Server]:
    with response_server() as server:
        yield server


class Unused:
    """An EC2 client the test expects never to be called."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


def cleaner(ec2: Any, clock: FakeClock | None = None, **env: str) -> Any:
    clock = clock or FakeClock()
    return cleanup.Cleaner(lambda: ec2, env, clock, clock.sleep)


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    yield from stubbed_ec2()


def launch(ec2: Any, key: str, value: str) -> str:
    tags = [{"ResourceType": "instance", "Tags": [{"Key": key, "Value": value}]}]
    reply = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, TagSpecifications=tags)
    return str(reply["Instances"][0]["InstanceId"])


def state(ec2: Any, iid: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def test_delete_terminates_the_pool_and_nothing_else(
    aws: str, name: str, response_url: Server
) -> None:
    # Given a running and a stopped member, another stack's member and an instance named alike
    url, received = response_url
    ec2 = boto3.client("ec2")
    running, stopped = launch(ec2, POOL_KEY, name), launch(ec2, POOL_KEY, name)
    ec2.stop_instances(InstanceIds=[stopped])
    others = [launch(ec2, POOL_KEY, f"{name}-other"), launch(ec2, "Name", name)]
    env = settings_env(S3WORKER_POOL_TAG=f"{POOL_KEY}={name}")

    status, reason = cleaner(ec2, **env).custom_resource(cfn_event("delete", url), "req-9", 60_000)

    # Then the members are terminated, the others untouched, and CloudFormation is told so
    assert (status, reason) == ("SUCCESS", "")
    assert [state(ec2, i) for i in (running, stopped)] == ["terminated"] * 2
    assert [state(ec2, i) for i in others] == ["running"] * 2
    (reply,) = received
    assert reply["content_type"] == ""  # part of what the pre-signed URL signs
    assert reply["Status"] == "SUCCESS"
    assert reply["Data"] == {"Terminated": 2}
    assert reply["Reason"] == "see CloudWatch log stream of request req-9"
    delete = event("cfn_delete")
    for key in ("StackId", "RequestId", "LogicalResourceId", "PhysicalResourceId"):
        assert reply[key] == delete[key]


@pytest.mark.parametrize("kind", ["create", "update"])
def test_create_and_update_validate_the_settings_and_answer(
    kind: str, response_url: Server
) -> None:
    url, received = response_url
    request = cfn_event("create", url) | {"RequestType": kind.title()}

    ok = cleaner(Unused(), **settings_env()).custom_resource(request, "r", 60_000)
    bad = cleaner(Unused(), **settings_env(S3WORKER_MAX_WORKERS="0")).custom_resource(
        request, "r", 60_000
    )

    assert ok == ("SUCCESS", "")
    assert bad[0] == "FAILED"
    assert bad[1] == "ValueError: S3WORKER_MAX_WORKERS must be >= 1, got 0"
    assert [r["Status"] for r in received] == ["SUCCESS", "FAILED"]
    assert received[1]["Reason"] == bad[1]
    # A new resource has no physical id yet: the request's id becomes it
    assert received[0]["PhysicalResourceId"] == event("cfn_create")["RequestId"]


def test_delete_without_a_pool_tag_has_nothing_to_clean(response_url: Server) -> None:
    url, received = response_url

    status, _ = cleaner(Unused()).custom_resource(cfn_event("delete", url), "r", 60_000)

    assert status == "SUCCESS"
    assert received[0]["Data"] == {"Terminated": 0}


def test_delete_that_runs_out_of_time_answers_failed(
    stubbed: tuple[Any, Stubber], response_url: Server
) -> None:
    client, stub = stubbed
    url, received = response_url
    expect_pool(stub, running=["i-a"])
    stub.add_response("terminate_instances", {}, {"InstanceIds": ["i-a"]})
    # 30 s left - 10 s margin = 20 s: polls at 5, 10, 15, 20 s see it still shutting down.
    for _ in range(4):  # shutting-down is not terminated yet; not terminated again either
        expect_pool(stub, **{"shutting-down": ["i-a"]})
    clock = FakeClock()

    status, reason = cleaner(client, clock, **settings_env()).custom_resource(
        cfn_event("delete", url), "r", 30_000
    )

    assert status == "FAILED"
    assert reason == "TimeoutError: 1 pool instances still terminating: ['i-a']"
    assert received[0]["Status"] == "FAILED"
    assert clock.slept == [cleanup.CLEANUP_POLL_S] * 4


def test_delete_cancels_the_spot_requests_of_its_members_before_terminating_them(
    stubbed: tuple[Any, Stubber],
) -> None:
    # moto's RunInstances makes no Spot request: the member's request id comes from the stub
    client, stub = stubbed
    spot = {"InstanceId": "i-spot", "State": {"Name": "stopped", "Code": 80},
            "SpotInstanceRequestId": "sir-1"}  # fmt: skip
    ondemand = {"InstanceId": "i-od", "State": {"Name": "running", "Code": 16}}
    stub.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [spot, ondemand]}]},
        {"Filters": ANY, "MaxResults": 1000},
    )
    # A persistent request still open would launch a replacement for the terminated member
    stub.add_response("cancel_spot_instance_requests", {}, {"SpotInstanceRequestIds": ["sir-1"]})
    stub.add_response("terminate_instances", {}, {"InstanceIds": ["i-spot", "i-od"]})
    expect_pool(stub)  # all gone

    assert cleaner(client, **settings_env()).cleanup(deadline=10_000.0) == {"Terminated": 2}


def test_a_large_pool_is_terminated_in_batches(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    members = [f"i-{n:04d}" for n in range(cleanup.TERMINATE_BATCH + 1)]
    expect_pool(stub, running=members)
    stub.add_response("terminate_instances", {}, {"InstanceIds": members[:-1]})
    stub.add_response("terminate_instances", {}, {"InstanceIds": members[-1:]})
    expect_pool(stub)

    assert cleaner(client, **settings_env()).cleanup(deadline=10_000.0) == {
        "Terminated": len(members)
    }


def test_a_failing_cleanup_still_answers_cloudformation(
    stubbed: tuple[Any, Stubber], response_url: Server
) -> None:
    client, stub = stubbed
    url, received = response_url
    stub.add_client_error("describe_instances", "UnauthorizedOperation", http_status_code=403)

    status, reason = cleaner(client, **settings_env()).custom_resource(
        cfn_event("delete", url), "r", 60_000
    )

    assert status == "FAILED"
    assert reason.startswith("ClientError: ")
    assert "UnauthorizedOperation" in reason
    assert [r["Status"] for r in received] == ["FAILED"]  # a stack delete never hangs on it


def test_an_unreachable_response_url_raises_so_lambda_retries() -> None:
    clock = FakeClock()
    with pytest.raises(OSError):
        cleanup.send_response("http://127.0.0.1:9/unreachable", {"Status": "SUCCESS"}, clock.sleep)
    assert clock.slept == [1.0, 2.0]


def test_an_error_answer_is_put_again_three_times_in_all() -> None:
    clock = FakeClock()
    with response_server(status=503) as (url, received), pytest.raises(OSError, match="503"):
        cleanup.send_response(url, {"Status": "SUCCESS"}, clock.sleep)
    assert [r["Status"] for r in received] == ["SUCCESS"] * 3
    assert clock.slept == [1.0, 2.0]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", ""])
def test_only_an_http_response_url_is_used(url: str) -> None:
    with pytest.raises(ValueError, match="ResponseURL is not http"):
        cleanup.send_response(url, {}, FakeClock().sleep)
