"""`make demo` end to end: it must keep working, finish, and leave nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_and_cleans_up():
    # When the demo runs (in its own process group, so any straggler would be found)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3WORKER_"))}
    result = subprocess.run(
        [sys.executable, "-m", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        start_new_session=True,
    )
    out = result.stdout
    # Then it succeeded through every step
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for n in range(1, 9):
        assert f"[{n}/8]" in out
    # The Lambda started the stopped canary first, then launched a second worker
    assert "'started': ['i-" in out
    assert "'launched': ['i-" in out
    # Every sample was processed, the corrupt one reported, and every worker stopped itself
    assert out.count("s3://s3worker-demo-processedbucket") >= 7
    assert "FAILED BadDataError" in out
    assert "double bookings" in out
    assert "anomalies (" in out
    idle = out.split("[7/8]")[1].split("[8/8]")[0]
    assert idle.count(": stopped") == 2
    assert "running" not in idle.split("reconciler")[0]
    # And none of the daemons it started (nor their worker processes' group) is left running
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", out)]
    assert len(pids) == 3  # the canary's check, then two workers
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def test_a_worker_that_dies_before_ready_fails_fast_and_is_not_left_behind(tmp_path: Path):
    from types import SimpleNamespace

    from demo.__main__ import boot

    # Given an env file without the queue: the daemon exits at once with a config error
    aws = SimpleNamespace(endpoint="http://127.0.0.1:9")
    env_file = {"S3WORKER_OUTPUT_BUCKET": "b", "S3WORKER_QUEUE_URL": ""}
    # When the demo boots it, Then it says so instead of waiting, and no process remains
    with pytest.raises(RuntimeError, match=r"exited \(2\) before READY=1"):
        boot("i-dead", env_file, aws, tmp_path)  # type: ignore[arg-type]
    journal = next(tmp_path.glob("i-dead/boot-*/journal.jsonl")).read_text()
    assert "S3WORKER_QUEUE_URL" in journal
