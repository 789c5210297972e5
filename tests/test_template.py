"""deploy/cloudformation.yaml: its IAM policies, its shape, and a real deploy into moto.

The deploy goes through moto's CloudFormation over HTTP (the `aws` fixture's server). Where
moto's CloudFormation ignores a resource type or property, the test says so and checks the
template text instead (see MOTO_UNSUPPORTED_TYPES and the comments in test_deploys_into_moto).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]

from demo.emulator import LambdaBridge, deploy_stack

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy/cloudformation.yaml"
REGION = "us-east-1"
POOL_KEY = "s3worker:pool"

# Resource types of the template that moto's CloudFormation (5.2.5) skips with a warning ("No
# Moto CloudFormation support"): they are checked on the template text instead. (The alarm
# topic's AWS::SNS::TopicPolicy is skipped too; it only exists when AlarmEmail is given.)
# The Glue catalog and the Athena workgroup: tests/test_catalog.py checks them on the text.
MOTO_UNSUPPORTED_TYPES = {
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::CloudWatch::Alarm",
    "AWS::Glue::Database",
    "AWS::Glue::Table",
    "AWS::Athena::WorkGroup",
}

Json = dict[str, Any]


def load_template() -> Json:
    template: Json = cfn_yaml.load(str(TEMPLATE))
    return template


@pytest.fixture(scope="module")
def template() -> Json:
    return load_template()


# --- the IAM walker ---------------------------------------------------------------------------

READ_ONLY_VERBS = ("Describe", "Get", "List", "Head")
POLICY_KEYS = ("PolicyDocument", "AssumeRolePolicyDocument")
ALLOWED_MANAGED_POLICIES = ("AmazonSSMManagedInstanceCore",)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(node: Any, where: str) -> Iterator[tuple[str, Json]]:
    """Every IAM policy document anywhere below `node` (roles, bucket/queue/topic policies)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in POLICY_KEYS and isinstance(value, dict):
                yield f"{where}.{key}", value
            else:
                yield from policy_documents(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from policy_documents(value, f"{where}[{i}]")


def is_read_only(action: str) -> bool:
    verb = action.split(":", 1)[-1]
    return verb != "*" and verb.startswith(READ_ONLY_VERBS)


def statement_findings(where: str, statement: Json) -> list[str]:
    """Why an Allow statement is too broad: `*` actions, or writes on `*` with no condition."""
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement or "NotResource" in statement:
        return [f"{where}: NotAction/NotResource in an Allow grants everything else"]
    actions = [str(a) for a in as_list(statement.get("Action", []))]
    found = [
        f"{where}: Action {a!r} is a wildcard" for a in actions if a == "*" or a.endswith(":*")
    ]
    resources = as_list(statement.get("Resource", []))
    if "*" in resources and not statement.get("Condition"):
        writes = [a for a in actions if not is_read_only(a)]
        if writes:
            found.append(f"{where}: write actions {writes} on Resource '*' with no condition")
    return found


def iam_findings(template: Json) -> tuple[list[str], int]:
    """(findings, number of statements walked) over every policy in the template."""
    findings: list[str] = []
    walked = 0
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for where, document in policy_documents(props, logical_id):
            for i, statement in enumerate(as_list(document.get("Statement", []))):
                walked += 1
                findings += statement_findings(f"{where}.Statement[{i}]", statement)
        for arn in props.get("ManagedPolicyArns", []):
            text = json.dumps(arn)
            if not any(name in text for name in ALLOWED_MANAGED_POLICIES):
                findings.append(f"{logical_id}: managed policy {text} is not on the allow list")
    return findings, walked


def test_the_walker_flags_wildcards_and_unscoped_writes() -> None:
    # Given policies that are too broad, and their scoped equivalents
    bad: list[Json] = [
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"},
        {
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ec2:StopInstances"],
            "Resource": "*",
        },
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
    ]
    good: list[Json] = [
        {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:StopInstances", "Resource": "*", "Condition": {"x": {}}},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
    ]
    # When / then
    assert all(statement_findings("bad", s) for s in bad)
    assert not any(statement_findings("good", s) for s in good)


def test_every_iam_policy_is_least_privilege(template: Json) -> None:
    findings, walked = iam_findings(template)
    assert walked >= 25, "the walker found too few statements: is it still finding the policies?"
    assert findings == []


def role_statements(template: Json, role: str) -> dict[str, Json]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    return {s["Sid"]: s for p in policies for s in p["PolicyDocument"]["Statement"]}


def test_worker_role_grants_the_daemon_contract_and_no_more(template: Json) -> None:
    statements = role_statements(template, "WorkerRole")
    allowed = {
        a for s in statements.values() if s["Effect"] == "Allow" for a in as_list(s["Action"])
    }
    assert allowed == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "ec2:StopInstances",
        "cloudformation:SignalResource",
        "cloudwatch:PutMetricData",
    }
    stop = statements["StopOnlyPoolInstances"]
    assert stop["Condition"]["StringEquals"] == {
        f"aws:ResourceTag/{POOL_KEY}": {"Ref": "AWS::StackName"}
    }
    deny = statements["DenyStoppingOtherInstances"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"]["Null"] == {"aws:ARN": "false"}  # only where the key exists


def test_start_lambda_can_only_touch_its_own_pool(template: Json) -> None:
    statements = role_statements(template, "StartWorkerRole")
    pool_tag = {f"aws:ResourceTag/{POOL_KEY}": {"Ref": "AWS::StackName"}}
    assert statements["StartAndCleanUpOnlyThePool"]["Condition"]["StringEquals"] == pool_tag
    launch = statements["LaunchPoolInstancesFromTheTemplate"]["Condition"]
    assert "ec2:LaunchTemplate" in launch["ArnEquals"]
    assert launch["StringEquals"] == {f"aws:RequestTag/{POOL_KEY}": {"Ref": "AWS::StackName"}}
    others = statements["OtherRunInstancesResourcesOnlyViaTheTemplate"]["Condition"]
    assert "ec2:LaunchTemplate" in others["ArnEquals"]
    assert statements["TagOnlyAtLaunch"]["Condition"] == {
        "StringEquals": {"ec2:CreateAction": "RunInstances"}
    }
    assert statements["PassOnlyTheWorkerRoleToEc2"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }


# --- the template's shape (also where moto ignores a property) ---------------------------------


def test_buckets_are_private_encrypted_tls_only_with_lifecycle(template: Json) -> None:
    resources = template["Resources"]
    for bucket in ("RawBucket", "ProcessedBucket"):
        props = resources[bucket]["Properties"]
        assert resources[bucket]["DeletionPolicy"] == "Retain"  # the user's data
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
        rules = {r["Id"] for r in props["LifecycleConfiguration"]["Rules"]}
        assert rules == {"expire-noncurrent-versions", "abort-incomplete-multipart-uploads"}
        policy = resources[f"{bucket}Policy"]["Properties"]["PolicyDocument"]["Statement"][0]
        assert policy["Effect"] == "Deny"
        assert policy["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    raw = resources["RawBucket"]["Properties"]
    assert raw["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }


def test_launch_template_is_locked_down(template: Json) -> None:
    data = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert "KeyName" not in data
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    devices = {d["DeviceName"]: d["Ebs"] for d in data["BlockDeviceMappings"]}
    assert all(ebs["Encrypted"] is True and ebs["VolumeType"] == "gp3" for ebs in devices.values())
    assert devices["/dev/sdb"]["VolumeSize"] == {"Ref": "ScratchVolumeGiB"}
    group = template["Resources"]["WorkerSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group


def user_data(template: Json) -> str:
    data = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    text: str = data["UserData"]["Fn::Base64"]["Fn::Sub"]
    return text


def test_boot_writes_the_daemon_contract_env_and_reports_failures(template: Json) -> None:
    text = user_data(template)
    env_block = text.split("cat > /etc/s3worker/s3worker.env <<'EOF'\n", 1)[1].split("EOF\n", 1)[0]
    env = dict(line.split("=", 1) for line in env_block.splitlines())
    assert env["S3WORKER_IDLE_ACTION"] == "stop"
    assert env["S3WORKER_SCRATCH_DIR"] == "/var/lib/s3worker"
    assert env["S3WORKER_LOG_FORMAT"] == "json"
    assert {
        "S3WORKER_QUEUE_URL",
        "S3WORKER_OUTPUT_BUCKET",
        "S3WORKER_INPUT_BUCKETS",
        "S3WORKER_DLQ_URL",
        "AWS_REGION",
    } <= set(env)
    assert "trap 'failed $LINENO' ERR" in text
    assert "systemctl poweroff" in text
    assert "signal SUCCESS" in text
    assert "--logical-resource-id CanaryWorker" in text


def test_unit_timeout_exceeds_the_daemon_drain_bound(template: Json) -> None:
    env_drain = 90 if "S3WORKER_DRAIN_SECONDS=90" in user_data(template) else None
    unit = (ROOT / "systemd/s3worker.service").read_text()
    stop = next(
        int(line.split("=")[1]) for line in unit.splitlines() if line.startswith("TimeoutStopSec=")
    )
    assert env_drain is not None
    assert stop > env_drain


def test_rule_fans_out_to_queue_and_lambda_with_retries_and_dlq(template: Json) -> None:
    rule = template["Resources"]["ObjectCreatedRule"]["Properties"]
    assert rule["EventPattern"]["detail-type"] == ["Object Created"]
    targets = {t["Id"]: t for t in rule["Targets"]}
    assert set(targets) == {"work-queue", "start-worker"}
    for target in targets.values():
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    function = template["Resources"]["StartWorkerFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == 1
    assert (function["Runtime"], function["Handler"]) == ("python3.12", "start_worker.handler")


def test_cleanup_is_deleted_before_what_the_pool_uses_and_after_the_triggers(
    template: Json,
) -> None:
    resources = template["Resources"]
    cleanup = resources["WorkerPoolCleanup"]
    text = json.dumps(cleanup)
    for needed in (
        "CanaryWorker",
        "WorkerInstanceProfile",
        "WorkerSecurityGroup",
        "WorkerLaunchTemplate",
        "PublicSubnetA",
        "PublicSubnetB",
        "GatewayAttachment",
    ):
        assert needed in text, f"the cleanup must depend on {needed} (deleted after it)"
    for trigger in ("ObjectCreatedRule", "ReconcilerSchedule"):
        assert resources[trigger]["DependsOn"] == "WorkerPoolCleanup"


# --- the deploy into moto ---------------------------------------------------------------------


@pytest.fixture
def bridge(aws: str) -> Iterator[LambdaBridge]:
    """moto runs Lambda code in Docker, which is not here: the bridge runs the handler in-process
    (see demo/emulator.py), for the custom resource CloudFormation invokes."""
    with LambdaBridge(aws).installed() as bridge:
        yield bridge


@pytest.fixture
def deployed(name: str, bridge: LambdaBridge) -> tuple[str, LambdaBridge]:
    """The stack with its own VPC (the default), deployed from the packaged template."""
    deploy_stack(name, {})
    return name, bridge


def run_cleanup(bridge: LambdaBridge, name: str, event: Json) -> Json:
    """Invoke the start function as CloudFormation would, with its deployed environment."""
    function = stack_outputs(name)["StartWorkerFunctionName"]
    env = boto3.client("lambda").get_function_configuration(FunctionName=function)["Environment"][
        "Variables"
    ]
    return bridge.invoke(function, {k: str(v) for k, v in env.items()}, event)


def stack_outputs(name: str) -> dict[str, str]:
    stack = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_deploys_into_moto(deployed: tuple[str, LambdaBridge], template: Json) -> None:
    name, bridge = deployed
    cfn = boto3.client("cloudformation")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    responses = [i.result for i in bridge.invocations]
    assert responses == [{"action": "custom_resource", "status": "SUCCESS", "reason": ""}]

    # Every resource of a type moto supports is there; the rest are the documented gaps.
    listed = cfn.describe_stack_resources(StackName=name)["StackResources"]
    # moto lists the resources it skipped as empty entries (no logical id): ignore those.
    created = {r["LogicalResourceId"] for r in listed if "LogicalResourceId" in r}
    conditional_off = {
        k for k, r in template["Resources"].items() if r.get("Condition") == "HasAlarmEmail"
    }
    missing = set(template["Resources"]) - created - conditional_off
    assert {template["Resources"][k]["Type"] for k in missing} == MOTO_UNSUPPORTED_TYPES

    outputs = stack_outputs(name)
    for key in (
        "RawBucketName",
        "ProcessedBucketName",
        "WorkQueueUrl",
        "DeadLetterQueueUrl",
        "EventsDeadLetterQueueUrl",
        "StartWorkerFunctionName",
        "UploadCommand",
        "RedriveCommand",
    ):
        assert outputs[key], key
    # The commands the README teaches, not raw `aws` calls.
    assert outputs["UploadCommand"].startswith(
        f"s3worker upload ./batch --prefix incoming/ --stack {name} "
    )
    assert outputs["RedriveCommand"].startswith(f"s3worker dlq redrive --stack {name} ")

    # Buckets exist and are encrypted. moto's CloudFormation (5.2.5) ignores the buckets'
    # VersioningConfiguration, PublicAccessBlockConfiguration, LifecycleConfiguration and
    # NotificationConfiguration.EventBridgeConfiguration (probed: versioning unset, no public
    # access block, no lifecycle, empty notification configuration): the template is checked
    # for them in test_buckets_are_private_encrypted_tls_only_with_lifecycle.
    s3 = boto3.client("s3")
    for key in ("RawBucketName", "ProcessedBucketName"):
        encryption = s3.get_bucket_encryption(Bucket=outputs[key])[
            "ServerSideEncryptionConfiguration"
        ]["Rules"]
        assert encryption[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    # The work queue redrives to the DLQ after MaxReceiveCount receives.
    sqs = boto3.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=outputs["WorkQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert attrs["VisibilityTimeout"] == "300"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 5
    assert redrive["deadLetterTargetArn"] == outputs["DeadLetterQueueArn"]

    # One rule, two targets; the reconciler schedule targets the function.
    events = boto3.client("events")
    rules = {r["Name"]: r for r in events.list_rules()["Rules"]}
    fanout = next(r for r in rules.values() if "Object Created" in r.get("EventPattern", ""))
    targets = events.list_targets_by_rule(Rule=fanout["Name"])["Targets"]
    assert {t["Id"] for t in targets} == {"work-queue", "start-worker"}
    assert any(r.get("ScheduleExpression") == "rate(5 minutes)" for r in rules.values())

    # The function carries the contract's environment.
    env = boto3.client("lambda").get_function_configuration(
        FunctionName=outputs["StartWorkerFunctionName"]
    )["Environment"]["Variables"]
    assert env["S3WORKER_POOL_TAG"] == f"{POOL_KEY}={name}"
    assert str(env["S3WORKER_MAX_WORKERS"]) == "1"
    assert env["S3WORKER_LAUNCH_TEMPLATE_ID"] == outputs["LaunchTemplateId"]
    assert len(env["S3WORKER_SUBNET_IDS"].split(",")) == 2

    # The launch template as EC2 stores it: IMDSv2 only, encrypted gp3 scratch.
    ec2 = boto3.client("ec2")
    version = ec2.describe_launch_template_versions(LaunchTemplateId=outputs["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert version["MetadataOptions"]["HttpTokens"] == "required"
    scratch = next(d for d in version["BlockDeviceMappings"] if d["DeviceName"] == "/dev/sdb")
    assert scratch["Ebs"]["Encrypted"] is True

    # The canary worker exists and is a pool member. (moto ignores its CreationPolicy: no
    # instance boots here, so nothing signals; the boot is the user data checked above.)
    reservations = ec2.describe_instances(Filters=[{"Name": f"tag:{POOL_KEY}", "Values": [name]}])[
        "Reservations"
    ]
    tags = [{t["Key"]: t["Value"] for t in i["Tags"]} for r in reservations for i in r["Instances"]]
    assert [t.get("s3worker:canary") for t in tags] == ["true"]


def delete_event(stack_id: str) -> Json:
    return {
        "RequestType": "Delete",
        "ResponseURL": f"http://host.docker.internal:5000/cloudformation_{REGION}/cfnresponse?stack={stack_id}",
        "StackId": stack_id,
        "RequestId": "delete-1",
        "LogicalResourceId": "WorkerPoolCleanup",
        "PhysicalResourceId": "cleanup",
        "ResourceType": "Custom::WorkerPoolCleanup",
        "ResourceProperties": {},
    }


def test_stack_delete_terminates_every_pool_instance(deployed: tuple[str, LambdaBridge]) -> None:
    # Given two workers the Lambda launched, plus an instance that is not in the pool
    name, bridge = deployed
    ec2 = boto3.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def launch(tag: str) -> list[str]:
        reply = ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": POOL_KEY, "Value": tag}]}
            ],
        )
        return [i["InstanceId"] for i in reply["Instances"]]

    workers = launch(name) + launch(name)
    bystander = launch("someone-else")
    stack = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]

    # When CloudFormation sends the custom resource its Delete (moto never does: we do)
    result = run_cleanup(bridge, name, delete_event(stack["StackId"]))

    # Then every pool member (the canary too) is terminated, and nothing else
    assert result["status"] == "SUCCESS"
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
    }
    pool = ec2.describe_instances(Filters=[{"Name": f"tag:{POOL_KEY}", "Values": [name]}])[
        "Reservations"
    ]
    pool_ids = {i["InstanceId"] for r in pool for i in r["Instances"]}
    assert set(workers) < pool_ids
    assert {states[i] for i in pool_ids} == {"terminated"}
    assert states[bystander[0]] == "running"


def test_stack_in_an_existing_vpc_deploys_and_deletes(name: str, bridge: LambdaBridge) -> None:
    # Given a VPC of the user's with two subnets. (The stack's own VPC cannot be deleted in moto:
    # its CloudFormation never deletes an AWS::EC2::SubnetRouteTableAssociation, so the route
    # table and the VPC stay "in use". This variant shows the rest of the delete.)
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"]
        for i in (1, 2)
    ]
    deploy_stack(name, {"VpcId": vpc, "SubnetIds": ",".join(subnets)})
    cfn = boto3.client("cloudformation")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = stack_outputs(name)
    env = boto3.client("lambda").get_function_configuration(
        FunctionName=outputs["StartWorkerFunctionName"]
    )["Environment"]["Variables"]
    assert env["S3WORKER_SUBNET_IDS"] == ",".join(subnets)
    assert not ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{name}-vpc"]}])["Vpcs"]

    # When the stack is deleted (the custom resource's Delete played as CloudFormation would)
    assert run_cleanup(bridge, name, delete_event(stack["StackId"]))["status"] == "SUCCESS"
    cfn.delete_stack(StackName=name)

    # Then it is gone, and so are its queue, function and launch template
    assert (
        cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"]
        == "DELETE_COMPLETE"
    )
    assert outputs["WorkQueueUrl"] not in boto3.client("sqs").list_queues().get("QueueUrls", [])
    functions = [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]]
    assert outputs["StartWorkerFunctionName"] not in functions
    templates = ec2.describe_launch_templates()["LaunchTemplates"]
    assert outputs["LaunchTemplateId"] not in [t["LaunchTemplateId"] for t in templates]
