"""s3worker.ops.report.charts (pure): each processor's results as the charts of its report
section, on results the real processors wrote on real public files (tests/data), and on small
frames for the limits (stores, series) and gaps a chart must show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from report_samples import process_real_files
from s3worker.ops.report import Result, from_dir
from s3worker.ops.report.charts import (
    MAX_SERIES,
    MAX_STORES,
    SPARSE_POINTS,
    applogs,
    appointments,
    sales,
    sensors,
    with_gaps,
)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Result]]:
    root = tmp_path_factory.mktemp("results")
    process_real_files(root)
    return root, from_dir(root)


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


def test_no_tables_no_charts() -> None:
    empty = [Result("k", "sales", {})]
    assert (sales(empty), applogs(empty), sensors(empty), appointments(empty)) == ([], [], [], [])


def test_stores_beyond_the_tenth_are_summed_as_other_stores() -> None:
    # Given twelve stores, s00 selling most and s11 least
    stores = [f"s{n:02d}" for n in range(MAX_STORES + 2)]
    daily = pd.DataFrame({"dt": "2024-01-01", "store": stores,
                          "revenue": [100.0 - n for n in range(len(stores))]})  # fmt: skip
    charts = sales([Result("k", "sales", {}, {"daily_store.parquet": daily})])
    # Then the ten best are drawn one by one and the other two as one
    drawn = traces(charts, "Revenue by day and store")
    assert list(drawn) == [*stores[:MAX_STORES], "other stores"]
    assert list(drawn["other stores"].y) == [(100.0 - 10) + (100.0 - 11)]


def test_applogs_without_latencies_draw_no_latency_chart() -> None:
    minutes = pd.DataFrame({
        "minute": pd.date_range("2024-01-01", periods=3, freq="min"),
        "requests": [1, 2, 3], "status_5xx": [0, 1, 0], "status_4xx": [0, 0, 0],
        "p50_ms": [None] * 3, "p95_ms": [None] * 3, "p99_ms": [None] * 3,
    })  # fmt: skip
    charts = applogs([Result("app.log", "applogs", {}, {"per_minute.parquet": minutes})])

    assert [c.title for c in charts] == ["Requests per minute", "Errors per minute"]
    (line,) = traces(charts, "Requests per minute").values()
    assert line.mode == "lines+markers"  # three minutes: too few points for a bare line
    assert SPARSE_POINTS > 3


def hourly(device: str, metric: str, hours: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "device": device, "metric": metric,
        "hour": pd.date_range("2024-01-01", periods=hours, freq="h", tz="UTC"),
        "readings": 1, "mean": 1.0, "min": 0.0, "max": 2.0,
    })  # fmt: skip


def test_only_the_series_with_most_anomalies_are_charted_and_the_cut_is_noted() -> None:
    # Given more series than are charted, the last one with an anomaly
    names = [f"d{n:02d}" for n in range(MAX_SERIES + 1)]
    table = pd.concat([hourly(d, "t") for d in names], ignore_index=True)
    anomaly = pd.DataFrame({"device": [names[-1]], "metric": ["t"],
                            "timestamp": [pd.Timestamp("2024-01-01T01:00", tz="UTC")],
                            "reason": ["spike"], "value": [9.0], "score": [5.0]})  # fmt: skip
    charts = sensors([Result("k", "sensors", {}, {"hourly.parquet": table,
                                                  "anomalies.parquet": anomaly})])  # fmt: skip
    # Then the anomalous series comes first, the rest by name, and the last chart says so
    assert len(charts) == MAX_SERIES
    assert charts[0].title == f"{names[-1]} · t"
    assert charts[-1].title == f"{names[MAX_SERIES - 2]} · t"
    assert (
        charts[-1].note
        == f"{MAX_SERIES} of {MAX_SERIES + 1} series shown: those with the most anomalies"
    )
    assert all(c.note == "" for c in charts[:-1])
