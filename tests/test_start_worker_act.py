"""lambda/starter/act.py: starting stopped members and launching new ones, each market, type and
subnet in turn. The capacity types against the moto server over HTTP with the function's own
clients (refusals injected on botocore's `before-send`, lambdakit.HttpPool); the order of
candidates and the state errors moto cannot produce through botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from lambdakit import (
    SPOT,
    Context,
    HttpPool,
    event,
    run_params,
    settings_env,
    starter,
    stubbed_ec2,
)

act = starter("act")
starter_aws = starter("aws")
Settings = starter("settings").Settings


@pytest.fixture
def pool(aws: str, name: str) -> HttpPool:
    return HttpPool.create(name)


def object_created() -> dict[str, Any]:
    return event("eventbridge_object_created")


# --- one test per capacity type: what the start logic calls ------------------------------------


def test_on_demand_launches_without_market_options(pool: HttpPool) -> None:
    result = pool.runtime("on-demand").handle(object_created(), Context())

    (run,) = pool.runs()
    assert "InstanceMarketOptions" not in run
    assert [t["ResourceType"] for t in run["TagSpecifications"]] == ["instance", "volume"]
    assert pool.members() == dict.fromkeys(result["launched"], None)
    assert result["markets"] == dict.fromkeys(result["launched"], "on-demand")


def test_spot_launches_a_persistent_stoppable_spot_request_tagged_with_the_pool(
    pool: HttpPool,
) -> None:
    result = pool.runtime("spot").handle(object_created(), Context())

    (run,) = pool.runs()
    assert run["InstanceMarketOptions"] == SPOT
    assert {
        "ResourceType": "spot-instances-request",
        "Tags": [{"Key": "s3worker:pool", "Value": pool.tag}],
    } in run["TagSpecifications"]
    assert pool.members() == dict.fromkeys(result["launched"], "spot")  # moto's view
    assert result["fallbacks"] == 0


def test_spot_then_on_demand_launches_spot_when_there_is_capacity(pool: HttpPool) -> None:
    result = pool.runtime("spot-then-on-demand").handle(object_created(), Context())

    assert [r.get("InstanceMarketOptions") for r in pool.runs()] == [SPOT]
    assert set(result["markets"].values()) == {"spot"}


def test_spot_then_on_demand_falls_back_on_spot_capacity_errors(pool: HttpPool) -> None:
    # Given Spot has no capacity (EC2's 500), in either of two subnets
    env = {"S3WORKER_SUBNET_IDS": "", "S3WORKER_INSTANCE_TYPES": "t3.small"}
    rt = pool.runtime(
        "spot-then-on-demand",
        refuse=lambda m: "InsufficientInstanceCapacity" if m == "spot" else None,
        **env,
    )

    result = rt.handle(object_created(), Context())

    # Then both Spot candidates (template type, fallback type) were tried, each retried once
    # by botocore (a 500 is transient to it), then on-demand launched, and the line says so
    markets = [
        r.get("InstanceMarketOptions", {}).get("MarketType", "on-demand") for r in pool.runs()
    ]
    assert markets == ["spot", "spot", "on-demand"]
    assert pool.attempts == ["spot"] * 2 * starter_aws.ACT_MAX_ATTEMPTS + ["on-demand"]
    assert pool.members() == dict.fromkeys(result["launched"], None)
    assert result["fallbacks"] == 1
    assert result["capacity_errors"] == 2
    assert result["refusals"] == [
        "spot/template/template: InsufficientInstanceCapacity",
        "spot/t3.small/template: InsufficientInstanceCapacity",
    ]


@pytest.mark.parametrize("code", ["MaxSpotInstanceCountExceeded", "SpotMaxPriceTooLow"])
def test_a_spot_wide_refusal_goes_straight_to_on_demand(pool: HttpPool, code: str) -> None:
    rt = pool.runtime(
        "spot-then-on-demand",
        refuse=lambda m: code if m == "spot" else None,
        S3WORKER_INSTANCE_TYPES="t3.small,t3.medium",
    )

    result = rt.handle(object_created(), Context())

    # One Spot try (a 400: not retried), no other type, then on-demand
    assert pool.attempts == ["spot", "on-demand"]
    assert result["fallbacks"] == 1
    assert result["refusals"] == [f"spot/template/template: {code}"]


def test_spot_alone_never_falls_back_and_raises_for_the_retry(pool: HttpPool) -> None:
    rt = pool.runtime("spot", refuse=lambda m: "InsufficientInstanceCapacity")

    with pytest.raises(act.CapacityError, match="launched 0 of 1"):
        rt.handle(object_created(), Context())

    assert pool.attempts == ["spot"] * starter_aws.ACT_MAX_ATTEMPTS
    assert pool.members() == {}
    (line,) = pool.metric_lines
    assert (line["CapacityErrors"], line["WorkersDeferred"], line["SpotFallbacks"]) == (1, 1, 0)


def test_stopped_spot_members_are_started_like_on_demand_ones(pool: HttpPool) -> None:
    # Given a Spot member that stopped itself (the daemon's idle stop: StopInstances)
    first = pool.runtime("spot").handle(object_created(), Context())
    (member,) = first["launched"]
    pool.ec2.stop_instances(InstanceIds=[member])
    pool.calls.clear()

    second = pool.runtime("spot").handle(object_created(), Context(aws_request_id="req-2"))

    assert second["started"] == [member]
    assert [name for name, _ in pool.calls].count("RunInstances") == 0


# --- the Actor on stubbed EC2: the order of candidates, state and capacity errors --------------


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    yield from stubbed_ec2()


def actor(client: Any, **env: str) -> Any:
    defaults = {"S3WORKER_SUBNET_IDS": "subnet-a,subnet-b", "S3WORKER_INSTANCE_TYPES": "m6i.large"}
    return act.Actor(lambda: client, Settings.from_env(settings_env(**{**defaults, **env})))


def test_candidates_are_each_market_then_type_then_subnet() -> None:
    a = actor(None, S3WORKER_CAPACITY_TYPE="spot-then-on-demand")

    assert [str(c) for c in a.candidates()] == [
        f"{m}/{t}/{s}"
        for m in ("spot", "on-demand")
        for t in ("template", "m6i.large")
        for s in ("subnet-a", "subnet-b")
    ]
    assert [str(c) for c in actor(None, S3WORKER_SUBNET_IDS="").candidates()] == [
        "on-demand/template/template",
        "on-demand/m6i.large/template",
    ]


def test_stopped_members_are_started_in_one_call(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    stub.add_response("start_instances", {}, {"InstanceIds": ["i-a", "i-b"]})
    tally = act.Tally()

    actor(client).start(("i-a", "i-b"), tally)

    assert (tally.started, tally.not_started) == (["i-a", "i-b"], [])


def test_incorrect_instance_state_falls_back_to_one_start_per_member(
    ec2: tuple[Any, Stubber],
) -> None:
    client, stub = ec2
    stub.add_client_error("start_instances", "IncorrectInstanceState", http_status_code=400)
    stub.add_response("start_instances", {}, {"InstanceIds": ["i-a"]})
    stub.add_client_error("start_instances", "IncorrectInstanceState", http_status_code=400)
    tally = act.Tally()

    actor(client).start(("i-a", "i-b"), tally)

    assert tally.started == ["i-a"]
    assert tally.not_started == ["i-b"]  # e.g. became `stopping` since it was observed
    assert tally.capacity_errors == 0


def test_a_stopped_member_without_capacity_raises_for_the_retry(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    stub.add_client_error("start_instances", "InsufficientInstanceCapacity", http_status_code=500)
    tally = act.Tally()

    # A stopped member is bound to its AZ, type and market: nothing else is tried for it
    with pytest.raises(act.CapacityError, match="cannot start i-s"):
        actor(client).start(("i-s",), tally)
    assert tally.capacity_errors == 1


def test_capacity_errors_try_the_next_subnet_then_the_next_type(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    for subnet in ("subnet-a", "subnet-b"):
        stub.add_client_error(
            "run_instances",
            "InsufficientInstanceCapacity",
            expected_params=run_params(subnet, None),
        )
    stub.add_response(
        "run_instances",
        {"Instances": [{"InstanceId": "i-new"}]},
        run_params("subnet-a", "m6i.large"),
    )
    tally = act.Tally()

    actor(client).launch(1, "req-1", tally)

    assert tally.launched == {"i-new": "on-demand"}
    assert tally.capacity_errors == 2
    assert tally.refusals == [
        "on-demand/template/subnet-a: InsufficientInstanceCapacity",
        "on-demand/template/subnet-b: InsufficientInstanceCapacity",
    ]
    assert tally.fallbacks == 0  # on-demand was the only market: no fallback


def test_a_partial_launch_asks_the_next_candidate_for_the_rest(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    # EC2 may launch fewer than MaxCount: the next candidate is asked only for what is missing
    stub.add_response(
        "run_instances", {"Instances": [{"InstanceId": "i-1"}]}, run_params("subnet-a", None, 3)
    )
    stub.add_response(
        "run_instances",
        {"Instances": [{"InstanceId": "i-2"}, {"InstanceId": "i-3"}]},
        run_params("subnet-b", None, 2),
    )
    tally = act.Tally()

    actor(client).launch(3, "req-1", tally)

    assert list(tally.launched) == ["i-1", "i-2", "i-3"]


def test_no_capacity_anywhere_raises_with_what_was_launched(ec2: tuple[Any, Stubber]) -> None:
    client, stub = ec2
    for _ in range(4):  # 2 subnets x (template type + fallback type)
        stub.add_client_error("run_instances", "InsufficientInstanceCapacity")
    tally = act.Tally()

    with pytest.raises(act.CapacityError, match="launched 0 of 1: no capacity in any candidate"):
        actor(client).launch(1, "req-1", tally)
    assert tally.capacity_errors == 4


@pytest.mark.parametrize("operation", ["start_instances", "run_instances"])
def test_an_unhandled_error_raises(ec2: tuple[Any, Stubber], operation: str) -> None:
    client, stub = ec2
    stub.add_client_error(operation, "UnauthorizedOperation", http_status_code=403)
    a, tally = actor(client), act.Tally()
    call = {
        "start_instances": lambda: a.start(("i-s",), tally),
        "run_instances": lambda: a.launch(1, "req-1", tally),
    }[operation]

    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        call()
    assert tally.capacity_errors == 0


def test_the_client_token_is_the_same_for_the_same_request_and_candidate(
    ec2: tuple[Any, Stubber],
) -> None:
    client, stub = ec2
    tokens: list[str] = []
    client.meta.events.register(
        "provide-client-params.ec2.RunInstances",
        lambda params, **_: tokens.append(params["ClientToken"]),
    )
    for _ in range(3):
        stub.add_response("run_instances", {"Instances": [{"InstanceId": "i-1"}]})

    for request in ("req-1", "req-1", "req-2"):  # a retried invocation keeps its request id
        actor(client, S3WORKER_SUBNET_IDS="").launch(1, request, act.Tally())

    assert tokens[0] == tokens[1] != tokens[2]
    assert len(tokens[0]) == 64
