"""A small s3worker-shaped CloudFormation stack in moto, for the operator command tests.

It has the real template's output names (RawBucketName, WorkQueueUrl, PoolTag, ...) and its
OutputPrefix parameter, over the resources the commands touch: two buckets and a queue with
its DLQ. The real template deploys too (tests/test_template.py) but takes seconds per stack.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import boto3
from procs import Pipeline, echo_registry
from s3worker.cli import main
from s3worker.config import Settings
from s3worker.retry import RetryPolicy
from s3worker.worker import ExitReason, serve
from tenacity import wait_none

POOL_KEY = "s3worker:pool"


def _template(max_receive: int) -> str:
    arn = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    return json.dumps(
        {
            "Parameters": {"OutputPrefix": {"Type": "String", "Default": ""}},
            "Resources": {
                "RawBucket": {"Type": "AWS::S3::Bucket"},
                "ProcessedBucket": {"Type": "AWS::S3::Bucket"},
                "DeadLetterQueue": {"Type": "AWS::SQS::Queue"},
                "WorkQueue": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {
                        "VisibilityTimeout": 30,
                        "RedrivePolicy": {
                            "deadLetterTargetArn": arn,
                            "maxReceiveCount": max_receive,
                        },
                    },
                },
            },
            "Outputs": {
                "RawBucketName": {"Value": {"Ref": "RawBucket"}},
                "ProcessedBucketName": {"Value": {"Ref": "ProcessedBucket"}},
                "WorkQueueUrl": {"Value": {"Ref": "WorkQueue"}},
                "WorkQueueArn": {"Value": {"Fn::GetAtt": ["WorkQueue", "Arn"]}},
                "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
                "DeadLetterQueueArn": {"Value": arn},
                "PoolTag": {"Value": {"Fn::Sub": "s3worker:pool=${AWS::StackName}"}},
            },
        }
    )


def create_stack(name: str, prefix: str = "", max_receive: int = 3) -> Pipeline:
    """Deploy the stack in moto; the returned Pipeline names its resources."""
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=_template(max_receive),
        Parameters=[{"ParameterKey": "OutputPrefix", "ParameterValue": prefix}],
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    # The real raw bucket is versioned; moto's CloudFormation ignores that property.
    boto3.client("s3").put_bucket_versioning(
        Bucket=outputs["RawBucketName"], VersioningConfiguration={"Status": "Enabled"}
    )
    return Pipeline(
        outputs["RawBucketName"],
        outputs["ProcessedBucketName"],
        outputs["WorkQueueUrl"],
        outputs["DeadLetterQueueUrl"],
    )


def drain(pipeline: Pipeline, scratch: Path, runlog: Path, **env: Any) -> ExitReason:
    """Run the real daemon in-process (echo processor) until the queue is empty."""
    settings = Settings.from_env(pipeline.env(scratch, **env))
    # Retries without waits: the tests assert outcomes, not backoff timings.
    retry = RetryPolicy(3, wait=wait_none())
    return asyncio.run(serve(settings, processors=echo_registry(runlog), retry=retry))


def launch_worker(stack: str, state: str = "running") -> str:
    """An instance carrying the pool tag, as the start Lambda launches them."""
    ec2 = boto3.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t4g.small",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": POOL_KEY, "Value": stack}]}
        ],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    if state == "stopped":
        ec2.stop_instances(InstanceIds=[instance])
    return str(instance)


def cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """Run `s3worker ARGV...` in-process; returns (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def queue_counts(url: str) -> tuple[int, int]:
    """(visible, in flight) of a queue."""
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )
