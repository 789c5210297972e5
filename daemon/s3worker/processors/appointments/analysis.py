"""The appointments processor's pandas side: bookings, conflicts and summaries.

A chunk's bookings stay Arrow columns from the reader to the Parquet writer (no Python
objects per row); statuses are small integer codes, computed once per distinct word; the
per-day counts are integer group-bys per chunk (`daily`); conflicts: `conflicts`.

Stages, each on its own thread: the CSV read (a chunk ahead), the conversion, the counting
(the caller's thread), and behind it the bookings' Parquet writer and the conflicts' sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.appointments import AppointmentsProcessor
from s3worker.processors.appointments.conflicts import (
    ACTIVE,
    FOUND,
    KINDS,
    Sweeper,
    sweep_written,
)
from s3worker.processors.appointments.daily import COUNTS, SUMMARY, DayCounts
from s3worker.processors.appointments.schema import (
    ATTENDED,
    CANCELLED,
    NO_SHOW,
    SCHEDULED,
    SCHEMA,
    STATUS_WORDS,
    STATUSES,
)
from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.schema import fold
from s3worker.processors.tabular.columns import (
    TIME_WINDOW,
    date_formats,
    missing,
    rejects_of,
    resolve_roles,
    strings,
    to_float,
    to_time,
    to_time_checked,
    with_time,
)
from s3worker.processors.tabular.output import ParquetSink, RejectSink, write_frame
from s3worker.processors.tabular.reading import (
    Chunk,
    Reject,
    input_encoding,
    iter_chunks,
    prefetch,
)

YES = {"yes", "y", "true", "1", "sim", "s"}
TS = pa.timestamp("ms", "UTC")
UTC_NS = pa.timestamp("ns", "UTC")
BOOKINGS = pa.schema(
    [
        ("appointment_id", pa.string()),
        ("patient_id", pa.string()),
        ("professional_id", pa.string()),
        ("start", TS),
        ("end", TS),
        ("scheduled_at", TS),
        ("lead_days", pa.float64()),
        ("status", pa.string()),
        ("record", pa.int64()),
    ]
)
CONFLICTS = pa.schema(  # as the sweep finds them, times to the millisecond
    [f.with_type(TS) if f.name in ("start", "other_start") else f for f in FOUND]
)
# Dictionary-encoded in appointments.parquet: the few professionals, statuses and slot times
# (ids and lead times are nearly all distinct: building their dictionaries was wasted work).
BOOKING_DICTIONARY = ("professional_id", "start", "end", "status")
# Handed to its writer dictionary-encoded already (`written`): the statuses from their codes,
# the professionals as the day counts encode them (`professional_codes`), hashed once.
BOOKING_ENCODED = ("professional_id", "status")
STATUS_DICTIONARY = pa.array(STATUSES)


WINDOW = f"{TIME_WINDOW[0].astype('datetime64[D]')}..{TIME_WINDOW[1].astype('datetime64[D]')}"
ROLE_NAMES = [r.name for r in SCHEMA.roles]
Codes = np.ndarray
Times = np.ndarray  # datetime64[ns]


def status_of(
    status: pa.ChunkedArray, no_show: pa.ChunkedArray, showed_up: pa.ChunkedArray | None = None
) -> Codes:
    """Status codes (STATUSES): from a status word, else a no-show flag, else a showed-up
    flag (yes = attended). Each distinct value is looked at once."""
    out = _per_value(status, _word_status, SCHEDULED)
    for flags, yes, no in ((no_show, NO_SHOW, ATTENDED), (showed_up, ATTENDED, NO_SHOW)):
        if flags is None or flags.null_count == len(flags):
            continue
        said = _per_value(flags, lambda v, y=yes, n=no: y if v.strip().lower() in YES else n, -1)
        open_ = (out == SCHEDULED) & (said >= 0)
        out[open_] = said[open_]
    return out


def _word_status(word: str) -> int:
    folded = fold(word).lower()
    for label, stems in STATUS_WORDS.items():  # first listed wins
        if any(stem in folded for stem in stems):
            return STATUSES.index(label)
    return SCHEDULED


def _per_value(col: pa.ChunkedArray, label: Any, missing: int) -> Codes:
    """`label(value)` for every row, computed once per distinct value; `missing` for nulls."""
    enc = pc.dictionary_encode(col).combine_chunks()
    lut = np.array([label(v) for v in enc.dictionary.to_pylist()] + [missing], dtype=np.int8)
    codes = pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(zero_copy_only=False)
    out: Codes = lut[np.asarray(codes, dtype=np.int64)]
    return out


class Reader:
    """The file's columns (resolved on the first chunk) and how its bookings are read.

    A start is a start column, or a date column and a time-of-day column read together.
    When the first chunk's bookings all start at midnight with no time column, the schedule
    is date-only: bookings are whole days, and time conflicts are not looked for."""

    def __init__(self, chunk: Chunk, ctx: JobContext) -> None:
        self.cols = resolve_roles(SCHEMA, chunk.table, ctx.options)
        self.start_role = "start" if "start" in self.cols else "date"
        # A time-of-day column completes a date; a start column holds its own time.
        self.clock = self.cols.get("time") if self.start_role == "date" else None
        self.formats = date_formats(chunk.table, self.cols.get(self.start_role), ctx.options)
        self.tz = ctx.options.timezone
        self.minutes = AppointmentsProcessor.threshold(ctx, "default_minutes")
        first = to_time(self._start_text(chunk.table), self.formats, self.tz)
        known = first[~np.isnat(first)]
        midnight = known.size > 0 and bool((known == known.astype("datetime64[D]")).all())
        self.date_only = self.clock is None and midnight

    def _start_text(self, t: pa.Table) -> pa.ChunkedArray:
        start = strings(t, self.cols.get(self.start_role))
        return with_time(start, strings(t, self.clock) if self.clock else None)

    def bookings(self, chunk: Chunk) -> tuple[pa.Table, list[Reject]]:
        t = chunk.table
        get = {k: strings(t, self.cols.get(k)) for k in ROLE_NAMES}
        raw_start = self._start_text(t)
        start, outside = to_time_checked(raw_start, self.formats, self.tz)
        end = _times(get["end"], self.formats, self.tz)
        booked = _times(get["scheduled_at"], (), self.tz)
        minutes = to_float(get["duration_min"])
        default = 24 * 60.0 if self.date_only else self.minutes
        span = (np.nan_to_num(minutes, nan=default) * 60e9).astype("timedelta64[ns]")
        end = np.where(np.isnat(end), start + span, end)
        problems = {
            "start: missing": missing(raw_start),
            f"start: out of range ({WINDOW})": outside,
            "start: unparseable": np.isnat(start) & ~missing(raw_start) & ~outside,
            "end: unparseable": np.isnat(_times(get["end"])) & ~missing(get["end"]),
            "duration: not a finite number": np.isnan(minutes) & ~missing(get["duration_min"]),
            "no patient or professional": missing(get["patient_id"])
            & missing(get["professional_id"]),
            "end before start": end < start,
        }
        keep, rejects = rejects_of(chunk, problems)
        return _table(chunk, get, (start, end, booked), keep), rejects


def _times(col: pa.ChunkedArray, formats: Sequence[str] = (), tz: str | None = None) -> Times:
    """`to_time`, with no parsing for a column the file does not have (all null)."""
    if col.null_count == len(col):
        return np.full(len(col), np.datetime64("NaT", "ns"))
    return to_time(col, formats, tz)


def _table(
    chunk: Chunk, get: dict[str, pa.ChunkedArray], times: tuple[Times, ...], keep: np.ndarray
) -> pa.Table:
    """The chunk's rows kept, as bookings (start and end in ns: `conflicts` sweeps them so).
    The numbers are filtered as numpy arrays, so that only the text columns are copied."""
    record = np.arange(chunk.start, chunk.start + chunk.table.num_rows)
    status = status_of(get["status"], get["no_show"], get["showed_up"])[keep]
    start, end, booked = (t[keep] for t in times)
    kept = pa.array(keep)
    professional = get["professional_id"].filter(kept)
    return pa.table(
        {
            "appointment_id": _ids(get["appointment_id"], record).filter(kept),
            "patient_id": get["patient_id"].filter(kept),
            "professional_id": professional,
            "professional_codes": pc.dictionary_encode(professional).combine_chunks(),
            "start": _utc(start),
            "end": _utc(end),
            "scheduled_at": _utc(booked),
            "lead_days": pa.array((start - booked) / np.timedelta64(1, "D"), from_pandas=True),
            "status": pa.DictionaryArray.from_arrays(
                pa.array(status, pa.int32()), STATUS_DICTIONARY
            ),
            "code": pa.array(status),
            "record": pa.array(record[keep]),
        }
    )


def _ids(ids: pa.ChunkedArray, record: np.ndarray) -> pa.ChunkedArray:
    """Appointment ids, the record number where a row has none."""
    if ids.null_count == 0:
        return ids
    return pc.fill_null(ids, pc.cast(pa.array(record), pa.string()))


def _utc(times: Times) -> pa.Array:
    """UTC timestamps, NaT as null: the nanoseconds' buffer is shared, not converted."""
    ns = np.ascontiguousarray(times.astype("datetime64[ns]", copy=False)).view(np.int64)
    nat = np.isnat(ns.view("datetime64[ns]"))
    valid = pa.array(~nat).buffers()[1] if nat.any() else None
    return pa.Array.from_buffers(UTC_NS, ns.size, [valid, pa.py_buffer(ns)], int(nat.sum()))


