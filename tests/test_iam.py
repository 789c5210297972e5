"""Least privilege, with IAM enforced: the stack's roles can do the loop, and nothing else.

The template is deployed into a moto server with access control on (tests/iam/stack.py says how
the admin, the role credentials and the operator user come about). Then the daemon, the start
Lambda and the operator CLI run with exactly their role's (or policy's) credentials, never an
admin's, and each role is refused what it must not do.

Who evaluates what (moto 5.2.5, read in moto/iam/access_control.py and moto/core/responses.py):
- moto: S3 (bucket and object ARNs), SQS (queue ARN), IAM and STS, against Action and Resource,
  once tests/iam/server.py names the actions as IAM does (CloudWatch signs as `monitoring`; SQS
  batch calls are the single action). Its error is `AccessDenied` (for SQS inside an XML body).
- tests/iam/evaluate.py, with the context of tests/iam/context.py: every EC2 and CloudFormation
  call, and CloudWatch's PutMetricData with its `cloudwatch:namespace`. moto checks those on
  Resource "*" and would allow a tag-scoped StopInstances anywhere
  (and apply the conditional Deny to every instance). The keys that get real values there:
  aws:ResourceTag/s3worker:pool, aws:RequestTag/s3worker:pool, ec2:LaunchTemplate,
  ec2:CreateAction, iam:PassedToService, ec2:SourceInstanceARN (from the role session name, as
  EC2 names it) and aws:ARN (the target: the undocumented key the worker's Deny relies on).
- Nobody, so these are NOT checked by this suite (on AWS they are):
  * conditions of every other service: moto treats each as met;
  * resource policies: the buckets' and queues' `aws:SecureTransport` Deny (moto's
    CloudFormation skips AWS::S3::BucketPolicy and AWS::SQS::QueuePolicy anyway) and
    `aws:SourceArn` on the queue policies and the Lambda permissions (EventBridge delivers
    inside moto without any check);
  * trust policies: `aws:SourceAccount` on the Lambda role; the harness plays EC2 and Lambda;
  * S3's 403-instead-of-404 for a missing key without s3:ListBucket (moto answers 404).

The tests share one deployed stack and run in file order: the upload is drained (and the canary
stopped) before the start Lambda starts the stopped members.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from iam.evaluate import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, decide
from iam.stack import REGION, Enforced, deploy_enforced, enforcing_server

from demo.emulator import FakeImds, load_start_worker, worker_env_file

STACK = "iam-enforced"
POOL_KEY = "s3worker:pool"
SALES_CSV = (
    "date,store,product,units,unit_price\n"
    "2026-11-25,s1,p1,2,3.50\n"
    "2026-11-25,s2,p2,1,10.00\n"
    "2026-11-26,s1,p1,4,3.50\n"
)

OTHER_TEMPLATE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}


# --- the stack, once per module ---------------------------------------------------------------


@pytest.fixture(scope="module")
def enforced() -> Iterator[Enforced]:
    with enforcing_server() as endpoint:
        # Up to three workers, one per file: one event can both start and launch.
        yield deploy_enforced(endpoint, STACK, {"MaxWorkers": "3", "FilesPerWorker": "1"})


def admin(e: Enforced, service: str) -> Any:
    return e.client(e.admin, service)


def state(e: Enforced, instance: str) -> str:
    resp = admin(e, "ec2").describe_instances(InstanceIds=[instance])
    return str(resp["Reservations"][0]["Instances"][0]["State"]["Name"])


def launch(e: Enforced, *, pool: bool) -> str:
    """An instance launched by the admin: a pool member (from the template) or an outsider."""
    ec2 = admin(e, "ec2")
    if pool:
        tags = [{"Key": POOL_KEY, "Value": STACK}]
        resp = ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": e.outputs["LaunchTemplateId"]},
            MinCount=1, MaxCount=1,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )  # fmt: skip
    else:
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        resp = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    return str(resp["Instances"][0]["InstanceId"])


@pytest.fixture(scope="module")
def others(enforced: Enforced) -> dict[str, str]:
    """Things no role of the stack may touch, made by the admin, and a second pool member."""
    s3, sqs, iam = admin(enforced, "s3"), admin(enforced, "sqs"), admin(enforced, "iam")
    s3.create_bucket(Bucket="someone-elses-bucket")
    s3.put_object(Bucket="someone-elses-bucket", Key="secret.csv", Body=b"a,b\n1,2\n")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "ec2.amazonaws.com"}}]}  # fmt: skip
    iam.create_role(RoleName="powerful", AssumeRolePolicyDocument=json.dumps(trust))
    profile = iam.create_instance_profile(InstanceProfileName="powerful")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="powerful", RoleName="powerful")
    return {
        "bucket": "someone-elses-bucket",
        "queue": sqs.create_queue(QueueName="someone-elses-queue")["QueueUrl"],
        "outsider": launch(enforced, pool=False),
        "sibling": launch(enforced, pool=True),
        "profile": profile["Arn"],
        "stack": admin(enforced, "cloudformation").create_stack(
            StackName="someone-elses-stack", TemplateBody=json.dumps(OTHER_TEMPLATE)
        )["StackId"],
    }


def denied(call: Callable[[], object]) -> str:
    """The error code of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    # moto answers SQS's JSON protocol with the query protocol's XML error: botocore then
    # reports the HTTP status as the code, and the real code is in the body.
    if error["Code"] == "403" and (found := re.search(r"<Code>(\w+)</Code>", error["Message"])):
        return found.group(1)
    return str(error["Code"])


