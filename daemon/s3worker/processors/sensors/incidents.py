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
    """Sorted flags -> one row per incident, and whether it can be closed (not its key's last)."""
    key = _key(f)
    reach = pd.Series(f.last).groupby(key).cummax().to_numpy()
    new = np.ones(key.size, dtype=bool)
    new[1:] = (key[1:] != key[:-1]) | (f.first[1:] > reach[:-1] + MERGE)
    seg = np.cumsum(new) - 1
    frame = pd.DataFrame({"seg": seg, "strength": np.abs(f.score)})
    worst = frame.groupby("seg")["strength"].idxmax().to_numpy()
    head = np.flatnonzero(new)
    out = {name.name: getattr(f, name.name)[head] for name in fields(Found)}
    for name in ("score", "value", "expected"):
        out[name] = getattr(f, name)[worst]
    for name in ("until", "last"):
        out[name] = pd.Series(getattr(f, name)).groupby(seg).max().to_numpy()
    last_of_key = np.append(key[head][1:] != key[head][:-1], True)
    return Found(**out), ~last_of_key
