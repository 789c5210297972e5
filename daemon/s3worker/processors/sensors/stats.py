"""Per-series statistics and hourly aggregates, merged chunk by chunk in bounded memory
(hours a series has left behind are set aside, see `Stats._add_hourly`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from s3worker.processors.sensors.series import Found, Readings
from s3worker.processors.sensors.tails import F64, I64, narrow
from s3worker.processors.tabular.output import ParquetSink, write_frame
from s3worker.processors.tabular.spill import Spill

HOUR_NS = 3_600 * 1_000_000_000
MS = 1_000_000  # ns
COMPACT_ROWS = 250_000  # partial hourly rows kept before they are merged
KAHAN_STEPS = 1_024  # groups longer than this are summed by pandas (a loop step per reading)
HOURLY_SLICE = 131_072  # rows of hourly.parquet built and written at a time (a row group each)
STATS_SCHEMA = pa.schema(
    [
        ("device", pa.string()),
        ("metric", pa.string()),
        ("readings", pa.int64()),
        ("mean", pa.float64()),
        ("std", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("first_seen", pa.timestamp("ms", "UTC")),
        ("last_seen", pa.timestamp("ms", "UTC")),
        ("anomalies", pa.int64()),
    ]
)
# The closed hourly groups, parked on disk until hourly.parquet is written (see `Stats`).
CLOSED_SCHEMA = pa.schema(
    [(name, pa.int64()) for name in ("gid", "hour", "n")]
    + [(name, pa.float64()) for name in ("s", "lo", "hi")]
)
HOURLY_SCHEMA = pa.schema(
    [
        ("device", pa.string()),
        ("metric", pa.string()),
        ("hour", pa.timestamp("ms", "UTC")),
        ("readings", pa.int64()),
        ("mean", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
    ]
)


class Stats:
    """Sums, extremes and counts per series id; partial hourly groups merged as they grow.
    Given a `folder`, the closed groups wait there (a `Spill`), not in memory, which then
    does not grow with the file's hours; `close` removes them."""

    def __init__(self, folder: Path | None = None) -> None:
        self.n = np.zeros(0, dtype=np.int64)
        self.s1 = np.zeros(0)
        self.s2 = np.zeros(0)
        self.vmin = np.zeros(0)
        self.vmax = np.zeros(0)
        self.tmin = np.zeros(0, dtype=np.int64)
        self.tmax = np.zeros(0, dtype=np.int64)
        self.anomalies = np.zeros(0, dtype=np.int64)
        self.reasons: Counter[str] = Counter()
        self.ref = np.zeros(0)
        self._hourly: list[pd.DataFrame] = []  # open groups, then the chunks' partial groups
        self._hourly_rows = 0
        self._closed: list[pd.DataFrame] = []  # groups before their series' latest hour
        self._latest = np.zeros(0, dtype=np.int64)  # per series: its latest hour so far
        self._mark = np.zeros(0, dtype=np.int64)  # per series: its closed groups are before
        self._folder = folder
        self._spill: Spill | None = None  # made for the first closed groups set aside

    def _grow(self, size: int, r: Readings) -> None:
        extra = size - self.n.size
        if extra <= 0:
            return
        self.n = np.append(self.n, np.zeros(extra, dtype=np.int64))
        self.anomalies = np.append(self.anomalies, np.zeros(extra, dtype=np.int64))
        for name, fill in (("s1", 0.0), ("s2", 0.0), ("vmin", np.inf), ("vmax", -np.inf)):
            setattr(self, name, np.append(getattr(self, name), np.full(extra, fill)))
        big = np.iinfo(np.int64)
        self.tmin = np.append(self.tmin, np.full(extra, big.max))
        self.tmax = np.append(self.tmax, np.full(extra, big.min))
        self._latest = np.append(self._latest, np.full(extra, big.min))
        self._mark = np.append(self._mark, np.full(extra, big.min))
        ref = np.full(extra, np.nan)
        self.ref = np.append(self.ref, ref)
        first = pd.Series(r.value).groupby(r.gid).first()
        unset = np.isnan(self.ref[first.index])
        self.ref[first.index[unset]] = first.to_numpy()[unset]

    def add(self, r: Readings, size: int) -> None:
        # Readings of 1e308 or inf make inf/NaN sums for their series: the truth, not an error.
        with np.errstate(over="ignore", invalid="ignore"):
            self._add(r, size)

    def _add(self, r: Readings, size: int) -> None:
        self._grow(size, r)
        x = r.value - self.ref[r.gid]  # centred: sums of squares stay small and precise
        self.n += np.bincount(r.gid, minlength=size)
        self.s1 += np.bincount(r.gid, weights=x, minlength=size)
        self.s2 += np.bincount(r.gid, weights=x * x, minlength=size)
        hours = _by_hour(r)
        self._add_extremes(hours)
        self._add_hourly(hours)

    def _add_extremes(self, h: _Hours) -> None:
        """Smallest and largest value and time per series, from its hours (sorted by series:
        np.minimum.at took three quarters of the statistics' time)."""
        if not h.gid.size:
            return
        starts = np.flatnonzero(np.append(True, h.gid[1:] != h.gid[:-1]))
        g = h.gid[starts]
        for (lo, hi), (low, high) in (
            ((self.vmin, self.vmax), (h.lo, h.hi)),
            ((self.tmin, self.tmax), (h.t_lo, h.t_hi)),
        ):
            lo[g] = np.minimum(lo[g], np.minimum.reduceat(low, starts))
            hi[g] = np.maximum(hi[g], np.maximum.reduceat(high, starts))

    def _add_hourly(self, h: _Hours) -> None:
        """Keep a chunk's partial groups; past COMPACT_ROWS of them, merge them with the open
        groups, and set aside (closed) the merged groups before their series' latest hour.

        Readings come in time order per series, so a closed group takes no more readings
        and memory holds the open groups and the partial ones, not every hour of the file.
        A reading before its series' closed hours (a file not in time order) opens them all
        again: the groups come out the same either way."""
        if h.gid.size and (h.hour < self._mark[h.gid]).any():
            self._hourly = [*self._taken_back(), *self._hourly]
            self._mark[:] = np.iinfo(np.int64).min
        if h.gid.size:
            starts = np.flatnonzero(np.append(True, h.gid[1:] != h.gid[:-1]))
            g = h.gid[starts]
            self._latest[g] = np.maximum(self._latest[g], np.maximum.reduceat(h.hour, starts))
        index = pd.MultiIndex.from_arrays([h.gid, h.hour], names=["gid", "hour"])
        part = pd.DataFrame({"n": h.n, "s": h.s, "lo": h.lo, "hi": h.hi}, index=index)
        self._hourly.append(part)
        self._hourly_rows += len(part)
        if self._hourly_rows > COMPACT_ROWS and len(self._hourly) > 1:
            merged = _merged(self._hourly)
            gid = merged.index.get_level_values("gid").to_numpy(dtype=np.int64)
            hour = merged.index.get_level_values("hour").to_numpy(dtype=np.int64)
            closed = hour < self._latest[gid]
            if closed.any():
                self._set_aside(merged[closed])
            self._mark = self._latest.copy()
            self._hourly = [merged[~closed]]
            self._hourly_rows = len(self._hourly[0])

    def groups(self) -> tuple[I64, I64, I64, F64, F64, F64]:
        """Every (series, hour) group, in no set order: series, hour, count, sum, extremes.
        Filled in frame by frame, not concatenated and sorted by pandas, which at the end of a
        large file held two more copies of every hour in it."""
        frames = [*self._taken_back(), *([_merged(self._hourly)] if self._hourly else [])]
        total = sum(len(f) for f in frames)
        gid, hour, n = (np.empty(total, dtype=np.int64) for _ in range(3))
        s, lo, hi = (np.empty(total) for _ in range(3))
        at = 0
        for f in frames:
            end = at + len(f)
            gid[at:end] = f.index.get_level_values("gid")
            hour[at:end] = f.index.get_level_values("hour")
            for out, name in ((n, "n"), (s, "s"), (lo, "lo"), (hi, "hi")):
                out[at:end] = f[name].to_numpy()
            at = end
        return gid, hour, n, s, lo, hi

    def _set_aside(self, closed: pd.DataFrame) -> None:
        if self._folder is None:
            self._closed.append(closed)
            return
        self._spill = self._spill or Spill(self._folder, CLOSED_SCHEMA)
        index = closed.index
        columns = {name: index.get_level_values(name).to_numpy() for name in ("gid", "hour")}
        columns |= {name: closed[name].to_numpy() for name in ("n", "s", "lo", "hi")}
        self._spill.add(np.zeros(len(closed), dtype=np.int64), columns)

    def _taken_back(self) -> list[pd.DataFrame]:
        """The closed groups, in the order they were set aside, and none left aside."""
        frames, self._closed = self._closed, []
        for table in self._spill.buckets() if self._spill is not None else ():
            frame = table.to_pandas()
            frames.append(frame.set_index(["gid", "hour"]))
        return frames

    def close(self) -> None:
        """Remove the closed groups parked on disk (`groups` has taken them)."""
        if self._spill is not None:
            self._spill.close()

    def add_tally(self, tally: Tally) -> None:
        """The anomalies `tally` counted (once the statistics thread is done with `self`)."""
        n = min(self.anomalies.size, tally.per_series.size)
        self.anomalies[:n] += tally.per_series[:n]
        self.reasons.update(tally.reasons)


