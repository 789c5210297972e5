"""Counts per (day, professional): merged parts equal one group-by of every booking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from s3worker.processors.appointments import daily
from s3worker.processors.appointments.daily import SUMMARY, DayCounts
from s3worker.processors.appointments.schema import STATUSES

NAMES = ["dr-b", "dr-a", "dra-é", "dr-z", None, "unknown"]  # None and "unknown" are one


def bookings(rng: np.random.Generator, n: int, in_order: bool) -> pd.DataFrame:
    start = pd.Timestamp("2024-06-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 60 * 24 * 40, n), unit="min"
    )
    frame = pd.DataFrame(
        {
            "start": start,
            "professional_id": rng.choice(np.array(NAMES, dtype=object), n),
            "code": rng.integers(0, len(STATUSES), n).astype(np.int8),
        }
    )
    return frame.sort_values("start", kind="stable") if in_order else frame


BOOKINGS = pa.schema(
    [("start", pa.timestamp("ns", "UTC")), ("professional_id", pa.string()), ("code", pa.int8())]
)  # as analysis gives them


def counted(frame: pd.DataFrame, chunk: int, counts: DayCounts | None = None) -> pa.Table:
    counts = counts or DayCounts()
    for lo in range(0, len(frame), chunk):
        part = frame.iloc[lo : lo + chunk]
        counts.add(pa.Table.from_pandas(part, preserve_index=False).cast(BOOKINGS))
    return counts.daily()


def expected(frame: pd.DataFrame) -> pd.DataFrame:
    f = frame.assign(
        day=frame["start"].dt.strftime("%Y-%m-%d"),
        professional_id=frame["professional_id"].fillna("unknown"),
    )
    out = (
        f.assign(
            bookings=1,
            cancellations=f["code"] == STATUSES.index("cancelled"),
            no_shows=f["code"] == STATUSES.index("no_show"),
            attended=f["code"] == STATUSES.index("attended"),
        )
        .groupby(["day", "professional_id"], sort=True)[daily.COUNTS]
        .sum()
        .astype("int64")
        .reset_index()
    )
    held = out["bookings"] - out["cancellations"]
    return out.assign(no_show_rate=(out["no_shows"] / held).where(held > 0))


@pytest.mark.parametrize("in_order", [True, False])
@pytest.mark.parametrize("chunk", [7, 100, 5_000])
def test_chunked_counts_equal_one_group_by_of_every_booking(in_order: bool, chunk: int) -> None:
    # Given bookings in or out of time order, added in chunks (so merged many times)
    frame = bookings(np.random.default_rng(chunk), 5_000, in_order)
    # When counted chunk by chunk
    got = counted(frame, chunk)
    # Then: one row per (day, professional), by day then name (binary order), as pandas has it
    assert got.schema == SUMMARY
    pd.testing.assert_frame_equal(got.to_pandas(), expected(frame))


def test_no_bookings_give_an_empty_table() -> None:
    assert DayCounts().daily().equals(SUMMARY.empty_table())


def test_a_schedule_in_time_order_is_merged_a_few_times_not_every_few_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 400 chunks of a schedule in time order, a day each: no (day, professional) shared
    merges: list[int] = []
    merged = daily._merged
    monkeypatch.setattr(daily, "_merged", lambda parts: merges.append(len(parts)) or merged(parts))
    frame = bookings(np.random.default_rng(1), 4_000, in_order=True)
    frame["start"] = pd.Timestamp("2024-06-01", tz="UTC") + pd.to_timedelta(
        np.arange(len(frame)) // 10, unit="D"
    )
    counts = DayCounts()
    got = counted(frame, 10, counts)
    # Then the merged table doubles between merges: a handful of merges (and the last one
    # in `daily`), not one every MERGE_PARTS chunks
    assert 2 <= len(merges) <= 7
    assert counts.waiting_rows <= max(counts.merged_rows, daily.MERGE_PARTS * 10)
    pd.testing.assert_frame_equal(got.to_pandas(), expected(frame))
