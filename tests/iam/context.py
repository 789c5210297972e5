"""The request context of EC2 and CloudFormation calls, from moto's state (server process only).

What AWS's authorizer knows and moto's does not: the ARN of each resource a call touches, the
target instance's tags (`aws:ResourceTag/...`), the tags asked for (`aws:RequestTag/...`), the
launch template (`ec2:LaunchTemplate`), the calling instance (`ec2:SourceInstanceARN`: EC2 names
an instance profile's role session after the instance id, and so does the harness), the target's
ARN in `aws:ARN`, and the actions a call implies: `ec2:CreateTags` (with `ec2:CreateAction`) and
`iam:PassRole` (with `iam:PassedToService`) for RunInstances, and for a Spot launch its Spot
request (`spot-instances-request/*`, with that request's tags).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation.models import cloudformation_backends
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends

Context = dict[str, str]


@dataclass(frozen=True)
class Check:
    """One (action, resource) pair the authorizer must allow, with its context keys."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    account: str
    region: str
    action: str  # "ec2:StopInstances"
    params: dict[str, str]  # query parameters, one value each
    caller_session: str | None  # the role session name of assumed-role credentials

    def arn(self, service: str, resource: str, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account if account else ''}:{resource}"

    def indexed(self, prefix: str) -> list[str]:
        """Values of PREFIX.1, PREFIX.2, ... (the query protocol's lists)."""
        found, n = [], 1
        while f"{prefix}.{n}" in self.params:
            found.append(self.params[f"{prefix}.{n}"])
            n += 1
        return found


def caller_context(req: Request) -> Context:
    session = req.caller_session or ""
    return (
        {"ec2:SourceInstanceARN": req.arn("ec2", f"instance/{session}")}
        if session.startswith("i-")
        else {}
    )


def checks(req: Request) -> list[Check]:
    """Every check the call needs; a call without a known resource is checked on `*`."""
    verb = req.action.split(":", 1)[1]
    if verb in ("StopInstances", "StartInstances", "TerminateInstances", "RebootInstances"):
        return [_instance_check(req, i) for i in req.indexed("InstanceId")]
    if verb == "RunInstances":
        return _run_instances_checks(req)
    if verb == "CreateTags":  # a tag added later (not at launch): no ec2:CreateAction
        return [_tag_check(req, r) for r in req.indexed("ResourceId")]
    if req.action == "cloudwatch:PutMetricData":  # no resource-level permissions
        return [Check(req.action, "*", {"cloudwatch:namespace": req.params.get("Namespace", "")})]
    if req.action.startswith("cloudformation:") and "StackName" in req.params:
        return [Check(req.action, _stack_arn(req), caller_context(req))]
    return [Check(req.action, "*", caller_context(req))]


def _instance_check(req: Request, instance_id: str) -> Check:
    arn = req.arn("ec2", f"instance/{instance_id}")
    ctx = {"aws:ARN": arn, **caller_context(req)}
    try:
        instance = ec2_backends[req.account][req.region].get_instance(instance_id)
    except Exception:  # unknown id: no tags; moto answers InvalidInstanceID after the check
        return Check(req.action, arn, ctx)
    for tag in instance.get_tags():
        ctx[f"aws:ResourceTag/{tag['key']}"] = tag["value"]
    return Check(req.action, arn, ctx)


def _tag_check(req: Request, resource_id: str) -> Check:
    if resource_id.startswith("i-"):
        check = _instance_check(req, resource_id)
        resource, context = check.resource, dict(check.context)
    else:
        resource, context = req.arn("ec2", f"*/{resource_id}"), caller_context(req)
    n = 1
    while (key := req.params.get(f"Tag.{n}.Key")) is not None:
        context[f"aws:RequestTag/{key}"] = req.params.get(f"Tag.{n}.Value", "")
        n += 1
    return Check(req.action, resource, context)


