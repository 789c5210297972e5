"""EC2 identity through IMDSv2, and stopping this instance: the only code that stops a machine."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import structlog

from s3worker.retry import RetryPolicy

log = structlog.get_logger(__name__)

# botocore's variable for the metadata endpoint, so tests and the demo can point it elsewhere.
ENDPOINT_VARIABLE = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_TTL_SECONDS = "300"  # noqa: S105 (a lifetime, not a secret)
TIMEOUT = aiohttp.ClientTimeout(total=2)


async def metadata(path: str, endpoint: str | None = None) -> str | None:
    """One IMDSv2 value (token first), e.g. `instance-id`; None when not on EC2."""
    base = (endpoint or os.environ.get(ENDPOINT_VARIABLE) or DEFAULT_ENDPOINT).rstrip("/")
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            async with http.put(
                f"{base}/latest/api/token",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": TOKEN_TTL_SECONDS},
            ) as resp:
                resp.raise_for_status()
                token = await resp.text()
            async with http.get(
                f"{base}/latest/meta-data/{path}",
                headers={"X-aws-ec2-metadata-token": token},
            ) as resp:
                resp.raise_for_status()
                return (await resp.text()).strip() or None
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("imds_unavailable", endpoint=base, path=path, error=repr(exc))
        return None


async def instance_id(endpoint: str | None = None) -> str | None:
    """This instance's id, or None when not on EC2."""
    return await metadata("instance-id", endpoint)


async def region(endpoint: str | None = None) -> str | None:
    """The region this instance runs in, or None when not on EC2."""
    return await metadata("placement/region", endpoint)


async def stop_instance(ec2: Any, retry: RetryPolicy, instance: str) -> None:
    log.info("stopping_instance", instance_id=instance)
    await retry.call(ec2.stop_instances, InstanceIds=[instance])
