"""The spread and noise floor taken at chosen rows: the same figures as computed over every
row, and a screening bound that never exceeds the floor of a row it screens."""

from __future__ import annotations

import bottleneck as bn
import numpy as np
from s3worker.processors.sensors.detect import MAD_SIGMA, TAIL, Baseline, W
from s3worker.processors.sensors.floor import ABS_DIFF_SIGMA, NOISE_FLOOR, FloorState, NoiseFloor
from s3worker.processors.sensors.tails import Ext, Tails

SERIES = 4


def _chunks(seed: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two chunks of interleaved series: noisy, coarse (repeats), one that starts flat."""
    rng = np.random.default_rng(seed)
    out = []
    for rows in (200, 300):
        gid = rng.integers(0, SERIES, rows)
        value = np.where(gid == 1, np.round(rng.normal(0, 1, rows)), rng.normal(0, 1, rows))
        value = np.where(gid == 2, 5.0, value) if not out else value  # flat, then noisy
        out.append((gid, value))
    return out


def _exts() -> list[tuple[Ext, NoiseFloor]]:
    tails = Tails(TAIL, {"value": float})
    tails.grow(SERIES)
    state = FloorState()
    state.grow(SERIES)
    done = []
    for gid, value in _chunks():
        ext = tails.extend(gid, {"value": value})
        done.append((ext, NoiseFloor(ext, state, tails.length)))
        tails.keep(ext)
    return done


def _floor_by_series(gid: np.ndarray, value: np.ndarray) -> dict[int, np.ndarray]:
    """The floor of every reading of each series, straight from its definition."""
    out = {}
    for g in range(SERIES):
        v = value[gid == g]
        steps = np.abs(np.diff(v))
        usual = np.concatenate([[0.0], np.cumsum(steps) / np.arange(1, v.size)])
        positive = np.where(steps > 0, steps, np.inf)
        smallest = np.concatenate([[np.inf], np.minimum.accumulate(positive)])
        resolution = np.where(np.isfinite(smallest), smallest, 0.0)
        out[g] = np.maximum.reduce(
            [NOISE_FLOOR * usual / ABS_DIFF_SIGMA, resolution, 1e-9 * (1 + np.abs(v))]
        )
    return out


def test_floor_at_rows_is_the_floor_of_those_readings() -> None:
    (_, first), (ext, second) = _exts()
    whole = np.concatenate([c[1] for c in _chunks()])
    expected = _floor_by_series(np.concatenate([c[0] for c in _chunks()]), whole)
    for chunk_ext, floor, offset in ((first.ext, first, 0), (ext, second, 1)):
        new = np.flatnonzero(chunk_ext.new)
        got = floor.at(new)
        for g in range(SERIES):
            mine = chunk_ext.gid[new] == g
            before = sum(int((c[0] == g).sum()) for c in _chunks()[:offset])
            want = expected[g][before : before + int(mine.sum())]
            np.testing.assert_allclose(got[mine], want, rtol=1e-12)


def test_bound_never_exceeds_the_floor_of_a_new_row() -> None:
    for ext, floor in _exts():
        new = np.flatnonzero(ext.new)
        assert (floor.bound[ext.gid[new]] <= floor.at(new)).all()
    # Past the first chunk a warmed-up noisy series has a bound that screens (above zero).
    ext, floor = _exts()[1]
    assert floor.bound[0] > 0
    assert floor.bound[2] == 0  # series 2 had no step before


def test_spread_is_the_moving_mad_of_the_rows_before() -> None:
    ext, _ = _exts()[1]
    ext.cols["x"] = ext.cols["value"]
    ext.cols["med"] = np.full(ext.gid.size, np.nan)
    ext.new = np.ones(ext.gid.size, dtype=bool)  # every baseline worked out here
    base = Baseline(ext)
    at = np.arange(2 * W, ext.gid.size)
    moving = MAD_SIGMA * bn.move_median(np.abs(base.resid), W)[at - 1]
    assert np.array_equal(base.spread(at, np.zeros(at.size)), moving)
    floor = np.full(at.size, 10.0)
    assert (base.spread(at, floor) == 10.0).all()  # never below the floor given
