"""The bounded chaos run: the real daemon behind the fault proxy, killed and restarted, fed
good and hostile inputs; every invariant holds at the end. `make chaos` runs the long version."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos import run_chaos


@pytest.mark.slow
def test_faults_kills_and_hostile_inputs_lose_and_duplicate_nothing(aws: str, tmp_path: Path):
    # Given 24 good files, the hostile corpus, 5% S3/SQS errors with latency and lost
    # responses, and 6 SIGKILL/SIGTERM of the daemon's process group at random moments
    figures = run_chaos(aws, tmp_path, files=24, kills=6, seed=5, rates=0.05, deadline_s=150)
    print("\n".join(figures.lines()))

    # Then every object has exactly one manifest or error report (or was redriven by SQS to
    # the DLQ), no message is lost, nothing is written outside scratch, no bad exit
    assert figures.violations == []
    assert figures.lost == 0
    assert figures.duplicated == 0
    # And the run really was hostile
    assert sum(figures.kills.values()) == 6
    assert len(figures.faults) >= 4
    assert figures.manifests >= 24
    # the corrupt gzip, the binary file and the over-long key at least (wrong encodings are
    # decoded, not failed, since the readers detect them)
    assert figures.error_reports >= 3
