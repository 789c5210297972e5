"""Per-series anomaly detection that carries its state from one chunk to the next.

A series is one (device, metric). Each chunk's readings go behind the last TAIL readings of
their series (`tails.Tails`); the detectors (`detect`, `drift`, `flat`) then see every window
they need, flat runs and block levels are carried open, and flags become incidents
(`incidents`). A file cut into chunks of any size yields exactly the anomalies of the file
read whole. A reading that repeats the previous one of its series exactly (same time, same
value: a re-sent message) is left out of detection.

Detection is two stages with state of their own, so that two threads can run them on
consecutive chunks: `SeriesState.prepare` (tails, reading numbers, noise floor, baselines)
hands a `Scored` chunk to `Detector.detect` (spikes, shifts, gaps, drifts, flat runs,
incidents), which reads it and nothing `prepare` changes afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from s3worker.processors.sensors.detect import TAIL, Baseline, point_anomalies
from s3worker.processors.sensors.drift import SCALES, Drifts, block_ends
from s3worker.processors.sensors.findings import Found, Readings, concat
from s3worker.processors.sensors.flat import FlatRuns
from s3worker.processors.sensors.floor import FloorState, NoiseFloor
from s3worker.processors.sensors.incidents import Incidents
from s3worker.processors.sensors.tails import F64, Columns, Ext, Tails

LIMIT = 1e150  # readings beyond are read as +-LIMIT (still a spike or out of range)

__all__ = ["Detector", "Found", "Readings", "Scored", "SeriesState"]


@dataclass(frozen=True)
class Scored:
    """A chunk ready for the detectors: its rows behind their tails, with baselines and the
    noise floor, the limits and reference of their series, and how many series there are."""

    ext: Ext
    base: Baseline
    floor: NoiseFloor
    lo: F64
    hi: F64
    ref: F64
    size: int


class SeriesState:
    """Everything a series must remember between chunks: tails, counters, the noise floor;
    `detector` holds the rest (block levels, open runs, open incidents)."""

    def __init__(self) -> None:
        self.size = 0
        cols = {"ts": np.int64, "value": float, "record": np.int64, "med": float}
        self.tails = Tails(TAIL, cols)
        self.ref = np.zeros(0)  # first value seen: keeps differences small and exact
        self.lo = np.zeros(0)
        self.hi = np.zeros(0)
        self.count = np.zeros(0, dtype=np.int64)  # readings kept so far
        self.floor = FloorState()
        self.detector = Detector()

    def add_series(self, lo: F64, hi: F64, ref: F64) -> None:
        """Make room for `len(lo)` new series (ids `size`..), with their limits and reference.
        New arrays, not grown in place: a `Scored` chunk keeps the ones it was given."""
        n = lo.size
        self.tails.grow(n)
        self.ref, self.lo, self.hi = (
            np.append(self.ref, np.clip(np.nan_to_num(ref), -LIMIT, LIMIT)),
            np.append(self.lo, lo),
            np.append(self.hi, hi),
        )
        self.floor.grow(n)
        self.count = np.append(self.count, np.zeros(n, dtype=np.int64))
        self.size += n

    def scan(self, r: Readings) -> Found:
        """Score a chunk (in file order); return the incidents it closes."""
        return self.detector.detect(self.prepare(r))

    def finish(self) -> Found:
        """Flat runs still open at the end of the file, then every open incident."""
        return self.detector.finish()

    def prepare(self, r: Readings) -> Scored:
        """A chunk's rows behind their tails, numbered, with baselines and noise floor; the
        tails and the floor move past the chunk."""
        r = _usable(r)
        med = np.full(r.gid.size, np.nan)  # the baselines, worked out below
        cols: Columns = {"ts": r.ts, "value": r.value, "record": r.record, "med": med}
        ext = _without_repeats(self.tails.extend(r.gid, cols))
        self._number(ext)
        ext.cols["x"] = ext.f64("value") - self.ref[ext.gid]
        floor = NoiseFloor(ext, self.floor, self.tails.length)
        base = Baseline(ext)
        self.tails.keep(ext)
        lo, hi = self.lo[ext.gid], self.hi[ext.gid]
        return Scored(ext, base, floor, lo, hi, self.ref, self.size)

    def _number(self, ext: Ext) -> None:
        """Each reading's number within its series (repeats left out) from the file's start:
        a series' tail holds its last readings, its new rows follow."""
        first = self.count - self.tails.length  # the number of each series' first tail row
        ext.cols["index"] = first[ext.gid] + ext.pos
        self.count += np.bincount(ext.gid[ext.new], minlength=self.size)


class Detector:
    """The detectors' own state: block levels (drifts), open runs, open incidents."""

    def __init__(self) -> None:
        self.drifts = [Drifts(block) for block in SCALES]
        self.flat = FlatRuns()
        self.incidents = Incidents()

    def detect(self, s: Scored) -> Found:
        """The incidents a prepared chunk closes."""
        if (extra := s.size - self.flat.size) > 0:  # series new in this chunk
            for drifts in self.drifts:
                drifts.grow(extra)
            self.flat.grow(extra)
        ext = s.ext
        ends = block_ends(ext, s.base, s.floor)
        found = [
            point_anomalies(ext, s.base, s.floor, s.lo, s.hi),
            *(drifts.scan(ext, s.base, s.floor, s.ref, ends) for drifts in self.drifts),
            self.flat.scan(ext),
        ]
        return self.incidents.merge(concat(found))

    def finish(self) -> Found:
        """Flat runs still open at the end of the file, then every open incident."""
        closed = self.incidents.merge(self.flat.finish())
        return concat([closed, self.incidents.finish()])


def _usable(r: Readings) -> Readings:
    """Readings detection can do arithmetic on: NaN left out, magnitudes capped at LIMIT
    (an infinite or 1e308 reading would overflow every difference, and the running sums
    of the series after it)."""
    keep = ~np.isnan(r.value)
    if keep.all():  # the usual chunk: no copies of its columns
        big = np.abs(r.value) > LIMIT
        return (
            r if not big.any() else Readings(r.gid, r.ts, np.clip(r.value, -LIMIT, LIMIT), r.record)
        )
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
