"""preflight.py: what `s3worker run` refuses before READY=1, all problems in one error; the
bucket check against the emulator's S3 over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from s3worker.aws import ClientsContext
from s3worker.config import Settings
from s3worker.errors import ConfigError
from s3worker.preflight import bucket_problems, check, scratch_problems, unknown_routes
from s3worker.processors.registry import Registry
from s3worker.retry import RetryPolicy
from tenacity import wait_none

BASE = {
    "S3WORKER_QUEUE_URL": "https://q",
    "S3WORKER_OUTPUT_BUCKET": "out",
    "S3WORKER_INPUT_BUCKETS": "raw-bucket",
}
NO_WAIT = RetryPolicy(3, wait_none())


def test_a_route_to_a_processor_that_does_not_exist_stops_the_start() -> None:
    s = Settings.from_env({**BASE, "S3WORKER_ROUTES": "sales/=sales,x/=salse"})
    (problem,) = unknown_routes(s.routes, Registry())
    assert problem.startswith("S3WORKER_ROUTES: x/=salse: ")
    ok = Settings.from_env({**BASE, "S3WORKER_ROUTES": "sales/=sales"})
    assert unknown_routes(ok.routes, Registry()) == []


def test_a_scratch_dir_must_exist_be_a_directory_and_be_writable(tmp_path: Path) -> None:
    assert scratch_problems(tmp_path) == []
    missing = tmp_path / "not" / "there"
    assert scratch_problems(missing) == [
        f"S3WORKER_SCRATCH_DIR={missing} does not exist or is not a directory (create or mount it)"
    ]
    assert not missing.exists()  # never created: on an instance it is the EBS mount
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "is not a directory" in scratch_problems(a_file)[0]
    (problem,) = scratch_problems(Path("/proc"))  # not writable, even for root
    assert problem.startswith("S3WORKER_SCRATCH_DIR=/proc is not writable: ")
    assert list(tmp_path.iterdir()) == [a_file]  # the probe left nothing behind


def with_s3(scenario: Any) -> Any:
    async def main() -> Any:
        async with ClientsContext(1) as clients:
            return await scenario(clients.s3)

    return asyncio.run(main())


def test_the_output_bucket_must_exist(aws: str, name: str) -> None:
    boto3.client("s3").create_bucket(Bucket=name)
    assert with_s3(lambda s3: bucket_problems(s3, name, NO_WAIT)) == []
    missing = with_s3(lambda s3: bucket_problems(s3, f"{name}-missing", NO_WAIT))
    assert missing == [f"S3WORKER_OUTPUT_BUCKET={name}-missing: no such bucket"]


class HeadBucket:
    """An S3 whose HeadBucket answers `statuses` in turn (then 200)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls = 0

    async def head_bucket(self, Bucket: str) -> dict[str, Any]:
        self.calls += 1
        if self.statuses:
            status = self.statuses.pop(0)
            error = {"Code": str(status), "Message": ""}
            raise ClientError(
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "HeadBucket"
            )
        return {}


def test_access_denied_is_named_and_a_passing_5xx_is_retried_not_reported() -> None:
    denied = asyncio.run(bucket_problems(HeadBucket(403), "out", NO_WAIT))
    assert denied == ["S3WORKER_OUTPUT_BUCKET=out: access denied (check the role's policy)"]
    flaky = HeadBucket(503, 500)
    assert asyncio.run(bucket_problems(flaky, "out", NO_WAIT)) == []
    assert flaky.calls == 3


def test_other_errors_are_raised_not_taken_for_configuration() -> None:
    with pytest.raises(ClientError):
        asyncio.run(bucket_problems(HeadBucket(400), "out", NO_WAIT))


def test_check_reports_every_local_problem_at_once_before_asking_s3(tmp_path: Path) -> None:
    missing = tmp_path / "scratch"
    settings = Settings.from_env(
        {**BASE, "S3WORKER_ROUTES": "x/=nope", "S3WORKER_SCRATCH_DIR": str(missing)}
    )
    s3 = HeadBucket(404)
    with pytest.raises(ConfigError, match=r"^2 problems: S3WORKER_ROUTES: x/=nope: .*; "
                       r"S3WORKER_SCRATCH_DIR=.* does not exist"):  # fmt: skip
        asyncio.run(check(settings, s3, Registry(), NO_WAIT))
    assert s3.calls == 0


def test_check_raises_one_problem_as_it_is_and_passes_a_good_configuration(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({**BASE, "S3WORKER_SCRATCH_DIR": str(tmp_path)})
    with pytest.raises(ConfigError) as raised:
        asyncio.run(check(settings, HeadBucket(404), Registry(), NO_WAIT))
    assert str(raised.value) == "S3WORKER_OUTPUT_BUCKET=out: no such bucket"
    asyncio.run(check(settings, HeadBucket(), Registry(), NO_WAIT))  # no error
