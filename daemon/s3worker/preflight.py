"""What `s3worker run` checks before READY=1: settings that would fail every file.

A route naming no installed processor, a scratch directory that is missing or not writable
(on an instance it is the EBS mount: creating it would put the scratch on the root disk),
an output bucket that does not exist. All problems are reported together, as one
ConfigError, so a broken env file is fixed in one pass.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from s3worker.config import Settings
from s3worker.errors import ConfigError, UnknownFormatError
from s3worker.processors.registry import Registry, Route
from s3worker.retry import RetryPolicy


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


def _raise(problems: list[str]) -> None:
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} problems: " + "; ".join(problems))
