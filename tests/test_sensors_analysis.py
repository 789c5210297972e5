"""The sensors processor's pandas side: long or wide readings in, series named and numbered,
rows without a usable reading rejected with their reasons, the outputs written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from s3worker.errors import BadDataError
from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.options import Options
from s3worker.processors.sensors import RANGES
from s3worker.processors.sensors.analysis import Series, run, series_name


def _run(
    tmp_path: Path, text: str, key: str = "plant/readings.csv", **options: Any
) -> tuple[ProcessResult, Path]:
    src = tmp_path / "readings.csv"
    src.write_text(text)
    out = tmp_path / "out"
    ctx = JobContext(key=key, size=src.stat().st_size, options=Options(**options))
    return run(src, out, ctx), out


def _minutes(n: int) -> list[str]:
    stamps = pd.date_range("2024-06-01T00:00:00Z", periods=n, freq="min")
    return [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in stamps]


def test_a_file_without_a_device_column_is_named_after_its_key() -> None:
    assert series_name("plant/line-7/press.csv.gz") == "press"
    assert series_name("a/b/flow.jsonl") == "flow"
    assert series_name("x.ndjson") == "x"
    assert series_name("dir/.csv") == "dir/.csv"  # nothing left: the key itself


def text(values: list[str]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, pa.string())])


def test_series_ids_are_kept_across_chunks_with_their_metrics_limits() -> None:
    series = Series()
    first = series.ids_of(
        text(["m1", "m2", "m1"]), text(["Temperature", "flow", "flow"]), np.array([20.0, 3.0, 4.0])
    )
    second = series.ids_of(text(["m2", "m3"]), text(["flow", "rpm"]), np.array([5.0, 100.0]))
    # then each (device, metric) has one id, the same in every chunk
    pairs = [("m1", "Temperature"), ("m2", "flow"), ("m1", "flow"), ("m2", "flow"), ("m3", "rpm")]
    ids = [*first.tolist(), *second.tolist()]
    assert {p: i for p, i in zip(pairs, ids, strict=True)} == series.ids
    assert sorted(series.ids.values()) == [0, 1, 2, 3]
    assert [(series.devices[i], series.metrics[i]) for i in ids] == pairs
    # and the state knows each series: limits by metric name (none for flow), first value
    state = series.state
    assert state.size == 4
    t, f, r = (
        series.ids[("m1", "Temperature")],
        series.ids[("m2", "flow")],
        series.ids[("m3", "rpm")],
    )
    assert (state.lo[t], state.hi[t]) == RANGES["temperature"]
    assert (state.lo[f], state.hi[f]) == (-np.inf, np.inf)
    assert (state.lo[r], state.hi[r]) == RANGES["rpm"]
    assert [state.ref[series.ids[p]] for p in pairs] == [20.0, 3.0, 4.0, 3.0, 100.0]


def test_long_readings_give_stats_hourly_figures_and_anomalies(tmp_path: Path) -> None:
    # given a temperature series with one reading past its physical limit
    values = [20 + (i % 5) * 0.1 for i in range(90)]
    values[70] = 400.0
    lines = [f"m1,{t},temperature,{v}" for t, v in zip(_minutes(90), values, strict=True)]
    # and a flow series silent for 30 minutes after its 60th reading
    stamps = _minutes(100)
    lines += [f"m2,{t},flow,{i % 4}" for i, t in enumerate(stamps[:60] + stamps[90:])]
    result, out = _run(tmp_path, "device,timestamp,metric,value\n" + "\n".join(lines) + "\n")
    stats = pd.read_parquet(out / "device_stats.parquet")
    assert stats[["device", "metric", "readings", "anomalies"]].values.tolist() == [
        ["m1", "temperature", 90, 1],
        ["m2", "flow", 70, 1],
    ]
    anomalies = pd.read_parquet(out / "anomalies.parquet").sort_values("device")
    assert anomalies[
        ["device", "metric", "reason", "value", "expected", "record"]
    ].values.tolist() == [
        ["m1", "temperature", "out_of_range", 400.0, 150.0, 70],
        ["m2", "flow", "gap", 31 * 60.0, 60.0, 90 + 59],
    ]
    # the times an anomaly spans (a gap: from the reading before it to the one after)
    assert anomalies["timestamp"].tolist() == [pd.Timestamp(stamps[70]), pd.Timestamp(stamps[59])]
    assert anomalies["until"].tolist() == [pd.Timestamp(stamps[70]), pd.Timestamp(stamps[90])]
    hourly = pd.read_parquet(out / "hourly.parquet")
    assert hourly["readings"].tolist() == [60, 30, 60, 10]
    s = result.summary
    assert (s["readings"], s["devices"], s["series"], s["anomalies"]) == (160, 2, 2, 2)
    assert s["anomalies_by_reason"] == {"gap": 1, "out_of_range": 1}
    assert s["encoding"] == "utf-8"
    assert result.rows == {
        "rejected.parquet": 0,
        "anomalies.parquet": 2,
        "device_stats.parquet": 2,
        "hourly.parquet": 4,
    }


def test_long_rows_without_a_usable_reading_are_rejected_with_reasons(tmp_path: Path) -> None:
    text = (
        "device,timestamp,metric,value\n"
        "m1,2024-06-01T00:00:00Z,t,1\n"
        ",2024-06-01T00:01:00Z,t,1\n"
        "m1,,t,1\n"
        "m1,soon,t,1\n"
        "m1,2300-01-01T00:00:00Z,t,1\n"
        "m1,2024-06-01T00:02:00Z,,1\n"
        "m1,2024-06-01T00:03:00Z,t,\n"
        "m1,2024-06-01T00:04:00Z,t,hot\n"
        ",,,\n"
    )
    result, out = _run(tmp_path, text)
    rejected = pd.read_parquet(out / "rejected.parquet")
    assert rejected["record"].tolist() == list(range(1, 9))
    assert rejected["reason"].tolist() == [
        "device: missing",
        "timestamp: missing",
        "timestamp: unparseable",
        "timestamp: out of range (1900-01-01..2200-01-01)",
        "metric: missing",
        "value: missing",
        "value: not a number",
        "device: missing; timestamp: missing; metric: missing; value: missing",
    ]
    assert result.summary["readings"] == 1
    assert result.summary["rejected_rows"] == 8


def test_wide_readings_are_one_series_per_numeric_column(tmp_path: Path) -> None:
    # given two measurements, a unit column and a label column, and no device column
    rows = [f"{t},{20 + i % 3},{50 + i % 2},C,0" for i, t in enumerate(_minutes(40))]
    rows += ["2024-06-01T01:00:00Z,hot,,C,0", "2024-06-01T01:01:00Z,,,C,1"]
    rows += ["2024-06-01T01:02:00Z,21,,C,0"]  # a temperature without a humidity
    result, out = _run(
        tmp_path,
        "timestamp,temperature,humidity,unit,anomaly\n" + "\n".join(rows) + "\n",
        key="site/press-4.csv",
    )
    stats = pd.read_parquet(out / "device_stats.parquet")
    assert stats[["device", "metric", "readings"]].values.tolist() == [
        ["press-4", "humidity", 40],
        ["press-4", "temperature", 41],
    ]
    assert stats["mean"].tolist() == pytest.approx([50.5, 21 - 1 / 41])
    rejected = pd.read_parquet(out / "rejected.parquet")
    assert rejected["reason"].tolist() == ["temperature: not a number; no readings", "no readings"]
    assert result.summary["devices"] == 1


def test_a_lone_value_column_is_one_series_named_value(tmp_path: Path) -> None:
    rows = [f"{t},{i % 7}" for i, t in enumerate(_minutes(30))]
    _, out = _run(tmp_path, "timestamp,value\n" + "\n".join(rows) + "\n", key="flow.csv")
    stats = pd.read_parquet(out / "device_stats.parquet")
    assert stats[["device", "metric", "readings", "max"]].values.tolist() == [
        ["flow", "value", 30, 6.0]
    ]


def test_a_date_and_a_time_column_make_the_timestamp(tmp_path: Path) -> None:
    text = "device;data;hora;leitura\np1;01/06/2024;10:15;2,5\np1;01/06/2024;10:45;3,5\n"
    _, out = _run(tmp_path, text)
    stats = pd.read_parquet(out / "device_stats.parquet")
    assert stats["first_seen"].tolist() == [pd.Timestamp("2024-06-01T10:15:00Z")]
    assert stats["last_seen"].tolist() == [pd.Timestamp("2024-06-01T10:45:00Z")]
    assert stats["mean"].tolist() == [3.0]


def test_a_timezone_option_reads_naive_times_as_local(tmp_path: Path) -> None:
    text = "device,timestamp,value\np1,2024-06-01 10:00:00,1\n"
    _, out = _run(tmp_path, text, timezone="America/Recife")
    stats = pd.read_parquet(out / "device_stats.parquet")
    assert stats["first_seen"].tolist() == [pd.Timestamp("2024-06-01T13:00:00Z")]


def test_a_file_with_nothing_to_measure_is_bad_data(tmp_path: Path) -> None:
    with pytest.raises(BadDataError, match="sensors need a value column") as raised:
        _run(tmp_path, "device,timestamp,status\np1,2024-06-01T00:00:00Z,ok\n")
    assert "columns seen: ['device', 'timestamp', 'status']" in str(raised.value)
    assert "mapping.value=COLUMN" in str(raised.value)
