"""`s3worker process --out DIR`: a run's results replace DIR only when the run succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3worker.exits import UsageError
from s3worker.outdir import fresh_output


def test_a_successful_run_replaces_the_earlier_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "old.parquet").write_text("old")
    with fresh_output(out) as staging:
        assert staging != out
        assert not any(staging.iterdir())
        (staging / "summary.json").write_text('{"new": 1}')
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left beside it


def test_a_failed_run_leaves_the_earlier_results_and_no_partial_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")

    def failing_run() -> None:
        with fresh_output(out) as staging:
            (staging / "half.parquet").write_text("partial")
            raise RuntimeError("the processor failed")

    with pytest.raises(RuntimeError):
        failing_run()
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("kind", ["not results", "a file", "a symlink"])
def test_what_is_not_earlier_results_is_never_replaced(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    if kind == "not results":
        out.mkdir()
        (out / "thesis.tex").write_text("years of work")
    elif kind == "a file":
        out.write_text("a file")
    else:
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    with (
        pytest.raises(UsageError, match=r"--out .*(not empty|not a directory)"),
        fresh_output(out),
    ):
        pytest.fail("the run must not start")
    assert out.exists() or out.is_symlink()
    if kind == "not results":
        assert (out / "thesis.tex").read_text() == "years of work"