def written(bookings: pa.Table) -> pa.Table:
    """A chunk's bookings as `appointments.parquet`'s writer takes them: times to the
    millisecond, floored (as `conform` would, but by integer division: its `floor_temporal`
    of a zoned timestamp cost 15 ms per column of a 250,000-row chunk, a third of the
    writer's time); the professionals dictionary-encoded where the reader encoded them
    (`professional_codes`: BOOKING_ENCODED, the statuses coming so)."""
    if "professional_codes" in bookings.column_names:
        i = bookings.schema.get_field_index("professional_id")
        codes = bookings.column("professional_codes")
        bookings = bookings.set_column(i, "professional_id", codes)
    for name in ("start", "end", "scheduled_at"):
        i = bookings.schema.get_field_index(name)
        bookings = bookings.set_column(i, BOOKINGS.field(name), _millis(bookings.column(i)))
    return bookings


def _millis(times: pa.ChunkedArray) -> pa.Array:
    """Nanosecond timestamps floored to TS (milliseconds), nulls kept."""
    ns = times.combine_chunks()
    values = np.frombuffer(ns.buffers()[1], np.int64, len(ns), ns.offset * 8) // 1_000_000
    valid = pc.is_valid(ns).buffers()[1] if ns.null_count else None
    return pa.Array.from_buffers(TS, len(ns), [valid, pa.py_buffer(values)], ns.null_count)


