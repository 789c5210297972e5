"""Every command's failures: one line saying what to do, and the documented exit code.

Each test runs the real `s3worker` command in a subprocess and asserts what a person sees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from s3worker import exits

from demo.emulator import CREDENTIALS, REGION, template_worker_env

ROOT = Path(__file__).resolve().parent.parent


def s3worker(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3worker", *argv],
        env=env if env is not None else os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def worker_env(**settings: str) -> dict[str, str]:
    """What the instance's env file gives the daemon (template values), with `settings`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3WORKER_"))}
    return {**base, **template_worker_env(REGION), **CREDENTIALS, **settings}


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("s3worker: ")
    return lines[0]


def test_help_shows_the_exit_code_table_and_examples() -> None:
    result = s3worker("--help")
    assert result.returncode == 0
    for code, text in exits.TABLE:
        assert re.search(rf"^  {code}\s+{re.escape(text)}$", result.stdout, re.M), code
    assert "examples:" in result.stdout
    assert "S3WORKER_STACK" in result.stdout


def test_run_help_lists_every_variable_the_daemon_reads() -> None:
    config = (ROOT / "daemon" / "s3worker" / "config.py").read_text()
    read = set(re.findall(r'"(S3WORKER_[A-Z_]+)"', config))
    result = s3worker("run", "--help")
    listed = set(re.findall(r"^  (S3WORKER_[A-Z_]+) ", result.stdout, re.M))
    assert read == listed


def test_run_reports_every_missing_variable_at_once() -> None:
    env = {k: v for k, v in worker_env().items() if k not in ("S3WORKER_QUEUE_URL",)}
    result = s3worker("run", env=env)
    assert result.returncode == exits.USAGE
    line = one_line(result)
    assert "S3WORKER_QUEUE_URL is required" in line
    assert "S3WORKER_OUTPUT_BUCKET is required" in line


def test_run_refuses_a_missing_scratch_dir_and_an_unknown_route(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    env = worker_env(
        S3WORKER_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/1/q",
        S3WORKER_OUTPUT_BUCKET="b",
        S3WORKER_INPUT_BUCKETS="raw-bucket",
        S3WORKER_SCRATCH_DIR=str(missing),
        S3WORKER_ROUTES="weather/=weather",
    )
    result = s3worker("run", env=env)
    assert result.returncode == exits.USAGE
    line = one_line(result)
    assert f"S3WORKER_SCRATCH_DIR={missing} does not exist" in line
    assert "no processor named 'weather'" in line
    assert not missing.exists()  # never created silently


def test_run_refuses_a_scratch_dir_it_cannot_write() -> None:
    env = worker_env(
        S3WORKER_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/1/q",
        S3WORKER_OUTPUT_BUCKET="b",
        S3WORKER_INPUT_BUCKETS="raw-bucket",
        S3WORKER_SCRATCH_DIR="/proc",
    )
    result = s3worker("run", env=env)
    assert result.returncode == exits.USAGE
    assert "S3WORKER_SCRATCH_DIR=/proc is not writable" in one_line(result)


def test_run_against_an_unreachable_endpoint_is_one_line_exit_4(tmp_path: Path) -> None:
    env = worker_env(
        S3WORKER_QUEUE_URL="http://127.0.0.1:9/123456789012/q",
        S3WORKER_OUTPUT_BUCKET="b",
        S3WORKER_INPUT_BUCKETS="raw-bucket",
        S3WORKER_SCRATCH_DIR=str(tmp_path),
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # nothing listens on the discard port
    )
    result = s3worker("run", env=env)
    assert result.returncode == exits.UNREACHABLE
    assert "cannot reach AWS (AWS_ENDPOINT_URL=http://127.0.0.1:9)" in one_line(result)


def test_operator_command_against_an_unreachable_endpoint(tmp_path: Path) -> None:
    env = {**worker_env(AWS_ENDPOINT_URL="http://127.0.0.1:9"), "AWS_REGION": REGION}
    result = s3worker("status", "--stack", "s", env=env)
    assert result.returncode == exits.UNREACHABLE
    assert "cannot reach AWS" in one_line(result)


def test_operator_command_without_a_stack_says_how_to_name_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "S3WORKER_STACK"}
    result = s3worker("status", env=env)
    assert result.returncode == exits.USAGE
    assert one_line(result) == "s3worker: no stack: pass --stack NAME or set S3WORKER_STACK"


def test_bad_flag_is_a_usage_error() -> None:
    result = s3worker("sample", "sales", "--rows", "many", "--out", "x")
    assert result.returncode == exits.USAGE
    assert "invalid int value: 'many'" in result.stderr


@pytest.mark.parametrize("out", ["/dev/stdout", "-"])
def test_sample_to_a_closed_pipe_stops_quietly(out: str) -> None:
    # Given a reader that went away before the data came (`| head` that has exited)
    proc = subprocess.Popen(
        [sys.executable, "-m", "s3worker", "sample", "sales", "--rows", "50000", "--out", out],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    # Then no traceback, and the exit code says the output did not arrive
    assert err == ""
    assert proc.returncode == exits.FAILED


def test_interrupted_command_exits_130(tmp_path: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "s3worker", "sample", "sensors", "--rows", "50000000", "--out",
         str(tmp_path / "big.csv")],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    big = tmp_path / "big.csv"
    while not big.exists() or big.stat().st_size < 1_000_000:  # writing is under way
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == exits.INTERRUPTED
    assert err.strip() == "s3worker: interrupted"


def test_readme_documents_the_same_exit_codes() -> None:
    section = (ROOT / "README.md").read_text().split("### Exit codes", 1)[1].split("\n#", 1)[0]
    documented = [int(code) for code in re.findall(r"^\| `(\d+)` \|", section, re.M)]
    assert documented == [code for code, _ in exits.TABLE]
