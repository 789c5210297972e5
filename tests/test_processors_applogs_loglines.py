"""applogs.loglines: every line once, in order, numbered, in runs of at most chunk_rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3worker.processors.applogs import loglines
from s3worker.processors.applogs.loglines import iter_log_lines


def test_lines_come_in_order_in_runs_of_at_most_chunk_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a log the reader splits into several blocks
    monkeypatch.setattr(loglines, "BLOCK_BYTES", 1 << 10)
    lines = [
        f'10.0.0.{i % 250} - - [17/May/2015:10:05:03 +0000] "GET /{i} HTTP/1.1" 200 1'
        for i in range(500)
    ]
    src = tmp_path / "access.log"
    src.write_text("\n".join(lines) + "\n")
    # when
    runs = list(iter_log_lines(src, 7, "utf-8"))
    # then
    assert all(len(run) <= 7 for _, run, _ in runs)
    assert len({len(run) for _, run, _ in runs}) > 1  # cut where the blocks end
    expected = 0
    for start, run, _ in runs:
        assert start == expected
        expected += len(run)
    assert [line for _, run, _ in runs for line in run.to_pylist()] == lines
