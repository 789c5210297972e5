"""The region: found where AWS puts it, by the daemon and the operator CLI alike.

The pinned botocore reads only AWS_DEFAULT_REGION; the worker's env file (written by the launch
template's user data) sets AWS_REGION. These tests run the product with exactly what its own
files set, so a region variable the product needs but the env file lacks fails here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import Pipeline
from s3worker.regions import configured_region

from demo.emulator import FakeImds, daemon_env, template_worker_env

TESTS = Path(__file__).parent
NO_IMDS = "http://127.0.0.1:9"


# --- the pure rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "profile", "expected"),
    [
        ({"AWS_REGION": "eu-west-1"}, None, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "sa-east-1"}, None, "sa-east-1"),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "sa-east-1"}, None, "eu-west-1"),
        ({"AWS_REGION": "  "}, "ap-south-1", "ap-south-1"),
        ({}, "ap-south-1", "ap-south-1"),
        ({}, None, None),
    ],
)
def test_the_region_comes_from_aws_region_then_aws_default_region_then_the_profile(
    env: dict[str, str], profile: str | None, expected: str | None
) -> None:
    assert configured_region(profile, env) == expected


def test_the_env_file_names_a_region_the_daemon_reads() -> None:
    # Given the env file the user data writes; then it names a region the product honours.
    env = template_worker_env("eu-central-1")
    assert configured_region(None, env) == "eu-central-1"


# --- the daemon, as systemd starts it: only the env file and what stands in for AWS ----------


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    server = FakeImds("i-0123456789abcdef0", region="us-east-1")
    yield server
    server.close()


def run_worker(
    pipeline: Pipeline, scratch: Path, endpoint: str, env_file: dict[str, str], imds: str
) -> subprocess.CompletedProcess[str]:
    env = daemon_env(
        {**env_file, **pipeline.env(scratch)},
        endpoint,
        AWS_EC2_METADATA_SERVICE_ENDPOINT=imds,
        S3WORKER_TEST_RUNLOG=str(scratch.parent / "runlog"),
    )
    assert "AWS_DEFAULT_REGION" not in env
    return subprocess.run(
        [sys.executable, str(TESTS / "run_daemon.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_daemon_runs_with_only_the_env_files_region(aws: str, name: str, scratch: Path) -> None:
    # Given a file in the queue and a worker whose environment is the env file (AWS_REGION only)
    pipeline = Pipeline.create(name)
    pipeline.upload("in/a.txt", b"echo\n")
    # When the daemon runs until idle
    result = run_worker(pipeline, scratch, aws, template_worker_env(), NO_IMDS)
    # Then it found its region, processed the file and exited cleanly
    assert result.returncode == 0, result.stdout + result.stderr
    assert pipeline.manifest("in/a.txt") is not None
    assert "NoRegionError" not in result.stdout + result.stderr


def test_without_a_region_variable_the_daemon_uses_the_instance_region(
    aws: str, name: str, scratch: Path, imds: FakeImds
) -> None:
    # Given an env file without any region, on an instance whose metadata names its region
    pipeline = Pipeline.create(name)
    pipeline.upload("in/b.txt", b"echo\n")
    env_file = {k: v for k, v in template_worker_env().items() if k != "AWS_REGION"}
    # When the daemon runs
    result = run_worker(pipeline, scratch, aws, env_file, imds.url)
    # Then it asked IMDSv2 for the region and worked
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GET /latest/meta-data/placement/region" in imds.requests
    assert pipeline.manifest("in/b.txt") is not None


def test_with_no_region_anywhere_the_daemon_says_so_and_exits_2(
    aws: str, name: str, scratch: Path
) -> None:
    pipeline = Pipeline.create(name)
    env_file = {k: v for k, v in template_worker_env().items() if k != "AWS_REGION"}
    result = run_worker(pipeline, scratch, aws, env_file, NO_IMDS)
    assert result.returncode == 2
    assert "no AWS region: set AWS_REGION" in result.stderr
    assert "Traceback" not in result.stderr


# --- the operator CLI ------------------------------------------------------------------------


def test_the_operator_cli_reads_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    from s3worker.ops.aws import Aws

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert Aws().session.region_name == "eu-west-3"
    assert Aws(region="us-west-2").session.region_name == "us-west-2"


def test_the_operator_cli_on_ec2_uses_the_instance_region(
    monkeypatch: pytest.MonkeyPatch, imds: FakeImds, tmp_path: Path
) -> None:
    from s3worker.ops.aws import Aws

    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    assert Aws().session.region_name == "us-east-1"
