"""What the sensors detectors read (a chunk's readings) and what they report (anomalies)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from s3worker.processors.sensors.tails import F64, I64, Bools, Ext

# Anomaly kinds, in the order incidents are kept per series.
KINDS = ("spike", "level_shift", "drift", "flatline", "gap", "out_of_range")


@dataclass
class Readings:
    """One chunk's readings: global series id, time (ns), value, source record number."""

    gid: I64
    ts: I64
    value: F64
    record: I64


@dataclass
class Found:
    """Anomalies as parallel arrays: each spans readings `first`..`last` of its series
    (their times `ts`..`until`); `score` is signed where the anomaly has a direction."""

    gid: I64
    kind: I64  # index into KINDS
    ts: I64
    until: I64
    first: I64
    last: I64
    value: F64
    expected: F64
    score: F64
    record: I64

    @property
    def reason(self) -> npt.NDArray[np.str_]:
        return np.array(KINDS)[self.kind] if self.kind.size else np.array([], dtype=np.str_)


def found_at(
    ext: Ext, kind: str, first: I64, last: I64, score: F64, value: F64, expected: F64
) -> Found:
    """Anomalies spanning rows `first`..`last` of `ext` (row numbers of the extended chunk)."""
    ts, index, record = ext.i64("ts"), ext.i64("index"), ext.i64("record")
    return Found(
        gid=ext.gid[first],
        kind=np.full(first.size, KINDS.index(kind), dtype=np.int64),
        ts=ts[first],
        until=ts[last],
        first=index[first],
        last=index[last],
        value=np.asarray(value, dtype=np.float64),
        expected=np.asarray(expected, dtype=np.float64),
        score=np.asarray(score, dtype=np.float64),
        record=record[first],
    )


def empty() -> Found:
    i, f = np.zeros(0, dtype=np.int64), np.zeros(0)
    return Found(i, i, i, i, i, i, f, f, f, i)


def concat(parts: list[Found]) -> Found:
    names = [f.name for f in fields(Found)]
    return Found(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


def take(f: Found, mask: Bools | I64) -> Found:
    names = [x.name for x in fields(Found)]
    return Found(**{n: getattr(f, n)[mask] for n in names})
