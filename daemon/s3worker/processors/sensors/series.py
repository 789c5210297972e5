"""Per-series anomaly detection that carries its state from one chunk to the next.

A series is one (device, metric). Each chunk is scored against the last readings of the
previous chunks (kept as a fixed-size tail per series), and flat runs are carried open, so a
file cut into chunks of any size yields exactly the anomalies of the file read whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

WINDOW = 30  # readings in the rolling window
Z_THRESHOLD = 5.0
FLAT_MIN = 12  # identical consecutive readings that make a flat line
GAP_FACTOR = 5.0  # a gap is an interval this many times the recent mean interval
NS = 1_000_000_000


@dataclass
class Readings:
    """One chunk's readings: global series id, time (ns), value, source record number."""

    gid: I64
    ts: I64
    value: F64
    record: I64


@dataclass
class Found:
    """Anomalies found in a chunk, as parallel arrays (`until` is -1 when not a span)."""

    gid: I64
    ts: I64
    until: I64
    value: F64
    score: F64
    expected: F64
    reason: npt.NDArray[np.str_]
    record: I64


class SeriesState:
    """Everything a series must remember between chunks: tails, open flat runs, limits."""

    def __init__(self) -> None:
        self.size = 0
        tail = WINDOW + 1  # W values, and W intervals need W + 1 timestamps
        self.tail_v = np.zeros((0, tail))
        self.tail_t = np.zeros((0, tail), dtype=np.int64)
        self.tail_len = np.zeros(0, dtype=np.int64)
        self.ref = np.zeros(0)  # first value seen: keeps the running sums small and exact
        self.lo = np.zeros(0)
        self.hi = np.zeros(0)
        self.min_dev = np.zeros(0)
        self.run_val = np.zeros(0)
        self.run_len = np.zeros(0, dtype=np.int64)
        self.run_t = np.zeros((0, 3), dtype=np.int64)  # start ts, start record, last ts

    def add_series(self, lo: F64, hi: F64, ref: F64) -> None:
        """Make room for `len(lo)` new series (ids `size`..), with their limits and reference."""
        n = lo.size
        tail = WINDOW + 1
        self.tail_v = np.vstack([self.tail_v, np.zeros((n, tail))])
        self.tail_t = np.vstack([self.tail_t, np.zeros((n, tail), dtype=np.int64)])
        self.run_t = np.vstack([self.run_t, np.zeros((n, 3), dtype=np.int64)])
        width = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        self.tail_len = np.append(self.tail_len, np.zeros(n, dtype=np.int64))
        self.run_len = np.append(self.run_len, np.zeros(n, dtype=np.int64))
        self.run_val = np.append(self.run_val, np.full(n, np.nan))
        self.ref = np.append(self.ref, ref)
        self.lo, self.hi = np.append(self.lo, lo), np.append(self.hi, hi)
        self.min_dev = np.append(self.min_dev, 0.03 * width)
        self.size += n

    def scan(self, r: Readings) -> Found:
        """Score a chunk (in file order) and remember what the next chunk needs."""
        ext = self._extend(r)
        found = [_point_anomalies(self, ext), _gap_anomalies(ext)]
        self._keep_tails(ext)
        found.append(self._flat_runs(ext))
        return _concat(found)

    def finish(self) -> Found:
        """Flat runs still open at the end of the file."""
        open_runs = np.flatnonzero(self.run_len >= FLAT_MIN)
        return _flat_found(self, open_runs, self.run_len[open_runs], self.run_t[open_runs])

    def _extend(self, r: Readings) -> Ext:
        present = np.unique(r.gid)
        tl = self.tail_len[present]
        t_gid = np.repeat(present, tl)
        starts = np.repeat(np.cumsum(tl) - tl, tl)
        col = np.arange(t_gid.size) - starts + np.repeat(WINDOW + 1 - tl, tl)
        gid = np.concatenate([t_gid, r.gid])
        # Stable: a series' tail comes before its new readings, which keep file order.
        order = np.argsort(gid, kind="stable")
        n_tail = t_gid.size
        empty = np.full(n_tail, -1, dtype=np.int64)
        return Ext(
            gid=gid[order],
            ts=np.concatenate([self.tail_t[t_gid, col], r.ts])[order],
            value=np.concatenate([self.tail_v[t_gid, col], r.value])[order],
            record=np.concatenate([empty, r.record])[order],
            new=order >= n_tail,
        )

    def _keep_tails(self, ext: Ext) -> None:
        from_end = ext.size_of_group - ext.pos
        keep = from_end <= WINDOW + 1
        g, col = ext.gid[keep], WINDOW + 1 - from_end[keep]
        self.tail_v[g, col] = ext.value[keep]
        self.tail_t[g, col] = ext.ts[keep]
        last = ext.group_start + ext.size_of_group - 1 == np.arange(ext.gid.size)
        self.tail_len[ext.gid[last]] = np.minimum(ext.size_of_group[last], WINDOW + 1)

    def _flat_runs(self, ext: Ext) -> Found:
        gid, v, ts, rec = ext.gid[ext.new], ext.value[ext.new], ext.ts[ext.new], ext.record[ext.new]
        change = np.ones(gid.size, dtype=bool)
        change[1:] = (gid[1:] != gid[:-1]) | (v[1:] != v[:-1])
        starts = np.flatnonzero(change)
        ends = np.append(starts[1:], gid.size) - 1
        lengths = ends - starts + 1
        g = gid[starts]
        first_of_g = np.ones(starts.size, dtype=bool)
        first_of_g[1:] = g[1:] != g[:-1]
        last_of_g = np.append(first_of_g[1:], True)
        cont = first_of_g & (v[starts] == self.run_val[g]) & (self.run_len[g] > 0)
        lengths = lengths + np.where(cont, self.run_len[g], 0)
        start_t = np.where(cont, self.run_t[g, 0], ts[starts])
        start_rec = np.where(cont, self.run_t[g, 1], rec[starts])
        done = ~last_of_g & (lengths >= FLAT_MIN)
        spans = np.column_stack([start_t, start_rec, ts[ends]])
        self.run_val[g[last_of_g]] = v[starts[last_of_g]]
        self.run_len[g[last_of_g]] = lengths[last_of_g]
        self.run_t[g[last_of_g]] = spans[last_of_g]
        return _flat_found(self, g[done], lengths[done], spans[done], v[starts[done]])


