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

from s3worker.errors import BadDataError
from s3worker.processors.appointments import ALIASES
from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.tabular.columns import (
    missing,
    rejects_of,
    resolve,
    strings,
    to_float,
    to_time,
)
from s3worker.processors.tabular.output import ParquetSink, RejectSink, write_frame
from s3worker.processors.tabular.reading import Chunk, Reject, input_encoding, iter_chunks
from s3worker.processors.tabular.spill import Spill

DEFAULT_MINUTES = 30.0  # when a booking has neither an end nor a duration
STATUS_WORDS = {
    "cancelled": ("cancel", "desmarc", "anulad"),
    "no_show": ("no-show", "noshow", "no show", "missed", "falt", "ausente", "nao compareceu"),
    "attended": ("attend", "complet", "done", "realizad", "compareceu", "atendid", "show"),
}
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


def status_of(status: pa.ChunkedArray, no_show: pa.ChunkedArray) -> np.ndarray:
    """`cancelled`, `no_show`, `attended` or `scheduled`, from a status word or a no-show flag."""
    words = pd.Series(status.to_pylist(), dtype="str").str.lower()
    out = np.full(len(words), "scheduled", dtype=object)
    for label, stems in reversed(STATUS_WORDS.items()):  # first listed wins: set it last
        hit = words.str.contains("|".join(stems), regex=True, na=False).to_numpy()
        out[hit] = label
    flag = pd.Series(no_show.to_pylist(), dtype="str").str.strip().str.lower()
    has_flag = flag.notna().to_numpy()
    flagged = flag.isin(YES).to_numpy()
    open_ = has_flag & (out == "scheduled")
    out[open_ & flagged] = "no_show"
    out[open_ & ~flagged] = "attended"
    return out


def bookings(chunk: Chunk, cols: dict[str, str]) -> tuple[pd.DataFrame, list[Reject]]:
    t = chunk.table
    get = {k: strings(t, cols.get(k)) for k in ALIASES}
    start, end, booked = to_time(get["start"]), to_time(get["end"]), to_time(get["scheduled_at"])
    minutes = to_float(get["duration_min"])
    end = np.where(
        np.isnat(end),
        start + (np.nan_to_num(minutes, nan=DEFAULT_MINUTES) * 60e9).astype("timedelta64[ns]"),
        end,
    )
    problems = {
        "start: missing": missing(get["start"]),
        "start: unparseable": np.isnat(start) & ~missing(get["start"]),
        "end: unparseable": np.isnat(to_time(get["end"])) & ~missing(get["end"]),
        "duration: not a number": np.isnan(minutes) & ~missing(get["duration_min"]),
        "no patient or professional": missing(get["patient_id"]) & missing(get["professional_id"]),
        "end before start": end < start,
    }
    keep, rejects = rejects_of(chunk, problems)
    ids = pc.fill_null(
        get["appointment_id"],
        pc.cast(pa.array(np.arange(chunk.start, chunk.start + t.num_rows)), pa.string()),
    )
    frame = pd.DataFrame(
        {
            "appointment_id": ids.to_numpy(zero_copy_only=False),
            "patient_id": get["patient_id"].to_numpy(zero_copy_only=False),
            "professional_id": get["professional_id"].to_numpy(zero_copy_only=False),
            "start": pd.to_datetime(start, utc=True),
            "end": pd.to_datetime(end, utc=True),
            "scheduled_at": pd.to_datetime(booked, utc=True),
            "lead_days": (start - booked) / np.timedelta64(1, "D"),
            "status": status_of(get["status"], get["no_show"]),
            "record": np.arange(chunk.start, chunk.start + t.num_rows),
        }
    )
    return frame[keep].reset_index(drop=True), rejects


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
    cols: dict[str, str] | None = None
    counts = []
    with Spill(out_dir, ACTIVE) as active:
        for chunk in iter_chunks(src, ctx.chunk_rows):
            if cols is None:
                cols = resolve(chunk.table, ALIASES)
                if "start" not in cols:
                    raise BadDataError(
                        f"appointments need a start column; found {chunk.table.column_names}"
                    )
            frame, rejects = bookings(chunk, cols)
            rejected.add(rejects)
            table.write(frame)
            _spill(active, frame[frame["status"] != "cancelled"])
            counts.append(_counts(frame))
            if len(counts) > 16:  # rows out of time order repeat every group in every chunk
                counts = [_merge(counts)]
        rows = rejected.close() | table.close()
        found = _sweep(active)
    rows |= write_frame(out_dir, "conflicts.parquet", found, CONFLICTS)
    daily = _daily(counts)
    rows |= write_frame(out_dir, "daily_professional.parquet", daily, SUMMARY)
    return ProcessResult(
        summary={"encoding": input_encoding(src), **_summary(daily, found, rows, rejected.rows)},
        rows=rows,
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
