"""`s3worker report` (s3worker.ops.report): the page of a processed bucket (moto server over
HTTP) and of local folders, on results the real processors wrote on real public files. What
each part does: tests/test_report_sources.py, test_report_charts.py, test_report_page.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from opstack import cli, create_stack
from processing import run
from procs import Pipeline
from report_samples import DATA, REAL_FILES, process_real_files
from s3worker.config import Settings
from s3worker.contract import Layout
from s3worker.ops.report import Result, from_bucket, from_dir
from s3worker.retry import RetryPolicy
from s3worker.worker import serve
from tenacity import wait_none


def drain(pipeline: Pipeline, scratch: Path, **env: Any) -> None:
    """The real daemon with the built-in processors, in-process, until the queue is empty."""
    settings = Settings.from_env(pipeline.env(scratch, **env))
    asyncio.run(serve(settings, retry=RetryPolicy(3, wait=wait_none())))


def assert_same(a: list[Result], b: list[Result]) -> None:
    assert [(r.source, r.processor, dict(r.summary)) for r in a] == [
        (r.source, r.processor, dict(r.summary)) for r in b
    ]
    for x, y in zip(a, b, strict=True):
        assert sorted(x.tables) == sorted(y.tables)
        for name in x.tables:
            pd.testing.assert_frame_equal(x.tables[name], y.tables[name])


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Result]]:
    root = tmp_path_factory.mktemp("results")
    process_real_files(root)
    return root, from_dir(root)


def test_report_of_the_processed_bucket(
    aws: str, name: str, scratch: Path, tmp_path: Path, local: tuple[Path, list[Result]],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Given real files processed by the daemon into a stack whose OutputPrefix is "results"
    pipeline = create_stack(name, prefix="results")
    for _, path in REAL_FILES:
        pipeline.upload(path, (DATA / path).read_bytes())
    drain(pipeline, scratch, S3WORKER_OUTPUT_PREFIX="results")
    # When the operator writes the report
    out = tmp_path / "site" / "report.html"
    code, text, _ = cli(capsys, "report", "--stack", name, "--out", str(out))
    # Then one page holds every input and its charts: four of sales and logs' latency... ten
    assert code == 0
    assert f"5 input(s) from s3://{pipeline.processed}/results" in text
    page = out.read_text()
    assert all(path in page for _, path in REAL_FILES)
    assert page.count('class="plotly-graph-div"') == 10
    # And what it read from S3 is what the same processors write locally for the same files
    s3 = boto3.client("s3")
    assert_same(from_bucket(s3, pipeline.processed, Layout("results")), local[1])


def test_report_shows_only_the_newest_version(
    aws: str, name: str, scratch: Path, tmp_path: Path
) -> None:
    # Given a sales file processed, then overwritten with its first 100 rows and processed
    pipeline = create_stack(name)
    src = DATA / "sales/supermarket_sales.csv"
    pipeline.upload("sales/day.csv", src.read_bytes())
    drain(pipeline, scratch)
    short = tmp_path / "day.csv"
    short.write_text("".join(src.read_text().splitlines(keepends=True)[:101]))
    pipeline.upload("sales/day.csv", short.read_bytes())
    drain(pipeline, scratch)
    # When the report reads the bucket
    results = from_bucket(boto3.client("s3"), pipeline.processed, Layout())
    # Then it holds the new version's results only, as the processor writes them
    run("sales", short, tmp_path / "out")
    (expected,) = from_dir(tmp_path / "out")
    assert_same(results, [Result("sales/day.csv", "sales", expected.summary, expected.tables)])
    assert results[0].summary["lines"] == 100


def test_report_of_an_empty_bucket_says_so(
    aws: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack with nothing processed
    pipeline = create_stack(name)
    # When the report is written
    out = tmp_path / "r.html"
    code, text, _ = cli(capsys, "report", "--stack", name, "--out", str(out))
    # Then it is written, says there are no results, and exits 3 (not ready yet)
    assert code == 3
    assert f"0 input(s) from s3://{pipeline.processed}/" in text
    assert f"No results under s3://{pipeline.processed}/ yet." in out.read_text()


def test_from_dir_needs_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a folder with no summary.json, and a path that does not exist
    (tmp_path / "empty").mkdir()
    # When the report is asked for either
    code, _, err = cli(capsys, "report", "--from-dir", str(tmp_path / "empty"))
    code2, _, err2 = cli(capsys, "report", "--from-dir", str(tmp_path / "nowhere"))
    # Then both are usage errors that say what is missing, and no page is written
    assert (code, code2) == (2, 2)
    assert "no summary.json in it or below; `s3worker process FILE --out DIR`" in err
    assert "no such directory" in err2
    assert not Path("s3worker-report.html").exists()


def test_without_the_ops_extra_it_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an install without plotly (a worker's: its bundle installs no extras)
    import s3worker.ops

    for module in [m for m in sys.modules if m.startswith(("plotly", "s3worker.ops.report"))]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.delattr(s3worker.ops, "report", raising=False)
    monkeypatch.setitem(sys.modules, "plotly", None)  # what `import plotly` then fails on
    # When a report is asked for
    code, _, err = cli(capsys, "report", "--from-dir", str(tmp_path))
    # Then it says which extra to install, as a usage error
    assert code == 2
    assert "needs the operator extra (plotly is not installed): pip install 's3worker[ops]'" in err
