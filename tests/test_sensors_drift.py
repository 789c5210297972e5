"""Drifts: slow, steady departures of a series' level judged on block medians, told apart
from steps (level shifts) and from levels that wander back and forth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from s3worker.processors.sensors.detect import W
from s3worker.processors.sensors.drift import BLOCKS, SCALES, Z_DRIFT, Drifts
from s3worker.processors.sensors.findings import Found, concat
from sensor_series import anomalies_of, first_chunk, minutes, noise


def _drifts(values: np.ndarray, scales: tuple[int, ...] = SCALES) -> Found:
    """Drift flags of the block sizes `scales` for one series read as one chunk."""
    ext, base, floor = first_chunk(values)
    found = []
    for block in scales:
        drifts = Drifts(block)
        drifts.grow(1)
        found.append(drifts.scan(ext, base, floor, np.array([values[0]])))
    return concat(found)


def _ramp(n: int, start: int, length: int, height: float) -> np.ndarray:
    return np.clip((np.arange(n) - start) / length, 0, 1) * height


def test_a_slow_ramp_is_a_drift_from_where_it_starts() -> None:
    # given noise that climbs 40 sd over readings 1,200..2,200 and then holds
    values = noise(4_000) + _ramp(4_000, 1_200, 1_000, 40.0)
    f = _drifts(values)
    # then drifts are flagged, up, over the ramp, and none before it
    assert f.gid.size > 0
    assert set(f.reason.tolist()) == {"drift"}
    assert (f.score > Z_DRIFT).all()
    assert f.first.min() >= 1_200 - 2 * W
    assert (f.first <= 2_200).all()
    assert (f.last > f.first).all()
    # value and expected are the levels at its end and start, in the series' own units
    assert (f.value - f.expected > 0).all()
    assert f.value.max() < 50.0 + 40.0 + 3
    assert f.expected.min() > 50.0 - 3
    # the time of each end is that of its reading (a minute apart, from minute 1)
    assert ((f.ts // 60_000_000_000) - 1 == f.first).all()


def test_a_ramp_down_scores_below_zero() -> None:
    f = _drifts(noise(4_000) - _ramp(4_000, 1_200, 1_000, 40.0))
    assert f.gid.size > 0
    assert (f.score < -Z_DRIFT).all()


def test_a_step_is_no_drift() -> None:
    values = noise(4_000)
    values[2_000:] += 60.0
    assert _drifts(values).gid.size == 0


def test_a_level_that_wanders_back_and_forth_is_no_drift() -> None:
    # given a level that goes up by 40 sd and back down within every 8 blocks of W readings
    n = 4_000
    period = BLOCKS * W // 2
    values = noise(n) + 40.0 * np.abs((np.arange(n) % period) / period - 0.5)
    assert _drifts(values).gid.size == 0


def test_a_rise_that_keeps_falling_back_is_no_drift() -> None:
    # given block levels (8W readings each, the slow scale) that zigzag upwards, +20 sd then
    # -10 sd: 50 sd up over 8 levels and no step over half of that, but 30 sd went back
    block = 8 * W
    level = np.cumsum(np.where(np.arange(12) % 2 == 0, 20.0, -10.0))
    values = noise(12 * block) + np.repeat(level, block)
    assert _drifts(values, (block,)).gid.size == 0


def test_plain_noise_is_no_drift() -> None:
    assert _drifts(noise(4_000)).gid.size == 0


# Through the processor: one drift incident, and no shift or spike over the ramp.


def test_slow_drift_is_a_drift_not_a_level_shift(tmp_path: Path) -> None:
    # given noise that drifts by 40 sd over 1,000 readings (0.04 sd a reading)
    n = 4_000
    values, ts = noise(n), minutes(n)
    ramp = np.clip((np.arange(n) - 1_200) / 1_000, 0, 1) * 40.0
    found = anomalies_of(tmp_path, ts, values + ramp)
    # then a drift incident lies inside the ramp; no shift or spike is reported
    assert set(found["reason"]) == {"drift"}
    drift = found.iloc[0]
    assert len(found) == 1
    assert ts[1_200 - 240] <= drift["timestamp"] <= ts[1_200 + 240]
    assert drift["until"] >= ts[2_200]
    assert drift["score"] > 0
