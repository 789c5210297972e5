"""`s3worker results KEY`: processed, failed and missing inputs, against the moto server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opstack import cli, create_stack, drain


def test_processed_input_shows_manifest_and_summary(
    aws: str, name: str, scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file processed by the daemon
    pipeline = create_stack(name)
    pipeline.upload("batch/a.txt", b"echo\nrow 1\nrow 2\n")
    drain(pipeline, scratch, tmp_path / "runlog")
    # When the operator asks for its results
    code, out, _ = cli(capsys, "results", "batch/a.txt", "--stack", name)
    # Then the manifest's processor, outputs and the summary are shown
    assert code == 0
    assert "batch/a.txt: processed by echo 1.0" in out
    assert f"s3://{pipeline.processed}/batch/a.txt/" in out
    assert "batch/a.txt/lines." in out  # lines.<version tag>.json
    assert '"lines": 3' in out
    # And --json gives the raw documents
    code, out, _ = cli(
        capsys, "results", f"s3://{pipeline.raw}/batch/a.txt", "--stack", name, "--json"
    )
    doc = json.loads(out)
    assert code == 0
    assert doc["state"] == "processed"
    assert doc["manifest"]["processor"]["name"] == "echo"
    assert doc["summary"]["lines"] == 3


def test_failed_input_shows_the_error_report(
    aws: str, name: str, scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file the processor rejects
    pipeline = create_stack(name)
    pipeline.upload("bad/corrupt.txt", b"echo corrupt\n")
    drain(pipeline, scratch, tmp_path / "runlog")
    # When the operator asks for its results
    code, out, _ = cli(capsys, "results", "bad/corrupt.txt", "--stack", name)
    # Then the error report's class and message are shown, with exit code 1 (the work failed)
    assert code == 1
    assert "FAILED after 1 attempt(s)" in out
    assert "BadDataError: line 1: this file is corrupt on purpose" in out
    assert f"s3://{pipeline.processed}/_errors/bad/corrupt.txt.json" in out


def test_missing_input_is_not_processed_yet(
    aws: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one uploaded file no worker has seen, and a key never uploaded
    pipeline = create_stack(name)
    pipeline.upload("queued/b.txt", b"echo\n")
    # When the operator asks for both
    code, out, _ = cli(capsys, "results", "queued/b.txt", "--stack", name)
    code2, out2, _ = cli(capsys, "results", "never/c.txt", "--stack", name, "--json")
    # Then both say "not processed yet" with exit code 3, telling the two cases apart
    assert code == 3
    assert "queued/b.txt: not processed yet (uploaded" in out
    assert code2 == 3
    assert json.loads(out2) == {"key": "never/c.txt", "state": "pending", "location": ""}


def test_results_follow_the_stack_output_prefix(
    aws: str, name: str, scratch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose daemon writes under OutputPrefix=results
    pipeline = create_stack(name, prefix="results")
    pipeline.upload("p/a.txt", b"echo\nx\n")
    drain(pipeline, scratch, tmp_path / "runlog", S3WORKER_OUTPUT_PREFIX="results")
    # When the operator asks without --prefix, and with a wrong --prefix
    code, out, _ = cli(capsys, "results", "p/a.txt", "--stack", name)
    wrong, _, _ = cli(capsys, "results", "p/a.txt", "--stack", name, "--prefix", "")
    # Then the stack's parameter locates the results; the override is honoured
    assert code == 0
    assert f"s3://{pipeline.processed}/results/p/a.txt/" in out
    assert wrong == 3


def test_unknown_stack_and_missing_output_are_clear_errors(
    aws: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    # Given no stack called NAME, and a stack without s3worker's outputs
    bare = f"{name}-bare"
    boto3.client("cloudformation").create_stack(
        StackName=bare,
        TemplateBody=json.dumps({"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}),
    )
    # When the operator runs a command against each
    code, out, err = cli(capsys, "results", "k", "--stack", name)
    code2, _, err2 = cli(capsys, "status", "--stack", bare)
    # Then each prints one line naming the problem, no traceback, exit code 2
    assert code == 2
    assert err == f"s3worker: stack {name} not found in us-east-1\n"
    assert out == ""
    assert code2 == 2
    assert "has no output" in err2
    assert "Traceback" not in err + err2
