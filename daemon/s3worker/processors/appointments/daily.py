"""Bookings, cancellations, no-shows and attended per (day, professional), chunk by chunk.

A chunk's counts are an integer group-by of (day number, the chunk's professional code),
kept as a small table whose professional column is dictionary-encoded (the chunk's own few
names). Parts are merged by unifying their dictionaries and grouping the integer codes
again; no string is hashed per row. The parts wait for a merge until MERGE_PARTS of them
wait and they hold as many rows as the last merge gave.

A schedule in time order brings no day again once a later one has come: at each merge the
days before the latest seen are set aside, final, and only the open days are merged again,
so a merge's size (and its memory) follows a few chunks, not the file. A chunk that brings a
day already set aside (a file out of time order) puts them back among the parts: from then
on every merge takes every group, and the merged table doubles between merges (linear time,
where merging everything every MERGE_PARTS chunks was quadratic). Memory follows the
(day, professional) pairs: the output.

Given a folder, the groups set aside are written there and mapped back from the file, which
is unlinked at once (`_mapped`): they take no memory until `daily` reads them (a 2 GiB file
sets aside 1.2 million groups, 28 MB the process would otherwise hold to the end).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder  # where the groups set aside are mapped from (None: memory)
        self.parts: list[pa.Table] = []
        self.merged_rows = 0  # rows of the last merge's result (parts[0] then)
        self.waiting_rows = 0  # rows of the parts added since
        # Days before `open_from` are set aside (in time order): one table per merge, each
        # holding other days than the others and than the parts, so never merged again.
        self.closed: list[pa.Table] = []
        self.open_from: int | None = None  # None: nothing set aside (yet, or any more)
        self.in_order = True
        self.latest = 0  # the latest day counted

    def add(self, bookings: pa.Table) -> None:
        """A chunk's bookings (their `start`, `professional_id` and status `code`)."""
        if bookings.num_rows == 0:
            return
        code = np.asarray(bookings.column("code").to_numpy(), dtype=np.int8)
        day = np.asarray(pc.cast(bookings.column("start"), pa.int64()).to_numpy()) // DAY_NS
        who = _professionals(bookings)
        (days, names), group = factorize([day, np.asarray(who.indices.to_numpy(), np.int64)])
        counts = [np.bincount(group, minlength=days.size)] + [
            np.bincount(group[code == c], minlength=days.size)
            for c in (CANCELLED, NO_SHOW, ATTENDED)
        ]
        if self.open_from is not None and int(days.min()) < self.open_from:
            self._reopen()  # a day set aside comes again: out of time order
        self.latest = max(self.latest, int(days.max()))
        self.parts.append(_part(days, names, who.dictionary, counts))
        self.waiting_rows += days.size
        if len(self.parts) > MERGE_PARTS and self.waiting_rows >= self.merged_rows:
            self._merge()

    def _merge(self) -> None:
        merged = _merged(self.parts)
        if self.in_order:  # the days before the latest are final
            day = np.asarray(merged.column("day").to_numpy(), dtype=np.int64)
            closed = day < self.latest
            if closed.any():
                aside = _narrow(merged.filter(pa.array(closed)))
                self.closed.append(aside if self.folder is None else _mapped(aside, self.folder))
                merged = merged.filter(pa.array(~closed))
            self.open_from = self.latest
        self.parts = [merged]
        self.merged_rows, self.waiting_rows = merged.num_rows, 0

    def _reopen(self) -> None:
        """Every group set aside back among the parts, and none set aside any more."""
        self.parts = [_wide(t) for t in self.closed] + self.parts
        self.waiting_rows += sum(t.num_rows for t in self.closed)
        self.closed, self.open_from, self.in_order = [], None, False

    def daily(self) -> pa.Table:
        """One row per (day, professional), in that order, with the no-show rate of the
        bookings held (not cancelled); the day as YYYY-MM-DD."""
        if not self.parts:
            return SUMMARY.empty_table()
        # The parts set aside share no day with the others: put side by side, not merged.
        merged = pa.concat_tables([*map(_wide, self.closed), _merged(self.parts)])
        merged = merged.unify_dictionaries()
        merged = merged.combine_chunks()
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


def _professionals(bookings: pa.Table) -> pa.DictionaryArray:
    """The bookings' professionals dictionary-encoded, a missing one as `unknown`: the
    bookings' own `professional_codes` where none is missing."""
    if "professional_codes" in bookings.column_names:
        codes = bookings.column("professional_codes").combine_chunks()
        if codes.null_count == 0:
            return codes
    who = pc.dictionary_encode(pc.fill_null(bookings.column("professional_id"), "unknown"))
    return who.combine_chunks()


def _mapped(table: pa.Table, folder: Path) -> pa.Table:
    """`table` written to a file in `folder` and read back memory-mapped (its pages are the
    file's: in memory only once read), the file unlinked (the mapping keeps it until dropped)."""
    fd, name = tempfile.mkstemp(prefix=".daycounts-", suffix=".arrow", dir=folder)
    os.close(fd)
    try:
        with pa.OSFile(name, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return pa.ipc.open_file(pa.memory_map(name)).read_all()  # zero-copy: the file's pages
    finally:
        os.unlink(name)


def _part(days: I64, names: I64, dictionary: pa.Array, counts: list[I64]) -> pa.Table:
    who = pa.DictionaryArray.from_arrays(pa.array(names, pa.int32()), dictionary)
    columns = {"day": pa.array(days, pa.int32()), "professional_id": who}
    return pa.table(
        columns | {c: pa.array(n, pa.int64()) for c, n in zip(COUNTS, counts, strict=True)}
    )


def _narrow(part: pa.Table) -> pa.Table:
    """A part's counts as int32 where they fit (set aside until the end: half the memory;
    the bookings are the largest count)."""
    if int(pc.max(part.column("bookings")).as_py() or 0) >= 1 << 31:
        return part
    return _counted_as(part, pa.int32())


def _wide(part: pa.Table) -> pa.Table:
    return _counted_as(part, pa.int64())


def _counted_as(part: pa.Table, kind: pa.DataType) -> pa.Table:
    return part.cast(pa.schema([f.with_type(kind) if f.name in COUNTS else f for f in part.schema]))


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
