"""The DuckDB script of bench/vs_duckdb/sensors.py computes what the sensors processor writes:
statistics, hourly aggregates and every anomaly, incident for incident."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd
from processing import run, sample

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from vs_duckdb.sensors import compare, query


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
