"""Sensors detection on synthetic series: each anomaly kind found where it was put, with its
start and end, and nothing flagged on seasonal, repeated or irregularly sampled readings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from processing import run

START = pd.Timestamp("2024-05-06T00:00:00Z")  # a Monday
RNG_SEED = 5


def _write(path: Path, ts: pd.DatetimeIndex | pd.Series, values: np.ndarray) -> Path:
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


def _anomalies(
    tmp_path: Path, ts: pd.Series, values: np.ndarray, chunk: int = 250_000
) -> pd.DataFrame:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = _write(tmp_path / "readings.csv", ts, values)
    run("sensors", src, tmp_path / "out", chunk_rows=chunk)
    return pd.read_parquet(tmp_path / "out" / "anomalies.parquet")


def _minutes(n: int, step_s: int = 60) -> pd.Series:
    return pd.Series(START + pd.to_timedelta(np.arange(n) * step_s, unit="s"))


def _noise(n: int, sd: float = 1.0) -> np.ndarray:
    return 50.0 + np.random.default_rng(RNG_SEED).normal(0, sd, n)


def test_spikes_are_found_one_incident_each(tmp_path: Path) -> None:
    # given noise with three isolated spikes (12-15 sd; the threshold is 7 robust sd)
    values, ts = _noise(3_000), _minutes(3_000)
    at = [700, 1_500, 2_300]
    values[at] += [12.0, -12.0, 15.0]
    # when the file is processed
    found = _anomalies(tmp_path, ts, values)
    # then the three spikes, and nothing else, are reported at their readings
    assert found["reason"].tolist() == ["spike"] * 3
    assert sorted(found["timestamp"]) == [ts[i] for i in at]
    assert (found["timestamp"] == found["until"]).all()
    assert np.sign(found.sort_values("timestamp")["score"]).tolist() == [1, -1, 1]


def test_level_shift_is_one_incident_at_its_onset(tmp_path: Path) -> None:
    # given noise whose level steps up by 8 sd at reading 1,000 and stays there
    values, ts = _noise(2_500), _minutes(2_500)
    values[1_000:] += 8.0
    found = _anomalies(tmp_path, ts, values)
    # then one level shift starting at the step, no spike for the readings after it
    assert found["reason"].tolist() == ["level_shift"]
    shift = found.iloc[0]
    assert shift["timestamp"] == ts[1_000]
    assert ts[1_000] <= shift["until"] <= ts[1_030]
    assert shift["score"] > 6
    assert shift["value"] == pytest.approx(58.0, abs=0.5)
    assert shift["expected"] == pytest.approx(50.0, abs=0.5)


def test_spikes_close_together_are_one_incident(tmp_path: Path) -> None:
    # given two spikes 10 readings apart, and a third 200 readings later
    values, ts = _noise(2_000), _minutes(2_000)
    values[[1_000, 1_010, 1_210]] += [13.0, 14.0, 13.0]
    found = _anomalies(tmp_path, ts, values).sort_values("timestamp")
    # then the first two make one incident spanning both, with the worse score
    assert found["reason"].tolist() == ["spike", "spike"]
    assert found["timestamp"].tolist() == [ts[1_000], ts[1_210]]
    assert found["until"].tolist() == [ts[1_010], ts[1_210]]
    assert found.iloc[0]["value"] == pytest.approx(values[1_010], abs=1e-3)


def test_a_noisier_spell_is_not_a_level_shift(tmp_path: Path) -> None:
    # given noise whose sd grows sixfold for 300 readings, around the same level
    values, ts = _noise(3_000), _minutes(3_000)
    values[1_200:1_500] = 50 + (values[1_200:1_500] - 50) * 6
    found = _anomalies(tmp_path, ts, values)
    # then its readings may be spikes, but no level moved
    assert not found.empty
    assert "level_shift" not in set(found["reason"]), found


def test_a_big_step_is_a_level_shift_not_a_drift(tmp_path: Path) -> None:
    # given a step of 60 sd: over the drift threshold, but all in one block
    values, ts = _noise(3_000), _minutes(3_000)
    values[1_500:] += 60.0
    found = _anomalies(tmp_path, ts, values)
    assert found["reason"].tolist() == ["level_shift"]


def test_slow_drift_is_a_drift_not_a_level_shift(tmp_path: Path) -> None:
    # given noise that drifts by 40 sd over 1,000 readings (0.04 sd a reading)
    n = 4_000
    values, ts = _noise(n), _minutes(n)
    ramp = np.clip((np.arange(n) - 1_200) / 1_000, 0, 1) * 40.0
    found = _anomalies(tmp_path, ts, values + ramp)
    # then a drift incident lies inside the ramp; no shift or spike is reported
    assert set(found["reason"]) == {"drift"}
    drift = found.iloc[0]
    assert len(found) == 1
    assert ts[1_200 - 240] <= drift["timestamp"] <= ts[1_200 + 240]
    assert drift["until"] >= ts[2_200]
    assert drift["score"] > 0


def test_flat_line_spans_the_stuck_readings(tmp_path: Path) -> None:
    # given noise, then a sensor stuck at one value for 40 readings
    values, ts = _noise(2_000), _minutes(2_000)
    values[900:940] = values[900]
    found = _anomalies(tmp_path, ts, values)
    assert found["reason"].tolist() == ["flatline"]
    assert (found.iloc[0]["timestamp"], found.iloc[0]["until"]) == (ts[900], ts[939])
    assert found.iloc[0]["score"] == 40


def test_a_coarse_sensor_that_often_repeats_is_not_flat(tmp_path: Path) -> None:
    # given a sensor whose resolution (1 unit) is coarser than its noise: runs of 20+ are normal
    values = np.round(_noise(4_000, sd=0.3))
    found = _anomalies(tmp_path, _minutes(4_000), values)
    assert found.empty, found


def test_gap_spans_the_silence(tmp_path: Path) -> None:
    # given a reading a minute, with 25 minutes missing after reading 999
    ts = _minutes(2_000)
    keep = np.ones(2_000, dtype=bool)
    keep[1_000:1_025] = False
    found = _anomalies(tmp_path, ts[keep].reset_index(drop=True), _noise(2_000)[keep])
    assert found["reason"].tolist() == ["gap"]
    gap = found.iloc[0]
    assert (gap["timestamp"], gap["until"]) == (ts[999], ts[1_025])
    assert gap["value"] == 26 * 60


@pytest.mark.parametrize(("step_s", "days"), [(60, 3), (300, 14), (3_600, 28)])
def test_daily_and_weekly_seasonality_is_not_flagged(
    tmp_path: Path, step_s: int, days: int
) -> None:
    # given a daily swing of +-10 sd and a weekly one of +-5 sd, sampled every minute to hour
    n = days * 86_400 // step_s
    ts = _minutes(n, step_s)
    hours = np.arange(n) * step_s / 3_600
    season = 10 * np.sin(2 * np.pi * hours / 24) + 5 * np.sin(2 * np.pi * hours / 168)
    found = _anomalies(tmp_path, ts, _noise(n) + season)
    assert found.empty, found


def test_repeated_readings_count_once(tmp_path: Path) -> None:
    # given every reading sent twice (same time, same value), a spike, and a sensor stuck
    # for 14 readings (28 rows): each repeat is one reading
    values, ts = _noise(2_000), _minutes(2_000)
    values[1_200] += 12.0
    values[1_600:1_614] = values[1_600]
    found = _anomalies(tmp_path, pd.Series(np.repeat(ts, 2)), np.repeat(values, 2))
    # then the spike is one incident and the stuck readings are a flat line of 14
    assert found.sort_values("timestamp")["reason"].tolist() == ["spike", "flatline"]
    assert found.sort_values("timestamp")["timestamp"].tolist() == [ts[1_200], ts[1_600]]
    assert found.loc[found["reason"] == "flatline", "score"].tolist() == [14]


def test_two_readings_at_one_time_are_no_gap(tmp_path: Path) -> None:
    # given a sensor that sometimes reports twice in the same second, with different values
    ts = _minutes(3_000)
    doubled = np.random.default_rng(1).random(3_000) < 0.3
    stamps = pd.Series(np.concatenate([ts, ts[doubled]])).sort_values(kind="stable")
    values = _noise(stamps.size)
    found = _anomalies(tmp_path, stamps.reset_index(drop=True), values)
    assert found.empty, found


def test_irregular_sampling_makes_no_gaps_but_a_silence_does(tmp_path: Path) -> None:
    # given bursty reporting (3 intervals in 4 of 5-15 s, the others of 40-80 s) and one
    # silence of 20 minutes
    rng = np.random.default_rng(3)
    steps = np.where(
        rng.random(4_000) < 0.75, rng.uniform(5, 15, 4_000), rng.uniform(40, 80, 4_000)
    )
    steps[2_500] = 1_200
    ts = pd.Series(START + pd.to_timedelta(np.cumsum(steps).round(), unit="s"))
    found = _anomalies(tmp_path, ts, _noise(4_000))
    assert found["reason"].tolist() == ["gap"]
    assert found.iloc[0]["until"] == ts[2_500]


def test_a_sensor_turning_coarse_is_judged_by_its_recent_repeats(tmp_path: Path) -> None:
    # given a fine sensor (no repeats) that switches to a coarse steady mode, where runs of
    # one value last tens of readings
    fine = _noise(2_000)
    coarse = np.round(_noise(3_000, sd=0.35)[::-1])
    ts = _minutes(5_000)
    found = _anomalies(tmp_path, ts, np.concatenate([fine, coarse]))
    # then only the switch itself may be reported, not the runs of the coarse mode
    assert found["timestamp"].between(ts[2_000], ts[2_060]).all(), found


def test_every_kind_at_once_does_not_depend_on_the_chunk_size(tmp_path: Path) -> None:
    # given one series with a spike, a shift, a drift, a flat line and a gap
    n = 6_000
    values, ts = _noise(n), _minutes(n)
    values[800] += 12
    values[1_500:] += 9
    values += np.clip((np.arange(n) - 2_500) / 600, 0, 1) * 40
    values[4_000:4_040] = values[4_000]
    keep = np.ones(n, dtype=bool)
    keep[5_000:5_030] = False
    ts, values = ts[keep].reset_index(drop=True), values[keep]
    whole = _anomalies(tmp_path / "whole", ts, values)
    small = _anomalies(tmp_path / "small", ts, values, chunk=97)
    assert set(whole["reason"]) == {"spike", "level_shift", "drift", "flatline", "gap"}
    pd.testing.assert_frame_equal(
        whole.sort_values(["reason", "timestamp"]).reset_index(drop=True),
        small.sort_values(["reason", "timestamp"]).reset_index(drop=True),
    )


def test_a_flat_line_ending_with_a_chunk_is_reported(tmp_path: Path) -> None:
    # given a sensor stuck for readings 960-999 and chunks of 1,000 rows: the run is open at
    # the end of the first chunk, and the second chunk starts with another value
    values, ts = _noise(2_000), _minutes(2_000)
    values[960:1_000] = values[960]
    found = _anomalies(tmp_path, ts, values, chunk=1_000)
    assert found["reason"].tolist() == ["flatline"]
    assert (found.iloc[0]["timestamp"], found.iloc[0]["until"]) == (ts[960], ts[999])


def test_infinite_and_huge_readings_do_not_upset_other_series(tmp_path: Path) -> None:
    # given a series with inf, -inf and +-1e308 readings before a series with a clear spike
    rows = ["device,timestamp,metric,value"]
    rows += [
        f"a,2024-01-01T00:00:0{i}Z,t,{v}"
        for i, v in enumerate(["1", "inf", "-inf", "1e308", "-1e308"])
    ]
    values, ts = _noise(1_000), _minutes(1_000)
    values[500] += 15
    stamps = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows += [f"b,{t},t,{v:.4f}" for t, v in zip(stamps, values, strict=True)]
    src = tmp_path / "mixed.csv"
    src.write_text("\n".join(rows) + "\n")
    outs = []
    for chunk in (3, 250_000):
        run("sensors", src, tmp_path / f"out{chunk}", chunk_rows=chunk)
        outs.append(pd.read_parquet(tmp_path / f"out{chunk}" / "anomalies.parquet"))
    # then the other series' spike is found, whatever the chunk size
    for found in outs:
        assert found.loc[found["device"] == "b", "reason"].tolist() == ["spike"]
    pd.testing.assert_frame_equal(
        outs[0].sort_values(["device", "timestamp"]).reset_index(drop=True),
        outs[1].sort_values(["device", "timestamp"]).reset_index(drop=True),
    )
