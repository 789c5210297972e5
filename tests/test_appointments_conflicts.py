"""Double bookings: each booking that starts before an earlier one of its entity has ended."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from s3worker.processors.appointments import conflicts as conflicts_module
from s3worker.processors.appointments.conflicts import (
    ACTIVE,
    FOUND,
    Sweeper,
    conflicts,
    repeated,
    spill,
    sweep,
)
from s3worker.processors.tabular.spill import Spill

Booking = tuple[str, str | None, str | None, str, str]  # id, patient, doctor, start, end


def bookings(rows: list[Booking]) -> pa.Table:
    ids, patients, doctors, starts, ends = (list(c) for c in zip(*rows, strict=True))
    times = [pa.array(np.array(c, dtype="datetime64[ns]"), ACTIVE.field("start").type)
             for c in (starts, ends)]  # fmt: skip
    return pa.table([ids, patients, doctors, *times], schema=ACTIVE)


def swept(tmp_path: Path, *chunks: list[Booking]) -> list[dict[str, Any]]:
    with Spill(tmp_path, ACTIVE) as active:
        for chunk in chunks:
            spill(active, bookings(chunk))
        found = sweep(active)
    assert found.schema == FOUND
    return [
        {k: row[k] for k in ("kind", "entity", "appointment_id", "other_appointment_id")}
        | {"minutes": row["overlap_minutes"]}
        for row in found.to_pylist()
    ]


def test_an_overlap_is_reported_once_at_the_later_booking(tmp_path: Path) -> None:
    found = swept(tmp_path, [
        ("a1", "ana", "drx", "2024-06-03T09:00", "2024-06-03T09:30"),
        ("a2", "bia", "drx", "2024-06-03T09:20", "2024-06-03T09:50"),
        ("a3", "caio", "drx", "2024-06-03T09:50", "2024-06-03T10:10"),  # starts as a2 ends
    ])  # fmt: skip
    assert found == [
        {"kind": "professional", "entity": "drx", "appointment_id": "a2",
         "other_appointment_id": "a1", "minutes": 10.0},
    ]  # fmt: skip


def test_the_overlap_is_with_the_booking_that_reaches_furthest(tmp_path: Path) -> None:
    found = swept(tmp_path, [
        ("long", "p1", "drx", "2024-06-03T08:00", "2024-06-03T12:00"),
        ("short", "p2", "drx", "2024-06-03T09:00", "2024-06-03T09:15"),
        ("late", "p3", "drx", "2024-06-03T10:00", "2024-06-03T10:30"),
    ])  # fmt: skip
    assert [(f["appointment_id"], f["other_appointment_id"], f["minutes"]) for f in found] == [
        ("short", "long", 15.0),
        ("late", "long", 30.0),  # not with "short", which ended before it began
    ]


def test_patients_are_swept_like_professionals_and_sorted_after_them(tmp_path: Path) -> None:
    found = swept(tmp_path, [
        ("b3", None, "drx", "2024-06-03T09:00", "2024-06-03T09:30"),  # no patient: not swept
        ("b2", "ana", "dry", "2024-06-03T09:10", "2024-06-03T09:40"),
        ("b1", "ana", "drx", "2024-06-03T09:00", "2024-06-03T09:30"),
        ("b4", None, "drz", "2024-06-03T09:00", "2024-06-03T09:30"),
    ])  # fmt: skip
    assert [(f["kind"], f["entity"], f["appointment_id"], f["other_appointment_id"])
            for f in found] == [
        ("professional", "drx", "b3", "b1"),  # same start: by appointment id
        ("patient", "ana", "b2", "b1"),
    ]  # fmt: skip


def test_a_booking_running_into_the_next_week_is_carried_there(tmp_path: Path) -> None:
    # Weeks are counted from 1970-01-01, a Thursday: Wednesday night runs into the next
    # bucket, where the booking it overlaps is swept
    found = swept(
        tmp_path,
        [("night", "p1", "drx", "2024-06-12T23:00", "2024-06-13T01:00")],
        [("early", "p2", "drx", "2024-06-13T00:30", "2024-06-13T01:30"),
         ("later", "p3", "drx", "2024-06-20T00:30", "2024-06-20T01:30")],
    )  # fmt: skip
    assert [(f["appointment_id"], f["other_appointment_id"], f["minutes"]) for f in found] == [
        ("early", "night", 30.0),  # once, though "night" is swept in both weeks
    ]


def test_a_carried_booking_is_not_reported_again_in_the_next_week(tmp_path: Path) -> None:
    found = swept(tmp_path, [
        ("mon", "p1", "drx", "2024-06-10T10:00", "2024-06-13T12:00"),  # into the next week
        ("tue", "p2", "drx", "2024-06-11T10:00", "2024-06-13T12:00"),
        ("thu", "p3", "drx", "2024-06-13T09:00", "2024-06-13T09:30"),
    ])  # fmt: skip
    pairs = [(f["appointment_id"], f["other_appointment_id"]) for f in found]
    assert sorted(pairs) == [("thu", "tue"), ("tue", "mon")]  # the latest on a tie of ends


def test_nothing_to_sweep_and_no_overlap_give_an_empty_table(tmp_path: Path) -> None:
    with Spill(tmp_path, ACTIVE) as active:
        assert sweep(active).num_rows == 0
    single = [("c1", "ana", "drx", "2024-06-03T09:00", "2024-06-03T09:30"),
              ("c2", "bia", "dry", "2024-06-03T09:00", "2024-06-03T09:30")]  # fmt: skip
    assert swept(tmp_path, single) == []


def test_conflicts_skips_rows_carried_from_an_earlier_bucket() -> None:
    table = bookings([
        ("old", "p1", "drx", "2024-06-12T23:00", "2024-06-13T02:00"),
        ("new", "p2", "drx", "2024-06-13T00:00", "2024-06-13T00:30"),
        ("also", "p3", "drx", "2024-06-12T23:30", "2024-06-13T00:10"),
    ])  # fmt: skip
    carried = np.array([True, False, True])
    found = conflicts(table, carried, "professional")
    assert found.column("appointment_id").to_pylist() == ["new"]
    assert found.column("other_appointment_id").to_pylist() == ["old"]
    assert conflicts(table, np.zeros(3, dtype=bool), "patient").num_rows == 0


def in_order_schedule(n: int, seed: int) -> pa.Table:
    """Bookings in start order on a 15-minute grid (so starts repeat, also across chunk
    boundaries), some running for days, few patients and professionals (many overlaps)."""
    rng = np.random.default_rng(seed)
    start = np.sort(rng.integers(0, 20 * 96, n)) * 15 * 60 * 10**9 + 1_717_200_000 * 10**9
    minutes = rng.choice([15, 30, 60, 2 * 24 * 60], n, p=[0.4, 0.4, 0.17, 0.03])
    frame = pd.DataFrame(
        {
            "appointment_id": rng.permutation([f"B{i:04d}" for i in range(n)]),
            "patient_id": rng.choice([f"P{i:02d}" for i in range(40)], n),
            "professional_id": rng.choice([f"DR{i}" for i in range(5)], n),
            "start": pd.to_datetime(start, utc=True),
            "end": pd.to_datetime(start + minutes * 60 * 10**9, utc=True),
        }
    )
    return pa.Table.from_pandas(frame, schema=ACTIVE, preserve_index=False)


def spilled_sweep(tmp_path: Path, table: pa.Table) -> pa.Table:
    with Spill(tmp_path, ACTIVE) as active:
        spill(active, table)
        return sweep(active)


def in_chunks(table: pa.Table, rows: int) -> pa.Table | None:
    with ThreadPoolExecutor(2) as pool:
        sweeper = Sweeper(pool)
        for at in range(0, table.num_rows, rows):
            sweeper.add(table.slice(at, rows))
        return sweeper.finish()


@pytest.mark.parametrize("shuffled", [False, True], ids=["sorted", "shuffled-in-chunks"])
def test_bookings_in_time_order_are_swept_as_they_come_with_the_same_result(
    tmp_path: Path, shuffled: bool
) -> None:
    # given bookings in start order, cut into chunks of 37 (equal starts on both sides of a
    # cut), the rows of each chunk shuffled or not
    table = in_order_schedule(800, seed=5)
    if shuffled:
        rng = np.random.default_rng(1)
        table = pa.concat_tables(
            [table.take(at + rng.permutation(min(37, 800 - at))) for at in range(0, 800, 37)]
        )
    expected = spilled_sweep(tmp_path, table)
    # when they are swept chunk by chunk
    found = in_chunks(table, 37)
    # then the conflicts are those of the sweep over all of them, in the same order
    assert found is not None
    assert found.equals(expected)
    assert expected.num_rows > 100


def test_a_booking_before_the_latest_start_seen_leaves_the_sweep_to_the_written_table() -> None:
    table = in_order_schedule(100, seed=6)
    with ThreadPoolExecutor(2) as pool:
        sweeper = Sweeper(pool)
        sweeper.add(table.slice(50))
        sweeper.add(table.slice(0, 50))  # earlier than what came before
        sweeper.add(table.slice(50))
        assert sweeper.finish() is None


def test_cancelled_bookings_marked_held_false_are_left_out_of_the_in_order_sweep(
    tmp_path: Path,
) -> None:
    # given bookings in start order, one in five cancelled (held false), in chunks of 37
    table = in_order_schedule(800, seed=7)
    held = np.random.default_rng(2).random(800) >= 0.2
    expected = spilled_sweep(tmp_path, table.filter(pa.array(held)))
    # when the whole chunks are swept, with their held marks
    found = in_chunks(table.append_column("held", pa.array(held)), 37)
    # then the conflicts are those of the held bookings alone
    assert found is not None
    assert found.equals(expected)
    assert expected.num_rows > 50


def test_repeated_values_are_told_apart_where_their_digests_are_equal() -> None:
    # given ids mostly distinct, some repeated, some null, some not held, and among them
    # long ones that differ only in bytes the digest does not read (nor in their length)
    rng = np.random.default_rng(3)
    values: list[str | None] = [f"P{n:05d}" for n in rng.integers(0, 20_000, 3_000)]
    for at in rng.choice(3_000, 300, replace=False):
        values[at] = f"{'p' * 40}{rng.integers(0, 150):04d}{'q' * 20}"
    values[::97] = [None] * len(values[::97])
    entity = pa.chunked_array([values[:1_000], values[1_000:]], pa.string())
    held = rng.random(3_000) > 0.1
    # when the repeated ones are looked for
    rows, group = repeated(entity, held)
    # then they are the held, present values seen more than once among those, equal
    # values sharing a group code and different ones not
    frame = pd.DataFrame({"v": values, "held": held})
    frame = frame[frame["held"] & frame["v"].notna()]
    again = frame[frame["v"].duplicated(keep=False)]
    assert rows.tolist() == again.index.tolist()
    assert (pd.Series(group).groupby(again["v"].to_numpy()).nunique() == 1).all()
    assert pd.Series(group).nunique() == again["v"].nunique()


def test_shared_digests_are_those_that_occur_more_than_once() -> None:
    # given digests mostly distinct, some repeated, and many sharing their top bits (the
    # bucket) without being equal
    rng = np.random.default_rng(5)
    digests = rng.integers(0, 2**63, 20_000, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    digests[:3_000] = digests[:3_000] >> np.uint64(40) << np.uint64(40)  # few buckets
    digests[:3_000] |= np.arange(3_000, dtype=np.uint64)  # but all different
    digests[rng.choice(20_000, 500)] = digests[rng.choice(20_000, 500)]
    # when the shared ones are looked for, then they are pandas' duplicated ones
    expected = pd.Series(digests).duplicated(keep=False).to_numpy()
    assert expected.sum() > 500
    assert (conflicts_module._shared(digests) == expected).all()


@pytest.mark.parametrize("width", [4, 8, 9, 31, 33, 70])
def test_values_of_any_length_that_differ_only_at_their_end_are_told_apart(width: int) -> None:
    # given mostly distinct values of one length, some repeated, that differ only in their
    # last four bytes (read by the digest's first words, or by its last one)
    numbers = np.random.default_rng(width).integers(0, 9_000, 3_000)
    values = [("x" * width + f"{n:04d}")[-width:] for n in numbers]
    # when the repeated ones are looked for
    rows, group = repeated(pa.chunked_array([values], pa.string()))
    # then they are those seen more than once, equal values sharing a group code
    again = pd.Series(values)[pd.Series(values).duplicated(keep=False)]
    assert rows.tolist() == again.index.tolist()
    assert (pd.Series(group).groupby(again.to_numpy()).nunique() == 1).all()
    assert pd.Series(group).nunique() == again.nunique()