def _parsed(src: Path, ctx: JobContext) -> Iterator[tuple[Reader, pa.Table, list[Reject]]]:
    """Chunks as bookings: the CSV read a chunk ahead (through `prefetch`) of this
    conversion, which `run` takes through `prefetch` in its turn."""
    reader: Reader | None = None
    for chunk in prefetch(iter_chunks(src, ctx.chunk_rows, ctx.sample, ctx.options)):
        reader = reader or Reader(chunk, ctx)
        yield reader, *reader.bookings(chunk)


def run(src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    rejected = RejectSink(out_dir)
    table = ParquetSink(
        out_dir, "appointments.parquet", BOOKINGS, BOOKING_DICTIONARY, BOOKING_ENCODED
    )
    reader: Reader | None = None
    counts = DayCounts(out_dir)
    with ThreadPoolExecutor(2) as stages, ThreadPoolExecutor(len(KINDS)) as kinds:
        sweeper = Sweeper(kinds)
        writing, sweeping = Behind(stages), Behind(stages)
        for reader, bookings, rejects in prefetch(_parsed(src, ctx)):
            rejected.add(rejects)
            writing.submit(lambda b: table.write(written(b)), bookings)
            if not reader.date_only:
                sweeping.submit(sweeper.add, swept(bookings))
            counts.add(bookings)
        writing.wait()
        sweeping.wait()
        rows = rejected.close() | table.close()
        found = sweeper.finish()
    if found is None:  # out of time order: swept from the written table, a week at a time
        found = sweep_written(out_dir / "appointments.parquet", out_dir)
    rows |= write_frame(out_dir, "conflicts.parquet", found, CONFLICTS)
    daily = counts.daily()
    rows |= write_frame(out_dir, "daily_professional.parquet", daily, SUMMARY)
    summary = _summary(daily, found, rows, rejected.rows)
    summary["schedule"] = "date-only" if reader is not None and reader.date_only else "timed"
    return ProcessResult(
        summary={"encoding": input_encoding(src, ctx.sample), **summary}, rows=rows
    )


def swept(bookings: pa.Table) -> pa.Table:
    """A chunk's bookings as the conflicts' sweep takes them (`Sweeper.add`)."""
    held = pc.not_equal(bookings.column("code"), CANCELLED)
    return bookings.select(ACTIVE.names).append_column("held", held)


class Behind:
    """Calls run behind the caller on a pool's thread, one at a time and in order (each
    `submit` waits for the call before): the bookings' writer, the conflicts' sweep."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.last: Future[None] | None = None

    def submit(self, call: Callable[[pa.Table], None], table: pa.Table) -> None:
        self.wait()
        self.last = self.pool.submit(call, table)

    def wait(self) -> None:
        if self.last is not None:
            self.last.result()
            self.last = None


def _summary(
    daily: pa.Table, found: pa.Table, rows: dict[str, int], rejected: int
) -> dict[str, Any]:
    total = {c: int(pc.sum(daily.column(c)).as_py() or 0) for c in COUNTS}
    held = total["bookings"] - total["cancellations"]
    kinds = found.column("kind")
    return {
        **total,
        "rejected_rows": rejected,
        "no_show_rate": round(total["no_shows"] / held, 4) if held else None,
        "days": int(pc.count_distinct(daily.column("day")).as_py()),
        "professionals": int(pc.count_distinct(daily.column("professional_id")).as_py()),
        "conflicts": {
            k: int(pc.sum(pc.equal(kinds, k)).as_py() or 0) for k in ("professional", "patient")
        },
        "outputs": rows,
    }
