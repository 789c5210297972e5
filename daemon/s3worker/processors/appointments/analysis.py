"""The appointments processor's pandas side: bookings, conflicts and summaries.

Conflicts are found by a sweep in time order over the active bookings. These are spilled
to disk in buckets of a week (by start) and swept one bucket at a time, carrying over only
the bookings still running at the bucket's end: memory follows the bookings of one week,
not of the file. Only the conflicts found are kept until the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.appointments import AppointmentsProcessor
from s3worker.processors.appointments.schema import SCHEMA, STATUS_WORDS
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
from s3worker.processors.tabular.reading import Chunk, Reject, input_encoding, iter_chunks
from s3worker.processors.tabular.spill import Spill

YES = {"yes", "y", "true", "1", "sim", "s"}
TS = pa.timestamp("ms", "UTC")
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
CONFLICTS = pa.schema(
    [
        ("kind", pa.string()),
        ("entity", pa.string()),
        ("appointment_id", pa.string()),
        ("other_appointment_id", pa.string()),
        ("start", TS),
        ("other_start", TS),
        ("overlap_minutes", pa.float64()),
    ]
)
ACTIVE = pa.schema(
    [
        ("appointment_id", pa.string()),
        ("patient_id", pa.string()),
        ("professional_id", pa.string()),
        ("start", pa.timestamp("ns", "UTC")),
        ("end", pa.timestamp("ns", "UTC")),
    ]
)
BUCKET = np.timedelta64(7, "D")  # the span of bookings swept at once
KINDS = ("professional", "patient")
_EPOCH, _BUCKET = pd.Timestamp(0, tz="UTC"), pd.Timedelta(BUCKET)
COUNTS = ["bookings", "cancellations", "no_shows", "attended"]
SUMMARY = pa.schema(
    [
        ("day", pa.string()),
        ("professional_id", pa.string()),
        *[(c, pa.int64()) for c in COUNTS],
        ("no_show_rate", pa.float64()),
    ]
)


WINDOW = f"{TIME_WINDOW[0].astype('datetime64[D]')}..{TIME_WINDOW[1].astype('datetime64[D]')}"
ROLE_NAMES = [r.name for r in SCHEMA.roles]


def status_of(
    status: pa.ChunkedArray, no_show: pa.ChunkedArray, showed_up: pa.ChunkedArray | None = None
) -> np.ndarray:
    """`cancelled`, `no_show`, `attended` or `scheduled`: from a status word, else a no-show
    flag, else a showed-up flag (yes = attended). Each distinct value is looked at once."""
    out = _per_value(status, _word_status, "scheduled")
    for flags, yes, no in ((no_show, "no_show", "attended"), (showed_up, "attended", "no_show")):
        if flags is None or flags.null_count == len(flags):
            continue
        said = _per_value(flags, lambda v, y=yes, n=no: y if v.strip().lower() in YES else n, "")
        open_ = (out == "scheduled") & (said != "")
        out[open_] = said[open_]
    return out


def _word_status(word: str) -> str:
    folded = fold(word).lower()
    for label, stems in STATUS_WORDS.items():  # first listed wins
        if any(stem in folded for stem in stems):
            return label
    return "scheduled"


def _per_value(col: pa.ChunkedArray, label: Any, missing: str) -> np.ndarray:
    """`label(value)` for every row, computed once per distinct value; `missing` for nulls."""
    enc = pc.dictionary_encode(col).combine_chunks()
    lut = np.array([label(v) for v in enc.dictionary.to_pylist()] + [missing], dtype=object)
    codes = pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(zero_copy_only=False)
    out: np.ndarray = lut[np.asarray(codes, dtype=np.int64)]
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

    def bookings(self, chunk: Chunk) -> tuple[pd.DataFrame, list[Reject]]:
        t = chunk.table
        get = {k: strings(t, self.cols.get(k)) for k in ROLE_NAMES}
        raw_start = self._start_text(t)
        start, outside = to_time_checked(raw_start, self.formats, self.tz)
        end = to_time(get["end"], self.formats, self.tz)
        booked = to_time(get["scheduled_at"], (), self.tz)
        minutes = to_float(get["duration_min"])
        default = 24 * 60.0 if self.date_only else self.minutes
        span = (np.nan_to_num(minutes, nan=default) * 60e9).astype("timedelta64[ns]")
        end = np.where(np.isnat(end), start + span, end)
        problems = {
            "start: missing": missing(raw_start),
            f"start: out of range ({WINDOW})": outside,
            "start: unparseable": np.isnat(start) & ~missing(raw_start) & ~outside,
            "end: unparseable": np.isnat(to_time(get["end"])) & ~missing(get["end"]),
            "duration: not a finite number": np.isnan(minutes) & ~missing(get["duration_min"]),
            "no patient or professional": missing(get["patient_id"])
            & missing(get["professional_id"]),
            "end before start": end < start,
        }
        keep, rejects = rejects_of(chunk, problems)
        frame = _frame(chunk, get, start, end, booked)
        return frame[keep].reset_index(drop=True), rejects


def _frame(
    chunk: Chunk,
    get: dict[str, pa.ChunkedArray],
    start: np.ndarray,
    end: np.ndarray,
    booked: np.ndarray,
) -> pd.DataFrame:
    n = chunk.table.num_rows
    ids = pc.fill_null(
        get["appointment_id"],
        pc.cast(pa.array(np.arange(chunk.start, chunk.start + n)), pa.string()),
    )
    return pd.DataFrame(
        {
            "appointment_id": ids.to_numpy(zero_copy_only=False),
            "patient_id": get["patient_id"].to_numpy(zero_copy_only=False),
            "professional_id": get["professional_id"].to_numpy(zero_copy_only=False),
            "start": pd.to_datetime(start, utc=True),
            "end": pd.to_datetime(end, utc=True),
            "scheduled_at": pd.to_datetime(booked, utc=True),
            "lead_days": (start - booked) / np.timedelta64(1, "D"),
            "status": status_of(get["status"], get["no_show"], get["showed_up"]),
            "record": np.arange(chunk.start, chunk.start + n),
        }
    )


def conflicts(active: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Pairs of active bookings of one entity that overlap in time."""
    col = f"{kind}_id"
    df = (
        active[active[col].notna()]
        .sort_values([col, "start", "appointment_id"])
        .reset_index(drop=True)
    )
    if df.empty:
        return pd.DataFrame(columns=CONFLICTS.names)
    start, end = df["start"].to_numpy("int64"), df["end"].to_numpy("int64")
    reach = df.groupby(col, sort=False)["end"].cummax().to_numpy("int64")
    holder = np.maximum.accumulate(np.where(end == reach, np.arange(len(df)), 0))
    same = np.zeros(len(df), dtype=bool)
    same[1:] = df[col].to_numpy()[1:] == df[col].to_numpy()[:-1]
    prev_reach, prev_holder = np.roll(reach, 1), np.roll(holder, 1)
    hit = same & (start < prev_reach)
    if "carried" in df:  # reported in the bucket they started in
        hit &= ~df["carried"].to_numpy(dtype=bool)
    other = prev_holder[hit]
    return pd.DataFrame(
        {
            "kind": kind,
            "entity": df[col].to_numpy()[hit],
            "appointment_id": df["appointment_id"].to_numpy()[hit],
            "other_appointment_id": df["appointment_id"].to_numpy()[other],
            "start": df["start"].array[hit],
            "other_start": df["start"].array[other],
            "overlap_minutes": (np.minimum(end[hit], end[other]) - start[hit]) / 60e9,
        }
    )


