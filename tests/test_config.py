from __future__ import annotations

from pathlib import Path

import pytest
from s3worker.config import Settings
from s3worker.errors import ConfigError

BASE = {
    "S3WORKER_QUEUE_URL": "https://q",
    "S3WORKER_OUTPUT_BUCKET": "out",
    "S3WORKER_INPUT_BUCKETS": "raw-bucket",
}


def test_defaults_follow_the_contract():
    s = Settings.from_env({**BASE})
    assert s.scratch_dir == Path("/var/lib/s3worker")
    assert s.idle_seconds == 600
    assert s.idle_confirm_seconds == 60
    assert s.idle_action == "none"
    assert s.routes == ()
    assert s.concurrency >= 1
    assert s.output_prefix == ""


def test_values_are_parsed_and_overrides_win():
    env = {
        **BASE,
        "S3WORKER_ROUTES": "sensors/=sensors, sales/=sales",
        "S3WORKER_OUTPUT_PREFIX": "/r/",
    }
    s = Settings.from_env(env, overrides={"S3WORKER_CONCURRENCY": "3"})
    assert s.routes == (("sensors/", "sensors"), ("sales/", "sales"))
    assert s.concurrency == 3
    assert s.max_in_flight == 24  # eight files held per processing slot unless set
    assert s.output_prefix == "r"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("S3WORKER_CONCURRENCY", "0", "must be at least 1"),
        ("S3WORKER_IDLE_SECONDS", "soon", "not a valid float"),
        ("S3WORKER_LOG_FORMAT", "xml", "must be one of"),
        ("S3WORKER_SCRATCH_MAX_BYTES", "-5", "must be at least 1"),
        ("S3WORKER_JOB_TIMEOUT_SECONDS", "50000", "must be at most 39600"),
    ],
)
def test_errors_name_the_variable(variable: str, value: str, message: str):
    with pytest.raises(ConfigError, match=f"{variable}.*{message}"):
        Settings.from_env({**BASE, variable: value})


def test_input_buckets_are_a_required_comma_list():
    s = Settings.from_env({**BASE, "S3WORKER_INPUT_BUCKETS": " raw-a , raw-b ,"})
    assert s.input_buckets == ("raw-a", "raw-b")
    for bad in ("", " , ", "ok-bucket,s3://x"):
        with pytest.raises(ConfigError, match="S3WORKER_INPUT_BUCKETS"):
            Settings.from_env({**BASE, "S3WORKER_INPUT_BUCKETS": bad})


def test_job_memory_is_the_machine_shared_by_the_jobs_but_never_below_what_pyarrow_reserves():
    from s3worker.config import MIN_JOB_MEMORY_MB, default_job_memory_mb

    one, four = default_job_memory_mb(1), default_job_memory_mb(4)
    assert one >= four >= MIN_JOB_MEMORY_MB
    assert default_job_memory_mb(10_000) == MIN_JOB_MEMORY_MB
    s = Settings.from_env({**BASE, "S3WORKER_JOB_MEMORY_MB": "3000"})
    assert s.job_memory_bytes == 3000 * 2**20
    with pytest.raises(ConfigError, match="S3WORKER_JOB_MEMORY_MB"):
        Settings.from_env({**BASE, "S3WORKER_JOB_MEMORY_MB": "512"})
