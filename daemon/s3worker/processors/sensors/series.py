"""Per-series anomaly detection that carries its state from one chunk to the next.

A series is one (device, metric). Each chunk's readings go behind the last TAIL readings of
their series (`tails.Tails`); the detectors (`detect`, `drift`, the flat runs here) then see
every window they need, flat runs and block levels are carried open, and flags become
incidents (`incidents`). A file cut into chunks of any size yields exactly the anomalies of
the file read whole. A reading that repeats the previous one of its series exactly (same
time, same value: a re-sent message) is left out of detection.
"""

from __future__ import annotations

import numpy as np

from s3worker.processors.sensors.detect import TAIL, Baseline, point_anomalies
from s3worker.processors.sensors.drift import SCALES, Drifts
from s3worker.processors.sensors.findings import KINDS, Found, Readings, concat
from s3worker.processors.sensors.floor import FloorState, NoiseFloor
from s3worker.processors.sensors.incidents import Incidents
from s3worker.processors.sensors.tails import F64, I64, Bools, Columns, Ext, Tails

FLAT_MIN = 12  # identical consecutive readings that can make a flat line...
FLAT_P = 1e-9  # ...when the series' own repeat rate makes such a run this unlikely
RECENT = 30  # readings before a run whose repeat rate counts too
LIMIT = 1e150  # readings beyond are read as +-LIMIT (still a spike or out of range)

__all__ = ["Found", "Readings", "SeriesState"]


