"""Double bookings: an interval sweep per professional (or patient), as the bookings come.

The sweep, per entity in (start, appointment id) order: a booking that starts before the
furthest end reached by the entity's earlier bookings overlaps the one that reached it (the
latest such on a tie). Entities are integer codes within a sweep and their bookings sorted
by one integer sort of (entity, start) (Arrow's stable three-key sort where two bookings of
an entity share a start); an entity with one booking in the sweep cannot conflict and is
left out before sorting (most patients).

Schedules mostly come in time order: `Sweeper` then sweeps each chunk as it comes, beside
the bookings still running at the latest start seen (carried over, not reported again), and
memory follows one chunk. Out of time order, the active (not cancelled) bookings are read
back from the written bookings table, spilled to disk in buckets of a week by start and swept
one bucket at a time, carrying over only the bookings still running at the bucket's end:
memory follows the bookings of one week, not of the file. Only the conflicts found are kept
until the end.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from s3worker.processors.tabular.reading import prefetch
from s3worker.processors.tabular.spill import Spill

BoolArray = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
NS = pa.timestamp("ns", "UTC")
ACTIVE = pa.schema(
    [
        ("appointment_id", pa.string()),
        ("patient_id", pa.string()),
        ("professional_id", pa.string()),
        ("start", NS),
        ("end", NS),
    ]
)
FOUND = pa.schema(
    [
        ("kind", pa.string()),
        ("entity", pa.string()),
        ("appointment_id", pa.string()),
        ("other_appointment_id", pa.string()),
        ("start", NS),
        ("other_start", NS),
        ("overlap_minutes", pa.float64()),
    ]
)
# What the in-order sweep takes: a chunk's bookings, cancelled ones marked (`held` false).
SWEPT = pa.schema([*ACTIVE, pa.field("held", pa.bool_())])
KINDS = ("professional", "patient")
DAY_NS = 86_400 * 10**9
BUCKET_DAYS = 7  # the span of bookings swept at once
BUCKET_NS = BUCKET_DAYS * DAY_NS
FOLD_LIMIT = 1 << 62
SAMPLE_ROWS = 1_000  # rows looked at to choose how repeated entities are found (`repeated`)
SMALL_GROUPS = 1 << 15  # entities sorted as int16 (numpy radix-sorts those)
ORDER = [("entity", "ascending"), ("start", "ascending"), ("appointment_id", "ascending")]


def spill(active: Spill, bookings: pa.Table) -> None:
    """A chunk's active bookings, each to the bucket (week since 1970) of its start."""
    start = _ns(bookings.column("start"))
    active.add_table(start // DAY_NS // BUCKET_DAYS, bookings.select(ACTIVE.names))


class Sweeper:
    """Conflicts found chunk by chunk while the bookings come in time order.

    Every booking swept so far starts before `cut`, the latest start seen. A chunk whose
    bookings all start at or after it is swept at once with the bookings still running at
    the cut; those starting exactly at the cut wait for the next chunk (an equal start is
    ordered by id, and the next chunk may hold one). A booking starting before the cut ends
    this (`in_order` False): the caller then sweeps the written table (`sweep_written`).

    A chunk comes whole, with a `held` column (not cancelled): the cancelled bookings are
    left out of the sweep by that mask instead of by a copy of the chunk without them."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool  # the two kinds are swept side by side on it
        self.in_order = True
        self.cut: int | None = None
        self.carry = self.waiting = SWEPT.empty_table()
        self.found: dict[str, list[pa.Table]] = {k: [] for k in KINDS}

    def add(self, chunk: pa.Table) -> None:
        """A chunk's bookings: SWEPT's columns, or ACTIVE's (then every one is held)."""
        if not self.in_order:
            return
        held = _held(chunk)
        if "held" not in chunk.column_names:
            chunk = chunk.append_column("held", pa.array(held))
        start = _ns(chunk.column("start"))
        if not held.any():
            return
        if self.cut is not None and int(start[held].min()) < self.cut:
            self.in_order = False
            self.carry = self.waiting = SWEPT.empty_table()
            self.found = {k: [] for k in KINDS}
            return
        rows = pa.concat_tables([self.waiting, chunk.select(SWEPT.names)])
        cut = int(start[held].max())
        start = np.concatenate([np.full(self.waiting.num_rows, self.cut or 0), start])
        if _ascending(start):  # those at the cut are the last rows: slices, not copies
            at = int(np.searchsorted(start, cut))
            now, self.waiting = rows.slice(0, at), rows.slice(at)
        else:
            later = start >= cut
            now, self.waiting = rows.filter(pa.array(~later)), rows.filter(pa.array(later))
        self._sweep(now, cut)
        self.cut = cut

    def _sweep(self, rows: pa.Table, cut: int) -> None:
        both = pa.concat_tables([self.carry, rows])
        carried = np.arange(both.num_rows) < self.carry.num_rows  # reported when swept
        kinds = [self.pool.submit(conflicts, both, carried, kind) for kind in KINDS]
        for kind, done in zip(KINDS, kinds, strict=True):
            self.found[kind].append(done.result())
        running = _held(both) & (_ns(both.column("end")) > cut)
        self.carry = both.filter(pa.array(running))

    def finish(self) -> pa.Table | None:
        """Every conflict, in `sweep`'s order; None when the bookings came out of order."""
        if not self.in_order:
            return None
        if self.waiting.num_rows:
            self._sweep(self.waiting, self.cut or 0)
        return _ordered(self.found)


def sweep_written(bookings: Path, folder: Path) -> pa.Table:
    """`sweep` over the active bookings of a written bookings table (its `status` column
    says which are cancelled), read back a row group at a time and spilled in `folder`."""
    with Spill(folder, ACTIVE) as active:
        for batch in pq.ParquetFile(bookings).iter_batches(columns=[*ACTIVE.names, "status"]):
            held = pa.Table.from_batches([batch]).filter(
                pc.not_equal(batch.column("status"), "cancelled")
            )
            spill(active, held.select(ACTIVE.names).cast(ACTIVE))
        return sweep(active)


def sweep(active: Spill) -> pa.Table:
    """Every conflict, by kind, entity, start and appointment id (one sweep's order).

    The next bucket is read (a thread ahead, `prefetch`) while this one is swept, and the two
    kinds are swept side by side on two threads (Arrow's kernels release the GIL)."""
    found: dict[str, list[pa.Table]] = {k: [] for k in KINDS}
    carry = ACTIVE.empty_table()
    with ThreadPoolExecutor(len(KINDS), thread_name_prefix="sweep") as pool:
        for rows in prefetch(active.buckets()):
            both = pa.concat_tables([carry, rows])
            carried = np.arange(both.num_rows) < carry.num_rows  # reported where they started
            kinds = [pool.submit(conflicts, both, carried, kind) for kind in KINDS]
            for kind, done in zip(KINDS, kinds, strict=True):
                found[kind].append(done.result())
            week = int(_ns(rows.column("start")).min()) // DAY_NS // BUCKET_DAYS
            carry = both.filter(pa.array(_ns(both.column("end")) > (week + 1) * BUCKET_NS))
    return _ordered(found)


def _ordered(found: dict[str, list[pa.Table]]) -> pa.Table:
    parts = [pa.concat_tables(found[k]).sort_by(ORDER) for k in KINDS if found[k]]
    return pa.concat_tables(parts) if parts else FOUND.empty_table()


def conflicts(active: pa.Table, carried: BoolArray, kind: str) -> pa.Table:
    """Bookings of one entity overlapping an earlier one of it (not reported for carried rows)."""
    entity = active.column(f"{kind}_id")
    rows, group = repeated(entity, _held(active))
    if rows.size == 0:
        return FOUND.empty_table()
    start = _ns(active.column("start"))[rows]
    order = _order(group, start, active.column("appointment_id"), rows)
    index = rows[order]
    hit, other, overlap = _overlaps(group[order], start[order], _ns(active.column("end"))[index])
    hit &= ~carried[index]
    at, by = index[hit], index[other[hit]]
    return pa.table(
        {
            "kind": pa.repeat(pa.scalar(kind), at.size),
            "entity": entity.take(pa.array(at)),
            "appointment_id": active.column("appointment_id").take(pa.array(at)),
            "other_appointment_id": active.column("appointment_id").take(pa.array(by)),
            "start": active.column("start").take(pa.array(at)),
            "other_start": active.column("start").take(pa.array(by)),
            "overlap_minutes": overlap[hit],
        },
        schema=FOUND,
    )


def repeated(entity: pa.ChunkedArray, held: BoolArray | None = None) -> tuple[I64, I64]:
    """The rows whose value (not null; only `held` rows) occurs more than once, in row
    order, and for each a group code: equal codes for equal values.

    Most patients book once in a chunk: instead of a dictionary of every id, a 64-bit digest
    of each value's bytes (`_digests`) picks the rows that may repeat (equal values have equal
    digests; a collision only adds a row to look at), and only those are encoded exactly."""
    valid = np.asarray(pc.is_valid(entity).to_numpy(zero_copy_only=False), dtype=bool)
    if held is not None:
        valid &= held
    maybe = np.flatnonzero(valid)
    digests = _digests(entity) if _mostly_distinct(entity) else None
    if digests is not None:
        maybe = maybe[_shared(digests[maybe])]
    whole = maybe.size * 2 > len(entity)
    values = entity if whole else entity.take(pa.array(maybe))
    codes = pc.dictionary_encode(values).combine_chunks()
    group = np.asarray(pc.fill_null(codes.indices, -1).to_numpy(zero_copy_only=False), np.int64)
    if whole:
        group = group[maybe]
    counts = np.bincount(group + 1, minlength=len(codes.dictionary) + 1)
    again = counts[group + 1] > 1
    return maybe[again], group[again]


def _held(table: pa.Table) -> BoolArray:
    """The rows not cancelled: SWEPT's `held` column, every row of a table without it."""
    if "held" not in table.column_names:
        return np.ones(table.num_rows, dtype=bool)
    return np.asarray(table.column("held").to_numpy(), dtype=bool)


def _mostly_distinct(entity: pa.ChunkedArray) -> bool:
    """Whether most of SAMPLE_ROWS values spread over the column differ (patients: digests
    pay; a few professionals with many bookings each: one dictionary of them is cheaper)."""
    if len(entity) == 0:
        return False
    spread = np.linspace(0, len(entity) - 1, min(len(entity), SAMPLE_ROWS)).astype(np.int64)
    head = entity.take(pa.array(spread))
    return int(pc.count_distinct(head).as_py()) * 2 > len(head)


def _shared(digests: npt.NDArray[np.uint64]) -> BoolArray:
    """Which digests occur more than once. A count per bucket of their top bits (about
    four buckets a digest) rules out most of them; pandas' `duplicated` (a hash table, 5
    times the cost) looks only at those sharing a bucket."""
    bits = max(int(digests.size).bit_length() + 2, 8)
    bucket = (digests >> np.uint64(64 - bits)).astype(np.intp)
    again = np.flatnonzero(np.bincount(bucket, minlength=1 << bits)[bucket] > 1)
    out = np.zeros(digests.size, dtype=bool)
    out[again] = pd.Series(digests[again]).duplicated(keep=False).to_numpy()
    return out


# Digest of a value: its length and its bytes, as 8-byte words (the first DIGEST_WORDS and
# the last one), each multiplied by its own odd constant (a multiplicative hash).
DIGEST_WORDS = 4
_MULTIPLIERS = (
    np.arange(1, DIGEST_WORDS + 3, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
) | np.uint64(1)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _digests(values: pa.ChunkedArray) -> npt.NDArray[np.uint64] | None:
    """A 64-bit digest of every value (nulls as empty ones); None for a non-string column."""
    if not pa.types.is_string(values.type):
        return None
    parts = [_chunk_digests(chunk) for chunk in values.chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _chunk_digests(arr: pa.Array) -> npt.NDArray[np.uint64]:
    """`_digests` of one chunk. The arrays are reused word after word (`out=`): fresh ones
    of a chunk's size cost more in page faults than the arithmetic on them."""
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32, n + 1, arr.offset * 4).astype(np.int64)
    size = data_buf.size if data_buf is not None else 0
    lo, hi = offsets[:-1], offsets[1:]
    length = hi - lo
    longest = int(length.max())
    padded = np.zeros(size + 16, dtype=np.uint8)  # every word read stays inside
    if size:
        padded[:size] = np.frombuffer(data_buf, np.uint8)
    words = np.ndarray((padded.size - 7,), "<u8", padded, 0, (1,))  # a word at every byte
    out = length.astype(np.uint64)
    out *= _MULTIPLIERS[0]
    at, left, word, mask = (
        np.empty(n, dtype=t) for t in (np.int64, np.int64, np.uint64, np.uint64)
    )
    # Words past the longest value are masked off whole, and the last word is read again
    # in the first ones where no value is longer than those: both are left out.
    taken = [k for k in range(DIGEST_WORDS) if 8 * k < longest]
    for k in taken + ([DIGEST_WORDS] if longest > 8 * DIGEST_WORDS else []):
        if k < DIGEST_WORDS:  # the k-th word, its bytes past the value masked off
            np.add(lo, 8 * k, out=at)
            np.minimum(at, size, out=at)
            np.subtract(length, 8 * k, out=left)
            np.clip(left, 0, 8, out=left)
        else:  # the last word (the value's last 8 bytes, or all of a shorter one)
            np.subtract(hi, 8, out=at)
            np.maximum(at, lo, out=at)
            np.minimum(length, 8, out=left)
        np.take(words, at, out=word)
        np.take(_MASKS, left, out=mask)
        word &= mask
        word *= _MULTIPLIERS[k + 1]
        out ^= word
    out ^= out >> np.uint64(31)
    return out


def _order(group: I64, start: I64, ids: pa.ChunkedArray, rows: I64) -> I64:
    """Positions sorting the rows by (group, start, id). Rows already in start order (a
    schedule read in time order) need only a stable sort by group (a radix sort of small
    integers); others one integer sort of (group, start) folded into an int64. Where two
    rows share both (or they do not fold): Arrow's stable sort by the three keys."""
    order: I64 | None = None
    if start.size > 1 and int(group.max()) < SMALL_GROUPS and _ascending(start):
        order = np.argsort(group.astype(np.int16), kind="stable")
    else:
        low = int(start.min())
        span = int(start.max()) - low + 1
        if (int(group.max()) + 1) * span < FOLD_LIMIT:
            order = np.argsort(group * span + (start - low))
    if order is not None:
        g, s = group[order], start[order]
        if not ((g[1:] == g[:-1]) & (s[1:] == s[:-1])).any():  # no ties: ids decide nothing
            return order
    keys = pa.table({"g": group, "s": start, "id": ids.take(pa.array(rows))})
    by = [("g", "ascending"), ("s", "ascending"), ("id", "ascending")]
    return np.asarray(pc.sort_indices(keys, by).to_numpy(), dtype=np.int64)


def _ascending(values: I64) -> bool:
    return bool((values[1:] >= values[:-1]).all())


def _overlaps(group: I64, start: I64, end: I64) -> tuple[BoolArray, I64, npt.NDArray[np.float64]]:
    """For rows sorted by (group, start): which start before their group's furthest end so
    far, the row holding that end (the latest on a tie), and the overlap in minutes."""
    reach = _group_cummax(group, end)
    holder = np.maximum.accumulate(np.where(end == reach, np.arange(end.size), 0))
    same = np.zeros(end.size, dtype=bool)
    same[1:] = group[1:] == group[:-1]
    prev_reach, prev_holder = np.roll(reach, 1), np.roll(holder, 1)
    hit = same & (start < prev_reach)
    overlap = (np.minimum(end, end[prev_holder]) - start) / 60e9
    return hit, prev_holder, overlap


def _group_cummax(group: I64, end: I64) -> I64:
    """Running maximum of `end` within each run of equal `group` values (rows sorted by
    group): one accumulate over ends lifted by group rank, when that fits in an int64."""
    if end.size == 0:
        return end
    low = int(end.min())
    span = int(end.max()) - low + 1
    rank = np.cumsum(np.append(False, group[1:] != group[:-1]))
    if (int(rank[-1]) + 1) * span >= FOLD_LIMIT:
        return np.asarray(pd.Series(end).groupby(group, sort=False).cummax(), dtype=np.int64)
    lift = rank * span - low
    out: I64 = np.maximum.accumulate(end + lift) - lift
    return out


def _ns(col: pa.ChunkedArray) -> I64:
    return np.asarray(pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
