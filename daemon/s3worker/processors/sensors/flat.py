"""Flat lines: runs of one value that the series' own repeat rate makes unlikely.

Runs are found per chunk (with each series' tail in front) and each series' last run is
carried open to the next chunk, so a run straddling chunks is judged once, as a whole.
"""

from __future__ import annotations

import numpy as np

from s3worker.processors.sensors.findings import KINDS, Found, concat
from s3worker.processors.sensors.tails import F64, I64, Bools, Ext

FLAT_MIN = 12  # identical consecutive readings that can make a flat line...
FLAT_P = 1e-9  # ...when the series' own repeat rate makes such a run this unlikely
RECENT = 30  # readings before a run whose repeat rate counts too


class FlatRuns:
    """Per series: runs of one value started so far, and the open (last) run."""

    def __init__(self) -> None:
        self.size = 0
        self.runs = np.zeros(0, dtype=np.int64)  # runs of one value started so far
        self.run_val = np.zeros(0)
        self.run_len = np.zeros(0, dtype=np.int64)
        # open run: start ts, start record, last ts, start index, last index, runs before it,
        # repeats among the RECENT readings before it (in millionths of those readings)
        self.run_t = np.zeros((0, 7), dtype=np.int64)

    def grow(self, n: int) -> None:
        """Make room for `n` new series."""
        self.run_val = np.append(self.run_val, np.full(n, np.nan))
        for name in ("runs", "run_len"):
            setattr(self, name, np.append(getattr(self, name), np.zeros(n, dtype=np.int64)))
        self.run_t = np.vstack([self.run_t, np.zeros((n, 7), dtype=np.int64)])
        self.size += n

    def finish(self) -> Found:
        """Flat lines among the runs still open at the end of the file."""
        g = np.flatnonzero(self.run_len > 0)
        flat = _flat(self.run_len[g], self.run_t[g])
        g = g[flat]
        return _flat_found(g, self.run_len[g], self.run_t[g], self.run_val[g])

    def scan(self, ext: Ext) -> Found:
        """Flat lines this chunk closes; the runs still open are carried."""
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
