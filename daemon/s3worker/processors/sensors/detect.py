"""Robust per-reading detectors: spikes, level shifts, gaps and out-of-range readings.

Each reading is compared with the median of the W readings before it (its baseline); the
spread is the median absolute residual of those W readings (MAD, times 1.4826 to read as a
standard deviation), never below the series' own noise floor (`floor.NoiseFloor`).
Medians make one wild reading move neither the baseline nor the spread, so a spike does not
hide its neighbours and a slow seasonal swing (the window follows it) is not a spike. The
baseline is a moving median over every row; the spread is taken only at the rows a decision
needs (those far from their baseline by the floor's bound, block ends: a few in a hundred),
the median of the same W residuals a moving median would have taken there.

Detectors decide a reading once later readings are in (a spike must come back within
SPIKE_BACK readings, a level shift must hold for POST readings): every decision is taken
when its last reading arrives and uses rows of one series only, which keeps it chunk-free.
"""

from __future__ import annotations

from collections.abc import Callable

import bottleneck as bn
import numpy as np

from s3worker.processors.sensors.findings import Found, concat, found_at
from s3worker.processors.sensors.floor import NoiseFloor
from s3worker.processors.sensors.tails import F64, I64, Bools, Ext

W = 30  # readings in the baseline window
POST = 10  # readings a level shift must hold
SPIKE_BACK = 3  # a spike is back near its baseline this many readings later
Z_SPIKE = 7.0
Z_SHIFT = 6.0
GAP_FACTOR = 4.0  # a gap: an interval this many times the longest of the W before it
MAD_SIGMA = 1.4826  # MAD of a normal sample x 1.4826 = its standard deviation
# Rows of each series carried to the next chunk, with their baselines: a decision at j
# scores i = j - (POST - 1) with the W residuals before i.
TAIL = W + POST
NS = 1_000_000_000


class Baseline:
    """Per row: median of the W rows before and residual; spread of the W residuals before."""

    def __init__(self, ext: Ext) -> None:
        self.x = ext.f64("x")
        self.med = _before(bn.move_median, self.x, W)
        carried = ~ext.new  # a tail's baselines come with it, taken with the rows before
        self.med[carried] = ext.f64("med")[carried]
        ext.cols["med"] = self.med
        self.resid = self.x - self.med

    def spread(self, at: I64, floor: F64) -> F64:
        """Spread at rows `at`, floored by the series' noise floor known at decision time."""
        window = np.abs(self.resid[np.maximum(at, W)[:, None] - np.arange(W, 0, -1)])
        mad = MAD_SIGMA * median_rows(window)
        spread: F64 = np.maximum(np.where(at >= W, mad, np.nan), floor)
        return spread


def point_anomalies(ext: Ext, base: Baseline, floor: NoiseFloor, lo: F64, hi: F64) -> Found:
    """Spikes, level shifts, gaps and out-of-range readings decided by this chunk's rows."""
    value = ext.f64("value")
    outside = (value < lo) | (value > hi)
    # Every spike or shift starts at a reading this far from its baseline (Z_SHIFT / 2 is
    # the lower of the two thresholds, the bound never above the floor).
    near = np.flatnonzero(np.abs(base.resid) > (Z_SHIFT / 2 * floor.bound)[ext.gid])
    return concat(
        [
            _spikes(ext, base, floor, near, outside),
            _level_shifts(ext, base, floor, near),
            _gaps(ext),
            _out_of_range(ext, outside, lo, hi),
        ]
    )


def _far_decided(
    ext: Ext, base: Baseline, lag: int, far: float, floor: NoiseFloor, near: I64
) -> tuple[I64, I64, F64]:
    """Rows j of this chunk deciding row i = j - lag of the same, warmed-up series, where
    |resid[i]| > far * floor[j], among the rows `near`; and floor[j]."""
    j = near + lag
    j = j[j < ext.gid.size]
    j = j[ext.new[j] & (ext.i64("index")[j] >= 2 * W + lag)]
    i, at_j = j - lag, floor.at(j)
    hit = np.abs(base.resid[i]) > far * at_j
    return j[hit], i[hit], at_j[hit]


def _spikes(ext: Ext, base: Baseline, floor: NoiseFloor, near: I64, outside: Bools) -> Found:
    # The spread is never below the floor: only readings that far can be spikes, and
    # their spread is taken once the cheaper tests are passed.
    near = near[np.abs(base.resid[near]) > (Z_SPIKE * floor.bound)[ext.gid[near]]]
    j, i, at_j = _far_decided(ext, base, SPIKE_BACK, Z_SPIKE, floor, near)
    back = np.abs(base.x[j] - base.med[i]) < 0.5 * np.abs(base.resid[i])
    maybe = back & ~outside[i]
    i, at_j = i[maybe], at_j[maybe]
    z = base.resid[i] / base.spread(i, at_j)
    hit = np.abs(z) > Z_SPIKE
    i = i[hit]
    return found_at(ext, "spike", i, i, z[hit], ext.f64("value")[i], _expected(ext, base, i))


