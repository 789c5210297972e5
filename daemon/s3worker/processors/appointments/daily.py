"""Bookings, cancellations, no-shows and attended per (day, professional), chunk by chunk.

A chunk's counts are an integer group-by of (day number, the chunk's professional code),
kept as a small table whose professional column is dictionary-encoded (the chunk's own few
names). Parts are merged by unifying their dictionaries and grouping the integer codes
again; no string is hashed per row. A merge waits until the parts since the last one hold
as many rows as it gave (and MERGE_PARTS of them wait): a schedule in time order, whose
chunks share hardly a (day, professional), then merges a doubling table a few times
(linear time, where merging it every MERGE_PARTS chunks was quadratic: time per GiB rose
with the size), and one out of time order, whose chunks repeat every group, merges every
MERGE_PARTS chunks as before. Memory follows the (day, professional) pairs: the output.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.appointments.schema import ATTENDED, CANCELLED, NO_SHOW
from s3worker.processors.tabular.groups import factorize

I64 = npt.NDArray[np.int64]
COUNTS = ["bookings", "cancellations", "no_shows", "attended"]
SUMMARY = pa.schema(
    [
        ("day", pa.string()),
        ("professional_id", pa.string()),
        *[(c, pa.int64()) for c in COUNTS],
        ("no_show_rate", pa.float64()),
    ]
)
MERGE_PARTS = 16  # partial day counts wait for a merge until at least this many
DAY_NS = 86_400 * 10**9


class DayCounts:
    """The counts per (day, professional) of every chunk added, as `daily` gives them."""

    def __init__(self) -> None:
        self.parts: list[pa.Table] = []
        self.merged_rows = 0  # rows of the last merge's result (parts[0] then)
        self.waiting_rows = 0  # rows of the parts added since

    def add(self, bookings: pa.Table) -> None:
        """A chunk's bookings (their `start`, `professional_id` and status `code`)."""
        if bookings.num_rows == 0:
            return
        code = np.asarray(bookings.column("code").to_numpy(), dtype=np.int8)
        day = np.asarray(pc.cast(bookings.column("start"), pa.int64()).to_numpy()) // DAY_NS
        who = pc.dictionary_encode(pc.fill_null(bookings.column("professional_id"), "unknown"))
        who = who.combine_chunks()
        (days, names), group = factorize([day, np.asarray(who.indices.to_numpy(), np.int64)])
        counts = [np.bincount(group, minlength=days.size)] + [
            np.bincount(group[code == c], minlength=days.size)
            for c in (CANCELLED, NO_SHOW, ATTENDED)
        ]
        self.parts.append(_part(days, names, who.dictionary, counts))
        self.waiting_rows += days.size
        if len(self.parts) > MERGE_PARTS and self.waiting_rows >= self.merged_rows:
            self._merge()

    def _merge(self) -> None:
        self.parts = [_merged(self.parts)]
        self.merged_rows, self.waiting_rows = self.parts[0].num_rows, 0

    def daily(self) -> pa.Table:
        """One row per (day, professional), in that order, with the no-show rate of the
        bookings held (not cancelled); the day as YYYY-MM-DD."""
        if not self.parts:
            return SUMMARY.empty_table()
        merged = _merged(self.parts).combine_chunks()
        who = merged.column("professional_id").chunk(0)
        # Sorted as integers: each name's rank in the (binary) order of the names, after the day.
        rank = np.empty(len(who.dictionary), dtype=np.int64)
        rank[np.asarray(pc.sort_indices(who.dictionary))] = np.arange(rank.size)
        day = np.asarray(merged.column("day").to_numpy(), dtype=np.int64)
        order = np.argsort(day * max(rank.size, 1) + rank[_indices(who)])
        daily = merged.take(pa.array(order))
        held = pc.subtract(daily.column("bookings"), daily.column("cancellations"))
        rate = pc.divide(
            pc.cast(daily.column("no_shows"), pa.float64()), pc.cast(held, pa.float64())
        )
        return pa.table(
            {
                "day": pc.cast(pc.cast(daily.column("day"), pa.date32()), pa.string()),
                "professional_id": pc.cast(daily.column("professional_id"), pa.string()),
                **{c: daily.column(c) for c in COUNTS},
                "no_show_rate": pc.if_else(pc.greater(held, 0), rate, None),
            },
            schema=SUMMARY,
        )


def _part(days: I64, names: I64, dictionary: pa.Array, counts: list[I64]) -> pa.Table:
    who = pa.DictionaryArray.from_arrays(pa.array(names, pa.int32()), dictionary)
    columns = {"day": pa.array(days, pa.int32()), "professional_id": who}
    return pa.table(
        columns | {c: pa.array(n, pa.int64()) for c, n in zip(COUNTS, counts, strict=True)}
    )


def _merged(parts: list[pa.Table]) -> pa.Table:
    """The parts as one: names unified into one dictionary, equal (day, name) rows added."""
    table = pa.concat_tables(parts).unify_dictionaries()  # parts: never empty ones
    who = table.column("professional_id")
    codes = np.concatenate([_indices(c) for c in who.chunks])
    day = np.asarray(table.column("day").to_numpy(), dtype=np.int64)
    (days, names), group = factorize([day, codes])
    # Counts as float64 weights: exact up to 2**53 bookings.
    counts = [
        np.bincount(group, table.column(c).to_numpy(), days.size).astype(np.int64) for c in COUNTS
    ]
    return _part(days, names, who.chunk(0).dictionary, counts)


def _indices(who: pa.DictionaryArray) -> I64:
    return np.asarray(who.indices.to_numpy(), dtype=np.int64)