def _run_instances_checks(req: Request) -> list[Check]:
    backend = ec2_backends[req.account][req.region]
    template_id = req.params.get("LaunchTemplate.LaunchTemplateId", "")
    data: dict[str, Any] = {}
    base: Context = dict(caller_context(req))
    if template_id:
        base["ec2:LaunchTemplate"] = req.arn("ec2", f"launch-template/{template_id}")
        data = _template_data(backend, template_id, req.params.get("LaunchTemplate.Version"))
    instance_ctx = {**base, **_request_tags(req, "instance")}
    resources = [
        req.arn("ec2", "volume/*"),
        req.arn("ec2", "network-interface/*"),
        *(req.arn("ec2", f"subnet/{s}") for s in _subnets(req, backend, data)),
        *(req.arn("ec2", f"security-group/{g}") for g in data.get("SecurityGroupIds", [])),
        req.arn("ec2", f"image/{req.params.get('ImageId') or data.get('ImageId')}", False),
    ]
    if template_id:
        resources.append(req.arn("ec2", f"launch-template/{template_id}"))
    found = [Check(req.action, req.arn("ec2", "instance/*"), instance_ctx)]
    found += [Check(req.action, r, base) for r in resources]
    if req.params.get("InstanceMarketOptions.MarketType") == "spot":  # a Spot request too
        spot = {**base, **_request_tags(req, "spot-instances-request")}
        found.append(Check(req.action, req.arn("ec2", "spot-instances-request/*"), spot))
    if "TagSpecification.1.ResourceType" in req.params:
        create = {**base, "ec2:CreateAction": "RunInstances"}
        found += [Check("ec2:CreateTags", req.arn("ec2", "instance/*"), create)]
        if _request_tags(req, "spot-instances-request"):
            arn = req.arn("ec2", "spot-instances-request/*")
            found.append(Check("ec2:CreateTags", arn, create))
    found += _pass_role_checks(req, data)
    return found


def _template_data(backend: Any, template_id: str, version: str | None) -> dict[str, Any]:
    """What the launch uses: the version asked for ($Latest, $Default, N), else the default."""
    return dict(backend.get_launch_template(template_id).get_version(version or "$Default").data)


def _request_tags(req: Request, resource_type: str) -> Context:
    tags: Context = {}
    n = 1
    while (kind := req.params.get(f"TagSpecification.{n}.ResourceType")) is not None:
        if kind == resource_type:
            m = 1
            while (key := req.params.get(f"TagSpecification.{n}.Tag.{m}.Key")) is not None:
                tags[f"aws:RequestTag/{key}"] = req.params.get(
                    f"TagSpecification.{n}.Tag.{m}.Value", ""
                )
                m += 1
        n += 1
    return tags


def _subnets(req: Request, backend: Any, data: dict[str, Any]) -> list[str]:
    subnet = req.params.get("SubnetId") or data.get("SubnetId")
    if subnet:
        return [str(subnet)]
    return [s.id for s in backend.describe_subnets()[:1]]  # the default subnet moto picks


def _pass_role_checks(req: Request, data: dict[str, Any]) -> list[Check]:
    profile = req.params.get("IamInstanceProfile.Arn") or (
        data.get("IamInstanceProfile") or {}
    ).get("Arn")
    if not profile:
        return []
    iam = iam_backends[req.account]["aws"]
    found = [p for p in iam.instance_profiles.values() if p.arn == profile]
    roles = found[0].roles if found else []
    ctx = {**caller_context(req), "iam:PassedToService": "ec2.amazonaws.com"}
    return [Check("iam:PassRole", role.arn, ctx) for role in roles]


def _stack_arn(req: Request) -> str:
    try:
        stack = cloudformation_backends[req.account][req.region].get_stack(req.params["StackName"])
    except Exception:  # unknown stack: moto answers ValidationError after the check
        return req.arn("cloudformation", f"stack/{req.params['StackName']}/*")
    return str(stack.stack_id)