# --- the loop works with exactly these permissions ----------------------------------------------


def operator_cli(
    e: Enforced, monkeypatch: pytest.MonkeyPatch, capsys: Any, *argv: str,
    who: boto3.Session | None = None,
) -> str:  # fmt: skip
    """`s3worker ARGV --stack STACK --region R` in-process, with the operator's credentials
    (or `who`'s)."""
    from s3worker.cli import main

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in e.env(who or e.operator).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = main([*argv, "--stack", STACK, "--region", REGION])
    out, err = capsys.readouterr()
    assert code == 0, f"s3worker {' '.join(argv)} exited {code}: {err}"
    return str(out)


def daemon_env(e: Enforced, imds: FakeImds, scratch: Path) -> dict[str, str]:
    """The env file the user data writes, the endpoint, the worker role's credentials, IMDS."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(boto3, "DEFAULT_SESSION", e.admin)
        mp.setenv("AWS_ENDPOINT_URL", e.endpoint)
        env_file = worker_env_file(e.outputs["LaunchTemplateId"])
    # Values the env file sets, shortened so idle comes in seconds (as the demo does); the
    # scratch directory is a temporary one, not the EBS mount.
    env_file |= {
        "S3WORKER_IDLE_SECONDS": "2",
        "S3WORKER_IDLE_CONFIRM_SECONDS": "1",
        "S3WORKER_SCRATCH_DIR": str(scratch),
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3WORKER_"))}
    return base | env_file | e.env(e.worker) | {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}


def wait_until(condition: Callable[[], bool], what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {within} s"
        time.sleep(0.1)


def test_upload_then_the_worker_drains_it_and_stops_itself(
    enforced: Enforced, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    e, out = enforced, enforced.outputs
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "day.csv").write_text(SALES_CSV)
    # Given a file uploaded by the operator (OperatorPolicyArn only)
    uploaded = operator_cli(e, monkeypatch, capsys, "upload", str(batch), "--prefix", "sales")
    assert "uploaded 1 file(s)" in uploaded
    # When the daemon runs on the canary with only the worker role's credentials
    imds = FakeImds(e.canary)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    log = tmp_path / "daemon.log"
    with log.open("wb") as sink:
        proc = subprocess.run(
            [sys.executable, "-m", "s3worker", "run"], env=daemon_env(e, imds, scratch),
            stdout=sink, stderr=subprocess.STDOUT, timeout=120, check=False,
        )  # fmt: skip
    imds.close()
    text = log.read_text()
    # Then it processed the file, deleted the message and stopped its own instance, exit 0
    assert proc.returncode == 0, text[-3000:]
    manifest = admin(e, "s3").get_object(
        Bucket=out["ProcessedBucketName"], Key="sales/day.csv/_manifest.json"
    )
    assert json.loads(manifest["Body"].read())["processor"]["name"] == "sales"
    attrs = admin(e, "sqs").get_queue_attributes(
        QueueUrl=out["WorkQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert state(e, e.canary) == "stopped"
    assert "AccessDenied" not in text
    # And the operator sees the result with the results command
    assert "processed by sales" in operator_cli(e, monkeypatch, capsys, "results", "sales/day.csv")


class LambdaContext:
    def __init__(self) -> None:
        self.aws_request_id = uuid.uuid4().hex

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def lambda_handles(e: Enforced, files: int, **env: str) -> dict[str, Any]:
    """The start handler, run with only the Lambda role's credentials, for `files` new objects."""
    runtime = load_start_worker().Runtime(
        env={**e.lambda_env, **env},
        ec2_client=e.client(e.lambda_role, "ec2"),
        sqs_client=e.client(e.lambda_role, "sqs"),
    )
    records = [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}] * files
    result: dict[str, Any] = runtime.handle({"Records": records}, LambdaContext())
    return result


