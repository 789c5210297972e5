"""The real stack in an IAM-enforcing moto server, and credentials of its own roles.

Setup, in order (everything after step 1 is authorized as IAM would, see tests/test_iam.py):
1. moto's free requests (INITIAL_NO_AUTH_ACTION_COUNT=3): an `admin` user, its access key, an
   inline `*` policy. That is the account's administrator, who deploys the stack;
2. the template deployed by that admin (demo.emulator.deploy_stack);
3. role credentials as the services get them: EC2 hands the worker role to the instance (the
   session named after the instance id), Lambda the start role to the function. An admin cannot
   assume a role that trusts only a service (nor can moto evaluate that trust: its
   `_check_principal` fails on a Service principal), so the harness plays the services: moto's
   `/moto-api/reset-auth` lets exactly three requests through unchecked, the two AssumeRoles
   and the read of the function's environment (which Lambda hands its runtime);
4. an `operator` user with only the stack's OperatorPolicyArn attached, created by the admin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from demo.emulator import deploy_stack, enable_eventbridge, free_port, pool_instances

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
FREE_REQUESTS = 3  # CreateUser, CreateAccessKey, PutUserPolicy


@dataclass
class Enforced:
    endpoint: str
    outputs: dict[str, str]
    admin: boto3.Session
    worker: boto3.Session  # WorkerRole, session named after `canary`
    lambda_role: boto3.Session  # StartWorkerRole
    operator: boto3.Session  # an IAM user with OperatorPolicyArn only
    canary: str  # the pool member the stack launched: the worker's own instance
    lambda_env: dict[str, str]  # the start function's environment, as deployed

    def client(self, session: boto3.Session, service: str) -> Any:
        return session.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def env(self, session: boto3.Session) -> dict[str, str]:
        """What a process needs to call AWS as `session`: its credentials and the endpoint."""
        creds = session.get_credentials()
        assert creds is not None
        env = {
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
        }
        if creds.token:
            env["AWS_SESSION_TOKEN"] = creds.token
        return env


def _session(creds: dict[str, str]) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        region_name=REGION,
    )


@contextmanager
def enforcing_server() -> Iterator[str]:
    port = free_port()
    # The process also hosts the Lambda runtime (the custom resource): Lambda's environment
    # names the region both ways. Its Create makes no AWS call, so no credentials are needed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "INITIAL_NO_AUTH_ACTION_COUNT": str(FREE_REQUESTS),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "none",
        "AWS_SECRET_ACCESS_KEY": "none",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "iam.server", str(port)],
        env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready", "the enforcing moto server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _bootstrap_admin(endpoint: str) -> boto3.Session:
    anyone = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    iam = anyone.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="admin")
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    iam.put_user_policy(
        UserName="admin", PolicyName="admin", PolicyDocument=json.dumps(ADMIN_POLICY)
    )
    return _session(key)


def _unchecked_requests(endpoint: str, count: int) -> None:
    """The next `count` requests pass unchecked, then enforcement resumes (moto's own API)."""
    post = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=str(count).encode(),
        headers={"Content-Type": "text/plain"},  # a form body would not reach request.data
    )
    with urllib.request.urlopen(post, timeout=10) as resp:
        assert resp.status == 200


def _role_arns(admin: boto3.Session, endpoint: str, stack: str) -> dict[str, str]:
    """Logical id -> ARN of the stack's roles (describe_stack_resource trips on moto's skipped
    resource types, list_stack_resources does not)."""
    cfn = admin.client("cloudformation", endpoint_url=endpoint)
    iam = admin.client("iam", endpoint_url=endpoint)
    resources = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {
        r["LogicalResourceId"]: iam.get_role(RoleName=r["PhysicalResourceId"])["Role"]["Arn"]
        for r in resources
        if r["ResourceType"] == "AWS::IAM::Role"
    }


def _operator(admin: boto3.Session, endpoint: str, policy_arn: str) -> boto3.Session:
    iam = admin.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="operator")
    iam.attach_user_policy(UserName="operator", PolicyArn=policy_arn)
    return _session(iam.create_access_key(UserName="operator")["AccessKey"])


def deploy_enforced(endpoint: str, name: str, params: dict[str, str]) -> Enforced:
    admin = _bootstrap_admin(endpoint)
    with pytest.MonkeyPatch.context() as mp:  # demo.emulator's helpers use the default session
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        mp.setattr(boto3, "DEFAULT_SESSION", admin)
        outputs = deploy_stack(name, params)
        enable_eventbridge(outputs["RawBucketName"])
        (canary,) = [i["InstanceId"] for i in pool_instances(outputs["PoolTag"])]
    roles = _role_arns(admin, endpoint, name)
    sts = admin.client("sts", endpoint_url=endpoint)
    _unchecked_requests(endpoint, 3)
    worker = sts.assume_role(RoleArn=roles["WorkerRole"], RoleSessionName=canary)["Credentials"]
    start = sts.assume_role(RoleArn=roles["StartWorkerRole"], RoleSessionName="start-worker")[
        "Credentials"
    ]
    # What Lambda gives the function's runtime (moto's own check fails this call's signature).
    function = admin.client("lambda", endpoint_url=endpoint).get_function_configuration(
        FunctionName=outputs["StartWorkerFunctionName"]
    )
    return Enforced(
        endpoint=endpoint,
        outputs=outputs,
        admin=admin,
        worker=_session(worker),
        lambda_role=_session(start),
        operator=_operator(admin, endpoint, outputs["OperatorPolicyArn"]),
        canary=canary,
        lambda_env={k: str(v) for k, v in function["Environment"]["Variables"].items()},
    )
