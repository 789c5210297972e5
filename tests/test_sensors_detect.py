"""Robust per-reading detectors: spikes, level shifts, gaps and out-of-range readings, each
flagged at its readings with its score; nothing flagged on seasonal, repeated or irregularly
sampled readings. First the detectors on one chunk, then whole files through the processor."""

from __future__ import annotations

from pathlib import Path

import bottleneck as bn
import numpy as np
import pandas as pd
import pytest
from s3worker.processors.sensors.detect import POST, Z_SPIKE, W, median_rows, point_anomalies
from s3worker.processors.sensors.findings import Found
from sensor_series import START, anomalies_of, first_chunk, minutes, noise


def _flags(values: np.ndarray, lo: float = -np.inf, hi: float = np.inf, **kw: np.ndarray) -> Found:
    ext, base, floor = first_chunk(values, **kw)
    rows = ext.gid.size  # the limits of each row's series
    return point_anomalies(ext, base, floor, np.full(rows, lo), np.full(rows, hi))


@pytest.mark.parametrize("width", [W, POST, 5])
def test_the_median_of_each_row_is_bottlenecks_to_the_bit(width: int) -> None:
    # given rows of residuals with ties, zeros, magnitudes from 1e-6 to 1e6 and a few NaN
    rng = np.random.default_rng(3)
    rows = np.abs(rng.normal(size=(4_000, width)) * 10.0 ** rng.integers(-6, 7, (4_000, 1)))
    rows[::3] = rows[::3].round(1)
    rows[rng.random(rows.shape) < 0.002] = np.nan
    want = bn.median(rows, axis=1)
    got = median_rows(rows)
    # then every median is bottleneck's own value, NaN where a row has one
    assert np.isnan(want).any()
    assert (want == 0).any()
    assert np.array_equal(got, want, equal_nan=True)


def test_plain_noise_flags_nothing() -> None:
    assert _flags(noise(600)).gid.size == 0


def test_a_spike_is_flagged_at_its_reading_with_a_signed_score() -> None:
    # given noise with a spike up at reading 200 and one down at 400 (12 sd)
    values = noise(600)
    values[[200, 400]] += [12.0, -12.0]
    f = _flags(values)
    # then each is a spike of its one reading, its score the side it went
    assert f.reason.tolist() == ["spike", "spike"]
    assert sorted(zip(f.first.tolist(), f.last.tolist(), strict=True)) == [(200, 200), (400, 400)]
    by_first = dict(zip(f.first.tolist(), f.score.tolist(), strict=True))
    assert by_first[200] > Z_SPIKE
    assert by_first[400] < -Z_SPIKE
    at = f.first.tolist().index(200)
    assert f.value[at] == values[200]
    assert f.expected[at] == pytest.approx(np.median(values[200 - W : 200]))
    assert f.ts[at] == f.until[at]
    assert f.record[at] == 200


def test_a_spike_before_the_series_warms_up_is_not_judged() -> None:
    values = noise(600)
    values[2 * W - 5] += 20.0
    assert _flags(values).gid.size == 0


def test_a_step_that_stays_is_a_level_shift_from_its_onset_not_a_spike() -> None:
    values = noise(600)
    values[300:] += 8.0
    f = _flags(values)
    assert set(f.reason.tolist()) == {"level_shift"}
    assert f.first.min() == 300
    onset = f.first.tolist().index(300)
    # decided once POST readings held the new level
    assert f.last[onset] == 300 + POST - 1
    assert f.score[onset] > 6
    assert f.value[onset] == pytest.approx(58.0, abs=0.5)
    assert f.expected[onset] == pytest.approx(50.0, abs=0.5)


