"""Anomalies of one kind and series close together merged into one incident (a window).

A level shift is flagged at each reading until the baseline catches up, a noisy stretch
gives a burst of spikes: what a person wants is one row per episode, with its start, end and
worst score. Flags of one (series, kind) whose readings are at most MERGE apart make one
incident. Every detector reports a flag a fixed number of readings after its first reading,
so flags reach here in order of their first reading; the last incident of each (series,
kind) stays open (carried to the next chunk) until a later flag is too far to join it.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from s3worker.processors.sensors.findings import KINDS, Found, concat, empty, take

MERGE = 30  # readings between two flags that still belong to one incident
DIRECTED = [KINDS.index("level_shift"), KINDS.index("drift")]


class Incidents:
    """The open incident of each (series, kind): one row per key in `open`."""

    def __init__(self) -> None:
        self.open = empty()

    def merge(self, found: Found) -> Found:
        """Fold this chunk's flags into incidents; return the incidents now closed."""
        if found.gid.size == 0:
            return empty()
        joins = np.isin(_key(self.open), _key(found))
        every = concat([take(self.open, joins), found])
        every = take(every, np.lexsort((every.first, _key(every))))
        merged, closing = _segments(every)
        self.open = concat([take(self.open, ~joins), take(merged, ~closing)])
        return take(merged, closing)

    def finish(self) -> Found:
        """Every incident still open at the end of the file."""
        rest, self.open = self.open, empty()
        return rest


def _key(f: Found) -> np.ndarray:
    """(series, kind, direction): a shift up and the shift back down are two incidents."""
    down = np.isin(f.kind, DIRECTED) & (f.score < 0)
    out: np.ndarray = (f.gid * len(KINDS) + f.kind) * 2 + down
    return out


def _segments(f: Found) -> tuple[Found, np.ndarray]:
    """Sorted flags -> one row per incident, and whether it can be closed (not its key's last).

    numpy on the sorted flags rather than pandas' groupby (a third of the detection's time
    went to grouping a few thousand flags per chunk): the segments are contiguous runs."""
    key = _key(f)
    new = np.ones(key.size, dtype=bool)
    new[1:] = key[1:] != key[:-1]
    reach = _running_max(f.last, new)
    new[1:] |= f.first[1:] > reach[:-1] + MERGE
    head = np.flatnonzero(new)
    # The worst flag: the first of the largest |score| of its incident (a stable sort keeps
    # row order among equals; NaN sorts last), as pandas' idxmax took it.
    order = np.lexsort((-np.abs(f.score), np.cumsum(new)))
    worst = order[head]
    out = {name.name: getattr(f, name.name)[head] for name in fields(Found)}
    for name in ("score", "value", "expected"):
        out[name] = getattr(f, name)[worst]
    for name in ("until", "last"):
        out[name] = np.maximum.reduceat(getattr(f, name), head) if head.size else out[name]
    last_of_key = np.append(key[head][1:] != key[head][:-1], True)
    return Found(**out), ~last_of_key


def _running_max(a: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The running maximum of int64 `a` within each run that `starts` opens: each run lifted
    above the ones before it, so one accumulate over the whole array stays within runs."""
    if not a.size:
        return a
    low, span = int(a.min()), int(a.max()) - int(a.min()) + 1
    rank = np.cumsum(starts) - 1
    if span * (int(rank[-1]) + 1) >= 1 << 62:  # would overflow: run by run
        running: np.ndarray = pd.Series(a).groupby(rank).cummax().to_numpy()
        return running
    lift = rank * span - low
    out: np.ndarray = np.maximum.accumulate(a + lift) - lift
    return out