class Tally:
    """Anomalies per series id and per reason, counted as the detection finds them (on its
    own thread: `Stats` is the statistics thread's), so the findings are not kept to the end."""

    def __init__(self) -> None:
        self.per_series = np.zeros(0, dtype=np.int64)
        self.reasons: Counter[str] = Counter()

    def add(self, f: Found, size: int) -> None:
        before = self.per_series
        self.per_series = np.bincount(f.gid, minlength=max(size, before.size))
        self.per_series[: before.size] += before
        self.reasons.update(f.reason.tolist())


def _merged(parts: list[pd.DataFrame]) -> pd.DataFrame:
    both = pd.concat(parts)
    return both.groupby(level=["gid", "hour"]).agg(
        n=("n", "sum"), s=("s", "sum"), lo=("lo", "min"), hi=("hi", "max")
    )


@dataclass
class _Hours:
    """A chunk's (series, hour) groups in key order: count, sum, extremes of value and time."""

    gid: I64
    hour: I64
    n: I64
    s: F64
    lo: F64
    hi: F64
    t_lo: I64
    t_hi: I64


def _by_hour(r: Readings) -> _Hours:
    """A chunk's (gid, hour) groups, by one stable sort of one int64 key (gid, then hour
    within the chunk's hours; a radix sort when it fits 16 bits), which the extremes per
    series share. Sums in file order within each group, as pandas' groupby added them."""
    hour = r.ts // HOUR_NS
    if not hour.size:
        no = np.zeros(0, dtype=np.int64)
        return _Hours(no, no, no, r.value, r.value, r.value, no, no)
    first, span = int(hour.min()), int(hour.max() - hour.min()) + 1
    unsorted = r.gid * span + (hour - first)
    order = np.argsort(narrow(unsorted), kind="stable")
    key, value, ts = unsorted[order], r.value[order], r.ts[order]
    starts = np.flatnonzero(np.append(True, key[1:] != key[:-1]))
    head = key[starts]
    return _Hours(
        gid=head // span,
        hour=head % span + first,
        n=np.diff(np.append(starts, key.size)),
        s=_sums(r.value, unsorted, value, starts),
        lo=np.minimum.reduceat(value, starts),
        hi=np.maximum.reduceat(value, starts),
        t_lo=np.minimum.reduceat(ts, starts),
        t_hi=np.maximum.reduceat(ts, starts),
    )


