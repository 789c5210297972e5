"""The noise floor: the least spread a decision may use, a share of a series' usual step.

At a reading j the floor is the largest of NOISE_FLOOR times the series' usual noise (mean
|x[i] - x[i-1]| of every reading so far, read as a standard deviation), its resolution (the
smallest non-zero step so far) and 1e-9 * (1 + |x|). Decisions need it at few rows (readings
far from their baseline, block ends), so it is worked out at those rows only; screening for
them uses a per-series bound that holds for the whole chunk: the running sum of steps only
grows and the count and the smallest step only move the other way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from s3worker.processors.sensors.tails import F64, I64, Ext

NOISE_FLOOR = 0.6  # the spread never goes below this share of the series' usual noise
ABS_DIFF_SIGMA = 1.1284  # mean |x[i] - x[i-1]| of normal noise = 2 / sqrt(pi) sd
FEW_SERIES = 64  # series with a new smallest step that are run one by one


class FloorState:
    """What the floor carries per series: sum and count of its steps, its smallest step."""

    def __init__(self) -> None:
        self.diff_sum = np.zeros(0)
        self.diff_n = np.zeros(0)
        self.quantum = np.zeros(0)

    def grow(self, n: int) -> None:
        self.diff_sum = np.append(self.diff_sum, np.zeros(n))
        self.diff_n = np.append(self.diff_n, np.zeros(n))
        self.quantum = np.append(self.quantum, np.full(n, np.inf))


class NoiseFloor:
    """A chunk's floor, at the rows asked for; moves `state` past the chunk."""

    def __init__(self, ext: Ext, state: FloorState, tail_length: I64) -> None:
        self.ext = ext
        value = ext.f64("value")
        step = np.zeros(value.size)
        np.abs(np.diff(value), out=step[1:])
        step[~(ext.new & (ext.pos > 0))] = 0.0  # a series' first reading has no step
        self.step, self.cs = step, np.cumsum(step)
        self.carried_sum, self.carried_n = state.diff_sum.copy(), state.diff_n.copy()
        self.first_counted = np.maximum(tail_length, 1)
        self.resolution = Resolution(ext, np.where(step > 0, step, np.inf), state.quantum)
        last = np.flatnonzero(ext.last_of_group)
        g = ext.gid[last]
        total, n = self._total(last), self._count(last)
        state.diff_sum[g], state.diff_n[g] = total, n
        # The bound: the sum carried in (never more than later), the count and smallest step
        # at the chunk's end (never less); a series with no step yet has no resolution.
        usual = NOISE_FLOOR * self.carried_sum / np.maximum(state.diff_n, 1) / ABS_DIFF_SIGMA
        resolution = np.where(np.isfinite(self.resolution.before), state.quantum, 0.0)
        self.bound: F64 = np.maximum(usual, resolution)

    def _total(self, rows: I64) -> F64:
        """The sum of the steps of each row's series up to it, as a running sum per series."""
        start = self.ext.group_start[rows]
        within = self.cs[rows] - (self.cs[start] - self.step[start])
        out: F64 = within + self.carried_sum[self.ext.gid[rows]]
        return out

    def _count(self, rows: I64) -> F64:
        gid = self.ext.gid[rows]
        counted = np.maximum(self.ext.pos[rows] - self.first_counted[gid] + 1, 0)
        out: F64 = counted + self.carried_n[gid]
        return out

    def at(self, rows: I64) -> F64:
        """The floor at `rows` of the chunk."""
        usual = NOISE_FLOOR * self._total(rows) / np.maximum(self._count(rows), 1) / ABS_DIFF_SIGMA
        quantum = self.resolution.at(rows)
        tiny = 1e-9 * (1.0 + np.abs(self.ext.f64("value")[rows]))
        floor: F64 = np.maximum(
            np.maximum(usual, np.where(np.isfinite(quantum), quantum, 0.0)), tiny
        )
        return floor


class Resolution:
    """Per row, the smallest non-zero step of its series so far (`carried` moves on).

    It seldom moves once a series has warmed up: the running minimum is taken only in the
    series where this chunk has a smaller step than the carried one, and kept for their
    rows only; every other row reads its series' carried value.
    """

    def __init__(self, ext: Ext, steps: F64, carried: F64) -> None:
        self.gid, self.before = ext.gid, carried.copy()
        starts = ext.starts
        g = ext.gid[starts]
        which = np.flatnonzero(np.minimum.reduceat(steps, starts) < carried[g])
        sizes = ext.sizes[which]
        self.rows = np.repeat(starts[which] - np.cumsum(sizes) + sizes, sizes)
        self.rows += np.arange(self.rows.size)
        if which.size > FEW_SERIES:
            grouped = pd.Series(steps[self.rows]).groupby(ext.gid[self.rows])
            running = grouped.cummin().to_numpy()
        else:  # a running minimum per series costs less than pandas' grouping of a few
            bounds = np.cumsum(sizes)[:-1].tolist()
            parts = np.split(steps[self.rows], bounds)
            running = np.concatenate([np.minimum.accumulate(p) for p in [*parts, steps[:0]]])
        self.values = np.minimum(running, self.before[ext.gid[self.rows]])
        ends = np.cumsum(sizes) - 1
        carried[g[which]] = self.values[ends]

    def at(self, rows: I64) -> F64:
        out: F64 = self.before[self.gid[rows]]
        k = np.minimum(np.searchsorted(self.rows, rows), max(self.rows.size - 1, 0))
        moved = np.flatnonzero(self.rows[k] == rows) if self.rows.size else k[:0]
        out[moved] = self.values[k[moved]]
        return out