class SeriesState:
    """Everything a series must remember between chunks: tails, counters, open runs."""

    def __init__(self) -> None:
        self.size = 0
        cols = {"ts": np.int64, "value": float, "record": np.int64, "med": float}
        self.tails = Tails(TAIL, cols)
        self.drifts = [Drifts(block) for block in SCALES]
        self.incidents = Incidents()
        self.ref = np.zeros(0)  # first value seen: keeps differences small and exact
        self.lo = np.zeros(0)
        self.hi = np.zeros(0)
        self.count = np.zeros(0, dtype=np.int64)  # readings kept so far
        self.floor = FloorState()
        self.runs = np.zeros(0, dtype=np.int64)  # runs of one value started so far
        self.run_val = np.zeros(0)
        self.run_len = np.zeros(0, dtype=np.int64)
        # open run: start ts, start record, last ts, start index, last index, runs before it,
        # repeats among the RECENT readings before it (in millionths of those readings)
        self.run_t = np.zeros((0, 7), dtype=np.int64)

    def add_series(self, lo: F64, hi: F64, ref: F64) -> None:
        """Make room for `len(lo)` new series (ids `size`..), with their limits and reference."""
        n = lo.size
        self.tails.grow(n)
        for drifts in self.drifts:
            drifts.grow(n)
        self.ref, self.lo, self.hi = (
            np.append(self.ref, np.clip(np.nan_to_num(ref), -LIMIT, LIMIT)),
            np.append(self.lo, lo),
            np.append(self.hi, hi),
        )
        self.floor.grow(n)
        self.run_val = np.append(self.run_val, np.full(n, np.nan))
        for name in ("count", "runs", "run_len"):
            setattr(self, name, np.append(getattr(self, name), np.zeros(n, dtype=np.int64)))
        self.run_t = np.vstack([self.run_t, np.zeros((n, 7), dtype=np.int64)])
        self.size += n

    def scan(self, r: Readings) -> Found:
        """Score a chunk (in file order); return the incidents it closes."""
        r = _usable(r)
        med = np.full(r.gid.size, np.nan)  # the baselines, worked out below
        cols: Columns = {"ts": r.ts, "value": r.value, "record": r.record, "med": med}
        ext = _without_repeats(self.tails.extend(r.gid, cols))
        self._number(ext)
        ext.cols["x"] = ext.f64("value") - self.ref[ext.gid]
        floor = NoiseFloor(ext, self.floor, self.tails.length)
        base = Baseline(ext)
        found = [
            point_anomalies(ext, base, floor, self.lo[ext.gid], self.hi[ext.gid]),
            *(drifts.scan(ext, base, floor, self.ref) for drifts in self.drifts),
        ]
        self.tails.keep(ext)
        found.append(self._flat_runs(ext))
        return self.incidents.merge(concat(found))

    def finish(self) -> Found:
        """Flat runs still open at the end of the file, then every open incident."""
        g = np.flatnonzero(self.run_len > 0)
        flat = _flat(self.run_len[g], self.run_t[g])
        g = g[flat]
        closed = self.incidents.merge(
            _flat_found(g, self.run_len[g], self.run_t[g], self.run_val[g])
        )
        return concat([closed, self.incidents.finish()])

    def _number(self, ext: Ext) -> None:
        """Each reading's number within its series (repeats left out) from the file's start:
        a series' tail holds its last readings, its new rows follow."""
        first = self.count - self.tails.length  # the number of each series' first tail row
        ext.cols["index"] = first[ext.gid] + ext.pos
        self.count += np.bincount(ext.gid[ext.new], minlength=self.size)

    def _flat_runs(self, ext: Ext) -> Found:
        rows = np.flatnonzero(ext.new)
        gid, v = ext.gid[rows], ext.f64("value")[rows]
        change = np.ones(gid.size, dtype=bool)
        change[1:] = (gid[1:] != gid[:-1]) | (v[1:] != v[:-1])
        starts = np.flatnonzero(change)
        ends = np.append(starts[1:], gid.size) - 1
        g = gid[starts]
        first_of_g = np.ones(starts.size, dtype=bool)
        first_of_g[1:] = g[1:] != g[:-1]
        last_of_g = np.append(first_of_g[1:], True)
        # Most runs are one reading long: what concerns a series' first run (continuing
        # the carried one) is worked out on those first runs alone.
        heads = np.flatnonzero(first_of_g)
        hg = g[heads]
        carried = self.run_len[hg] > 0
        cont_h = carried & (v[starts[heads]] == self.run_val[hg])
        cont = np.zeros(starts.size, dtype=bool)
        cont[heads] = cont_h
        lengths = ends - starts + 1
        lengths[heads[cont_h]] += self.run_len[hg[cont_h]]
        # A carried run that this chunk's first reading does not continue ended with the
        # last chunk.
        ended = hg[~cont_h & carried]
        ended = ended[_flat(self.run_len[ended], self.run_t[ended])]
        closed = _flat_found(ended, self.run_len[ended], self.run_t[ended], self.run_val[ended])
        # Only runs that can be flat, and each series' open run, go further.
        k = np.flatnonzero(last_of_g | (lengths >= FLAT_MIN))
        head = heads[np.searchsorted(heads, k, side="right") - 1]
        before = self.runs[g[k]] + k - head - cont[head]
        self.runs += np.bincount(g[~cont], minlength=self.size)
        starts, ends, g, cont = starts[k], ends[k], g[k], cont[k]
        lengths, last_of_g = lengths[k], last_of_g[k]
        spans = self._spans(ext, rows[starts], rows[ends], g, cont, before)
        done = ~last_of_g & _flat(lengths, spans)
        lg = g[last_of_g]
        self.run_val[lg] = v[starts[last_of_g]]
        self.run_len[lg], self.run_t[lg] = lengths[last_of_g], spans[last_of_g]
        return concat([closed, _flat_found(g[done], lengths[done], spans[done], v[starts[done]])])

    def _spans(self, ext: Ext, first: I64, last: I64, g: I64, cont: Bools, before: I64) -> I64:
        """run_t rows for runs from ext rows `first` to `last` (continuing the open run)."""
        carried = self.run_t[g]
        ts, idx, rec = ext.i64("ts"), ext.i64("index"), ext.i64("record")
        fresh = [ts[first], rec[first], ts[last], idx[first], idx[last], before]
        fresh.append(_recent_repeats(ext, first))
        spans: I64 = np.column_stack(
            [
                np.where(cont, carried[:, k], col) if k not in (2, 4) else col
                for k, col in enumerate(fresh)
            ]
        )
        return spans