def _sums(raw: F64, unsorted: I64, value: F64, starts: I64) -> F64:
    """The sum of each group, as pandas' groupby added the readings up in file order: with
    Kahan's compensation (its Cython loop), unless the keys came sorted (then pandas 3 takes
    np.add.reduceat). The compensated sums are run here one reading of every group at a
    time (groups of a chunk are a few dozen readings); long groups and sorted keys are
    left to pandas itself."""
    sizes = np.diff(np.append(starts, value.size))
    step = np.diff(unsorted)
    if sizes.max() > KAHAN_STEPS or (step >= 0).all() or (step <= 0).all():
        return np.asarray(pd.Series(raw).groupby(unsorted).sum().to_numpy(), dtype=np.float64)
    longest_first = np.argsort(-sizes, kind="stable")
    at, lengths = starts[longest_first], sizes[longest_first]
    total, carry = np.zeros(sizes.size), np.zeros(sizes.size)
    active = np.searchsorted(-lengths, -np.arange(lengths[0]), side="left")
    with np.errstate(invalid="ignore"):  # inf - inf: the compensation is reset, as pandas does
        for k, m in enumerate(active.tolist()):
            y = value[at[:m] + k] - carry[:m]
            t = total[:m] + y
            c = (t - total[:m]) - y
            c[np.isnan(c)] = 0.0
            carry[:m], total[:m] = c, t
    out = np.empty(sizes.size)
    out[longest_first] = total
    return out