def test_the_start_lambda_starts_a_stopped_member_and_launches_from_the_template(
    enforced: Enforced, others: dict[str, str]
) -> None:
    e = enforced
    ec2 = admin(e, "ec2")
    ec2.stop_instances(InstanceIds=[e.canary, others["sibling"]])
    # Given three files announced at once, two stopped members, one file per worker, 3 at most
    # When the handler runs with only the Lambda role's credentials
    result = lambda_handles(e, files=3)
    # Then it started both stopped members and launched one from the launch template
    assert sorted(result["started"]) == sorted([e.canary, others["sibling"]])
    (launched,) = result["launched"]
    assert state(e, e.canary) == state(e, others["sibling"]) == "running"
    instance = ec2.describe_instances(InstanceIds=[launched])["Reservations"][0]["Instances"][0]
    assert {"Key": POOL_KEY, "Value": STACK} in instance["Tags"]
    template = ec2.describe_launch_template_versions(
        LaunchTemplateId=e.outputs["LaunchTemplateId"], Versions=["$Latest"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert instance["ImageId"] == template["ImageId"]
    assert instance["InstanceType"] == template["InstanceType"]


def test_the_start_lambda_launches_spot_members_tagged_and_only_so(
    enforced: Enforced, others: dict[str, str]
) -> None:
    e = enforced
    role_ec2 = e.client(e.lambda_role, "ec2")
    # Given the stack deployed with CapacityType=spot and room for one more member
    # When the handler runs with only the Lambda role's credentials, it launches a Spot member
    result = lambda_handles(e, files=4, S3WORKER_CAPACITY_TYPE="spot", S3WORKER_MAX_WORKERS="4")
    (launched,) = result["launched"]
    instance = admin(e, "ec2").describe_instances(InstanceIds=[launched])["Reservations"][0]
    assert instance["Instances"][0]["InstanceLifecycle"] == "spot"
    # But a Spot launch whose request does not carry the pool tag is refused
    template = {"LaunchTemplateId": e.outputs["LaunchTemplateId"], "Version": "$Latest"}
    tags = [{"Key": POOL_KEY, "Value": STACK}]
    untagged_spot = lambda: role_ec2.run_instances(  # noqa: E731
        LaunchTemplate=template, MinCount=1, MaxCount=1,
        InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {
            "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}},
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags},
                           {"ResourceType": "volume", "Tags": tags}],
    )  # fmt: skip
    assert denied(untagged_spot) == "AccessDenied"


def test_the_operator_commands_work_with_the_operator_policy(
    enforced: Enforced, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    e, out = enforced, enforced.outputs
    # Given a dead-lettered message
    body = json.dumps({"source": "aws.s3", "detail-type": "Object Created",
                       "detail": {"bucket": {"name": out["RawBucketName"]},
                                  "object": {"key": "x/lost.csv", "size": 1}}})  # fmt: skip
    admin(e, "sqs").send_message(QueueUrl=out["DeadLetterQueueUrl"], MessageBody=body)
    # When the operator looks, lists and redrives
    assert "stack iam-enforced" in operator_cli(e, monkeypatch, capsys, "status")
    assert "x/lost.csv" in operator_cli(e, monkeypatch, capsys, "dlq", "list")
    assert "moved 1 message(s)" in operator_cli(e, monkeypatch, capsys, "dlq", "redrive")
    # Then the message is back in the work queue
    got = admin(e, "sqs").receive_message(
        QueueUrl=out["WorkQueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    assert body in [m["Body"] for m in got.get("Messages", [])]


ANALYSTS: dict[str, boto3.Session] = {}  # by endpoint: one analyst user per deployed stack


def analyst_session(e: Enforced) -> boto3.Session:
    """An IAM user with BiReadPolicyArn only (what QuickSight's or an analyst's role gets)."""
    if e.endpoint not in ANALYSTS:
        iam = admin(e, "iam")
        iam.create_user(UserName="analyst")
        iam.attach_user_policy(UserName="analyst", PolicyArn=e.outputs["BiReadPolicyArn"])
        key = iam.create_access_key(UserName="analyst")["AccessKey"]
        ANALYSTS[e.endpoint] = boto3.Session(
            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
            region_name=REGION,
        )  # fmt: skip
    return ANALYSTS[e.endpoint]


@pytest.fixture(scope="module")
def analyst(enforced: Enforced) -> boto3.Session:
    return analyst_session(enforced)


def test_the_bi_policy_reads_the_processed_tables(
    enforced: Enforced, analyst: boto3.Session, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # Given the sales the worker processed (first test), indexed for Athena by the worker role
    found = admin(enforced, "s3").list_objects_v2(
        Bucket=enforced.outputs["ProcessedBucketName"], Prefix="_tables/sales_daily/"
    )
    assert len(found.get("Contents", [])) == 1
    # When the analyst queries them with the BI policy only
    sql = "SELECT dt, ROUND(SUM(revenue), 2) AS revenue FROM sales_daily GROUP BY dt ORDER BY dt"
    out = operator_cli(enforced, monkeypatch, capsys, "query", sql, "--json", who=analyst)
    # Then the answer is the file's: 2 x 3.50 + 10.00 on the 25th, 4 x 3.50 on the 26th
    assert json.loads(out) == [
        {"dt": "2026-11-25", "revenue": 17.0}, {"dt": "2026-11-26", "revenue": 14.0}
    ]  # fmt: skip


def test_the_worker_role_can_do_what_its_boot_needs(enforced: Enforced) -> None:
    # The user data, as the worker role: the release bundle, the boot metric.
    s3 = _worker(enforced, "s3")
    bundle = s3.get_object(Bucket=f"{STACK}-artifacts", Key="releases/s3worker-demo.tar.gz")
    assert bundle["Body"].read() == b"bundle"
    metric = [{"MetricName": "BootFailures", "Value": 1.0}]
    namespace = f"S3worker/{STACK}"  # the stack's own: the daemon's metrics go there too
    _worker(enforced, "cloudwatch").put_metric_data(Namespace=namespace, MetricData=metric)


# --- ... and each role is denied what it must not do ---------------------------------------------

Denial = Callable[[Enforced, dict[str, str]], object]


def _worker(e: Enforced, service: str) -> Any:
    return e.client(e.worker, service)


WORKER_DENIALS: dict[str, Denial] = {
    "read another bucket": lambda e, o: _worker(e, "s3").get_object(
        Bucket=o["bucket"], Key="secret.csv"),
    "write the raw bucket": lambda e, o: _worker(e, "s3").put_object(
        Bucket=e.outputs["RawBucketName"], Key="x.csv", Body=b"x"),
    "delete a raw object": lambda e, o: _worker(e, "s3").delete_object(
        Bucket=e.outputs["RawBucketName"], Key="sales/day.csv"),
    "send to another queue": lambda e, o: _worker(e, "sqs").send_message(
        QueueUrl=o["queue"], MessageBody="x"),
    "send to the work queue": lambda e, o: _worker(e, "sqs").send_message(
        QueueUrl=e.outputs["WorkQueueUrl"], MessageBody="x"),
    "stop an instance outside the pool": lambda e, o: _worker(e, "ec2").stop_instances(
        InstanceIds=[o["outsider"]]),
    "stop another pool member": lambda e, o: _worker(e, "ec2").stop_instances(
        InstanceIds=[o["sibling"]]),
    "terminate itself": lambda e, o: _worker(e, "ec2").terminate_instances(
        InstanceIds=[e.canary]),
    "read another artifact": lambda e, o: _worker(e, "s3").get_object(
        Bucket=f"{STACK}-artifacts", Key="lambda/start_worker.zip"),
    "signal another stack": lambda e, o: _worker(e, "cloudformation").signal_resource(
        StackName=o["stack"], LogicalResourceId="Queue", UniqueId=e.canary, Status="SUCCESS"),
    "put metrics into another stack's namespace": lambda e, o: _worker(e, "cloudwatch")
        .put_metric_data(Namespace="S3worker/another-stack",
                         MetricData=[{"MetricName": "FilesProcessed", "Value": 1.0}]),
}  # fmt: skip


def _lambda(e: Enforced, service: str) -> Any:
    return e.client(e.lambda_role, service)


def _run(e: Enforced, **kwargs: Any) -> object:
    tags = [{"ResourceType": "instance", "Tags": [{"Key": POOL_KEY, "Value": STACK}]}]
    template = {"LaunchTemplateId": e.outputs["LaunchTemplateId"]}
    args: dict[str, Any] = {"MinCount": 1, "MaxCount": 1, "LaunchTemplate": template,
                            "TagSpecifications": tags} | kwargs  # fmt: skip
    return _lambda(e, "ec2").run_instances(**{k: v for k, v in args.items() if v is not None})


LAMBDA_DENIALS: dict[str, Denial] = {
    "read an uploaded object": lambda e, o: _lambda(e, "s3").get_object(
        Bucket=e.outputs["RawBucketName"], Key="sales/day.csv"),
    "read a result": lambda e, o: _lambda(e, "s3").list_objects_v2(
        Bucket=e.outputs["ProcessedBucketName"]),
    "take work from the queue": lambda e, o: _lambda(e, "sqs").receive_message(
        QueueUrl=e.outputs["WorkQueueUrl"]),
    "terminate an instance outside the pool": lambda e, o: _lambda(e, "ec2").terminate_instances(
        InstanceIds=[o["outsider"]]),
    "start an instance outside the pool": lambda e, o: _lambda(e, "ec2").start_instances(
        InstanceIds=[o["outsider"]]),
    "stop a pool member": lambda e, o: _lambda(e, "ec2").stop_instances(
        InstanceIds=[o["sibling"]]),
    "launch without the launch template": lambda e, o: _run(
        e, LaunchTemplate=None, ImageId="ami-12c6146b", InstanceType="t3.micro"),
    "launch without the pool tag": lambda e, o: _run(e, TagSpecifications=None),
    "pass another role": lambda e, o: _run(e, IamInstanceProfile={"Arn": o["profile"]}),
    # Granted before, never called: the handler test above runs without it.
    "read instance status": lambda e, o: _lambda(e, "ec2").describe_instance_status(),
    "tag an instance into the pool": lambda e, o: _lambda(e, "ec2").create_tags(
        Resources=[o["outsider"]], Tags=[{"Key": POOL_KEY, "Value": STACK}]),
}  # fmt: skip


def _op(e: Enforced, service: str) -> Any:
    return e.client(e.operator, service)


OPERATOR_DENIALS: dict[str, Denial] = {
    "delete a raw object": lambda e, o: _op(e, "s3").delete_object(
        Bucket=e.outputs["RawBucketName"], Key="sales/day.csv"),
    "write a result": lambda e, o: _op(e, "s3").put_object(
        Bucket=e.outputs["ProcessedBucketName"], Key="sales/day.csv/_manifest.json", Body=b"{}"),
    "take work from the queue": lambda e, o: _op(e, "sqs").receive_message(
        QueueUrl=e.outputs["WorkQueueUrl"]),
    "purge the dead-letter queue": lambda e, o: _op(e, "sqs").purge_queue(
        QueueUrl=e.outputs["DeadLetterQueueUrl"]),
    "stop a worker": lambda e, o: _op(e, "ec2").stop_instances(InstanceIds=[e.canary]),
    "terminate a worker": lambda e, o: _op(e, "ec2").terminate_instances(InstanceIds=[e.canary]),
    "read another bucket": lambda e, o: _op(e, "s3").get_object(
        Bucket=o["bucket"], Key="secret.csv"),
    "grant itself more": lambda e, o: _op(e, "iam").attach_user_policy(
        UserName="operator", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"),
    "read another stack": lambda e, o: _op(e, "cloudformation").describe_stacks(
        StackName=o["stack"]),
}  # fmt: skip


def _analyst_client(e: Enforced, service: str) -> Any:
    return e.client(analyst_session(e), service)


BI_DENIALS: dict[str, Denial] = {
    "read the raw input": lambda e, o: _analyst_client(e, "s3").get_object(
        Bucket=e.outputs["RawBucketName"], Key="sales/day.csv"),
    "list the raw bucket": lambda e, o: _analyst_client(e, "s3").list_objects_v2(
        Bucket=e.outputs["RawBucketName"]),
    "write a result": lambda e, o: _analyst_client(e, "s3").put_object(
        Bucket=e.outputs["ProcessedBucketName"], Key="_tables/sales_daily/x.txt", Body=b"s3://"),
    "take work from the queue": lambda e, o: _analyst_client(e, "sqs").receive_message(
        QueueUrl=e.outputs["WorkQueueUrl"]),
    "read another bucket": lambda e, o: _analyst_client(e, "s3").get_object(
        Bucket=o["bucket"], Key="secret.csv"),
}  # fmt: skip


DENIALS = {
    "worker": WORKER_DENIALS, "start lambda": LAMBDA_DENIALS, "operator": OPERATOR_DENIALS,
    "bi": BI_DENIALS,
}  # fmt: skip


@pytest.mark.parametrize(
    ("role", "what"),
    [(role, what) for role, calls in DENIALS.items() for what in calls],
    ids=[f"{role}: {what}" for role, calls in DENIALS.items() for what in calls],
)
def test_each_role_is_denied(
    enforced: Enforced, others: dict[str, str], role: str, what: str
) -> None:
    assert denied(lambda: DENIALS[role][what](enforced, others)) == "AccessDenied"


def test_without_the_arn_key_the_tag_scope_still_holds(enforced: Enforced) -> None:
    # The Deny that keeps the worker to itself uses aws:ARN, which AWS does not document. Were it
    # dropped, the Null guard turns the Deny off: the deployed policy must then still keep the
    # worker to its pool. (The denial tests above always see aws:ARN, so they cannot show this.)
    iam = admin(enforced, "iam")
    name = enforced.outputs["WorkerRoleName"]
    policy = iam.get_role_policy(RoleName=name, PolicyName="worker")["PolicyDocument"]
    if isinstance(policy, str):  # moto's CloudFormation keeps a dict; GetRolePolicy sends its repr
        policy = ast.literal_eval(policy)
    me = f"arn:aws:ec2:{REGION}:123456789012:instance/{enforced.canary}"
    caller = {"ec2:SourceInstanceARN": me}
    outsider = "arn:aws:ec2:us-east-1:123456789012:instance/i-0outsider"
    member = {**caller, "aws:ResourceTag/s3worker:pool": STACK}
    assert decide([policy], "ec2:StopInstances", outsider, caller) == IMPLICIT_DENY
    assert decide([policy], "ec2:StopInstances", me, member) == ALLOW


# --- the harness's evaluator, on its own ---------------------------------------------------------

STOP_ONLY_ITSELF = [{"Statement": [
    {"Effect": "Allow", "Action": "ec2:StopInstances", "Resource": "arn:aws:ec2:r:1:instance/*",
     "Condition": {"StringEquals": {"aws:ResourceTag/pool": "p"}}},
    {"Effect": "Deny", "Action": "ec2:StopInstances", "Resource": "*",
     "Condition": {"Null": {"aws:ARN": "false"},
                   "StringNotEquals": {"aws:ARN": "${ec2:SourceInstanceARN}"}}},
]}]  # fmt: skip
ME = "arn:aws:ec2:r:1:instance/i-me"


@pytest.mark.parametrize(
    ("target", "context", "expected"),
    [
        (ME, {"aws:ResourceTag/pool": "p", "aws:ARN": ME, "ec2:SourceInstanceARN": ME}, ALLOW),
        (ME, {"aws:ResourceTag/pool": "q", "aws:ARN": ME, "ec2:SourceInstanceARN": ME},
         IMPLICIT_DENY),
        (ME, {"aws:ResourceTag/pool": "p"}, ALLOW),  # no aws:ARN: the Deny does not apply
        ("arn:aws:ec2:r:1:instance/i-x", {"aws:ResourceTag/pool": "p", "ec2:SourceInstanceARN": ME,
         "aws:ARN": "arn:aws:ec2:r:1:instance/i-x"}, EXPLICIT_DENY),
        ("arn:aws:ec2:r:1:instance/i-x", {"aws:ResourceTag/POOL": "p"}, ALLOW),  # keys: any case
    ],
)  # fmt: skip
def test_the_evaluator_follows_iam_rules(
    target: str, context: dict[str, str], expected: str
) -> None:
    assert decide(STOP_ONLY_ITSELF, "ec2:stopinstances", target, context) == expected


def test_the_evaluator_refuses_what_it_does_not_know() -> None:
    later = {"DateGreaterThan": {"aws:CurrentTime": "2020"}}
    policy = [
        {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": later}]}
    ]
    with pytest.raises(NotImplementedError):
        decide(policy, "s3:GetObject", "*", {"aws:CurrentTime": "2026"})


# --- last: the stack-delete cleanup ends the pool ----------------------------------------------


def test_the_cleanup_terminates_the_pool_and_nothing_else(
    enforced: Enforced, others: dict[str, str]
) -> None:
    # Given the pool (canary, sibling, the member the handler launched) and an outsider
    e = enforced
    runtime = load_start_worker().Runtime(
        env=e.lambda_env,
        ec2_client=e.client(e.lambda_role, "ec2"),
        sqs_client=e.client(e.lambda_role, "sqs"),
        sleep=lambda _: None,  # moto's instances terminate at once
    )
    # When the custom resource's Delete runs, with only the Lambda role's credentials
    result = runtime.cleanup(deadline=time.monotonic() + 60)
    # Then every pool member is terminated and the outsider is not
    assert result["Terminated"] >= 3
    assert state(e, e.canary) == state(e, others["sibling"]) == "terminated"
    assert state(e, others["outsider"]) == "running"
