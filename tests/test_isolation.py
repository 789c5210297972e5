"""A job's memory is bounded on its own (RLIMIT_AS per worker process) and a job that hits the
bound, or whose process dies, fails alone: the file running beside it keeps running."""

from __future__ import annotations

from pathlib import Path

import pytest
from procs import Pipeline, echo_registry, runs
from s3worker.processors.registry import Registry
from test_races import in_background, wait_for
from test_worker import run_worker

# Room for pandas and pyarrow's reserved address space (~1.8 GiB), not for a bomb.
JOB_MEMORY_MB = 2560


@pytest.mark.parametrize("bomb", ["echo bomb 4096", "echo die"], ids=["memory-error", "killed"])
def test_a_bomb_fails_alone_and_its_neighbour_keeps_running(
    aws: str, name: str, scratch: Path, tmp_path: Path, bomb: str
):
    # Given a valid file that is still running when a memory bomb beside it blows up
    pipeline = Pipeline.create(name)
    gate = tmp_path / "gate"
    pipeline.upload("ok/valid.txt", f"echo gate {gate}\nrow\n".encode())
    pipeline.upload("bomb/file.txt", f"{bomb}\n".encode())
    report_seen = lambda: bool(pipeline.error_reports())  # noqa: E731

    def open_gate_after_the_bomb() -> None:
        wait_for(Path(f"{gate}.started").exists, "the valid file to start")
        wait_for(report_seen, "the bomb's error report")
        gate.touch()

    join = in_background(open_gate_after_the_bomb)
    runlog = tmp_path / "runlog"
    run_worker(
        pipeline, scratch, echo_registry(runlog),
        S3WORKER_CONCURRENCY=2, S3WORKER_JOB_MEMORY_MB=JOB_MEMORY_MB,
    )  # fmt: skip
    join()
    # Then the bomb is reported as too large for this worker, with what to do
    report = pipeline.assert_failed_once("JobTooLargeError")
    assert f"{JOB_MEMORY_MB:,} MiB" in report["error"]["message"]
    assert "instance type with more memory" in report["error"]["message"]
    # And the neighbour finished on its first delivery, in the process it started in
    manifest = pipeline.manifest("ok/valid.txt")
    assert manifest is not None
    assert manifest["message"]["receive_count"] == 1
    assert runs(runlog).count("ok/valid.txt") == 1


def test_a_million_column_header_is_too_large_and_the_valid_file_beside_it_is_done(
    aws: str, name: str, scratch: Path, tmp_path: Path
):
    from s3worker.samples import write_sample

    # Given a sales file with a million-column header (8 MiB) next to a valid sales file
    pipeline = Pipeline.create(name)
    header = "date,store,ticket_id,product,quantity,unit_price,revenue,"
    header += ",".join(f"c{i}" for i in range(1_000_000))
    pipeline.upload("sales/bomb.csv", f"{header}\n2024-01-01,S1,T1,P,1,2.5,2.5\n".encode())
    valid = tmp_path / "valid.csv"
    write_sample("sales", 200, valid, seed=3)
    pipeline.upload("sales/valid.csv", valid.read_bytes())
    # When a worker routes both to the sales processor
    run_worker(
        pipeline, scratch, Registry(),
        S3WORKER_ROUTES="sales/=sales", S3WORKER_JOB_MEMORY_MB=JOB_MEMORY_MB,
    )  # fmt: skip
    # Then the bomb has one report and one DLQ message, and the valid file its manifest
    report = pipeline.assert_failed_once()
    assert report["input"]["key"] == "sales/bomb.csv"
    assert report["error"]["class"] in ("JobTooLargeError", "BadDataError")
    assert pipeline.manifest("sales/valid.csv") is not None
