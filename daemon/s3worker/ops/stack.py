"""The names the commands need, read from the CloudFormation stack's outputs and parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from s3worker.contract import Layout
from s3worker.ops import OperatorError
from s3worker.ops.aws import Aws, error_code, explained

# The stack parameter the daemon's S3WORKER_OUTPUT_PREFIX is written from.
OUTPUT_PREFIX_PARAMETER = "OutputPrefix"


@dataclass(frozen=True)
class Stack:
    name: str
    outputs: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    status: str = ""

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise OperatorError(
                f"stack {self.name} ({self.status or 'unknown status'}) has no output {key}: "
                "is it an s3worker stack, and has it finished deploying?"
            ) from None

    @property
    def raw_bucket(self) -> str:
        return self.output("RawBucketName")

    @property
    def processed_bucket(self) -> str:
        return self.output("ProcessedBucketName")

    @property
    def work_queue_url(self) -> str:
        return self.output("WorkQueueUrl")

    @property
    def work_queue_arn(self) -> str:
        return self.output("WorkQueueArn")

    @property
    def dlq_url(self) -> str:
        return self.output("DeadLetterQueueUrl")

    @property
    def dlq_arn(self) -> str:
        return self.output("DeadLetterQueueArn")

    @property
    def pool_tag(self) -> tuple[str, str]:
        """`s3worker:pool=<stack>` as (key, value); the key itself contains a colon, not `=`."""
        key, sep, value = self.output("PoolTag").partition("=")
        if not sep:
            raise OperatorError(f"stack {self.name}: PoolTag output is not key=value")
        return key, value

    def layout(self, prefix: str | None = None) -> Layout:
        """The daemon's result layout: `--prefix` if given, else the stack's OutputPrefix."""
        chosen = self.parameters.get(OUTPUT_PREFIX_PARAMETER, "") if prefix is None else prefix
        return Layout(chosen.strip("/"))  # as the daemon's settings normalise it


def load_stack(aws: Aws, name: str) -> Stack:
    cfn = aws.client("cloudformation")
    try:
        with explained():
            stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except OperatorError as exc:
        if _not_found(exc):
            raise OperatorError(f"stack {name} not found in {aws.region}") from None
        raise
    if not stacks:
        raise OperatorError(f"stack {name} not found in {aws.region}")
    return stack_from(name, stacks[0])


def stack_from(name: str, doc: dict[str, Any]) -> Stack:
    outputs = {o["OutputKey"]: o["OutputValue"] for o in doc.get("Outputs", [])}
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in doc.get("Parameters", [])}
    return Stack(name, outputs, params, str(doc.get("StackStatus", "")))


def _not_found(exc: OperatorError) -> bool:
    cause = exc.__cause__
    return (
        isinstance(cause, ClientError)
        and error_code(cause) == "ValidationError"
        and "does not exist" in str(cause)
    )
