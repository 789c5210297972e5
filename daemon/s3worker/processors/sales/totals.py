"""Sales sums and ticket counts per level, on integer codes.

Days, stores and products become integer codes, so grouping is numpy sorting and bincounts
rather than string work. The (day, store, product) level is the large one (it grows with
the file): each chunk's groups of it are handed over to be written day by day (`days`).
The coarser levels are small and merged in memory.

Tickets: a point-of-sale export writes a ticket's lines together, so a ticket is a run of
consecutive lines with the same ticket id, counted once per group it touches. Runs are
numbered per chunk; the run cut by a chunk boundary is de-duplicated against the groups the
previous chunk saw it in, so counts do not depend on the chunk size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.tabular.groups import F64, I64, factorize, group_sum, sums

BoolArray = npt.NDArray[np.bool_]

Level = tuple[str, ...]
DETAIL: Level = ("dt", "store", "product")
LEVELS: tuple[Level, ...] = (DETAIL, ("dt", "store"), ("dt",), ("product",))
VALUES = ("revenue", "units", "lines", "tickets")
COMPACT_ROWS = 500_000
MAX_SCAN_RUN = 16  # tickets with more lines: their (ticket, group) pairs are found by sorting


class Codes:
    """Strings to dense integer codes, in order of first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def encode(self, col: pa.ChunkedArray) -> I64:
        """Codes of a column without nulls (each distinct string looked up once per chunk)."""
        enc = pc.dictionary_encode(col).combine_chunks()
        lut = np.array([self._code(s) for s in enc.dictionary.to_pylist()], dtype=np.int64)
        indices = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        out: I64 = lut[indices] if lut.size else np.zeros(len(col), dtype=np.int64)
        return out

    def _code(self, name: str) -> int:
        code = self.index.get(name)
        if code is None:
            code = self.index[name] = len(self.names)
            self.names.append(name)
        return code

    def ranks(self) -> I64:
        """Each code's position in sorted-name order (outputs are sorted by name)."""
        return self.rank(self.names)

    @staticmethod
    def rank(names: Sequence[str]) -> I64:
        """Each name's position in sorted order."""
        ranks = np.empty(len(names), dtype=np.int64)
        ranks[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
        return ranks


@dataclass
class Lines:
    """A chunk's usable lines: day (days since 1970), store and product codes, figures."""

    key: dict[str, I64]
    revenue: F64
    units: F64
    ticket: pa.ChunkedArray | None  # ticket ids, when the file has them
    count: F64 | None  # a `tickets` column, when the file has that instead


@dataclass
class Runs:
    """Ticket runs of a chunk's lines: the run of each line (0: carried on from the previous
    chunk), whether the first run is carried, the longest run's length, and the lines that
    start a run."""

    run: I64
    continues: bool
    longest: int
    starts: BoolArray


@dataclass
class Groups:
    """Distinct keys (one array per key column) and their sums (one per VALUES name)."""

    keys: list[I64]
    values: list[F64]

    @property
    def size(self) -> int:
        return self.keys[0].size if self.keys else 0


class Totals:
    """Every level's sums and tickets: the detail level's handed back per chunk, the rest kept."""

    def __init__(self) -> None:
        self.stores, self.products = Codes(), Codes()
        self.small: dict[Level, list[Groups]] = {lv: [] for lv in LEVELS[1:]}
        self.carry: dict[Level, set[tuple[int, ...]]] = {}
        self.last_ticket: str | None = None

    def add(self, lines: Lines) -> Groups:
        """Add a chunk's lines; its (day, store, product) groups, distinct within it."""
        if lines.revenue.size == 0:
            return _empty(DETAIL)
        ticket = self._runs(lines.ticket) if lines.ticket is not None else None
        detail, of_line = factorize([lines.key[c] for c in DETAIL])
        for lv in LEVELS:
            distinct, group = (detail, of_line) if lv == DETAIL else _coarser(detail, of_line, lv)
            size = distinct[0].size
            values = sums(group, size, [lines.revenue, lines.units])
            values.append(np.bincount(group, minlength=size).astype(np.float64))
            if ticket is not None:
                values.append(self._tickets(lv, distinct, group, ticket))
            elif lines.count is not None:
                values += sums(group, size, [lines.count])
            else:
                values.append(values[-1])
            if lv == DETAIL:
                chunk_detail = Groups(distinct, values)
            else:
                self._keep(lv, Groups(distinct, values))
        return chunk_detail

    def _runs(self, ticket: pa.ChunkedArray) -> Runs:
        """Run number of each line: 0 for the run carried on from the previous chunk, else 1.."""
        t = ticket.combine_chunks()
        change = np.ones(len(t), dtype=bool)
        if len(t) > 1:
            same = pc.not_equal(t.slice(1), t.slice(0, len(t) - 1))
            change[1:] = pc.fill_null(same, True).to_numpy(zero_copy_only=False)
        continues = self.last_ticket is not None and t[0].as_py() == self.last_ticket
        change[0] = not continues
        self.last_ticket = t[-1].as_py()
        starts = np.flatnonzero(change)
        longest = int(np.diff(np.append(starts, len(t)), prepend=0).max()) if len(t) else 0
        return Runs(np.cumsum(change), continues, longest, change)

    def _tickets(self, lv: Level, distinct: list[I64], group: I64, runs: Runs) -> F64:
        """Distinct runs per group, minus the carried run's groups already counted."""
        first = _pair_firsts(runs, group, distinct[0].size)
        p_group, p_run = group[first], runs.run[first]
        carried = self.carry.get(lv, set()) if runs.continues else set()
        # Run numbers never decrease: the carried run (0) leads, the last run ends the chunk.
        if carried:
            at = np.arange(int(np.searchsorted(p_run, 1)))
            seen = np.array([key in carried for key in _rows(distinct, p_group[at])], dtype=bool)
            p_group = np.delete(p_group, at[seen])
            p_run = np.delete(p_run, at[seen])
        last = int(runs.run[-1])
        tail_at = np.arange(int(np.searchsorted(p_run, last)), p_run.size)
        tail = set(_rows(distinct, p_group[tail_at]))
        self.carry[lv] = carried | tail if runs.continues and last == 0 else tail
        return np.bincount(p_group, minlength=distinct[0].size).astype(np.float64)

    def _keep(self, lv: Level, groups: Groups) -> None:
        """Merge partial groups once they outgrow the merged ones: linear, not quadratic."""
        parts = self.small[lv]
        parts.append(groups)
        pending = sum(p.size for p in parts[1:])
        if pending > max(COMPACT_ROWS, parts[0].size):
            self.small[lv] = [merge(parts)]

    def level(self, lv: Level) -> Groups:
        """A coarse level's final groups."""
        return merge(self.small[lv]) if self.small[lv] else _empty(lv)


def _empty(lv: Level) -> Groups:
    empty = np.zeros(0, dtype=np.int64)
    return Groups([empty] * len(lv), [empty.astype(np.float64)] * len(VALUES))


def _coarser(detail: list[I64], of_line: I64, lv: Level) -> tuple[list[I64], I64]:
    """A coarser level's groups, from the detail groups (few) rather than the lines (many)."""
    distinct, of_detail = factorize([detail[DETAIL.index(c)] for c in lv])
    return distinct, of_detail[of_line]


def _pair_firsts(runs: Runs, group: I64, size: int) -> BoolArray:
    """Lines that are the first of their (run, group) pair. Runs are contiguous: short ones
    are scanned (each line against the up to MAX_SCAN_RUN - 1 lines before it), long ones
    sorted (a stable sort of nearly sorted keys)."""
    run = runs.run
    if run.size > 1 and not (runs.starts[1:] < (group[1:] != group[:-1])).any():
        first = runs.starts.copy()  # each run in one group (a ticket's day and store)
        first[0] = True
        return first
    if runs.longest > MAX_SCAN_RUN:
        order = np.argsort(run * size + group, kind="stable")
        key = (run * size + group)[order]
        first = np.zeros(run.size, dtype=bool)
        first[order[np.append(True, key[1:] != key[:-1])]] = True
        return first
    first = np.ones(run.size, dtype=bool)
    for k in range(1, runs.longest):
        first[k:] &= (run[k:] != run[:-k]) | (group[k:] != group[:-k])
    return first


def merge(parts: list[Groups]) -> Groups:
    """Partial groups added up; within a group, in the order the parts came."""
    width = len(parts[0].keys)
    keys, values = group_sum(
        [np.concatenate([p.keys[i] for p in parts]) for i in range(width)],
        [np.concatenate([p.values[i] for p in parts]) for i in range(len(VALUES))],
    )
    return Groups(keys, values)


def _rows(keys: list[I64], at: I64) -> Iterator[tuple[int, ...]]:
    return zip(*(k[at].tolist() for k in keys), strict=True)
