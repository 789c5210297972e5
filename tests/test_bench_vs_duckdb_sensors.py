"""The DuckDB script of bench/vs_duckdb/sensors.py computes what the sensors processor writes:
statistics, hourly aggregates and every anomaly, incident for incident."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from processing import run, sample

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from vs_duckdb.sensors import compare, measure, query


def test_duckdb_script_gives_the_processors_tables(tmp_path: Path) -> None:
    # given a sample with every kind of planted anomaly, read by the processor in chunks small
    # enough that windows, runs and incidents straddle chunk boundaries
    src, _ = sample(tmp_path, "sensors", 60_000)
    run("sensors", src, tmp_path / "processor", chunk_rows=7_919)
    # when DuckDB runs the bench's script on the same file
    (tmp_path / "duckdb").mkdir()
    with duckdb.connect() as con:
        con.execute(query(src, tmp_path / "duckdb"))
    # then each table holds the same rows with the same figures
    assert compare(tmp_path / "processor", tmp_path / "duckdb") == {
        "device_stats": True,
        "hourly": True,
        "anomalies": True,
    }
    anomalies = pd.read_parquet(tmp_path / "duckdb" / "anomalies.parquet")
    kinds = {"spike", "level_shift", "drift", "flatline", "gap", "out_of_range"}
    assert set(anomalies["reason"]) == kinds


def test_comparison_sees_a_changed_anomaly(tmp_path: Path) -> None:
    src, _ = sample(tmp_path, "sensors", 12_000)
    run("sensors", src, tmp_path / "a")
    run("sensors", src, tmp_path / "b")
    frame = pd.read_parquet(tmp_path / "b" / "anomalies.parquet")
    frame.loc[0, "score"] += 0.01
    frame.to_parquet(tmp_path / "b" / "anomalies.parquet")
    assert compare(tmp_path / "a", tmp_path / "b")["anomalies"] is False


def test_duckdb_stopped_after_the_timeout_factor_reports_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a factor so small that no DuckDB run can finish within it
    import vs_duckdb
    from vs_duckdb import _settle

    src, _ = sample(tmp_path, "sensors", 2_000)
    monkeypatch.setattr(vs_duckdb, "TIMEOUT_FACTOR", 1e-6)
    monkeypatch.setattr(_settle, "ENABLED", False)  # what is tested here is the timeout
    # when the bench measures the file
    row = measure(src, repeats=1)
    # then DuckDB is reported unfinished, with the ratio's bound instead of a ratio
    assert row["duckdb_s"] is None
    assert row["ratio"] is None
    assert row["duckdb_unfinished_after_s"] == round(row["processor_s"] * 1e-6, 1)
    assert row["ratio_below"] == pytest.approx(1e6, rel=0.01)
    assert row["same_outputs"] is None
    assert row["processor_s"] > 0
    # and every finished run has its CPU, the stopped one none
    assert row["processor_cpu_s"] > 0
    assert row["floor_cpu_s"] > 0
    assert row["duckdb_cpu_s"] is None
