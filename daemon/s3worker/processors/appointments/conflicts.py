"""Double bookings: an interval sweep per professional (or patient), a week of bookings at a time.

The active (not cancelled) bookings are spilled to disk in buckets of a week by start and
swept one bucket at a time, carrying over only the bookings still running at the bucket's
end: memory follows the bookings of one week, not of the file. Only the conflicts found are
kept until the end.

The sweep, per entity in (start, appointment id) order: a booking that starts before the
furthest end reached by the entity's earlier bookings overlaps the one that reached it (the
latest such on a tie). Entities are integer codes within a bucket and their bookings sorted
by Arrow (a stable multi-key sort); an entity with one booking in the bucket cannot conflict
and is left out before sorting (most patients).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
KINDS = ("professional", "patient")
DAY_NS = 86_400 * 10**9
BUCKET_DAYS = 7  # the span of bookings swept at once
BUCKET_NS = BUCKET_DAYS * DAY_NS
FOLD_LIMIT = 1 << 62
ORDER = [("entity", "ascending"), ("start", "ascending"), ("appointment_id", "ascending")]


def spill(active: Spill, bookings: pa.Table) -> None:
    """A chunk's active bookings, each to the bucket (week since 1970) of its start."""
    start = _ns(bookings.column("start"))
    active.add_table(start // DAY_NS // BUCKET_DAYS, bookings.select(ACTIVE.names))


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
    parts = [pa.concat_tables(found[k]).sort_by(ORDER) for k in KINDS if found[k]]
    return pa.concat_tables(parts) if parts else FOUND.empty_table()


def conflicts(active: pa.Table, carried: BoolArray, kind: str) -> pa.Table:
    """Bookings of one entity overlapping an earlier one of it (not reported for carried rows)."""
    entity = active.column(f"{kind}_id")
    codes = pc.dictionary_encode(entity).combine_chunks()
    group = np.asarray(pc.fill_null(codes.indices, -1).to_numpy(zero_copy_only=False), np.int64)
    counts = np.bincount(group + 1, minlength=len(codes.dictionary) + 1)
    rows = np.flatnonzero((group >= 0) & (counts[group + 1] > 1))
    if rows.size == 0:
        return FOUND.empty_table()
    picked = active.take(pa.array(rows))
    keys = pa.table(
        {"g": group[rows], "s": picked.column("start"), "id": picked.column("appointment_id")}
    )
    order = pc.sort_indices(keys, [("g", "ascending"), ("s", "ascending"), ("id", "ascending")])
    index = rows[np.asarray(order.to_numpy(), dtype=np.int64)]
    hit, other, overlap = _overlaps(
        group[index], _ns(active.column("start"))[index], _ns(active.column("end"))[index]
    )
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
