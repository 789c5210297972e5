"""s3worker.ops.aws: the operator commands' boto3 clients (one session, clients kept per
service, botocore's standard retries, a single-try client) against the moto server over HTTP,
and the AWS failures an operator can fix turned into one-line errors."""

from __future__ import annotations

from typing import Any

import pytest
from botoanswers import answer
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)
from s3worker.ops import OperatorError, UnreachableError
from s3worker.ops.aws import Aws, explain_client_error, explained, instance_region


def server_error(**_: Any) -> AWSResponse:
    """What S3 answers when it fails inside (HTTP 500): transient to botocore."""
    return answer(500, "<Error><Code>InternalError</Code><Message>injected</Message></Error>")


def client_error(code: str, status: int, op: str = "GetObject", message: str = "m") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, op)


def test_clients_are_built_once_per_service(aws: str) -> None:
    ops = Aws(pool=40)

    assert ops.client("s3") is ops.client("s3")
    assert ops.client("sqs") is not ops.client("s3")
    assert ops.region == "us-east-1"
    assert ops.client("s3").meta.config.max_pool_connections == 40
    assert Aws(pool=2).config.max_pool_connections == 10  # never below botocore's default


def sends_until_failure(client: Any) -> int:
    sends: list[int] = []

    def fail(**kwargs: Any) -> AWSResponse:
        sends.append(1)
        return server_error(**kwargs)

    client.meta.events.register("before-send.s3.ListBuckets", fail)
    with pytest.raises(ClientError, match="InternalError"):
        client.list_buckets()
    return len(sends)


def test_clients_retry_server_errors_but_the_single_try_client_does_not(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    ops = Aws()

    assert sends_until_failure(ops.client("s3")) == 6  # standard mode: the first, 5 retries
    assert sends_until_failure(ops.single_try_client("s3")) == 1
    assert ops.single_try_client("s3") is not ops.single_try_client("s3")  # not kept


def test_an_unknown_profile_names_the_way_out(aws: str) -> None:
    with pytest.raises(OperatorError, match="set AWS_PROFILE/AWS_REGION or pass --profile"):
        Aws(profile="no-such-profile")


def test_no_instance_metadata_means_no_instance_region(aws: str) -> None:
    # conftest points the metadata service at a closed port: the answer is None, not a hang
    assert instance_region() is None


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (client_error("AccessDenied", 403), OperatorError, "access denied for GetObject: m "
         "(check the credentials and their policy)"),
        (client_error("ExpiredToken", 400), OperatorError, "access denied for GetObject"),
        (client_error("Forbidden", 403), OperatorError, "access denied for GetObject"),
        (client_error("NoSuchBucket", 404, "ListObjectsV2", "gone"), OperatorError,
         "ListObjectsV2 failed: NoSuchBucket: gone"),
        (NoCredentialsError(), OperatorError,
         "Unable to locate credentials (set AWS_PROFILE/AWS_REGION or pass --profile/--region)"),
        (NoRegionError(), OperatorError, "You must specify a region. (set AWS_PROFILE"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), UnreachableError,
         'cannot reach AWS: Could not connect to the endpoint URL: "http://127.0.0.1:9"; '
         "check the network, try again"),
        (ParamValidationError(report="Bucket is missing"), OperatorError,
         "AWS client error: Parameter validation failed:\nBucket is missing"),
    ],
)  # fmt: skip
def test_failures_an_operator_can_fix_become_one_line(
    exc: Exception, kind: type[Exception], text: str
) -> None:
    with pytest.raises(kind) as raised, explained():
        raise exc

    assert str(raised.value).startswith(text)
    assert raised.value.__cause__ is exc  # the traceback still has the original


def test_operator_errors_and_other_exceptions_pass_through_unchanged() -> None:
    mine = UnreachableError("already explained")
    with pytest.raises(UnreachableError) as raised, explained():
        raise mine
    assert raised.value is mine
    with pytest.raises(KeyError), explained():
        raise KeyError("a bug is not an operator's error")


def test_an_unreachable_endpoint_is_worth_trying_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(name, value)
    ops = Aws(region="eu-west-1")

    with pytest.raises(UnreachableError, match="cannot reach AWS") as raised, explained():
        ops.single_try_client("sqs").list_queues()
    assert raised.value.exit_code == 4


def test_a_message_falls_back_to_the_error_itself() -> None:
    bare = ClientError({"Error": {"Code": "Throttling"}}, "DescribeStacks")
    assert explain_client_error(bare).startswith("DescribeStacks failed: Throttling: An error")
