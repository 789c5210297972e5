"""Cleanup: the `Custom::WorkerPoolCleanup` resource (Delete terminates the pool) and its answer."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starter.logs import emit, log
from starter.observe import describe_members, members_by_state
from starter.settings import Settings, parse_pool_tag

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

ALIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
TERMINATE_BATCH = 500
CLEANUP_POLL_S, CLEANUP_MARGIN_S = 5.0, 10.0


@dataclass
class Cleaner:
    ec2: Callable[[], EC2Client]
    env: Mapping[str, str]
    clock: Callable[[], float]
    sleep: Callable[[float], None]

    def custom_resource(
        self, event: dict[str, Any], request_id: str, remaining_ms: int
    ) -> tuple[str, str]:
        """Do what the request asks, answer CloudFormation whatever happens: (status, reason)."""
        deadline = self.clock() + remaining_ms / 1000 - CLEANUP_MARGIN_S
        status, reason, data = "SUCCESS", "", dict[str, Any]()
        try:
            if event["RequestType"] == "Delete":
                data = self.cleanup(deadline)
            else:
                Settings.from_env(self.env)  # a misconfigured stack fails at deploy time
        except Exception as exc:  # CloudFormation must always get an answer
            status, reason = "FAILED", f"{type(exc).__name__}: {exc}"[:1000]
            log.exception(
                "custom_resource_failed", extra={"fields": {"type": event["RequestType"]}}
            )
        body = {
            "Status": status,
            "Reason": reason or f"see CloudWatch log stream of request {request_id}",
            "PhysicalResourceId": event.get("PhysicalResourceId") or event["RequestId"],
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
        send_response(event["ResponseURL"], body, self.sleep)
        emit(logging.INFO, "custom_resource", type=event["RequestType"], status=status, **data)
        return status, reason

    def cleanup(self, deadline: float) -> dict[str, Any]:
        """Terminate every pool member and wait until all are terminated (or time runs out).

        A persistent Spot request opens again when its instance is terminated and would launch
        a replacement: each member's Spot request is cancelled before the member is terminated.
        """
        try:
            tag = parse_pool_tag(self.env)
        except ValueError:  # no valid tag: nothing can have been launched with it
            return {"Terminated": 0}
        seen: set[str] = set()
        ec2 = self.ec2()
        while True:
            instances = describe_members(ec2, tag, ALIVE_STATES)
            alive = members_by_state(instances)
            if not alive:
                return {"Terminated": len(seen)}
            requests = sorted(
                {i["SpotInstanceRequestId"] for i in instances if "SpotInstanceRequestId" in i}
            )
            if requests:
                ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=requests)
            todo = [i for state, ids in alive.items() if state != "shutting-down" for i in ids]
            seen.update(i for ids in alive.values() for i in ids)
            for n in range(0, len(todo), TERMINATE_BATCH):
                ec2.terminate_instances(InstanceIds=todo[n : n + TERMINATE_BATCH])
            if self.clock() + CLEANUP_POLL_S > deadline:
                left = sorted(i for ids in alive.values() for i in ids)
                raise TimeoutError(f"{len(left)} pool instances still terminating: {left[:20]}")
            self.sleep(CLEANUP_POLL_S)


def send_response(url: str, body: dict[str, Any], sleep: Callable[[float], None]) -> None:
    """PUT the answer to CloudFormation's pre-signed URL (a few attempts; then raise).

    Plain urllib, not botocore: the URL is a pre-signed S3 URL, no AWS API, so its retries are
    these three attempts.
    """
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"ResponseURL is not http(s): {url[:40]!r}")
    data = json.dumps(body).encode()
    # Content-Type must be empty: it is part of what the pre-signed URL's signature covers.
    headers = {"Content-Type": "", "Content-Length": str(len(data))}
    for attempt in range(3):
        try:
            put = urllib.request.Request(url, data=data, method="PUT", headers=headers)  # noqa: S310
            with urllib.request.urlopen(put, timeout=10):  # noqa: S310 (scheme checked above)
                return
        except OSError:
            if attempt == 2:
                raise
            sleep(2.0**attempt)
