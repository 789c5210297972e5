"""The sales day files: written while the file is read when days come in order, through the
spill when they do not, with the same figures to the last bit either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from s3worker.processors.sales import days as days_module
from s3worker.processors.sales.days import DayFiles
from s3worker.processors.sales.totals import Codes, Groups, merge

STORES, PRODUCTS = ["s2", "s1", "s0"], ["p3", "p1", "p2", "p0"]  # codes in first-seen order


def _chunks(day_of_chunk: list[list[int]], seed: int = 3) -> list[Groups]:
    """Each chunk's distinct (day, store, product) groups, with sums whose last bits depend
    on the order they are added in."""
    rng = np.random.default_rng(seed)
    out = []
    for chunk_days in day_of_chunk:
        every = [(d, s, p) for d in chunk_days for s in range(3) for p in range(4)]
        keys = np.array([k for k in every if rng.random() < 0.8])
        values = [rng.random(len(keys)) * 1e3 for _ in range(2)]
        counts = [rng.integers(1, 9, len(keys)).astype(np.float64) for _ in range(2)]
        out.append(Groups([keys[:, i] for i in range(3)], [*values, *counts]))
    return out


def _codes() -> tuple[Codes, Codes]:
    stores, products = Codes(), Codes()
    stores.encode(pa.chunked_array([STORES]))
    products.encode(pa.chunked_array([PRODUCTS]))
    return stores, products


def _write(out: Path, chunks: list[Groups]) -> tuple[dict[str, int], DayFiles]:
    out.mkdir(exist_ok=True)  # as the processor's out_dir is
    files = DayFiles(out, *_codes())
    try:
        for g in chunks:
            files.add(g)
        return files.close(), files
    finally:
        files.discard()


def _tables(out: Path) -> dict[str, pa.Table]:
    return {str(p.relative_to(out)): pq.read_table(p) for p in sorted(out.rglob("*.parquet"))}


def _expected(chunks: list[Groups]) -> dict[str, list[tuple[object, ...]]]:
    """Per day file: (store, product, revenue, units, tickets, lines) rows sorted by name."""
    whole = merge(chunks)
    rows: dict[str, list[tuple[object, ...]]] = {}
    for i in range(whole.size):
        day, store, product = (int(k[i]) for k in whole.keys)
        revenue, units, lines, tickets = (float(v[i]) for v in whole.values)
        name = f"sales/dt={np.datetime64(day, 'D')}/part-0.parquet"
        rows.setdefault(name, []).append(
            (STORES[store], PRODUCTS[product], revenue, units, int(tickets), int(lines))
        )
    return {name: sorted(r) for name, r in sorted(rows.items())}


def _as_rows(table: pa.Table) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


def test_days_in_order_are_written_as_the_chunks_come_without_a_spill(tmp_path: Path) -> None:
    # given chunks in day order, a day running on from one chunk into the next
    chunks = _chunks([[0, 1, 2], [2, 3], [3, 4, 5], [5]])
    files = DayFiles(tmp_path, *_codes())
    try:
        for g in chunks[:2]:
            files.add(g)
        # then the days before the second chunk's first day are written already
        assert files.written == {0, 1}
        for g in chunks[2:]:
            files.add(g)
        rows = files.close()
    finally:
        files.discard()
    # and nothing went through the spill; each day's file holds its figures, sorted by name
    assert files.spill is None
    assert [p.name for p in tmp_path.iterdir()] == ["sales"]
    tables = _tables(tmp_path)
    assert {k: _as_rows(t) for k, t in tables.items()} == _expected(chunks)
    assert rows == {name: t.num_rows for name, t in tables.items()}
    assert list(rows) == sorted(rows)  # in day order


@pytest.mark.parametrize(
    "order",
    [
        [[0, 1], [1, 2], [0], [3, 2]],  # a late day, read back and written again
        [[3, 4], [0, 1], [2, 4], [1]],  # days by store: every day comes back
        [[0], [1], [2], [3], [1, 0, 2, 3]],  # days in order, then all of them again
    ],
)
def test_days_out_of_order_give_the_same_files_to_the_last_bit(
    tmp_path: Path, order: list[list[int]]
) -> None:
    # given chunks whose days come back after they were written
    chunks = _chunks(order)
    rows, files = _write(tmp_path / "late", chunks)
    # then the figures are each day's, and exactly those of a run that holds every day to
    # the end (the sums added in the same order, whatever the path)
    assert files.spill is not None
    assert {k: _as_rows(t) for k, t in _tables(tmp_path / "late").items()} == _expected(chunks)
    (tmp_path / "held").mkdir()
    reference = DayFiles(tmp_path / "held", *_codes())
    try:
        for g in chunks:
            reference.held.append(g)  # never written before the end
        assert reference.close() == rows
    finally:
        reference.discard()
    late, held = _tables(tmp_path / "late"), _tables(tmp_path / "held")
    assert late.keys() == held.keys()
    assert all(late[k].equals(held[k]) for k in late)
    # and the spill is gone
    assert sorted(p.name for p in (tmp_path / "late").iterdir()) == ["sales"]


def test_too_many_groups_held_go_to_the_spill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given days in no order, and room to hold only a few groups
    monkeypatch.setattr(days_module, "HELD_ROWS", 20)
    chunks = _chunks([[2, 0, 1], [1, 2, 0], [0, 1, 2]])
    rows, files = _write(tmp_path, chunks)
    # then they were spilled, and the figures are still each day's
    assert files.spill is not None
    tables = _tables(tmp_path)
    assert {k: _as_rows(t) for k, t in tables.items()} == _expected(chunks)
    assert rows == {name: t.num_rows for name, t in tables.items()}


def test_no_groups_write_no_files(tmp_path: Path) -> None:
    empty = np.zeros(0, dtype=np.int64)
    rows, _ = _write(tmp_path, [Groups([empty] * 3, [empty.astype(np.float64)] * 4)])
    assert rows == {}
    assert list(tmp_path.iterdir()) == []