def run(src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    rejected, table = RejectSink(out_dir), ParquetSink(out_dir, "appointments.parquet", BOOKINGS)
    reader: Reader | None = None
    counts = []
    with Spill(out_dir, ACTIVE) as active:
        for chunk in iter_chunks(src, ctx.chunk_rows, ctx.sample, ctx.options):
            reader = reader or Reader(chunk, ctx)
            frame, rejects = reader.bookings(chunk)
            rejected.add(rejects)
            table.write(frame)
            if not reader.date_only:
                _spill(active, frame[frame["status"] != "cancelled"])
            counts.append(_counts(frame))
            if len(counts) > 16:  # rows out of time order repeat every group in every chunk
                counts = [_merge(counts)]
        rows = rejected.close() | table.close()
        found = _sweep(active)
    rows |= write_frame(out_dir, "conflicts.parquet", found, CONFLICTS)
    daily = _daily(counts)
    rows |= write_frame(out_dir, "daily_professional.parquet", daily, SUMMARY)
    summary = _summary(daily, found, rows, rejected.rows)
    summary["schedule"] = "date-only" if reader is not None and reader.date_only else "timed"
    return ProcessResult(
        summary={"encoding": input_encoding(src, ctx.sample), **summary}, rows=rows
    )


def _spill(active: Spill, frame: pd.DataFrame) -> None:
    start = frame["start"].to_numpy("datetime64[ns]")
    bucket = (start.astype("datetime64[D]") - np.datetime64(0, "D")) // BUCKET
    active.add(
        bucket.astype(np.int64),
        {n: frame[n].to_numpy(np.dtype("datetime64[ns]") if n in ("start", "end") else object)
         for n in ACTIVE.names},
    )  # fmt: skip


def _sweep(active: Spill) -> pd.DataFrame:
    """Every conflict, one bucket of bookings (plus those still running into it) at a time."""
    found: dict[str, list[pd.DataFrame]] = {k: [] for k in KINDS}
    carry = pd.DataFrame()
    for bucket in active.buckets():
        rows = bucket.to_pandas().assign(carried=False)
        both = pd.concat([carry, rows], ignore_index=True) if len(carry) else rows
        for kind in KINDS:
            found[kind].append(conflicts(both, kind))
        bucket_end = (rows["start"].min().floor("D") - _EPOCH) // _BUCKET * _BUCKET + _EPOCH
        carry = both[both["end"] > bucket_end + _BUCKET].assign(carried=True)
    # In the order one sweep over the whole file gives: by kind, entity, start.
    parts = [
        pd.concat(found[k], ignore_index=True).sort_values(["entity", "start", "appointment_id"])
        for k in KINDS
        if found[k]
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CONFLICTS.names)


def _counts(frame: pd.DataFrame) -> pd.DataFrame:
    status = frame["status"]
    return (
        pd.DataFrame(
            {
                # the day as a date here, as text only once per group (in _daily)
                "day": frame["start"].to_numpy("datetime64[ns]").astype("datetime64[D]"),
                "professional_id": frame["professional_id"].fillna("unknown"),
                "bookings": 1,
                "cancellations": (status == "cancelled").astype("int64"),
                "no_shows": (status == "no_show").astype("int64"),
                "attended": (status == "attended").astype("int64"),
            }
        )
        .groupby(["day", "professional_id"])[COUNTS]
        .sum()
    )


def _merge(counts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(counts).groupby(level=["day", "professional_id"]).sum()


def _daily(counts: list[pd.DataFrame]) -> pd.DataFrame:
    if not counts:
        return pd.DataFrame(columns=SUMMARY.names)
    daily = _merge(counts).reset_index()
    daily["day"] = daily["day"].dt.strftime("%Y-%m-%d")
    held = daily["bookings"] - daily["cancellations"]
    return daily.assign(no_show_rate=(daily["no_shows"] / held.where(held > 0)).astype("float64"))


def _summary(
    daily: pd.DataFrame, found: pd.DataFrame, rows: dict[str, int], rejected: int
) -> dict[str, Any]:
    total = {c: int(daily[c].sum()) for c in COUNTS} if len(daily) else dict.fromkeys(COUNTS, 0)
    held = total["bookings"] - total["cancellations"]
    kinds = found["kind"].value_counts().to_dict() if len(found) else {}
    return {
        **total,
        "rejected_rows": rejected,
        "no_show_rate": round(total["no_shows"] / held, 4) if held else None,
        "days": int(daily["day"].nunique()) if len(daily) else 0,
        "professionals": int(daily["professional_id"].nunique()) if len(daily) else 0,
        "conflicts": {
            "professional": int(kinds.get("professional", 0)),
            "patient": int(kinds.get("patient", 0)),
        },
        "outputs": rows,
    }
