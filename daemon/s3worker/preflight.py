"""What `s3worker run` checks before READY=1: settings that would fail every file.

A route naming no installed processor, a scratch directory that is missing or not writable
(on an instance it is the EBS mount: creating it would put the scratch on the root disk),
an output bucket that does not exist. All problems are reported together, as one
ConfigError, so a broken env file is fixed in one pass.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from s3worker.config import Settings
from s3worker.errors import ConfigError, UnknownFormatError
from s3worker.processors.registry import Registry, Route
from s3worker.retry import RetryPolicy
from s3worker.sqs import Queue, QueueInfo, queue_url_from_arn

QueueSettings = tuple[QueueInfo, str | None]  # the queue's settings, its DLQ's URL


def unknown_routes(routes: tuple[Route, ...], processors: Registry) -> list[str]:
    problems = []
    for prefix, name in routes:
        try:
            processors.get(name)
        except UnknownFormatError as exc:
            problems.append(f"S3WORKER_ROUTES: {prefix}={name}: {exc}")
    return problems


def scratch_problems(path: Path) -> list[str]:
    where = f"S3WORKER_SCRATCH_DIR={path}"
    if not path.is_dir():
        return [f"{where} does not exist or is not a directory (create or mount it)"]
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return [f"{where} is not writable: {exc.strerror or exc}"]
    return []


async def bucket_problems(s3: Any, bucket: str, retry: RetryPolicy) -> list[str]:
    """HeadBucket (s3:ListBucket, which the worker role has): exists, and we may use it.

    Through the shared retry policy: throttling or a 5xx at start is not a configuration error."""
    try:
        await retry.call(s3.head_bucket, Bucket=bucket)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            return [f"S3WORKER_OUTPUT_BUCKET={bucket}: no such bucket"]
        if status == 403:
            return [f"S3WORKER_OUTPUT_BUCKET={bucket}: access denied (check the role's policy)"]
        raise
    return []


def check_local(settings: Settings, processors: Registry) -> None:
    """What needs no network and no region: run before the AWS clients are built, so a broken
    route or scratch directory is named even where the region cannot be found yet."""
    _raise(unknown_routes(settings.routes, processors) + scratch_problems(settings.scratch_dir))


async def check(settings: Settings, s3: Any, processors: Registry, retry: RetryPolicy) -> None:
    """Local problems first (they need no network), then the bucket."""
    check_local(settings, processors)
    _raise(await bucket_problems(s3, settings.output_bucket, retry))


async def queue_settings(queue: Queue, dlq_url: str | None, retry: RetryPolicy) -> QueueSettings:
    """The work queue's settings, and its DLQ's URL: the configured one, else its redrive's."""
    info = await queue.info()
    if not dlq_url and info.dlq_arn:
        dlq_url = await queue_url_from_arn(queue.client, info.dlq_arn, retry)
    return info, dlq_url


class EarlyQueueCheck:
    """`queue_settings` asked for as soon as the SQS client exists (aws.ClientsContext's
    `with_sqs`): the calls are on their way while the S3 client is built, and the answer is
    awaited where the worker's start-up checks are (worker.py), in the same order as before."""

    def __init__(self, settings: Settings, retry: RetryPolicy) -> None:
        self.settings, self.retry = settings, retry
        self.task: asyncio.Task[QueueSettings] | None = None

    def start(self, sqs: Any) -> None:
        queue = Queue(sqs, self.settings.queue_url, self.retry)
        self.task = asyncio.ensure_future(queue_settings(queue, self.settings.dlq_url, self.retry))

    async def __aenter__(self) -> EarlyQueueCheck:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """A queue error behind an earlier failure (a settings problem) is retrieved, not
        reported: the earlier one is the error."""
        if self.task is not None:
            self.task.cancel()
            self.task.done() and not self.task.cancelled() and self.task.exception()


def _raise(problems: list[str]) -> None:
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} problems: " + "; ".join(problems))
