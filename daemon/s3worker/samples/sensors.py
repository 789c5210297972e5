"""Machine readings, long format, one reading per device and metric every minute.

Planted (each far from the others, so each is unambiguous): spikes, out-of-range values,
flat lines (20 identical readings), level shifts (24 noise sd for 40 minutes: the onset and
the return are both shifts), drifts (a ramp of 40 noise sd over 4 hours, then held; at most
one per series, towards the middle of its range), gaps (a device silent for 30 minutes) and
malformed rows (missing device, bad timestamp, value not a number). Every series also swings
with the time of day (a daily sine), which is not an anomaly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.samples.writing import Truth

METRICS = ("temperature", "humidity", "vibration")
BASE = {"temperature": (20.0, 80.0), "humidity": (30.0, 70.0), "vibration": (5.0, 40.0)}
LIMITS = {"temperature": (-40.0, 150.0), "humidity": (0.0, 100.0), "vibration": (0.0, 100.0)}
NOISE = 0.5
STEP_S = 60
SLOT = 90  # time steps between two planted events of the same series
FLAT_LEN, GAP_LEN = 20, 30
SHIFT, SHIFT_LEN = 12.0, 40
DRIFT, DRIFT_LEN = 20.0, 240  # a drift takes DRIFT_SLOTS slots
DRIFT_SLOTS = 3
START = np.datetime64("2024-03-01T00:00:00", "s")
BLOCK_ROWS = 1_000_000
KINDS = ("spike", "out_of_range", "flatline", "level_shift", "malformed")


@dataclass
class Plan:
    series: int
    steps: int
    base: npt.NDArray[np.float64]
    amp: npt.NDArray[np.float64]
    phase: npt.NDArray[np.float64]
    events: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]  # kind -> (series, step)
    gaps: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]  # (device, first silent step)
    drifts: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]  # (series, first step)
    drift_sign: npt.NDArray[np.float64]


def devices_for(rows: int) -> int:
    return int(np.clip(rows // 20_000, 3, 400))


def plan(rows: int, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    n_dev = devices_for(rows)
    series = n_dev * len(METRICS)
    steps = max(rows // series, 4 * SLOT)
    lo = np.array([BASE[m][0] for m in METRICS] * n_dev)
    hi = np.array([BASE[m][1] for m in METRICS] * n_dev)
    slots = steps // SLOT - 1  # the first slot stays clean: windows need history
    per_kind = max(3, rows // 2_500)
    n_gaps = max(2, rows // 20_000)
    # Gaps take whole (device, slot) cells, drifts DRIFT_SLOTS cells of one series; other
    # events take (series, slot) cells elsewhere.
    cells = rng.choice(n_dev * slots, size=min(n_gaps, n_dev * slots // 4), replace=False)
    gap_dev, gap_slot = cells // slots, cells % slots + 1
    taken = {
        (int(d) * len(METRICS) + m, int(t))
        for d, t in zip(gap_dev, gap_slot, strict=True)
        for m in range(len(METRICS))
    }
    n_drifts = min(series, max(2, rows // 20_000), slots // DRIFT_SLOTS)
    drift_series = rng.choice(series, size=n_drifts, replace=False)
    drift_slot = rng.integers(1, slots - DRIFT_SLOTS + 2, size=n_drifts)
    for ds, dt in zip(drift_series.tolist(), drift_slot.tolist(), strict=True):
        taken |= {(ds, dt + k) for k in range(DRIFT_SLOTS)}
    free = np.array([c for c in range(series * slots) if (c // slots, c % slots + 1) not in taken])
    picks = rng.choice(free, size=min(per_kind * len(KINDS), free.size), replace=False).reshape(
        len(KINDS), -1
    )
    events = {
        kind: (p // slots, (p % slots + 1) * SLOT + 5) for kind, p in zip(KINDS, picks, strict=True)
    }
    base = rng.uniform(lo, hi)
    return Plan(
        series=series,
        steps=steps,
        base=base,
        amp=rng.uniform(0.5, 3.0, series),
        phase=rng.uniform(0, 2 * np.pi, series),
        events=events,
        gaps=(gap_dev, gap_slot * SLOT + 5),
        drifts=(drift_series, drift_slot * SLOT + 5),
        drift_sign=np.where(base[drift_series] > (lo + hi)[drift_series] / 2, -1.0, 1.0),
    )


def generate(rows: int, seed: int, truth: Truth) -> Iterator[pa.Table]:
    p = plan(rows, seed)
    _record_truth(p, truth)
    block_steps = max(1, BLOCK_ROWS // p.series)
    for t0 in range(0, p.steps, block_steps):
        yield _block(p, t0, min(p.steps, t0 + block_steps), np.random.default_rng([seed, t0]))


def _smooth(p: Plan, s: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The noise-free level: base, daily swing, planted level shifts and drifts."""
    level = p.base[s] + p.amp[s] * np.sin(2 * np.pi * t / 1440 + p.phase[s])
    shift_s, shift_t = p.events["level_shift"]
    for k in np.flatnonzero((shift_t <= t.max()) & (shift_t + SHIFT_LEN > t.min())).tolist():
        inside = (s == shift_s[k]) & (t >= shift_t[k]) & (t < shift_t[k] + SHIFT_LEN)
        level[inside] += SHIFT if k % 2 == 0 else -SHIFT
    drift_s, drift_t = p.drifts
    for k in np.flatnonzero(drift_t <= t.max()).tolist():
        mine = s == drift_s[k]
        ramp = np.clip((t[mine] - drift_t[k]) / DRIFT_LEN, 0.0, 1.0)
        level[mine] += p.drift_sign[k] * DRIFT * ramp
    return level


