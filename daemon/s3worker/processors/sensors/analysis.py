"""The sensors processor's pandas side: chunks in, statistics and anomalies out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.errors import BadDataError
from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.schema import norm
from s3worker.processors.sensors import RANGES
from s3worker.processors.sensors import stats as sensor_stats
from s3worker.processors.sensors.schema import SCHEMA
from s3worker.processors.sensors.series import Found, Readings, Scored, SeriesState
from s3worker.processors.tabular.columns import (
    date_formats,
    missing,
    rejects_of,
    resolve_roles,
    strings,
    to_float,
    to_time_checked,
    with_time,
)
from s3worker.processors.tabular.output import ParquetSink, RejectSink
from s3worker.processors.tabular.reading import (
    Chunk,
    Reject,
    input_encoding,
    iter_chunks,
    prefetch,
)

ANOMALIES_SCHEMA = pa.schema(
    [
        ("device", pa.string()),
        ("metric", pa.string()),
        ("timestamp", pa.timestamp("ms", "UTC")),
        ("until", pa.timestamp("ms", "UTC")),
        ("reason", pa.string()),
        ("value", pa.float64()),
        ("expected", pa.float64()),
        ("score", pa.float64()),
        ("record", pa.int64()),
    ]
)
# A chunk's readings, one part per metric (device, metric, ts ns, value, record), and rejects.
Part = tuple[pa.ChunkedArray, pa.ChunkedArray, np.ndarray, np.ndarray, np.ndarray]
Normalised = tuple[list[Part], list[Reject]]
NewSeries = tuple[np.ndarray, np.ndarray, np.ndarray]  # lo, hi, first value
# A chunk's readings with their series ids (and the series they add), and its rejects.
Prepared = tuple[list[tuple[Readings, NewSeries | None]], list[Reject]]
# Wide-format columns that describe a reading rather than measure something.
NOT_METRICS = {"unit", "units", "location", "site", "line", "plant", "id", "readingid", "status"}
NOT_METRICS |= {"anomaly", "changepoint", "label", "islabel", "isanomaly"}  # benchmark labels


class Series:
    """(device, metric) -> global series id, with the state that detection carries along."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], int] = {}
        self.devices: list[str] = []
        self.metrics: list[str] = []
        self.state = SeriesState()

    def ids_of(
        self, device: pa.ChunkedArray, metric: pa.ChunkedArray, value: np.ndarray
    ) -> np.ndarray:
        """Each reading's series id; series seen for the first time are added to `state`."""
        ids, new = self.register(device, metric, value)
        if new is not None:
            self.state.add_series(*new)
        return ids

    def register(
        self, device: pa.ChunkedArray, metric: pa.ChunkedArray, value: np.ndarray
    ) -> tuple[np.ndarray, NewSeries | None]:
        """Each reading's series id, and the (lo, hi, first value) of the series seen for the
        first time, for `state.add_series`: leaving `state` alone, this runs on the reading
        thread while the detection works on the chunk before. `device` and `metric` are
        strings or, as `Normaliser` hands them, dictionary-encoded strings."""
        d, m = _encoded(device), _encoded(metric)
        combined = _pair_codes(d, m)
        # Counting, not sorting, finds the pairs present: np.unique's sort was most of this
        # function's time, and once the series are known no first rows are needed.
        size = len(d.dictionary) * len(m.dictionary)
        present = np.flatnonzero(np.bincount(combined, minlength=size))
        d_names, m_names = d.dictionary.to_pylist(), m.dictionary.to_pylist()
        keys = [(d_names[c // len(m_names)], m_names[c % len(m_names)]) for c in present.tolist()]
        if any(k not in self.ids for k in keys):  # new series: numbered as in `_register_new`
            return self._register_new(d, m, value)
        lut = np.zeros(size, dtype=np.int64)
        lut[present] = [self.ids[k] for k in keys]
        ids: np.ndarray = lut[combined]
        return ids, None

    def _register_new(
        self, device: pa.DictionaryArray, metric: pa.DictionaryArray, value: np.ndarray
    ) -> tuple[np.ndarray, NewSeries]:
        """`register` of a chunk with new series: the new ids follow the order of the pairs
        in the readings' own encoding (first seen first), whatever dictionary they came in."""
        d = pc.dictionary_encode(device.dictionary.take(device.indices))
        m = pc.dictionary_encode(metric.dictionary.take(metric.indices))
        combined = _pair_codes(d, m)
        lut = np.zeros(len(d.dictionary) * len(m.dictionary), dtype=np.int64)
        codes, first = np.unique(combined, return_index=True)
        d_names, m_names = d.dictionary.to_pylist(), m.dictionary.to_pylist()
        new: list[tuple[str, str, float]] = []
        for code, row in zip(codes.tolist(), first.tolist(), strict=True):
            key = (d_names[code // len(m_names)], m_names[code % len(m_names)])
            if key not in self.ids:
                self.ids[key] = len(self.ids)
                self.devices.append(key[0])
                self.metrics.append(key[1])
                new.append((*key, float(value[row])))
            lut[code] = self.ids[key]
        ids: np.ndarray = lut[combined]
        limits = np.array([RANGES.get(norm(m), (-np.inf, np.inf)) for _, m, _ in new])
        return ids, (limits[:, 0], limits[:, 1], np.array([v for *_, v in new]))


class Normaliser:
    """Turns a chunk of string columns into readings, long or wide format alike."""

    def __init__(self, first: pa.Table, ctx: JobContext) -> None:
        self.cols = resolve_roles(SCHEMA, first, ctx.options)
        self.when = "timestamp" if "timestamp" in self.cols else "date"
        self.formats = date_formats(first, self.cols.get(self.when), ctx.options)
        self.tz, self.decimal = ctx.options.timezone, ctx.options.decimal
        self.device = series_name(ctx.key)  # the device of a file without a device column
        self.long = "metric" in self.cols and "value" in self.cols
        used = set(self.cols.columns.values())
        others = [c for c in first.column_names if c not in used and norm(c) not in NOT_METRICS]
        self.wide = [c for c in others if norm(c) in RANGES or _mostly_numeric(first.column(c))]
        if not self.long and "value" in self.cols:  # `timestamp,value`: one series, "value"
            self.wide = [self.cols.columns["value"]]
        if not self.long and not self.wide:
            raise BadDataError(
                f"sensors need a value column, metric and value columns, or numeric columns "
                f"(wide format); columns seen: {first.column_names}; set the option "
                "mapping.value=COLUMN to name the readings"
            )

    def _device(self, t: pa.Table) -> pa.ChunkedArray:
        if "device" in self.cols:
            return strings(t, self.cols.get("device"))
        return _repeat(self.device, t.num_rows)

    def _time(self, t: pa.Table) -> pa.ChunkedArray:
        clock = self.cols.get("time") if self.when == "date" else None  # completes a date
        return with_time(strings(t, self.cols.get(self.when)), strings(t, clock) if clock else None)

    def __call__(self, chunk: Chunk) -> Normalised:
        t = chunk.table
        device, ts_raw = self._device(t), self._time(t)
        ts, outside = to_time_checked(ts_raw, self.formats, self.tz)
        problems = {
            "device: missing": missing(device),
            "timestamp: missing": missing(ts_raw),
            "timestamp: out of range (1900-01-01..2200-01-01)": outside,
            "timestamp: unparseable": np.isnat(ts) & ~missing(ts_raw) & ~outside,
        }
        values = self._values(t, problems)
        keep, rejects = rejects_of(chunk, problems)
        # Encoded once for every metric, the filters below take indices, not strings.
        device = _encoded_chunked(device)
        records = np.arange(chunk.start, chunk.start + t.num_rows, dtype=np.int64)
        parts = []
        for metric, value in values:
            ok = keep & ~np.isnan(value)
            mask = pa.array(ok)
            parts.append(
                (
                    device.filter(mask),
                    metric.filter(mask),
                    ts[ok].astype(np.int64),
                    value[ok],
                    records[ok],
                )
            )
        return parts, rejects

    def _values(
        self, t: pa.Table, problems: dict[str, np.ndarray]
    ) -> list[tuple[pa.ChunkedArray, np.ndarray]]:
        if self.long:
            metric, raw = strings(t, self.cols.get("metric")), strings(t, self.cols.get("value"))
            value = to_float(raw, self.decimal)
            problems["metric: missing"] = missing(metric)
            metric = _encoded_chunked(metric)
            problems["value: missing"] = missing(raw)
            problems["value: not a number"] = np.isnan(value) & ~missing(raw)
            return [(metric, value)]
        out, present = [], np.zeros(t.num_rows, dtype=bool)
        for name in self.wide:
            raw = strings(t, name)
            value = to_float(raw, self.decimal)
            problems[f"{name}: not a number"] = np.isnan(value) & ~missing(raw)
            present |= ~np.isnan(value)
            out.append((_repeat(name, t.num_rows), value))
        problems["no readings"] = ~present
        return out


def _pair_codes(d: pa.DictionaryArray, m: pa.DictionaryArray) -> np.ndarray:
    """Each row's (device, metric) pair as one number: device index * metrics + metric index."""
    d_idx = d.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    m_idx = m.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    out: np.ndarray = d_idx * len(m.dictionary) + m_idx
    return out


def _encoded(col: pa.ChunkedArray) -> pa.DictionaryArray:
    """`col` dictionary-encoded, in one array (as it is when it comes encoded)."""
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    out: pa.DictionaryArray = col.combine_chunks()
    return out


def _encoded_chunked(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """`col` dictionary-encoded (one dictionary for every chunk)."""
    return col if pa.types.is_dictionary(col.type) else pc.dictionary_encode(col)


def _repeat(name: str, n: int) -> pa.ChunkedArray:
    """`name` `n` times, dictionary-encoded (no string per row)."""
    indices = pa.array(np.zeros(n, dtype=np.int32))
    return pa.chunked_array([pa.DictionaryArray.from_arrays(indices, pa.array([name]))])


def series_name(key: str) -> str:
    """`plant/line-7/press.csv.gz` -> `press`: the device of a file with no device column."""
    name = key.rsplit("/", 1)[-1]
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return name or key


def _mostly_numeric(col: pa.ChunkedArray) -> bool:
    sample = col.slice(0, 1000)
    values = to_float(sample)
    known = int(len(sample) - sample.null_count)
    return bool(known > 0 and np.count_nonzero(~np.isnan(values)) >= 0.9 * known)


def run(src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    stats = sensor_stats.Stats(out_dir)
    try:
        return _run(src, out_dir, ctx, stats)
    finally:
        stats.close()


def _run(src: Path, out_dir: Path, ctx: JobContext, stats: sensor_stats.Stats) -> ProcessResult:
    series = Series()
    rejected = RejectSink(out_dir)
    anomalies = ParquetSink(out_dir, "anomalies.parquet", ANOMALIES_SCHEMA)
    tally = sensor_stats.Tally()  # added to `stats` once the statistics thread is done
    detector = series.state.detector
    for scored, rejects in prefetch(_scored(src, ctx, series, stats)):
        rejected.add(rejects)
        for chunk in scored:
            found = detector.detect(chunk)
            tally.add(found, chunk.size)
            anomalies.write(_anomaly_table(series, found))
    found = detector.finish()
    tally.add(found, series.state.size)
    anomalies.write(_anomaly_table(series, found))
    stats.add_tally(tally)
    rows = rejected.close() | anomalies.close()
    rows |= sensor_stats.write(out_dir, stats, series.devices, series.metrics)
    summary = sensor_stats.summary(stats, series.devices, rows, rejected.rows)
    return ProcessResult(
        summary={"encoding": input_encoding(src, ctx.sample), **summary}, rows=rows
    )


def _scored(
    src: Path, ctx: JobContext, series: Series, stats: sensor_stats.Stats
) -> Iterator[tuple[list[Scored], list[Reject]]]:
    """Chunks prepared for the detectors (tails, baselines, noise floor) and added to the
    statistics: `run` takes them through `prefetch`, so this runs on a thread of its own,
    between the reading thread and the detectors (three stages, one chunk apart)."""
    for prepared, rejects in prefetch(_prepared(src, ctx, series)):
        scored = []
        for readings, new in prepared:
            if new is not None:
                series.state.add_series(*new)
            stats.add(readings, series.state.size)  # not len(series.ids): reading runs ahead
            scored.append(series.state.prepare(readings))
        yield scored, rejects


def _prepared(src: Path, ctx: JobContext, series: Series) -> Iterator[Prepared]:
    """Chunks parsed, typed and given series ids, on the reading thread."""
    for parts, rejects in _normalised(src, ctx):
        prepared = []
        for device, metric, ts, value, record in parts:
            ids, new = series.register(device, metric, value)
            prepared.append((Readings(ids, ts, value, record), new))
        yield prepared, rejects


def _normalised(src: Path, ctx: JobContext) -> Iterator[Normalised]:
    """Chunks parsed and typed."""
    normalise: Normaliser | None = None
    for chunk in iter_chunks(src, ctx.chunk_rows, ctx.sample, ctx.options):
        normalise = normalise or Normaliser(chunk.table, ctx)
        yield normalise(chunk)


def _anomaly_table(series: Series, f: Found) -> pa.Table:
    names = (
        np.array([*series.devices, ""], dtype=object),
        np.array([*series.metrics, ""], dtype=object),
    )
    return pa.table(
        {
            "device": pa.array(names[0][f.gid], pa.string()),
            "metric": pa.array(names[1][f.gid], pa.string()),
            "timestamp": _ms(f.ts),
            "until": _ms(f.until),
            "reason": pa.array(f.reason.astype(object), pa.string()),
            "value": f.value,
            "expected": f.expected,
            "score": np.round(f.score, 6),
            "record": f.record,
        }
    )


def _ms(ns: np.ndarray) -> pa.Array:
    return pa.array(ns // 1_000_000, pa.int64()).cast(pa.timestamp("ms", "UTC"))
