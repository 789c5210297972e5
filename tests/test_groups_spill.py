"""Integer group-by and the on-disk spill the sales processor uses to bound its memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from s3worker.processors.sales.totals import SPILL_SCHEMA
from s3worker.processors.tabular.groups import factorize, group_sum
from s3worker.processors.tabular.spill import Spill


def _by_pandas(keys: list[np.ndarray], value: np.ndarray) -> pd.Series:
    frame = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)} | {"v": value})
    return frame.groupby([f"k{i}" for i in range(len(keys))])["v"].sum()


def _as_series(keys: list[np.ndarray], sums: np.ndarray) -> pd.Series:
    index = pd.MultiIndex.from_arrays(keys, names=[f"k{i}" for i in range(len(keys))])
    return pd.Series(sums, index=index, name="v").sort_index()


def test_group_sum_matches_pandas_for_narrow_and_wide_keys() -> None:
    # given keys that fold into one int64, and keys too wide to fold
    rng = np.random.default_rng(3)
    value = rng.random(5_000)
    # (narrow: addressed directly; sparse: hashed; wide: sorted)
    narrow = [rng.integers(-5, 40, 5_000), rng.integers(0, 30, 5_000)]
    sparse = [rng.integers(0, 3, 5_000) * 10_000, rng.integers(-9, 9, 5_000) * 1_000]
    wide = [rng.integers(0, 3, 5_000) * (1 << 40), rng.integers(0, 3, 5_000) * (1 << 40)]
    for keys in (narrow, sparse, wide):
        # when grouped
        distinct, (sums,) = group_sum(keys, [value])
        # then the groups and sums are pandas'
        expected = _by_pandas(keys, value)
        pd.testing.assert_series_equal(
            _as_series(distinct, sums), expected, check_exact=False, rtol=1e-12
        )


def test_factorize_gives_each_row_its_group() -> None:
    keys = [np.array([5, 1, 5, 1, 7]), np.array([0, 0, 0, 2, 0])]
    distinct, group = factorize(keys)
    rows = list(zip(*(d[group].tolist() for d in distinct), strict=True))
    assert rows == list(zip(*(k.tolist() for k in keys), strict=True))
    assert len(distinct[0]) == 4


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
