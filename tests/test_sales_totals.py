"""Sales sums and ticket counts per level: codes for names, tickets counted once per group
whatever the chunking, the detail level handed back chunk by chunk."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
from s3worker.processors.sales.totals import (
    DETAIL,
    LEVELS,
    VALUES,
    Codes,
    Groups,
    Lines,
    Totals,
    merge,
)

# (day, store, product, revenue, units, ticket)
LINES = [
    (0, "L1", "arroz", 11.0, 2.0, "C1"),
    (0, "L1", "feijao", 8.0, 1.0, "C1"),
    (0, "L1", "arroz", 5.5, 1.0, "C1"),
    (0, "L1", "arroz", 5.5, 1.0, "C2"),
    (0, "L2", "cafe", 36.0, 3.0, "C3"),
    (1, "L2", "cafe", 12.0, 1.0, "C3"),
    (40, "L1", "arroz", 1.0, 1.0, "C4"),
]


def _text(values: list[str]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, pa.string())])


def _chunk(totals: Totals, rows: list[tuple[int, str, str, float, float, str]]) -> Lines:
    day, store, product, revenue, units, ticket = (list(c) for c in zip(*rows, strict=True))
    return Lines(
        key={
            "dt": np.array(day, dtype=np.int64),
            "store": totals.stores.encode(_text(store)),
            "product": totals.products.encode(_text(product)),
        },
        revenue=np.array(revenue),
        units=np.array(units),
        ticket=_text(ticket),
        count=None,
    )


def _named(
    totals: Totals, level: tuple[str, ...], groups: Groups
) -> dict[tuple[object, ...], list[float]]:
    names = {"dt": None, "store": totals.stores.names, "product": totals.products.names}
    out = {}
    for row in range(groups.size):
        key = tuple(
            int(groups.keys[i][row]) if names[c] is None else names[c][groups.keys[i][row]]  # type: ignore[index]
            for i, c in enumerate(level)
        )
        out[key] = [float(v[row]) for v in groups.values]
    return out


def _levels(cuts: list[int]) -> dict[tuple[str, ...], dict[tuple[object, ...], list[float]]]:
    """Every level's groups, by name, for LINES given in chunks cut at `cuts` (the detail
    level: each chunk's distinct groups, added up in order)."""
    totals = Totals()
    bounds = [0, *cuts, len(LINES)]
    chunks = []
    for lo, hi in itertools.pairwise(bounds):
        chunks.append(totals.add(_chunk(totals, LINES[lo:hi])))
        assert len(set(_named(totals, DETAIL, chunks[-1]))) == chunks[-1].size
    out = {lv: _named(totals, lv, totals.level(lv)) for lv in LEVELS[1:]}
    out[DETAIL] = _named(totals, DETAIL, merge(chunks))
    return out


def test_codes_number_names_in_order_of_first_appearance() -> None:
    codes = Codes()
    first = codes.encode(pa.chunked_array([["b", "a", "b"]]))
    second = codes.encode(pa.chunked_array([["c"], ["a", "c"]]))
    assert first.tolist() == [0, 1, 0]
    assert second.tolist() == [2, 1, 2]
    assert codes.names == ["b", "a", "c"]
    # ranks: each code's place in name order (a, b, c)
    assert codes.ranks().tolist() == [1, 0, 2]
    assert codes.encode(pa.chunked_array([pa.array([], pa.string())])).size == 0


def test_each_level_adds_revenue_units_lines_and_tickets() -> None:
    levels = _levels([])
    assert VALUES == ("revenue", "units", "lines", "tickets")
    assert levels[("dt",)] == {
        (0,): [66.0, 8.0, 5.0, 3.0],
        (1,): [12.0, 1.0, 1.0, 1.0],
        (40,): [1.0, 1.0, 1.0, 1.0],
    }
    assert levels[("dt", "store")][(0, "L1")] == [30.0, 5.0, 4.0, 2.0]
    # ticket C1 holds arroz twice: one ticket of arroz, and C2 another
    assert levels[("product",)][("arroz",)] == [23.0, 5.0, 4.0, 3.0]
    assert levels[DETAIL][(0, "L1", "arroz")] == [22.0, 4.0, 3.0, 2.0]
    assert levels[DETAIL][(40, "L1", "arroz")] == [1.0, 1.0, 1.0, 1.0]
    assert len(levels[DETAIL]) == 5


