"""samples/sensors.py: minute readings per device and metric with planted spikes, out-of-range
values, flat lines, level shifts, drifts, gaps and malformed rows, each where the truth says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from s3worker.samples import sensors
from s3worker.samples.writing import Truth, write_sample
from test_samples_writing import assert_reproducible

ROWS = 30_000


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Truth]:
    out = tmp_path_factory.mktemp("sensors") / "readings.csv"
    truth = write_sample("sensors", ROWS, out, seed=5)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False).head(truth.rows)
    return frame, truth


def reading(frame: pd.DataFrame, device: str, metric: str, stamp: str) -> str:
    hit = frame[(frame.device == device) & (frame.metric == metric) & (frame.timestamp == stamp)]
    assert len(hit) == 1, (device, metric, stamp)
    return str(hit["value"].iloc[0])


def test_same_seed_same_file(tmp_path: Path) -> None:
    assert_reproducible(tmp_path, "sensors")


def test_the_device_count_grows_with_the_rows_within_its_bounds() -> None:
    assert sensors.devices_for(10) == 3
    assert sensors.devices_for(100_000) == 5
    assert sensors.devices_for(10**9) == 400


def test_planted_events_never_share_a_series_slot() -> None:
    p = sensors.plan(ROWS, seed=5)
    cells = [
        (int(s), int(t) // sensors.SLOT)
        for kind in sensors.KINDS
        for s, t in zip(*p.events[kind], strict=True)
    ]
    assert len(cells) == len(set(cells))
    assert min(t for _, t in cells) >= 1  # the first slot stays clean: windows need history
    assert all(len(p.events[k][0]) == max(3, ROWS // 2_500) for k in sensors.KINDS)


def test_spikes_and_out_of_range_values_are_in_the_file(
    written: tuple[pd.DataFrame, Truth],
) -> None:
    frame, truth = written
    for device, metric, stamp in truth.planted["out_of_range"]:
        assert float(reading(frame, device, metric, stamp)) == sensors.LIMITS[metric][1] + 50.0
    for device, metric, stamp in truth.planted["spike"]:
        series = frame[(frame.device == device) & (frame.metric == metric)]
        values = pd.to_numeric(series["value"], errors="coerce")
        at = series.index[series.timestamp == stamp][0]
        neighbours = values.loc[at - 30 * 9 : at + 30 * 9].drop(index=at)  # 9 series per minute
        assert abs(values[at] - neighbours.median()) > 5.0  # 7-11 against a noise sd of 0.5


def test_a_flat_line_repeats_one_value_for_its_length(
    written: tuple[pd.DataFrame, Truth],
) -> None:
    frame, truth = written
    for device, metric, stamp in truth.planted["flatline"]:
        series = frame[(frame.device == device) & (frame.metric == metric)]
        start = series.index.get_loc(series.index[series.timestamp == stamp][0])
        run = series["value"].iloc[start : start + sensors.FLAT_LEN]
        assert run.nunique() == 1, (device, metric, stamp)


def test_a_gap_silences_every_metric_of_its_device_for_30_minutes(
    written: tuple[pd.DataFrame, Truth],
) -> None:
    frame, truth = written
    assert truth.planted["gap"]
    for device, last_seen in truth.planted["gap"]:
        stamps = frame.timestamp[frame.device == device]
        times = pd.to_datetime(stamps, errors="coerce", utc=True).dropna()
        seconds = (times - pd.Timestamp("2024-03-01", tz="UTC")).dt.total_seconds()
        steps = np.diff(np.unique(seconds.to_numpy()))
        assert (sensors.GAP_LEN + 1) * sensors.STEP_S in steps, device
        after = pd.Timestamp(last_seen) + pd.Timedelta(minutes=1)
        assert not (times == after).any()


def test_malformed_rows_spoil_the_device_the_time_or_the_value(
    written: tuple[pd.DataFrame, Truth],
) -> None:
    frame, truth = written
    assert len(truth.planted["malformed"]) >= 3
    assert (frame.device == "").sum() + (frame.timestamp == "yesterday-ish").sum() + (
        frame.value == "ERR"
    ).sum() == len(truth.planted["malformed"])
    assert truth.broken_lines == 2  # and the CSV's two short lines at the end


def test_shifts_are_planted_as_onset_and_return_and_drifts_as_a_span() -> None:
    truth = Truth()
    for _ in sensors.generate(ROWS, 5, truth):
        pass
    p = sensors.plan(ROWS, 5)
    assert len(truth.planted["level_shift"]) == 2 * len(p.events["level_shift"][0])
    for _, _, start, end in truth.planted["drift"]:
        span = pd.Timestamp(end) - pd.Timestamp(start)
        assert span == pd.Timedelta(minutes=sensors.DRIFT_LEN)
    assert sensors.broken_lines("json") == ["{not json"]
