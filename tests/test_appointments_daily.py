"""Counts per (day, professional): merged parts equal one group-by of every booking."""

from __future__ import annotations

from pathlib import Path

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


def one_day_per_chunk(n: int, chunk: int) -> pd.DataFrame:
    frame = bookings(np.random.default_rng(1), n, in_order=True)
    frame["start"] = pd.Timestamp("2024-06-01", tz="UTC") + pd.to_timedelta(
        np.arange(len(frame)) // chunk, unit="D"
    )
    return frame


def test_a_schedule_in_time_order_merges_only_its_open_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 400 chunks of a schedule in time order, a day each: no (day, professional) shared
    merged_rows: list[int] = []
    merged = daily._merged

    def merging(parts: list[pa.Table]) -> pa.Table:
        merged_rows.append(sum(p.num_rows for p in parts))
        return merged(parts)

    monkeypatch.setattr(daily, "_merged", merging)
    frame = one_day_per_chunk(4_000, 10)
    counts = DayCounts()
    got = counted(frame, 10, counts)
    # Then the days before the latest are set aside at each merge: a merge takes the parts
    # since the last one and the open day (at most 10 groups a chunk), whatever the file's size
    assert len(merged_rows) >= 20
    assert max(merged_rows) <= (daily.MERGE_PARTS + 2) * 10
    assert counts.in_order
    assert sum(t.num_rows for t in counts.closed) >= got.num_rows - (daily.MERGE_PARTS + 1) * 10
    pd.testing.assert_frame_equal(got.to_pandas(), expected(frame))


def test_a_day_set_aside_that_comes_again_puts_every_group_back() -> None:
    # Given a schedule in time order, then a chunk of its first days again
    frame = one_day_per_chunk(2_000, 10)
    late = frame.iloc[:30].assign(code=np.int8(STATUSES.index("cancelled")))
    both = pd.concat([frame, late], ignore_index=True)
    counts = DayCounts()
    got = counted(both, 10, counts)
    # Then nothing stays set aside and those days count both times
    assert not counts.in_order
    assert counts.closed == []
    pd.testing.assert_frame_equal(got.to_pandas(), expected(both))


def test_groups_set_aside_in_a_folder_count_the_same_and_leave_no_file(tmp_path: Path) -> None:
    # Given a schedule in time order counted with a folder for the groups set aside
    frame = one_day_per_chunk(2_000, 10)
    counts = DayCounts(tmp_path)
    got = counted(frame, 10, counts)
    # Then groups were set aside, the counts are those in memory, and no file is left
    assert counts.closed
    assert got.equals(counted(frame, 10))
    assert list(tmp_path.iterdir()) == []