def test_a_burst_that_comes_back_within_the_window_is_not_a_level_shift() -> None:
    # given 5 readings 16 sd up, then back: half of the POST readings after the onset
    values = noise(600)
    values[300 : 300 + POST // 2] += 16.0
    assert "level_shift" not in _flags(values).reason.tolist()


def test_a_silence_is_a_gap_from_the_last_reading_before_it() -> None:
    # given a reading a minute, and 25 minutes without one before reading 150
    steps = np.full(400, 60.0)
    steps[150] = 1_500.0
    f = _flags(noise(400), step_s=steps)
    assert f.reason.tolist() == ["gap"]
    assert (f.first[0], f.last[0]) == (149, 150)
    assert f.value[0] == 1_500.0
    assert f.expected[0] == 60.0
    assert f.score[0] == 25.0


def test_readings_outside_the_metrics_limits_are_out_of_range_not_spikes() -> None:
    # given a humidity series (0..100) with one reading at 140 and one at -10
    values = noise(400)
    values[[250, 300]] = [140.0, -10.0]
    f = _flags(values, lo=0.0, hi=100.0)
    assert f.reason.tolist() == ["out_of_range", "out_of_range"]
    assert f.first.tolist() == [250, 300]
    assert f.score.tolist() == pytest.approx([0.4, -0.1])
    assert f.expected.tolist() == [100.0, 0.0]


def test_an_open_ended_limit_scores_the_excess_itself() -> None:
    values = noise(400)
    values[100] = 2_003.0
    f = _flags(values, hi=2_000.0)
    assert f.reason.tolist() == ["out_of_range"]
    assert f.score[0] == pytest.approx(3.0)


# The detectors at work on whole files, through the processor.


def test_spikes_are_found_one_incident_each(tmp_path: Path) -> None:
    # given noise with three isolated spikes (12-15 sd; the threshold is 7 robust sd)
    values, ts = noise(3_000), minutes(3_000)
    at = [700, 1_500, 2_300]
    values[at] += [12.0, -12.0, 15.0]
    # when the file is processed
    found = anomalies_of(tmp_path, ts, values)
    # then the three spikes, and nothing else, are reported at their readings
    assert found["reason"].tolist() == ["spike"] * 3
    assert sorted(found["timestamp"]) == [ts[i] for i in at]
    assert (found["timestamp"] == found["until"]).all()
    assert np.sign(found.sort_values("timestamp")["score"]).tolist() == [1, -1, 1]


def test_level_shift_is_one_incident_at_its_onset(tmp_path: Path) -> None:
    # given noise whose level steps up by 8 sd at reading 1,000 and stays there
    values, ts = noise(2_500), minutes(2_500)
    values[1_000:] += 8.0
    found = anomalies_of(tmp_path, ts, values)
    # then one level shift starting at the step, no spike for the readings after it
    assert found["reason"].tolist() == ["level_shift"]
    shift = found.iloc[0]
    assert shift["timestamp"] == ts[1_000]
    assert ts[1_000] <= shift["until"] <= ts[1_030]
    assert shift["score"] > 6
    assert shift["value"] == pytest.approx(58.0, abs=0.5)
    assert shift["expected"] == pytest.approx(50.0, abs=0.5)


def test_a_noisier_spell_is_not_a_level_shift(tmp_path: Path) -> None:
    # given noise whose sd grows sixfold for 300 readings, around the same level
    values, ts = noise(3_000), minutes(3_000)
    values[1_200:1_500] = 50 + (values[1_200:1_500] - 50) * 6
    found = anomalies_of(tmp_path, ts, values)
    # then its readings may be spikes, but no level moved
    assert not found.empty
    assert "level_shift" not in set(found["reason"]), found


def test_a_big_step_is_a_level_shift_not_a_drift(tmp_path: Path) -> None:
    # given a step of 60 sd: over the drift threshold, but all in one block
    values, ts = noise(3_000), minutes(3_000)
    values[1_500:] += 60.0
    found = anomalies_of(tmp_path, ts, values)
    assert found["reason"].tolist() == ["level_shift"]


def test_gap_spans_the_silence(tmp_path: Path) -> None:
    # given a reading a minute, with 25 minutes missing after reading 999
    ts = minutes(2_000)
    keep = np.ones(2_000, dtype=bool)
    keep[1_000:1_025] = False
    found = anomalies_of(tmp_path, ts[keep].reset_index(drop=True), noise(2_000)[keep])
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
    ts = minutes(n, step_s)
    hours = np.arange(n) * step_s / 3_600
    season = 10 * np.sin(2 * np.pi * hours / 24) + 5 * np.sin(2 * np.pi * hours / 168)
    found = anomalies_of(tmp_path, ts, noise(n) + season)
    assert found.empty, found


def test_two_readings_at_one_time_are_no_gap(tmp_path: Path) -> None:
    # given a sensor that sometimes reports twice in the same second, with different values
    ts = minutes(3_000)
    doubled = np.random.default_rng(1).random(3_000) < 0.3
    stamps = pd.Series(np.concatenate([ts, ts[doubled]])).sort_values(kind="stable")
    values = noise(stamps.size)
    found = anomalies_of(tmp_path, stamps.reset_index(drop=True), values)
    assert found.empty, found


@pytest.mark.parametrize(
    ("silence", "longest", "gap"),
    [(250.0, 60.0, True), (230.0, 60.0, False), (700.0, 200.0, False), (900.0, 200.0, True)],
)
def test_a_silence_is_judged_against_the_longest_of_the_intervals_before_it(
    silence: float, longest: float, gap: bool
) -> None:
    # given a reading a minute, one interval of `longest` s 10 readings before a silence
    steps = np.full(400, 60.0)
    steps[140], steps[150] = longest, silence
    f = _flags(noise(400), step_s=steps)
    # then a gap only when the silence is more than GAP_FACTOR times the longest of the W
    assert f.reason.tolist() == (["gap"] if gap else [])
    assert f.expected.tolist() == ([longest] if gap else [])


def test_irregular_sampling_makes_no_gaps_but_a_silence_does(tmp_path: Path) -> None:
    # given bursty reporting (3 intervals in 4 of 5-15 s, the others of 40-80 s) and one
    # silence of 20 minutes
    rng = np.random.default_rng(3)
    steps = np.where(
        rng.random(4_000) < 0.75, rng.uniform(5, 15, 4_000), rng.uniform(40, 80, 4_000)
    )
    steps[2_500] = 1_200
    ts = pd.Series(START + pd.to_timedelta(np.cumsum(steps).round(), unit="s"))
    found = anomalies_of(tmp_path, ts, noise(4_000))
    assert found["reason"].tolist() == ["gap"]
    assert found.iloc[0]["until"] == ts[2_500]
