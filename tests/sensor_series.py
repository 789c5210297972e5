"""Synthetic sensor series for the sensors tests: written as a file and processed, or laid
out as one chunk of one series the way the detectors are handed it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from processing import run
from s3worker.processors.sensors.detect import TAIL, Baseline
from s3worker.processors.sensors.findings import Found
from s3worker.processors.sensors.floor import FloorState, NoiseFloor
from s3worker.processors.sensors.tails import Ext, Tails

START = pd.Timestamp("2024-05-06T00:00:00Z")  # a Monday
RNG_SEED = 5
NS = 1_000_000_000


def write_readings(path: Path, ts: pd.DatetimeIndex | pd.Series, values: np.ndarray) -> Path:
    frame = pd.DataFrame(
        {
            "device": "pump-1",
            "timestamp": pd.Series(ts).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "metric": "flow",
            "value": np.round(values, 4),
        }
    )
    frame.to_csv(path, index=False)
    return path


def anomalies_of(
    tmp_path: Path, ts: pd.Series, values: np.ndarray, chunk: int = 250_000
) -> pd.DataFrame:
    """The sensors processor's anomalies for one series (pump-1, flow) in a CSV file."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = write_readings(tmp_path / "readings.csv", ts, values)
    run("sensors", src, tmp_path / "out", chunk_rows=chunk)
    return pd.read_parquet(tmp_path / "out" / "anomalies.parquet")


def minutes(n: int, step_s: int = 60) -> pd.Series:
    return pd.Series(START + pd.to_timedelta(np.arange(n) * step_s, unit="s"))


def noise(n: int, sd: float = 1.0) -> np.ndarray:
    return 50.0 + np.random.default_rng(RNG_SEED).normal(0, sd, n)


def first_chunk(
    values: np.ndarray, step_s: np.ndarray | None = None
) -> tuple[Ext, Baseline, NoiseFloor]:
    """One series' readings as the first chunk of a file: no tail before them, reading i
    numbered i, times a minute apart unless `step_s` gives the intervals (seconds)."""
    n = values.size
    steps = np.full(n, 60.0) if step_s is None else step_s
    ts = (np.cumsum(steps) * NS).astype(np.int64)
    tails = Tails(TAIL, {"ts": np.int64, "value": float, "record": np.int64, "med": float})
    tails.grow(1)
    cols = {"ts": ts, "value": values, "record": np.arange(n), "med": np.full(n, np.nan)}
    ext = tails.extend(np.zeros(n, dtype=np.int64), cols)
    ext.cols["index"] = ext.pos.copy()
    ext.cols["x"] = ext.f64("value") - values[0]
    state = FloorState()
    state.grow(1)
    floor = NoiseFloor(ext, state, tails.length)
    return ext, Baseline(ext), floor


def incident_rows(f: Found) -> list[tuple[str, int, int, int, float]]:
    """(reason, series, first reading, last reading, score) of each anomaly, sorted."""
    rows = zip(
        f.reason.tolist(),
        f.gid.tolist(),
        f.first.tolist(),
        f.last.tolist(),
        f.score.tolist(),
        strict=True,
    )
    return sorted((r, g, a, b, round(s, 9)) for r, g, a, b, s in rows)
