"""An IAM-enforcing moto server in its own process: `python -m iam.server PORT` (tests/ on path).

moto's access control is process-wide (`moto.settings.INITIAL_NO_AUTH_ACTION_COUNT`, read from
the environment at import, and one request counter), so it runs apart from the suite's own
server. The parent sets `INITIAL_NO_AUTH_ACTION_COUNT`; "ready" on stdout means it listens; it
stops when its stdin closes (so it never outlives the test process). Additions, each for
a gap of moto's, none in the product:
- the start Lambda runs in this process (demo.emulator.LambdaBridge) for the stack's custom
  resource;
- CloudFormation's ResponseURL is a pre-signed S3 URL on AWS (no principal, no policy); moto
  routes it through its IAM check, which needs an Authorization header: exempted here;
- a role's inline policies created by moto's CloudFormation are kept as dicts, which moto's
  IAMPolicy cannot read (KeyError 'policy_document'): read as the JSON they stand for;
- moto names an action after the request's signing name and API operation; IAM does not
  always: CloudWatch signs as `monitoring`, S3 authorizes HeadBucket as ListBucket, and SQS
  authorizes its batch calls as the single action (`IAM_ACTIONS`); SQS's StartMessageMoveTask
  names its queue by SourceArn, which moto's resource lookup (QueueUrl only) misses;
- EC2 and CloudFormation calls, and CloudWatch's PutMetricData (its `cloudwatch:namespace`
  condition), are authorized by `iam.evaluate` with the context of `iam.context` (moto checks
  them on Resource "*" with conditions treated as met). CloudWatch's requests are CBOR
  (smithy-rpc-v2-cbor) or JSON: their parameters are read with botocore's CBOR decoder.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from botocore.parsers import BaseCBORParser
from moto.cloudformation import urls as cfn_urls
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import TYPE_RESPONSE
from moto.iam.access_control import IAMPolicy, IAMRequest, S3IAMRequest
from moto.server import ThreadedMotoServer

from demo.emulator import LambdaBridge, quiet_emulator
from iam.context import Request, checks
from iam.evaluate import ALLOW, decide

EVALUATED_HERE = ("ec2:", "cloudformation:", "cloudwatch:PutMetricData")
IAM_ACTIONS = {
    # HeadBucket is authorized as s3:ListBucket (there is no s3:HeadBucket action):
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
    "s3:HeadBucket": "s3:ListBucket",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
SIGNING_NAMES = {"monitoring": "cloudwatch"}


class _PresignedCfnResponse(CloudFormationResponse):
    def _authenticate_and_authorize_normal_action(self, resource: str = "*") -> None:
        return None


def _cfn_response(request: Any, full_url: str, headers: Any) -> TYPE_RESPONSE:
    response = _PresignedCfnResponse()
    response.automated_parameter_parsing = False
    return response._dispatch(request, full_url + "&Action=ProcessCfnResponse", headers)


def _params(data: Any) -> dict[str, str]:
    return {k: v[0] if isinstance(v, list) else v for k, v in dict(data or {}).items()}


def _body_params(body: Any, content_type: str) -> dict[str, str]:
    """The top-level text parameters of a CBOR or JSON request body (CloudWatch speaks both)."""
    if "cbor" in content_type:
        found = BaseCBORParser().parse_data_item(io.BytesIO(body or b""))
    else:
        found = _json_body(body)
    return {k: v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else {}


def _json_body(body: Any) -> dict[str, Any]:
    try:
        found = json.loads(body or b"{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _check_action_permitted(self: Any, resource: str) -> None:
    """moto's check for every service but EC2 and CloudFormation; those are evaluated here."""
    service, _, operation = self._action.partition(":")
    action = f"{SIGNING_NAMES.get(service, service)}:{operation}"
    self._action = IAM_ACTIONS.get(action, action)
    params = _params(self._data)
    if self._action.startswith("cloudwatch:"):
        content_type = str(self._headers.get("Content-Type", ""))
        params = {**params, **_body_params(self._body, content_type)}
    if self._action.startswith("sqs:") and resource == "*":
        resource = params.get("SourceArn") or _json_body(self._body).get("SourceArn") or "*"
    if not self._action.startswith(EVALUATED_HERE):
        return _original_check(self, resource)
    key = self._access_key
    req = Request(
        account=self.account_id,
        region=self._region,
        action=self._action,
        params=params,
        caller_session=getattr(key, "_session_name", None),
    )
    documents = [IAMPolicy(p)._policy_json for p in key.collect_policies()]
    for check in checks(req):
        if decide(documents, check.action, check.resource, check.context) != ALLOW:
            self._raise_access_denied()
    return None


_original_check = IAMRequest.check_action_permitted
_original_policy_init = IAMPolicy.__init__


def _policy_init(self: Any, policy: Any) -> None:
    if isinstance(policy, dict) and "Statement" in policy:
        policy = json.dumps(policy)
    _original_policy_init(self, policy)


def install() -> None:
    pattern = next(p for p in cfn_urls.url_paths if p.endswith("cfnresponse$"))
    cfn_urls.url_paths[pattern] = _cfn_response
    for request in (IAMRequest, S3IAMRequest):
        setattr(request, "check_action_permitted", _check_action_permitted)  # noqa: B010
    setattr(IAMPolicy, "__init__", _policy_init)  # noqa: B010


def main(port: int) -> None:
    quiet_emulator()
    install()
    bridge = LambdaBridge(f"http://127.0.0.1:{port}")
    with bridge.installed():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        print("ready", flush=True)
        sys.stdin.read()  # until the parent closes it (or dies)
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
