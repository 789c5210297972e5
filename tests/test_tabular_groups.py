"""Integer group-by: factorize once, then sums per group, for keys narrow or wide."""

from __future__ import annotations

import numpy as np
import pandas as pd
from s3worker.processors.tabular.groups import factorize, group_sum


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


def test_factorize_of_keys_too_wide_to_fold_still_maps_each_row() -> None:
    # given two key columns whose ranges multiply past 2**62 (no single-int64 fold)
    big = 1 << 40
    keys = [np.array([big, 0, big, 0, big]), np.array([0, big, 0, 0, big])]
    # when factorized
    distinct, group = factorize(keys)
    # then each row reads its own keys back through its group, and equal rows share one
    rows = list(zip(*(d[group].tolist() for d in distinct), strict=True))
    assert rows == list(zip(*(k.tolist() for k in keys), strict=True))
    assert len(distinct[0]) == 4
    assert group[0] == group[2]
    assert group[0] != group[4]
    # rows equal in their last key only are still two groups
    keys = [np.array([0, big, big, 2 * big]), np.array([0, 0, big, big])]
    distinct, group = factorize(keys)
    assert len(set(group.tolist())) == 4
    assert [d[group].tolist() for d in distinct] == [k.tolist() for k in keys]


def test_group_sum_adds_several_value_columns_per_group() -> None:
    # given one key column with negative values and two value columns
    keys = [np.array([-3, 2, -3, 2, 9])]
    revenue = np.array([1.5, 2.0, 2.5, 4.0, 10.0])
    units = np.array([1, 1, 3, 2, 5], dtype=np.int64)
    # when grouped
    distinct, (rev, n) = group_sum(keys, [revenue, units])
    # then each distinct key has the sums of its rows, as float64
    by_key = {k: (r, u) for k, r, u in zip(distinct[0].tolist(), rev, n, strict=True)}
    assert by_key == {-3: (4.0, 4.0), 2: (6.0, 3.0), 9: (10.0, 5.0)}
    assert n.dtype == np.float64


def test_no_rows_make_no_groups() -> None:
    empty = np.zeros(0, dtype=np.int64)
    distinct, group = factorize([empty, empty])
    assert [d.size for d in distinct] == [0, 0]
    assert group.size == 0
    keys, (sums,) = group_sum([empty], [np.zeros(0)])
    assert keys[0].size == 0
    assert sums.size == 0
