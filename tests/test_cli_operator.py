"""The operator commands as a person types them, against the moto server, in subprocesses."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from opstack import create_stack, drain
from s3worker import exits

TESTS = Path(__file__).parent


def s3worker(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3worker", *argv],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_an_empty_object_is_skipped_not_pending_forever(aws: str, name: str) -> None:
    # Given an empty object (the daemon acknowledges it without work) and a folder marker
    pipeline = create_stack(name)
    pipeline.upload("incoming/empty.csv", b"")
    # When the operator asks for its results
    result = s3worker("results", "incoming/empty.csv", "--stack", name)
    as_json = s3worker("results", "incoming/empty.csv", "--stack", name, "--json")
    # Then it is reported as skipped, which is final: exit 0
    assert result.returncode == exits.OK
    assert result.stdout.startswith("incoming/empty.csv: skipped, nothing to process")
    assert json.loads(as_json.stdout)["state"] == "skipped"


def test_status_json_into_a_closed_pipe_is_quiet(aws: str, name: str) -> None:
    create_stack(name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "s3worker", "status", "--json", "--stack", name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # `| head` that has already exited
    _, err = proc.communicate(timeout=120)
    assert err == ""
    assert proc.returncode == exits.FAILED


def test_stack_comes_from_the_environment(aws: str, name: str) -> None:
    create_stack(name)
    result = s3worker("status", "--json", S3WORKER_STACK=name)
    assert result.returncode == exits.OK, result.stderr
    assert json.loads(result.stdout)["stack"] == name


def test_upload_json_and_a_quiet_unchanged_reupload(aws: str, name: str, tmp_path: Path) -> None:
    pipeline = create_stack(name)
    batch = tmp_path / "batch"
    batch.mkdir()
    for n in range(2):
        (batch / f"f{n}.csv").write_text(f"a,b\n{n},2\n")
    # When the operator uploads with --json, then uploads the same folder again
    first = s3worker("upload", str(batch), "--stack", name, "--json")
    again = s3worker("upload", str(batch), "--stack", name)
    # Then the report is JSON; the second run skips both without drawing a progress bar
    report = json.loads(first.stdout)
    assert sorted(report["uploaded"]) == ["f0.csv", "f1.csv"]
    assert report["bucket"] == pipeline.raw
    assert again.returncode == exits.OK
    assert "skipped 2 unchanged" in again.stdout
    assert again.stderr == ""


def test_redrive_json(aws: str, name: str, scratch: Path, tmp_path: Path) -> None:
    pipeline = create_stack(name)
    pipeline.upload("bad/corrupt.txt", b"echo corrupt\n")
    drain(pipeline, scratch, tmp_path / "runlog")
    dry = s3worker("dlq", "redrive", "--stack", name, "--dry-run", "--json")
    assert dry.returncode == exits.OK
    assert json.loads(dry.stdout) == {
        "method": "dry-run", "moved": 1, "failed": 0, "status": "not moved", "detail": ""
    }  # fmt: skip


def test_show_a_result_table_from_the_processed_bucket(aws: str, name: str) -> None:
    pipeline = create_stack(name)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"store": ["a", "b"], "revenue": [1.5, 2.5]}), buffer)
    key = "incoming/day1.csv/daily_store.parquet"
    boto3.client("s3").put_object(Bucket=pipeline.processed, Key=key, Body=buffer.getvalue())
    # When the operator shows it by key, and by s3:// address as CSV
    table = s3worker("show", key, "--stack", name)
    csv = s3worker("show", f"s3://{pipeline.processed}/{key}", "--csv", "--stack", name)
    missing = s3worker("show", "incoming/nope.parquet", "--stack", name)
    # Then a text table and CSV; a missing key is a usage error that says where to look
    assert table.returncode == exits.OK, table.stderr
    assert table.stdout.split("\n")[0].split() == ["store", "revenue"]
    assert f"{key}: 2 rows x 2 columns" in table.stdout
    assert csv.stdout.splitlines() == ['"store","revenue"', '"a",1.5', '"b",2.5']
    assert missing.returncode == exits.USAGE
    assert "`s3worker results INPUT` lists an input's result keys" in missing.stderr


def test_dead_lettered_files_are_logged_as_warnings(aws: str, name: str, tmp_path: Path) -> None:
    # Given a file the processor rejects, and the daemon as systemd starts it
    pipeline = create_stack(name)
    pipeline.upload("bad/corrupt.txt", b"echo corrupt\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**pipeline.env(scratch), "S3WORKER_TEST_RUNLOG": str(tmp_path / "runlog")}
    result = subprocess.run(
        [sys.executable, str(TESTS / "run_daemon.py")],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # Then its job line is a warning (journalctl -p warning shows it); good files stay info
    jobs = [json.loads(line) for line in result.stdout.splitlines() if '"event": "job"' in line]
    assert [(j["outcome"], j["level"]) for j in jobs] == [("dead_letter", "warning")]


def test_run_refuses_an_output_bucket_that_does_not_exist(
    aws: str, name: str, tmp_path: Path
) -> None:
    pipeline = create_stack(name)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**pipeline.env(scratch), "S3WORKER_OUTPUT_BUCKET": f"{name}-missing"}
    result = s3worker("run", **env)
    assert result.returncode == exits.USAGE
    assert result.stderr == (
        f"s3worker: configuration error: S3WORKER_OUTPUT_BUCKET={name}-missing: no such bucket\n"
    )
