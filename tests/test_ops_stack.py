"""s3worker.ops.stack: the names the operator commands read from the stack (its outputs and
OutputPrefix parameter), from a stack deployed in the moto server over HTTP, and what is said
when the stack or an output is missing."""

from __future__ import annotations

import pytest
from botoanswers import query_error
from opstack import create_stack
from s3worker.contract import Layout
from s3worker.ops import OperatorError
from s3worker.ops.aws import Aws
from s3worker.ops.stack import Stack, load_stack, stack_from


def test_a_deployed_stack_gives_its_outputs_and_prefix(aws: str, name: str) -> None:
    pipeline = create_stack(name, prefix="results/")

    stack = load_stack(Aws(), name)

    assert (stack.name, stack.status) == (name, "CREATE_COMPLETE")
    assert (stack.raw_bucket, stack.processed_bucket) == (pipeline.raw, pipeline.processed)
    assert (stack.work_queue_url, stack.dlq_url) == (pipeline.queue_url, pipeline.dlq_url)
    assert stack.work_queue_arn.endswith(":" + pipeline.queue_url.rsplit("/", 1)[1])
    assert stack.dlq_arn.startswith("arn:aws:sqs:")
    assert stack.pool_tag == ("s3worker:pool", name)
    assert stack.layout() == Layout("results")  # as the daemon's settings normalise it


def test_a_stack_that_is_not_there_is_named_with_the_region(aws: str, name: str) -> None:
    with pytest.raises(OperatorError, match=f"^stack {name} not found in us-east-1$"):
        load_stack(Aws(), name)


def test_other_failures_keep_their_explanation(aws: str, name: str) -> None:
    ops = Aws()
    cfn = ops.client("cloudformation")
    cfn.meta.events.register(
        "before-send.cloudformation.DescribeStacks",
        lambda **_: query_error("AccessDenied", 403, "not allowed"),
    )
    with pytest.raises(OperatorError, match="access denied for DescribeStacks: not allowed"):
        load_stack(ops, name)


def stack(**outputs: str) -> Stack:
    return Stack("s", outputs, {}, "UPDATE_IN_PROGRESS")


def test_a_missing_output_says_what_may_be_wrong() -> None:
    with pytest.raises(OperatorError) as raised:
        _ = stack().raw_bucket

    assert str(raised.value) == (
        "stack s (UPDATE_IN_PROGRESS) has no output RawBucketName: "
        "is it an s3worker stack, and has it finished deploying?"
    )
    with pytest.raises(OperatorError, match=r"stack t \(unknown status\)"):
        _ = Stack("t", {}).dlq_url


def test_the_pool_tag_splits_at_the_first_equals_sign() -> None:
    assert stack(PoolTag="s3worker:pool=a=b").pool_tag == ("s3worker:pool", "a=b")
    with pytest.raises(OperatorError, match="PoolTag output is not key=value"):
        _ = stack(PoolTag="s3worker:pool").pool_tag


@pytest.mark.parametrize(
    ("parameter", "override", "prefix"),
    [
        (None, None, ""),  # no OutputPrefix parameter
        ("/results/", None, "results"),
        ("results", "", ""),  # --prefix "" is a choice, not "use the stack's"
        ("results", "other/", "other"),
    ],
)
def test_the_layout_is_the_prefix_given_else_the_stacks(
    parameter: str | None, override: str | None, prefix: str
) -> None:
    params = {} if parameter is None else {"OutputPrefix": parameter}
    assert Stack("s", {}, params).layout(override) == Layout(prefix)


def test_a_describe_stacks_document_becomes_a_stack() -> None:
    doc = {
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": [{"OutputKey": "RawBucketName", "OutputValue": "raw"}],
        "Parameters": [{"ParameterKey": "OutputPrefix"}],  # NoEcho/empty: no value given
    }

    assert stack_from("s", doc) == Stack(
        "s", {"RawBucketName": "raw"}, {"OutputPrefix": ""}, "CREATE_COMPLETE"
    )
    assert stack_from("s", {}) == Stack("s", {}, {}, "")  # still deploying: nothing yet
