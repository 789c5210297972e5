"""The on-disk spill: rows parked in buckets, read back one bucket at a time, then gone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from s3worker.processors.sales.days import SPILL_SCHEMA
from s3worker.processors.tabular.spill import Spill


def test_spill_returns_every_row_by_bucket_and_cleans_up(tmp_path: Path) -> None:
    # given rows added in three batches under buckets 0..4
    rng = np.random.default_rng(5)
    added = []
    with Spill(tmp_path, SPILL_SCHEMA) as spill:
        for _ in range(3):
            n = 1_000
            cols = {name: rng.integers(0, 100, n) for name in ("dt", "store", "product")}
            cols |= {name: rng.random(n) for name in ("revenue", "units", "lines", "tickets")}
            spill.add(cols["dt"] % 5, cols)
            added.append(pd.DataFrame(cols))
        # when read back
        buckets = [t.to_pandas() for t in spill.buckets()]
    # then each bucket holds its rows, in the order they were added, and nothing is left
    everything = pd.concat(added, ignore_index=True)
    assert len(buckets) == 5
    for b, table in enumerate(buckets):
        expected = everything[everything["dt"] % 5 == b].reset_index(drop=True)
        pd.testing.assert_frame_equal(table, expected)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bucket_of", [lambda i: i % 3, lambda i: i // 10])
def test_spill_of_tables_keeps_strings_and_order_by_bucket(
    tmp_path: Path, bucket_of: Callable[[int], int]
) -> None:
    # given tables of strings and times added under buckets 0..2 (shuffled, or in order)
    schema = pa.schema([("id", pa.string()), ("start", pa.timestamp("ns", "UTC"))])
    rows = [(f"A{i}", i * 1_000) for i in range(30)]
    with Spill(tmp_path, schema) as spill:
        for part in (rows[:17], rows[17:]):
            table = pa.table(
                {
                    "id": [r[0] for r in part],
                    "start": pa.array([r[1] for r in part], schema[1].type),
                }
            )
            spill.add_table(np.array([bucket_of(int(r[0][1:])) for r in part]), table)
        # when read back
        buckets = [t.column("id").to_pylist() for t in spill.buckets()]
    # then each bucket holds its rows in the order they came
    assert buckets == [[f"A{i}" for i in range(30) if bucket_of(i) == b] for b in range(3)]


SMALL = pa.schema([("k", pa.int64()), ("v", pa.float64())])


def test_only_buckets_given_rows_come_back_in_bucket_order(tmp_path: Path) -> None:
    # given rows under buckets 7 and 2 only, the 7s added first, and an empty add
    with Spill(tmp_path, SMALL) as spill:
        spill.add(np.array([7, 7]), {"k": np.array([1, 2]), "v": np.array([0.5, 1.5])})
        spill.add(np.array([2]), {"k": np.array([3]), "v": np.array([2.5])})
        spill.add(np.zeros(0, dtype=np.int64), {"k": np.zeros(0), "v": np.zeros(0)})
        # when read back
        tables = []
        for table in spill.buckets():
            tables.append(table.to_pydict())
            # then each bucket's file is gone once it has been read
            (folder,) = tmp_path.iterdir()
            assert len(list(folder.iterdir())) == 2 - len(tables)
        # then bucket 2 comes first, and the row count is the rows added
        assert spill.rows == 3
    assert tables == [{"k": [3], "v": [2.5]}, {"k": [1, 2], "v": [0.5, 1.5]}]


def test_closing_unread_spill_removes_its_files(tmp_path: Path) -> None:
    # given a spill that fails before its buckets are read
    try:
        with Spill(tmp_path, SMALL) as spill:
            spill.add(np.array([0, 1]), {"k": np.array([1, 2]), "v": np.array([1.0, 2.0])})
            spill.add_table(np.zeros(0, dtype=np.int64), pa.table({"k": [], "v": []}, SMALL))
            assert len(list(next(tmp_path.iterdir()).iterdir())) == 2
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    # then nothing of it is left in the folder
    assert list(tmp_path.iterdir()) == []
    assert spill.rows == 2


def test_values_are_stored_in_the_schema_types(tmp_path: Path) -> None:
    # given int columns given for a float field
    with Spill(tmp_path, SMALL) as spill:
        spill.add(np.array([0]), {"k": np.array([4]), "v": np.array([3])})
        (table,) = spill.buckets()
    assert table.schema == SMALL
    assert table.to_pydict() == {"k": [4], "v": [3.0]}