def _level_shifts(ext: Ext, base: Baseline, floor: NoiseFloor, near: I64) -> Found:
    """The median of POST readings from i on differs from i's baseline, from i on, and
    both halves of those readings hold at least half of the shift (not a noisy spell)."""
    # Only a reading itself far from its baseline can start a shift (onset below): the
    # medians after it are taken for those few, the spread for the shifts that are left
    # (never below the floor, it cannot make a smaller shift large enough).
    j, i, at_j = _far_decided(ext, base, POST - 1, Z_SHIFT / 2, floor, near)
    after = base.x[i[:, None] + np.arange(POST)]
    post = bn.median(after, axis=1)
    shift = post - base.med[i]
    # The size of the shift first: it rules out most of the rows that come this far (five in
    # six on the benchmark's readings), so the halves are taken for the rest only.
    big = np.abs(shift) / at_j > Z_SHIFT
    i, j, at_j, post, shift, after = i[big], j[big], at_j[big], post[big], shift[big], after[big]
    halves = bn.median(after.reshape(i.size, 2, POST // 2), axis=2) - base.med[i][:, None]
    steady = (halves / np.where(shift == 0, 1.0, shift)[:, None] > 0.5).all(axis=1)
    onset = (np.sign(base.resid[i]) == np.sign(shift)) & (np.abs(base.resid[i]) > np.abs(shift) / 2)
    maybe = steady & onset
    i, j, at_j, post, shift = i[maybe], j[maybe], at_j[maybe], post[maybe], shift[maybe]
    spread = base.spread(i, at_j)
    z = shift / spread
    hit = (np.abs(z) > Z_SHIFT) & (np.abs(base.resid[i]) > Z_SHIFT / 2 * spread)
    i, j = i[hit], j[hit]
    ref = ext.f64("value")[i] - base.x[i]
    return found_at(ext, "level_shift", i, j, z[hit], post[hit] + ref, _expected(ext, base, i))


def _gaps(ext: Ext) -> Found:
    """Silences: the interval before j against the longest of the W before it (bursty
    reporting makes a low percentile of the intervals far shorter than the usual pause)."""
    ts = ext.i64("ts")
    dt = np.zeros(ts.size)
    dt[1:] = (ts[1:] - ts[:-1]) / NS  # across two series too: never read there (below)
    # The longest of the W intervals before j is at least the one just before it, so only
    # rows GAP_FACTOR times longer than that one are looked at (a few in a thousand), not a
    # moving maximum over every row. A row past its series' W-th reading has its W
    # intervals within its series (its tail holds at least W rows before it).
    j = np.flatnonzero(dt[1:] > GAP_FACTOR * dt[:-1]) + 1
    j = j[ext.new[j] & (ext.i64("index")[j] > W)]
    usual = dt[j[:, None] - np.arange(W, 0, -1)].max(axis=1, initial=-np.inf)
    hit = (usual > 0) & (dt[j] > GAP_FACTOR * usual)
    j, usual = j[hit], usual[hit]
    return found_at(ext, "gap", j - 1, j, dt[j] / usual, dt[j], usual)


def _out_of_range(ext: Ext, outside: Bools, lo: F64, hi: F64) -> Found:
    j = np.flatnonzero(ext.new & outside)
    value = ext.f64("value")[j]
    width = np.where(np.isfinite(hi[j] - lo[j]), hi[j] - lo[j], 1.0)
    excess = np.where(value > hi[j], value - hi[j], value - lo[j]) / width
    return found_at(ext, "out_of_range", j, j, excess, value, np.clip(value, lo[j], hi[j]))


def _expected(ext: Ext, base: Baseline, i: I64) -> F64:
    out: F64 = ext.f64("value")[i] - base.resid[i]
    return out


def median_rows(a: F64) -> F64:
    """`bn.median(a, axis=1)` to the bit (the mean of the two middle values of an even row,
    NaN for a row with a NaN), by numpy's sort of the rows: a quarter of bottleneck's time
    for rows of W (its vectorised sort against a selection per row). For rows whose zeros
    may carry a sign, bottleneck: which of -0.0 and 0.0 lands in the middle can differ."""
    s = np.sort(a, axis=1)
    k = a.shape[1] // 2
    med: F64 = 0.5 * (s[:, k] + s[:, k - 1]) if a.shape[1] % 2 == 0 else s[:, k].copy()
    med[np.isnan(s[:, -1])] = np.nan  # NaN sorts last
    return med


def _before(moving: Callable[[F64, int], F64], a: F64, n: int) -> F64:
    """Per row, `moving` (a bottleneck moving-window function) of the n rows before it."""
    out = np.full(a.size, np.nan)
    if a.size > n:  # bottleneck refuses a window longer than the array
        out[1:] = moving(a, n)[:-1]
    return out
