"""The sales detail, (day, store, product) groups, as one Parquet file per day.

A point-of-sale export is written day by day, so days usually arrive in order: a day's groups
are held in memory until a chunk starts past it, then written by WRITERS threads while the
file is still being read (Parquet encoding releases the GIL), and never go to disk otherwise.
A chunk with lines of a day already written (a file not in day order), or held groups beyond
HELD_ROWS (days in no order at all), turns the rest into the spill in buckets of days
(`tabular.spill`): a written day that gets more lines is read back into it first, and every
spilled day is written at the end, one bucket at a time.

Either way a group's sums are added in the order the chunks came (a day's file is its fold so
far, and what a day gets later is added after it), so the files are the same.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from s3worker.processors.sales.totals import VALUES, Codes, Groups, merge
from s3worker.processors.tabular.groups import FOLD_LIMIT, I64
from s3worker.processors.tabular.output import write_frame
from s3worker.processors.tabular.spill import Spill

WRITERS = 2  # threads writing the day files
HELD_ROWS = 1_000_000  # groups held waiting for their day to end (56 MB) before spilling
SPILL_BUCKETS = 32  # days spread over this many files; one is in memory at the end
DETAIL_DICTIONARY = ("store", "product")  # the sums are nearly all distinct: not encoded
DAILY_SCHEMA = pa.schema(
    [
        ("store", pa.string()),
        ("product", pa.string()),
        ("revenue", pa.float64()),
        ("units", pa.float64()),
        ("tickets", pa.int64()),
        ("lines", pa.int64()),
    ]
)
SPILL_SCHEMA = pa.schema(
    [
        ("dt", pa.int64()),
        ("store", pa.int64()),
        ("product", pa.int64()),
        *((name, pa.float64()) for name in VALUES),
    ]
)


class DayFiles:
    """`sales/dt=YYYY-MM-DD/part-0.parquet` from each chunk's detail groups, in chunk order."""

    def __init__(self, out_dir: Path, stores: Codes, products: Codes) -> None:
        self.out_dir = out_dir
        self.codes = (stores, products)
        self.rows: dict[str, int] = {}
        self.held: list[Groups] = []
        self.written: set[int] = set()  # days with a file written (or being written)
        self.spill: Spill | None = None  # once the days are out of order
        self._pool = ThreadPoolExecutor(WRITERS, thread_name_prefix="sales-detail")
        self._pending: list[Future[dict[str, int]]] = []
        self._names: dict[int, tuple[int, I64, pa.Array]] = {}

    def add(self, groups: Groups) -> None:
        """A chunk's groups (distinct within it); their codes must be known to `codes`."""
        if groups.size == 0:
            return
        day = groups.keys[0]
        if self.spill is None and not self._has_written(day):
            self.held.append(groups)
            self._write_before(int(day.min()))
            if sum(g.size for g in self.held) <= HELD_ROWS:
                return
            groups = self.held.pop()
        self._to_spill(groups)

    def close(self) -> dict[str, int]:
        """Write every day not written yet; the rows of each file, in day order."""
        if self.held:
            self._write(_added(self.held))
            self.held = []
        if self.spill is not None:
            for table in self.spill.buckets():  # a bucket's rows: its days' partial groups
                cols = [table.column(n).to_numpy() for n in SPILL_SCHEMA.names]
                self._write(merge([Groups(cols[:3], cols[3:])]))
        self._collect()
        return dict(sorted(self.rows.items()))

    def discard(self) -> None:
        """Stop the writers and remove the spill (the files written stay)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.spill is not None:
            self.spill.close()

    def _has_written(self, day: I64) -> bool:
        return bool(self.written) and bool(np.isin(day, list(self.written)).any())

    def _write_before(self, cut: int) -> None:
        """Write the held days before `cut`: in day order, no later chunk holds them."""
        done, kept = [], []
        for g in self.held:
            early = g.keys[0] < cut
            if early.all():
                done.append(g)
            elif early.any():
                done.append(_subset(g, early))
                kept.append(_subset(g, ~early))
            else:
                kept.append(g)
        self.held = kept
        if done:
            self._write(_added(done))

    def _to_spill(self, groups: Groups) -> None:
        if self.spill is None:
            self.spill = Spill(self.out_dir, SPILL_SCHEMA)
            held, self.held = self.held, []
            for g in held:
                self._spill(g)
        again = np.unique(groups.keys[0][np.isin(groups.keys[0], list(self.written))])
        if again.size:
            self._collect()  # the files to read back are complete
            for day in again.tolist():
                self._spill(self._read_back(day))
                self.written.discard(day)
        self._spill(groups)

    def _spill(self, g: Groups) -> None:
        assert self.spill is not None
        columns = dict(zip(SPILL_SCHEMA.names, [*g.keys, *g.values], strict=True))
        self.spill.add(g.keys[0] % SPILL_BUCKETS, columns)

    def _read_back(self, day: int) -> Groups:
        """A written day's file as groups again (its names turned back into codes)."""
        table = pq.read_table(self.out_dir / _path(day))
        keys = [np.full(table.num_rows, day, dtype=np.int64)]
        for codes, column in zip(self.codes, ("store", "product"), strict=True):
            names = pa.array(codes.names[: len(codes.names)], pa.string())
            index = pc.index_in(table.column(column), value_set=names)
            keys.append(np.asarray(index.to_numpy(), dtype=np.int64))
        values = [np.asarray(table.column(n).to_numpy(), dtype=np.float64) for n in VALUES]
        return Groups(keys, values)

    def _write(self, g: Groups) -> None:
        """Submit each day of `g` (distinct groups) to the writers, once the previous batch
        is done: at most two batches in memory."""
        day, table = self._sorted(g)
        starts = np.flatnonzero(np.diff(day, prepend=day[0] - 1))
        ends = [*starts[1:].tolist(), day.size]
        self._collect()
        for lo, hi in zip(starts.tolist(), ends, strict=True):
            self.written.add(int(day[lo]))
            self._pending.append(
                self._pool.submit(
                    write_frame, self.out_dir, _path(int(day[lo])), table.slice(lo, hi - lo),
                    DAILY_SCHEMA, DETAIL_DICTIONARY,
                )
            )  # fmt: skip

    def _collect(self) -> None:
        for f in self._pending:
            self.rows |= f.result()
        self._pending = []

    def _sorted(self, g: Groups) -> tuple[I64, pa.Table]:
        """Groups by (day, store name, product name): the days, and the table."""
        (s_rank, s_names), (p_rank, p_names) = (self._ranked(c) for c in self.codes)
        day, store, product = g.keys
        order = name_order(day, s_rank[store], p_rank[product])
        table = pa.table(
            {
                "store": s_names.take(pa.array(store[order])),
                "product": p_names.take(pa.array(product[order])),
                **{name: g.values[i][order] for i, name in enumerate(VALUES)},
            }
        )
        return day[order], table

    def _ranked(self, codes: Codes) -> tuple[I64, pa.Array]:
        """Ranks and names of the codes known so far. The reading thread may be adding names
        meanwhile: a copy of the list (appended to, never changed) holds every code given out
        before these groups; the order of names among themselves never changes."""
        names = codes.names[:]
        known = self._names.get(id(codes))
        if known is None or known[0] != len(names):
            known = (len(names), Codes.rank(names), pa.array(names, pa.string()))
            self._names[id(codes)] = known
        return known[1], known[2]


def name_order(day: I64, store: I64, product: I64) -> I64:
    """The order of distinct (day, store rank, product rank) rows: one sort of the three
    folded into an int64 (a third of np.lexsort's time, which sorts once per key)."""
    if not day.size:
        return np.zeros(0, dtype=np.int64)
    first = int(day.min())
    spans = [int(day.max()) - first + 1, int(store.max()) + 1, int(product.max()) + 1]
    if spans[0] * spans[1] * spans[2] >= FOLD_LIMIT:
        return np.lexsort((product, store, day))
    key = ((day - first) * spans[1] + store) * spans[2] + product
    order: I64 = np.argsort(key)  # the rows are distinct: no ties, so any sort gives this order
    return order


def day_name(days: int) -> str:
    return str(np.datetime64(days, "D"))


def _path(day: int) -> str:
    return f"sales/dt={day_name(day)}/part-0.parquet"


def _added(parts: list[Groups]) -> Groups:
    """Chunks' groups added up, in order (one chunk's groups are distinct already; adding
    them to nothing would give the same figures)."""
    return parts[0] if len(parts) == 1 else merge(parts)


def _subset(g: Groups, rows: np.ndarray) -> Groups:
    return Groups([k[rows] for k in g.keys], [v[rows] for v in g.values])
