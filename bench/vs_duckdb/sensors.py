"""The sensors processor side by side with DuckDB over the same CSV.

DuckDB's query is what a data engineer would write instead: parse the CSV once (skipping
rows of the wrong shape, as the processor rejects them), drop the rows without a device, a
metric, a parseable timestamp or a numeric value, and write the processor's two aggregate
tables as Parquet: per-series statistics (readings, mean, sample std, min, max, first and
last seen) and hourly aggregates (readings, mean, min, max). The anomaly scan (robust
baselines, level shifts, drifts, flat lines, gaps per series) has no SQL equivalent, so
DuckDB does less work than the processor: the ratio is the processor's full job against
DuckDB's aggregates alone. Both tables are compared (counts, extremes and times exactly,
means and deviations to 1e-9 relative).

    .venv/bin/python bench/vs_duckdb/sensors.py FILE
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import s3worker.processors.sensors.analysis  # noqa: F401  (imported before the clock starts)
from s3worker.processors.base import JobContext, execute
from s3worker.processors.registry import registry

KIND = "sensors"  # bench/bench_vs_duckdb.py's interface (vs_duckdb/__init__.py)

READINGS = """
CREATE TEMP TABLE readings AS
SELECT device, metric, ts, v AS value FROM (
    SELECT device, metric, TRY_CAST("timestamp" AS TIMESTAMPTZ) AS ts,
           TRY_CAST("value" AS DOUBLE) AS v
    FROM read_csv(?, all_varchar = true, header = true, ignore_errors = true)
)
WHERE device IS NOT NULL AND metric IS NOT NULL AND ts IS NOT NULL
  AND v IS NOT NULL AND NOT isnan(v)
"""
STATS = """
COPY (
    SELECT device, metric, count(*) AS readings, avg(value) AS mean,
           stddev_samp(value) AS std, min(value) AS min, max(value) AS max,
           date_trunc('millisecond', min(ts)) AS first_seen,
           date_trunc('millisecond', max(ts)) AS last_seen
    FROM readings GROUP BY device, metric ORDER BY device, metric
) TO '{out}' (FORMAT parquet)
"""
HOURLY = """
COPY (
    SELECT device, metric, date_trunc('hour', ts) AS hour, count(*) AS readings,
           avg(value) AS mean, min(value) AS min, max(value) AS max
    FROM readings GROUP BY device, metric, hour ORDER BY device, metric, hour
) TO '{out}' (FORMAT parquet)
"""
KEYS = {"device_stats": ["device", "metric"], "hourly": ["device", "metric", "hour"]}
EXACT = ["readings", "min", "max", "first_seen", "last_seen"]


def run_processor(path: Path, out: Path) -> tuple[float, float]:
    ctx = JobContext(key=path.name, size=path.stat().st_size)
    wall, cpu = time.perf_counter(), time.process_time()
    execute(registry.get("sensors"), path, out, ctx)
    return time.perf_counter() - wall, time.process_time() - cpu


def run_duckdb(path: Path, out: Path) -> tuple[float, float]:
    out.mkdir(parents=True, exist_ok=True)
    wall, cpu = time.perf_counter(), time.process_time()
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(READINGS, [str(path)])
        con.execute(STATS.format(out=out / "device_stats.parquet"))
        con.execute(HOURLY.format(out=out / "hourly.parquet"))
    return time.perf_counter() - wall, time.process_time() - cpu


def same(table: str, ours: Path, theirs: Path) -> bool:
    """Both tables hold the same groups with the same figures."""
    a, b = (pd.read_parquet(d / f"{table}.parquet") for d in (ours, theirs))
    a, b = (f.sort_values(KEYS[table]).reset_index(drop=True) for f in (a, b))
    if len(a) != len(b) or not a[KEYS[table]].equals(b[KEYS[table]].astype(a[KEYS[table]].dtypes)):
        return False
    exact = [c for c in EXACT if c in a]
    if any(not np.array_equal(a[c].to_numpy(), b[c].to_numpy()) for c in exact):
        return False
    close = [c for c in ("mean", "std") if c in a]
    return all(np.allclose(a[c], b[c], rtol=1e-9, atol=0, equal_nan=True) for c in close)


def make_input(path: Path, size_bytes: int) -> None:
    from bench_processors import write_sized  # bench/ is on the path under the driver

    write_sized(KIND, path, size_bytes)


def measure(path: Path | str, repeats: int = 1) -> dict[str, Any]:
    """Seconds of the processor and of the DuckDB query on one file, their ratio, and
    whether the aggregates agree. One run each: a 0.5 GiB scan takes tens of seconds, and
    `repeats` is accepted for the driver's interface."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="s3worker-vs-duckdb-") as tmp:
        ours, theirs = Path(tmp) / "processor", Path(tmp) / "duckdb"
        p_wall, p_cpu = run_processor(path, ours)
        d_wall, d_cpu = run_duckdb(path, theirs)
        agree = {t: same(t, ours, theirs) for t in KEYS}
    return {
        "kind": "sensors",
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "processor_s": round(p_wall, 2),
        "processor_cpu_s": round(p_cpu, 2),
        "duckdb_s": round(d_wall, 2),
        "duckdb_cpu_s": round(d_cpu, 2),
        "ratio": round(p_wall / d_wall, 2),
        "same_aggregates": agree,
        "note": "DuckDB: statistics and hourly aggregates only (no anomaly scan in SQL)",
    }


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1])), indent=2))