def test_a_ticket_cut_by_a_chunk_boundary_is_counted_once() -> None:
    # given the same lines whole, and cut inside ticket C1 and inside C3 (which spans days)
    whole = _levels([])
    cut = _levels([1, 2, 5])
    one_by_one = _levels(list(range(1, len(LINES))))
    # then every level's figures are the same
    assert cut == whole
    assert one_by_one == whole


def test_a_tickets_column_is_summed_when_there_are_no_ticket_ids() -> None:
    totals = Totals()
    lines = _chunk(totals, LINES[:3])
    lines.ticket, lines.count = None, np.array([4.0, 0.0, 2.0])
    totals.add(lines)
    (day,) = _named(totals, ("dt",), totals.level(("dt",))).values()
    assert day == [24.5, 4.0, 3.0, 6.0]


def test_without_ticket_ids_or_counts_each_line_is_a_ticket() -> None:
    totals = Totals()
    lines = _chunk(totals, LINES[:4])
    lines.ticket = None
    totals.add(lines)
    assert _named(totals, ("dt",), totals.level(("dt",))) == {(0,): [30.0, 5.0, 4.0, 4.0]}


def test_nothing_added_gives_empty_levels() -> None:
    totals = Totals()
    empty = np.zeros(0, dtype=np.int64)
    keys = {"dt": empty, "store": empty, "product": empty}
    chunks = [
        totals.add(Lines(keys, np.zeros(0), np.zeros(0), None, None)),
        totals.add(Lines(keys, np.zeros(0), np.zeros(0), _text([]), None)),
    ]
    for lv, groups in [*((lv, totals.level(lv)) for lv in LEVELS[1:]), (DETAIL, chunks[0])]:
        assert groups.size == 0
        assert len(groups.keys) == len(lv)
        assert len(groups.values) == len(VALUES)


def test_merge_adds_up_partial_groups() -> None:
    a = Groups([np.array([1, 2])], [np.array([1.0, 2.0])] * 4)
    b = Groups([np.array([2, 3])], [np.array([10.0, 30.0])] * 4)
    merged = merge([a, b])
    got = {int(k): float(v) for k, v in zip(merged.keys[0], merged.values[0], strict=True)}
    assert got == {1: 1.0, 2: 12.0, 3: 30.0}
    assert all(np.array_equal(merged.values[0], v) for v in merged.values)


def test_tickets_match_distinct_runs_per_group_whatever_the_chunks() -> None:
    # given point-of-sale lines (a ticket's lines together, in one day and store, so each
    # coarse group holds whole tickets) with the odd ticket spanning two stores, in chunks
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 6, 400)
    ticket = np.repeat(np.arange(sizes.size), sizes)
    day, store = ticket // 40, rng.integers(0, 3, sizes.size)[ticket]
    store[np.flatnonzero(np.diff(ticket, prepend=-1))[7] + 1 :][:1] += 1  # one ticket spans two
    rows = [
        (int(d), f"L{s}", f"p{p}", 1.0, 1.0, f"T{t}")
        for d, s, p, t in zip(day, store, rng.integers(0, 6, ticket.size), ticket, strict=True)
    ]
    for cuts in ([], sorted(rng.choice(np.arange(1, len(rows)), 9, replace=False).tolist())):
        totals = Totals()
        for lo, hi in itertools.pairwise([0, *cuts, len(rows)]):
            totals.add(_chunk(totals, rows[lo:hi]))
        got = {lv: _named(totals, lv, totals.level(lv)) for lv in LEVELS[1:]}
        # then each group's tickets are its distinct ticket ids (runs), counted by brute force
        for lv in LEVELS[1:]:
            fields = {"dt": 0, "store": 1, "product": 2}
            want: dict[tuple[object, ...], set[str]] = {}
            for row in rows:
                want.setdefault(tuple(row[fields[c]] for c in lv), set()).add(row[5])
            assert {k: v[3] for k, v in got[lv].items()} == {k: len(v) for k, v in want.items()}
