"""`s3worker report`: the results it reads (moto server over HTTP, and local folders) and
what its charts hold, on results the real processors wrote on real public files."""

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
from s3worker.ops.report.charts import applogs, appointments, sales, sensors, with_gaps
from s3worker.ops.report.page import render
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


def traces(charts: list[Any], title: str) -> dict[str, Any]:
    (chart,) = [c for c in charts if c.title == title]
    return {t.name: t for t in chart.figure.data}


def of(results: list[Result], processor: str) -> list[Result]:
    return [r for r in results if r.processor == processor]


def test_sales_charts_hold_the_results(local: tuple[Path, list[Result]]) -> None:
    results = of(local[1], "sales")
    charts = sales(results)
    ((summary, tables),) = [(r.summary, r.tables) for r in results]
    by_day = traces(charts, "Revenue by day")["revenue"]
    assert sum(by_day.y) == pytest.approx(summary["revenue"])
    assert len(by_day.x) == summary["days"] == 89
    stores = traces(charts, "Revenue by day and store")
    assert sorted(stores) == ["A", "B", "C"]
    assert sum(sum(t.y) for t in stores.values()) == pytest.approx(summary["revenue"])
    top = traces(charts, "Top products by revenue")["revenue"]
    ranked = tables["top_products.parquet"].sort_values("rank")["product"]
    assert list(top.y)[::-1] == ranked.tolist()  # best first, drawn bottom-up
    assert list(top.y)[-1] == next(iter(summary["top_products"])) == "Food and beverages"


def test_applogs_charts_one_line_per_input(local: tuple[Path, list[Result]]) -> None:
    results = of(local[1], "applogs")
    charts = applogs(results)
    requests = traces(charts, "Requests per minute")
    for r in results:
        line = requests[f"{r.source} requests"]
        assert pd.Series(line.y).sum() == r.summary["requests"]
    latency = traces(charts, "Latency per minute")
    assert sorted(latency) == [f"applogs/alb_awsdocs.log {p}" for p in ("p50", "p95", "p99")]


def test_sensor_charts_mark_every_anomaly(local: tuple[Path, list[Result]]) -> None:
    (result,) = of(local[1], "sensors")
    charts = sensors([result])
    assert len(charts) == result.summary["series"] == 2
    drawn = [t.name for c in charts for t in c.figure.data if t.name and "hourly" not in t.name]
    anomalies = result.tables["anomalies.parquet"]
    counts = anomalies.groupby(["metric", "reason"]).size()
    assert sorted(drawn) == sorted(f"{reason} ({n})" for (_, reason), n in counts.items())
    assert counts.sum() == len(anomalies) == result.summary["anomalies"] == 8


def test_sensor_gaps_span_the_silence() -> None:
    # Given a series with a reading gap of two hours (the gap's value is its length)
    hours = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")
    hourly = pd.DataFrame({"device": "d", "metric": "t", "hour": hours, "readings": 1,
                           "mean": 20.0, "min": 19.0, "max": 21.0})  # fmt: skip
    gap = pd.DataFrame({"device": ["d"], "metric": ["t"], "timestamp": [hours[1]],
                        "until": [hours[3]], "reason": ["gap"], "value": [7200.0],
                        "expected": [3600.0], "score": [2.0], "record": [2]})  # fmt: skip
    result = Result("k", "sensors", {}, {"hourly.parquet": hourly, "anomalies.parquet": gap})
    # When charted, Then the gap is drawn from its start to its end along the series' bottom
    (chart,) = sensors([result])
    (drawn,) = [t for t in chart.figure.data if t.name == "gap (1)"]
    assert list(drawn.x) == [hours[1], hours[3], None]
    assert list(drawn.y) == [19.0, 19.0, None]


def test_appointment_charts_count_bookings_and_no_shows(local: tuple[Path, list[Result]]) -> None:
    (result,) = of(local[1], "appointments")
    charts = appointments([result])
    bars = traces(charts, "Bookings by day")
    s = result.summary
    assert (sum(bars["attended"].y), sum(bars["no-show"].y)) == (s["attended"], s["no_shows"])
    assert len(bars["attended"].x) == s["days"] == 30
    rate = next(iter(traces(charts, "No-show rate by day").values()))
    assert max(rate.y) > s["no_show_rate"] > min(rate.y)


def test_lines_break_where_minutes_are_missing() -> None:
    minutes = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:01", "2024-01-01 00:05"])
    frame = pd.DataFrame({"minute": minutes, "requests": [1, 2, 3]})
    gapped = with_gaps(frame, "minute", pd.Timedelta(minutes=1))
    assert gapped["minute"].dt.strftime("%H:%M").tolist() == ["00:00", "00:01", "00:02", "00:05"]
    assert gapped["requests"].isna().tolist() == [False, False, True, False]


def test_text_from_results_cannot_break_out_of_the_page() -> None:
    # Given results whose key and store name hold markup
    evil = "</script><script>alert(1)</script>"
    stores = pd.DataFrame({"dt": ["2024-01-01"], "store": [evil], "revenue": [1.0],
                           "units": [1.0], "tickets": [1], "lines": [1]})  # fmt: skip
    result = Result(f"in/{evil}.csv", "sales", {"note": evil}, {"daily_store.parquet": stores})
    # When the page is rendered
    text = render([result], "s3://b/", "now")
    # Then the markup is text: escaped in the HTML, and as JSON data inside the chart's script
    assert evil not in text
    assert "in/&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;.csv" in text
    assert text.count("<script>alert") == 0
