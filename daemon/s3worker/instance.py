"""EC2 identity through IMDSv2, and stopping this instance: the only code that stops a machine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from s3worker.regions import ENDPOINT_VARIABLE
from s3worker.retry import RetryPolicy

log = structlog.get_logger(__name__)

# botocore's variable for the metadata endpoint, so tests and the demo can point it elsewhere.
DEFAULT_ENDPOINT = "http://169.254.169.254"
TOKEN_TTL_SECONDS = "300"  # noqa: S105 (a lifetime, not a secret)
TIMEOUT = aiohttp.ClientTimeout(total=2)
# Further IMDS lookups before giving up on stopping this instance.
IMDS_RETRY_SECONDS = (1.0, 2.0, 4.0)


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


class InstanceId:
    """This instance's id, looked up in the background from READY=1 on (worker.py): jobs
    record it once known (`known`); stopping the instance waits for the lookup (`get`)."""

    def __init__(self) -> None:
        self.known: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._fetch())

    async def _fetch(self) -> None:
        self.known = await instance_id()

    async def get(self) -> str | None:
        if self._task is not None:
            await self._task
        return self.known


async def region(endpoint: str | None = None) -> str | None:
    """The region this instance runs in, or None when not on EC2."""
    return await metadata("placement/region", endpoint)


async def stop_instance(ec2: Any, retry: RetryPolicy, instance: str) -> None:
    log.info("stopping_instance", instance_id=instance)
    await retry.call(ec2.stop_instances, InstanceIds=[instance])


async def stop_self(
    make_ec2: Callable[[], Awaitable[Any]], retry: RetryPolicy, known: str | None
) -> bool:
    """Stop this instance (`known`: its id if already looked up); False when that cannot be
    done: the caller exits non-zero, and systemd's Restart= (and StartLimitAction=) take it
    from there, rather than an instance that keeps running, billed, with no daemon."""
    instance = known
    for wait in IMDS_RETRY_SECONDS:  # the first lookup may have met a passing hiccup
        if instance:
            break
        await asyncio.sleep(wait)
        instance = await instance_id()
    if not instance:
        log.error("idle_stop_impossible", reason="no instance id from IMDS")
        return False
    try:
        await stop_instance(await make_ec2(), retry, instance)
    except Exception as exc:
        log.error("idle_stop_failed", instance_id=instance, error=repr(exc))
        return False
    return True
