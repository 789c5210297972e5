"""Sensors: planted anomalies are found, chunking changes nothing, every input format reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from processing import run, sample, scores, table

ANOMALY_ORDER = ["device", "metric", "reason", "timestamp"]


def _keys(anomalies: pd.DataFrame, reason: str) -> set[tuple[str, ...]]:
    rows = anomalies[anomalies["reason"] == reason]
    stamps = rows["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if reason == "gap":  # one silence of a device shows in each of its metrics
        return set(zip(rows["device"], stamps, strict=True))
    return set(zip(rows["device"], rows["metric"], stamps, strict=True))


@pytest.mark.parametrize("reason", ["spike", "level_shift", "out_of_range", "flatline", "gap"])
def test_planted_anomalies_are_found(tmp_path: Path, reason: str) -> None:
    # given a sample with planted spikes, level shifts, out-of-range values, flat lines, gaps
    src, truth = sample(tmp_path, "sensors", 60_000)
    # when it is processed
    run("sensors", src, tmp_path / "out")
    # then each kind is found with high precision and recall
    found = _keys(pd.read_parquet(tmp_path / "out" / "anomalies.parquet"), reason)
    precision, recall, msg = scores(found, map(tuple, truth.planted[reason]))
    assert recall >= 0.9, f"{reason}: {msg}"
    assert precision >= 0.8, f"{reason}: {msg}"


def test_planted_drifts_are_found_where_they_ramp(tmp_path: Path) -> None:
    # given a sample with drifts planted over the daily swing (4 h ramps, then held)
    src, truth = sample(tmp_path, "sensors", 60_000)
    run("sensors", src, tmp_path / "out")
    anomalies = pd.read_parquet(tmp_path / "out" / "anomalies.parquet")
    drifts = anomalies[anomalies["reason"] == "drift"]
    # then each planted drift is overlapped by a drift of its series, and no other is reported
    planted = [(d, m, pd.Timestamp(a), pd.Timestamp(b)) for d, m, a, b in truth.planted["drift"]]
    assert len(planted) >= 2
    hits = [
        (drifts["device"] == d) & (drifts["metric"] == m) & (drifts["timestamp"] <= b)
        & (drifts["until"] >= a)
        for d, m, a, b in planted
    ]  # fmt: skip
    assert all(h.any() for h in hits)
    assert pd.concat(hits, axis=1).any(axis=1).all(), drifts


def test_malformed_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    src, truth = sample(tmp_path, "sensors", 30_000)
    result = run("sensors", src, tmp_path / "out")
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    by_record = rejected.dropna(subset=["record"])
    assert len(rejected) - len(by_record) == truth.broken_lines
    assert len(by_record) == len(truth.planted["malformed"])
    assert set(by_record["reason"]) == {
        "device: missing",
        "timestamp: unparseable",
        "value: not a number",
    }
    assert result.rows["rejected.parquet"] == len(rejected)
    assert result.summary["rejected_rows"] == len(rejected)


def test_small_chunks_give_the_same_outputs_as_one_chunk(tmp_path: Path) -> None:
    # given a file, read whole and in chunks of 997 rows (windows straddle every boundary)
    src, _ = sample(tmp_path, "sensors", 40_000)
    whole = run("sensors", src, tmp_path / "whole", chunk_rows=1_000_000)
    small = run("sensors", src, tmp_path / "small", chunk_rows=997)
    # then every output is the same
    assert whole.rows == small.rows
    a, b = (
        table(tmp_path / "whole", "anomalies.parquet", ANOMALY_ORDER),
        table(tmp_path / "small", "anomalies.parquet", ANOMALY_ORDER),
    )
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    for name, order in (
        ("device_stats.parquet", ["device", "metric"]),
        ("hourly.parquet", ["device", "metric", "hour"]),
    ):
        pd.testing.assert_frame_equal(
            table(tmp_path / "whole", name, order),
            table(tmp_path / "small", name, order),
            check_exact=False,
            rtol=1e-9,
        )


@pytest.mark.parametrize(("fmt", "gzip"), [("json", False), ("jsonl", True), ("csv", True)])
def test_every_format_gives_the_same_anomalies(tmp_path: Path, fmt: str, gzip: bool) -> None:
    src, _ = sample(tmp_path, "sensors", 12_000, fmt=fmt, gzip=gzip)
    ref, _ = sample(tmp_path, "sensors", 12_000)
    run("sensors", src, tmp_path / "fmt", chunk_rows=5_000)
    run("sensors", ref, tmp_path / "ref")
    pd.testing.assert_frame_equal(
        table(tmp_path / "fmt", "anomalies.parquet", ANOMALY_ORDER).drop(columns="record"),
        table(tmp_path / "ref", "anomalies.parquet", ANOMALY_ORDER).drop(columns="record"),
    )


def test_wide_format_is_read_one_column_per_metric(tmp_path: Path) -> None:
    rows = ["machine_id,timestamp,temperature,humidity,location"]
    rows += [f"m1,2024-01-01T00:{i:02d}:00Z,{20 + (i % 3) * 0.1:.1f},50,hall" for i in range(59)]
    rows += ["m1,2024-01-01T00:59:00Z,400,50,hall", "m2,not a time,1,2,hall"]
    src = tmp_path / "wide.csv"
    src.write_text("\n".join(rows) + "\n")
    result = run("sensors", src, tmp_path / "out")
    stats = table(tmp_path / "out", "device_stats.parquet", ["metric"])
    assert stats["metric"].tolist() == ["humidity", "temperature"]
    anomalies = pd.read_parquet(tmp_path / "out" / "anomalies.parquet")
    assert anomalies["reason"].tolist().count("out_of_range") == 1
    assert "flatline" in set(anomalies["reason"])  # humidity never moves
    assert result.summary["rejected_rows"] == 1


def test_sub_millisecond_timestamps_are_kept_to_the_millisecond(tmp_path: Path) -> None:
    # given readings stamped to the microsecond
    src = tmp_path / "micro.csv"
    rows = [f"2024-06-01T12:00:{s:02d}.{s * 1000 + 675:06d}Z,p1,{20 + s % 3}" for s in range(40)]
    src.write_text("timestamp,device,temperature\n" + "\n".join(rows) + "\n")
    # when they are processed
    run("sensors", src, tmp_path / "out")
    # then the series' first and last times are those readings', to the millisecond
    stats = pd.read_parquet(tmp_path / "out" / "device_stats.parquet")
    assert stats["first_seen"].tolist() == [pd.Timestamp("2024-06-01T12:00:00.000Z")]
    assert stats["last_seen"].tolist() == [pd.Timestamp("2024-06-01T12:00:39.039Z")]