def write(out_dir: Path, stats: Stats, devices: list[str], metrics: list[str]) -> dict[str, int]:
    with np.errstate(over="ignore", invalid="ignore"):
        return _write(out_dir, stats, devices, metrics)


def _write(out_dir: Path, stats: Stats, devices: list[str], metrics: list[str]) -> dict[str, int]:
    n = np.maximum(stats.n, 1)
    mean_x = stats.s1 / n
    var = np.where(stats.n > 1, (stats.s2 - stats.s1 * mean_x) / np.maximum(stats.n - 1, 1), np.nan)
    per_series = pd.DataFrame(
        {
            "device": devices,
            "metric": metrics,
            "readings": stats.n,
            "mean": mean_x + stats.ref,
            "std": np.sqrt(np.maximum(var, 0.0)),
            "min": stats.vmin,
            "max": stats.vmax,
            # Floored to the millisecond of the schema (as anomalies' times): the cast to
            # timestamp[ms] refuses microseconds (access logs and some sensors carry them).
            "first_seen": pd.to_datetime(stats.tmin // MS * MS, utc=True),
            "last_seen": pd.to_datetime(stats.tmax // MS * MS, utc=True),
            "anomalies": stats.anomalies,
        }
    ).sort_values(["device", "metric"])
    rows = write_frame(out_dir, "device_stats.parquet", per_series, STATS_SCHEMA)
    return rows | _write_hourly(out_dir, stats, devices, metrics)


def _write_hourly(
    out_dir: Path, stats: Stats, devices: list[str], metrics: list[str]
) -> dict[str, int]:
    """The hourly rows by device, metric and hour, as Arrow columns sorted by numpy, built
    and written HOURLY_SLICE rows at a time: built whole, the table and its strings cost
    memory in proportion to the file's hours at the end of the job."""
    gid, hour, n, s, lo, hi = stats.groups()
    device_names, device_of = _ranks(devices)
    metric_names, metric_of = _ranks(metrics)
    order = np.lexsort((hour, metric_of[gid], device_of[gid]))  # (series, hour) is unique
    sink = ParquetSink(out_dir, "hourly.parquet", HOURLY_SCHEMA)
    for at in range(0, order.size, HOURLY_SLICE):
        rows = order[at : at + HOURLY_SLICE]
        g, count = gid[rows], n[rows]
        sink.write(
            pa.table(
                {
                    "device": device_names.take(pa.array(device_of[g])),
                    "metric": metric_names.take(pa.array(metric_of[g])),
                    "hour": pa.array(hour[rows] * (HOUR_NS // MS), pa.int64()).cast(
                        pa.timestamp("ms", "UTC")
                    ),
                    "readings": count,
                    "mean": s[rows] / count,
                    "min": lo[rows],
                    "max": hi[rows],
                }
            )
        )
    return sink.close()


def _ranks(names: list[str]) -> tuple[pa.Array, I64]:
    """The distinct names in sorted order, and each series' position among them."""
    distinct = sorted(set(names))
    position = {name: k for k, name in enumerate(distinct)}
    of = np.array([position[name] for name in names], dtype=np.int64)
    return pa.array(distinct, pa.string()), of


def summary(
    stats: Stats, devices: list[str], rows: dict[str, int], rejected: int
) -> dict[str, Any]:
    seen = stats.n > 0
    return {
        "readings": int(stats.n.sum()),
        "rejected_rows": rejected,
        "devices": len(set(devices)),
        "series": int(seen.sum()),
        "first_reading": str(pd.Timestamp(stats.tmin[seen].min(), tz="UTC"))
        if seen.any()
        else None,
        "last_reading": str(pd.Timestamp(stats.tmax[seen].max(), tz="UTC")) if seen.any() else None,
        "anomalies": int(sum(stats.reasons.values())),
        "anomalies_by_reason": dict(sorted(stats.reasons.items())),
        "outputs": rows,
    }