class Ext:
    """A chunk's readings with each series' carried tail in front, grouped by series."""

    def __init__(self, gid: I64, ts: I64, value: F64, record: I64, new: Bools) -> None:
        self.gid, self.ts, self.value, self.record, self.new = gid, ts, value, record, new
        idx = np.arange(gid.size)
        boundary = np.ones(gid.size, dtype=bool)
        boundary[1:] = gid[1:] != gid[:-1]
        self.group_start = np.maximum.accumulate(np.where(boundary, idx, 0))
        self.pos = idx - self.group_start
        starts = np.flatnonzero(boundary)
        sizes = np.diff(np.append(starts, gid.size))
        self.size_of_group = np.repeat(sizes, sizes)


def window_mean_sd(x: F64, pos: I64, lag: int = 0, sd: bool = True) -> tuple[F64, F64, Bools]:
    """Mean and sd of the WINDOW values before each element (same series: `pos` >= W + lag)."""
    idx = np.arange(x.size)
    valid = pos >= WINDOW + lag
    lo = np.where(valid, idx - WINDOW, 0)
    cs = np.concatenate([[0.0], np.cumsum(x)])
    s = cs[idx] - cs[lo]
    mean = s / WINDOW
    if not sd:  # the interval baseline needs the mean only
        return mean, mean, valid
    cs2 = np.concatenate([[0.0], np.cumsum(x * x)])
    s2 = cs2[idx] - cs2[lo]
    return mean, np.sqrt(np.maximum((s2 - s * s / WINDOW) / (WINDOW - 1), 0.0)), valid


def _point_anomalies(state: SeriesState, ext: Ext) -> Found:
    x = ext.value - state.ref[ext.gid]
    mean, sd, valid = window_mean_sd(x, ext.pos)
    dev = np.abs(x - mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (x - mean) / sd, 0.0)
    spike = valid & (np.abs(z) > Z_THRESHOLD) & (dev > state.min_dev[ext.gid])
    spike &= ~_stuck_window(ext)
    outside = (ext.value < state.lo[ext.gid]) | (ext.value > state.hi[ext.gid])
    hit = ext.new & (spike | outside)
    reason = np.where(outside[hit], "out_of_range", "zscore")
    expected = mean[hit] + state.ref[ext.gid[hit]]
    return _found(ext, hit, z[hit], expected, reason)


def _stuck_window(ext: Ext) -> Bools:
    """Windows mostly made of repeated values: their sd says nothing about normal noise."""
    eq = np.zeros(ext.value.size, dtype=np.int64)
    eq[1:] = (ext.value[1:] == ext.value[:-1]) & (ext.pos[1:] > 0)
    c = np.concatenate([[0], np.cumsum(eq)])
    idx = np.arange(ext.value.size)
    lo = np.clip(idx - WINDOW + 1, 0, None)
    repeats = c[idx] - c[lo]
    stuck: Bools = repeats > WINDOW // 3
    return stuck


def _gap_anomalies(ext: Ext) -> Found:
    dt = np.zeros(ext.ts.size)
    dt[1:] = np.where(ext.pos[1:] > 0, (ext.ts[1:] - ext.ts[:-1]) / NS, 0.0)
    mean, _, valid = window_mean_sd(dt, ext.pos, lag=1, sd=False)
    hit = ext.new & valid & (mean > 0) & (dt > GAP_FACTOR * mean)
    prev = np.flatnonzero(hit) - 1
    found = _found(ext, hit, dt[hit] / np.where(mean[hit] > 0, mean[hit], 1), mean[hit], "gap")
    found.ts, found.until = ext.ts[prev], ext.ts[hit]  # the silence: last reading -> next
    found.value = dt[hit]
    return found


def _found(ext: Ext, hit: Bools, score: F64, expected: F64, reason: object) -> Found:
    n = int(hit.sum())
    return Found(
        gid=ext.gid[hit],
        ts=ext.ts[hit],
        until=np.full(n, -1, dtype=np.int64),
        value=ext.value[hit],
        score=np.asarray(score, dtype=np.float64),
        expected=np.asarray(expected, dtype=np.float64),
        reason=np.broadcast_to(np.asarray(reason, dtype=np.str_), (n,)).copy(),
        record=ext.record[hit],
    )


def _flat_found(
    state: SeriesState, gid: I64, lengths: I64, spans: I64, value: F64 | None = None
) -> Found:
    return Found(
        gid=gid,
        ts=spans[:, 0],
        until=spans[:, 2],
        value=state.run_val[gid] if value is None else value,
        score=lengths.astype(np.float64),
        expected=np.full(gid.size, np.nan),
        reason=np.full(gid.size, "flatline"),
        record=spans[:, 1],
    )


def _concat(parts: list[Found]) -> Found:
    return Found(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in Found.__dataclass_fields__
        }
    )
