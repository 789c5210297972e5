"""lambda/starter/settings.py (pure): the start Lambda's settings from its environment, the
errors that name the variable, the capacity types, and the template that sets them."""

from __future__ import annotations

import pytest
from lambdakit import POOL_KEY, POOL_VALUE, settings_env, starter

settings = starter("settings")
Settings, CapacityType = settings.Settings, settings.CapacityType


def test_settings_defaults_follow_the_contract() -> None:
    s = Settings.from_env(settings_env())
    assert (s.max_workers, s.files_per_worker, s.cache_seconds) == (1, 500, 5)
    assert s.launch_template_version == "$Latest"
    assert s.pool_tag == (POOL_KEY, POOL_VALUE)
    assert (s.subnet_ids, s.instance_types) == ((), ())
    assert s.capacity_type is CapacityType.ON_DEMAND


def test_settings_parse_lists() -> None:
    s = Settings.from_env(
        settings_env(S3WORKER_SUBNET_IDS="subnet-a, subnet-b,", S3WORKER_INSTANCE_TYPES="m6i.large")
    )
    assert s.subnet_ids == ("subnet-a", "subnet-b")
    assert s.instance_types == ("m6i.large",)


def test_every_variable_is_read_and_blank_ones_take_their_defaults() -> None:
    s = Settings.from_env(
        settings_env(
            S3WORKER_POOL_TAG=" team = blue ",
            S3WORKER_LAUNCH_TEMPLATE_VERSION="7",
            S3WORKER_MAX_WORKERS="4",
            S3WORKER_FILES_PER_WORKER=" 20 ",
            S3WORKER_DECISION_CACHE_SECONDS="0",  # 0 is allowed: no reuse at all
            S3WORKER_CAPACITY_TYPE="spot",
            S3WORKER_METRICS_NAMESPACE="Ops/Pool",
        )
    )
    assert s.pool_tag == ("team", "blue")
    assert (s.launch_template_version, s.max_workers, s.files_per_worker) == ("7", 4, 20)
    assert (s.cache_seconds, s.capacity_type, s.metrics_namespace) == (0, "spot", "Ops/Pool")
    blank = Settings.from_env(settings_env(S3WORKER_MAX_WORKERS=" ", S3WORKER_CAPACITY_TYPE=""))
    assert (blank.max_workers, blank.capacity_type) == (1, CapacityType.ON_DEMAND)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("S3WORKER_QUEUE_URL", "", "is required"),
        ("S3WORKER_LAUNCH_TEMPLATE_ID", " ", "is required"),
        ("S3WORKER_POOL_TAG", "", "is required"),
        ("S3WORKER_POOL_TAG", "no-equals-sign", "must be key=value"),
        ("S3WORKER_POOL_TAG", "key=", "must be key=value"),
        ("S3WORKER_POOL_TAG", "=value", "must be key=value"),
        ("S3WORKER_MAX_WORKERS", "0", "must be >= 1, got 0"),
        ("S3WORKER_MAX_WORKERS", "two", "must be an integer, got 'two'"),
        ("S3WORKER_FILES_PER_WORKER", "-1", "must be >= 1, got -1"),
        ("S3WORKER_DECISION_CACHE_SECONDS", "-1", "must be >= 0, got -1"),
        ("S3WORKER_CAPACITY_TYPE", "reserved", "one of on-demand, spot, spot-then-on-demand"),
    ],
)
def test_invalid_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=name) as raised:
        Settings.from_env(settings_env(**{name: value}))
    assert message in str(raised.value)


def test_the_namespace_defaults_to_the_stack_of_the_pool_tag() -> None:
    env = settings_env(S3WORKER_POOL_TAG="s3worker:pool=prod", S3WORKER_METRICS_NAMESPACE=" ")
    assert Settings.from_env(env).metrics_namespace == "S3worker/prod"


@pytest.mark.parametrize(
    ("kind", "markets"),
    [
        ("on-demand", ("on-demand",)),
        ("spot", ("spot",)),
        ("spot-then-on-demand", ("spot", "on-demand")),  # Spot first, on-demand its fallback
    ],
)
def test_each_capacity_type_names_the_markets_a_launch_tries_in_order(
    kind: str, markets: tuple[str, ...]
) -> None:
    assert CapacityType(kind).markets == markets


def test_the_pool_tag_alone_can_be_parsed() -> None:
    # The cleanup reads only the tag: a stack whose other settings are broken is still cleaned
    assert settings.parse_pool_tag({"S3WORKER_POOL_TAG": "s3worker:pool=a=b"}) == (
        "s3worker:pool",
        "a=b",
    )


def test_the_template_passes_its_capacity_type_and_namespace_to_the_function() -> None:
    from cfnlint.decode import cfn_yaml

    from demo.emulator import TEMPLATE

    template = cfn_yaml.load(str(TEMPLATE))
    parameter = template["Parameters"]["CapacityType"]
    env = template["Resources"]["StartWorkerFunction"]["Properties"]["Environment"]["Variables"]

    assert parameter["AllowedValues"] == [c.value for c in CapacityType]
    assert parameter["Default"] == CapacityType.ON_DEMAND.value
    assert env["S3WORKER_CAPACITY_TYPE"] == {"Ref": "CapacityType"}
    assert env["S3WORKER_METRICS_NAMESPACE"] == {"Fn::Sub": "S3worker/${AWS::StackName}"}
