"""lambda/starter/aws.py: the function's clients retry with botocore's standard mode alone (a
bounded number of attempts, fewer for StartInstances/RunInstances), against the moto server over
HTTP with errors injected on botocore's `before-send`; and the error codes read from them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff
from lambdakit import ec2_error, starter

starter_aws = starter("aws")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's backoff delays, recorded and not waited: the attempts are what is tested."""
    delays: list[float] = []
    original = ExponentialBackoff.delay_amount

    def record(self: ExponentialBackoff, context: Any) -> float:
        delays.append(original(self, context))
        return 0.0

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", record)
    return delays


def failing(times: int, code: str, status: int) -> tuple[list[int], Any]:
    """A before-send hook that answers `code` the first `times` sends, then lets them through."""
    sends: list[int] = []

    def hook(**_: Any) -> AWSResponse | None:
        sends.append(1)
        return ec2_error(code, status) if len(sends) <= times else None

    return sends, hook


def test_throttling_is_retried_by_botocore_alone(aws: str, no_backoff: list[float]) -> None:
    # Given an observing client whose first two DescribeInstances are throttled
    ec2 = starter_aws.ec2_client()
    sends, hook = failing(2, "RequestLimitExceeded", 503)
    ec2.meta.events.register("before-send.ec2.DescribeInstances", hook)
    calls: list[str] = []
    ec2.meta.events.register("provide-client-params.ec2", lambda model, **_: calls.append(model))

    ec2.describe_instances(MaxResults=5)

    # Then botocore retried them within one API call: three sends, one call
    assert len(sends) == 3
    assert len(calls) == 1
    assert len(no_backoff) == 2  # botocore's own backoff before each retry


@pytest.mark.parametrize(
    ("act", "attempts"),
    [(False, 5), (True, 2)],  # botocore counts the first attempt too
)
def test_a_call_gives_up_after_its_bounded_attempts(aws: str, act: bool, attempts: int) -> None:
    # Given EC2 without capacity (HTTP 500, transient to botocore) on every attempt
    ec2 = starter_aws.ec2_client(act=act)
    sends, hook = failing(100, "InsufficientInstanceCapacity", 500)
    ec2.meta.events.register("before-send.ec2.DescribeInstances", hook)

    with pytest.raises(ClientError) as raised:
        ec2.describe_instances(MaxResults=5)

    # Then it tried exactly its budget: acting has fewer, the next candidate is its retry
    assert len(sends) == attempts
    assert starter_aws.error_code(raised.value) == "InsufficientInstanceCapacity"


def test_the_sqs_client_uses_the_same_bounded_standard_retries(aws: str, name: str) -> None:
    sqs = starter_aws.sqs_client()
    sends: list[int] = []
    sqs.meta.events.register("before-send.sqs", lambda **_: sends.append(1))

    url = sqs.create_queue(QueueName=name)["QueueUrl"]

    assert url.endswith(name)
    assert sqs.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert len(sends) == 1


def test_clients_use_standard_mode_with_bounded_attempts() -> None:
    retries = ((starter_aws.RETRIES, 5), (starter_aws.ACT_RETRIES, 2))
    for config, attempts in retries:
        assert config.retries == {"mode": "standard", "total_max_attempts": attempts}


def test_the_error_code_of_a_client_error_or_empty() -> None:
    coded = ClientError({"Error": {"Code": "Unsupported", "Message": "m"}}, "RunInstances")
    bare = ClientError({}, "RunInstances")

    assert starter_aws.error_code(coded) == "Unsupported"
    assert starter_aws.error_code(bare) == ""