def _usable(r: Readings) -> Readings:
    """Readings detection can do arithmetic on: NaN left out, magnitudes capped at LIMIT
    (an infinite or 1e308 reading would overflow every difference, and the running sums
    of the series after it)."""
    keep = ~np.isnan(r.value)
    value = np.clip(r.value[keep], -LIMIT, LIMIT)
    return Readings(r.gid[keep], r.ts[keep], value, r.record[keep])


def _without_repeats(ext: Ext) -> Ext:
    """`ext` without the new readings that repeat the one before (same time and value)."""
    ts, value = ext.i64("ts"), ext.f64("value")
    repeat = np.zeros(ts.size, dtype=bool)
    repeat[1:] = (ext.pos[1:] > 0) & (ts[1:] == ts[:-1]) & (value[1:] == value[:-1])
    repeat &= ext.new
    if not repeat.any():
        return ext
    keep = ~repeat
    return Ext(ext.gid[keep], {k: v[keep] for k, v in ext.cols.items()}, ext.new[keep])


def _flat(lengths: I64, spans: I64) -> Bools:
    """Runs at least FLAT_MIN long that the series' own repeat rate makes unlikely.

    With p the share of readings that repeat the one before (before the run began), a run of
    L identical readings has probability p ** (L - 1): a run is flat when that is below
    FLAT_P. A noisy sensor (p ~ 0) is flat after FLAT_MIN readings; one whose coarse
    resolution repeats readings half of the time (p = 0.5) only after 31.
    """
    return lengths >= flat_length(spans)


def flat_length(spans: I64) -> F64:
    """The shortest flat run for runs `spans`: p is the larger of the repeat share of every
    reading before the run and of the RECENT readings before it (a steady spell repeats
    more than the series' average)."""
    readings, runs = spans[:, 3], spans[:, 5]
    overall = np.where(readings > 0, 1.0 - runs / np.maximum(readings, 1), 0.0)
    p = np.clip(np.maximum(overall, spans[:, 6] / 1e6), 1e-12, 1.0 - 1e-12)
    shortest = np.where(readings >= RECENT, FLAT_MIN, 3 * FLAT_MIN)  # no history to go by
    out: F64 = np.maximum(shortest, 1.0 + np.log(FLAT_P) / np.log(p))
    return out


def _recent_repeats(ext: Ext, rows: I64) -> I64:
    """At `rows` of `ext`, the share (in millionths) of the RECENT readings before each that
    repeat the reading before them. Taken on those rows' windows alone (runs that can be
    flat and each series' last: a few in a thousand rows), not by a sum over every row."""
    value = ext.f64("value")
    lo = np.maximum(rows - RECENT, ext.group_start[rows])
    prev = np.maximum(rows - 1, lo)
    pairs = prev - lo
    step = np.arange(1, RECENT + 1)
    at = np.minimum(lo[:, None] + step, prev[:, None])  # pairs (at - 1, at) in lo..prev
    repeats = ((value[at] == value[at - 1]) & (step <= pairs[:, None])).sum(axis=1)
    share = np.where(pairs > 0, repeats / np.maximum(pairs, 1), 0.0)
    out: I64 = np.round(share * 1e6).astype(np.int64)
    return out


def _flat_found(gid: I64, lengths: I64, spans: I64, value: F64) -> Found:
    return Found(
        gid=gid,
        kind=np.full(gid.size, KINDS.index("flatline"), dtype=np.int64),
        ts=spans[:, 0],
        until=spans[:, 2],
        first=spans[:, 3],
        last=spans[:, 4],
        value=value,
        expected=flat_length(spans),
        score=lengths.astype(np.float64),
        record=spans[:, 1],
    )