def _block(p: Plan, t0: int, t1: int, rng: np.random.Generator) -> pa.Table:
    t = np.repeat(np.arange(t0, t1), p.series)
    s = np.tile(np.arange(p.series), t1 - t0)
    value = np.round(_smooth(p, s, t) + rng.normal(0, NOISE, t.size), 2)
    at = _locator(p, t0, t1)
    ss, ts = at(*p.events["spike"])
    value[ss] += np.where(ts % 2 == 0, 1, -1) * (7.0 + 4.0 * rng.random(ss.size))
    ss, _ = at(*p.events["out_of_range"])
    metric_hi = np.array([LIMITS[m][1] for m in METRICS])[s[ss] % len(METRICS)]
    value[ss] = metric_hi + 50.0
    s0, t_start = p.events["flatline"]
    for k in range(FLAT_LEN):
        ss, _ = at(s0, t_start + k)
        value[ss] = np.round(_smooth(p, s[ss], t[ss] - k), 2)  # the value at the run's start
    table = _strings(p, s, t, value)
    table = _malformed(table, at(*p.events["malformed"])[0])
    return table.filter(pa.array(~_silent(p, s, t)))


def _locator(p: Plan, t0: int, t1: int):  # type: ignore[no-untyped-def]
    def at(
        series: npt.NDArray[np.int64], step: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        inside = (step >= t0) & (step < t1)
        return (step[inside] - t0) * p.series + series[inside], step[inside]

    return at


def _silent(p: Plan, s: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    silent = np.zeros(s.size, dtype=bool)
    device = s // len(METRICS)
    dev, first = p.gaps
    near = (first + GAP_LEN > t.min()) & (first <= t.max())  # only gaps touching this block
    for d, f in zip(dev[near], first[near], strict=True):
        silent |= (device == d) & (t >= f) & (t < f + GAP_LEN)
    return silent


def _strings(
    p: Plan, s: npt.NDArray[np.int64], t: npt.NDArray[np.int64], value: npt.NDArray[np.float64]
) -> pa.Table:
    n_dev = p.series // len(METRICS)
    names = pa.array([f"dev-{i:04d}" for i in range(n_dev)])
    metrics = pa.array(list(METRICS))
    # Format each distinct minute once, then index: strftime per row is the slow part.
    steps = np.unique(t)
    stamps = pc.strftime(
        pa.array((START + steps * STEP_S).astype("datetime64[s]")), format="%Y-%m-%dT%H:%M:%SZ"
    )
    stamp_idx = pa.array(np.searchsorted(steps, t).astype(np.int32))
    return pa.table(
        {
            "device": pa.DictionaryArray.from_arrays(
                pa.array(s // len(METRICS), pa.int32()), names
            ).cast(pa.string()),
            "timestamp": pa.DictionaryArray.from_arrays(stamp_idx, stamps).cast(pa.string()),
            "metric": pa.DictionaryArray.from_arrays(
                pa.array(s % len(METRICS), pa.int32()), metrics
            ).cast(pa.string()),
            "value": pc.cast(pa.array(value), pa.string()),
        }
    )


def _malformed(table: pa.Table, rows: npt.NDArray[np.int64]) -> pa.Table:
    """Spoil one field of each row in `rows`: in turn the device, the timestamp, the value."""
    for k, column in enumerate(("device", "timestamp", "value")):
        idx = rows[k::3]
        if idx.size == 0:
            continue
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[idx] = True
        bad = {"device": None, "timestamp": "yesterday-ish", "value": "ERR"}[column]
        col = pc.replace_with_mask(
            table.column(column).combine_chunks(),
            pa.array(mask),
            pa.array([bad] * idx.size, pa.string()),
        )
        table = table.set_column(table.schema.get_field_index(column), column, col)
    return table


def _record_truth(p: Plan, truth: Truth) -> None:
    def key(series: int, step: int) -> tuple[str, str, str]:
        stamp = str(START + step * STEP_S) + "Z"
        return (f"dev-{series // len(METRICS):04d}", METRICS[series % len(METRICS)], stamp)

    for kind in ("spike", "out_of_range", "flatline"):
        truth.planted[kind] = [key(s, t) for s, t in zip(*p.events[kind], strict=True)]
    shift_s, shift_t = p.events["level_shift"]
    truth.planted["level_shift"] = [
        key(s, t + k) for s, t in zip(shift_s, shift_t, strict=True) for k in (0, SHIFT_LEN)
    ]
    truth.planted["drift"] = [
        (*key(s, t)[:2], key(s, t)[2], key(s, t + DRIFT_LEN)[2])
        for s, t in zip(*p.drifts, strict=True)
    ]
    truth.planted["gap"] = [
        (f"dev-{d:04d}", str(START + (t - 1) * STEP_S) + "Z") for d, t in zip(*p.gaps, strict=True)
    ]
    truth.planted["malformed"] = [key(s, t) for s, t in zip(*p.events["malformed"], strict=True)]


def broken_lines(fmt: str) -> list[str]:
    """Lines no parser can split into the file's columns (appended at the end)."""
    return ["dev-0000,2024-03-01T00:00:00Z", "garbage"] if fmt == "csv" else ["{not json"]
