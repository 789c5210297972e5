"""Column conversions: a few odd values among many read as each would alone."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from s3worker.processors.tabular.columns import to_float, to_time

ODD_NUMBERS = ["two", "1,5", "R$ 3,20", "12,34,5", "inf", "$7", "NaN", "1e400", "", None]
ODD_TIMES = ["2024-13-45", "03/06/2024 09:00", "ontem", "1717405200", None]


def _one_by_one_float(values: list[str | None]) -> np.ndarray:
    return np.concatenate(
        [to_float(pa.chunked_array([pa.array([v], pa.string())])) for v in values]
    )


def test_odd_numbers_among_many_read_as_each_alone() -> None:
    # given 60,000 plain amounts with odd ones scattered through them (every slice size)
    rng = np.random.default_rng(11)
    values: list[str | None] = [f"{x:.2f}" for x in rng.random(60_000) * 100]
    for at in rng.choice(len(values), 40, replace=False):
        values[at] = ODD_NUMBERS[at % len(ODD_NUMBERS)]
    # when converted as one column
    whole = to_float(pa.chunked_array([pa.array(values, pa.string())]))
    # then every value is what it is when converted alone
    odd = [i for i, v in enumerate(values) if v in ODD_NUMBERS]
    expected = _one_by_one_float([values[i] for i in odd])
    np.testing.assert_array_equal(whole[odd], expected)
    plain = np.setdiff1d(np.arange(len(values)), odd)
    np.testing.assert_array_equal(whole[plain], np.array([float(values[i]) for i in plain]))  # type: ignore[arg-type]


def test_odd_times_read_the_same_in_every_chunk() -> None:
    # given the same odd date strings in two chunks, with ISO times around them
    chunk = ["2024-06-03T09:00:00Z", *ODD_TIMES, "2024-06-03T10:00:00Z"]
    # when each chunk is converted (the second from what the first remembered)
    first = to_time(pa.chunked_array([pa.array(chunk, pa.string())]))
    second = to_time(pa.chunked_array([pa.array(chunk, pa.string())]))
    # then both read alike, and as each value alone
    np.testing.assert_array_equal(first, second)
    alone = [to_time(pa.chunked_array([pa.array([v], pa.string())]))[0] for v in chunk]
    np.testing.assert_array_equal(first, np.array(alone, dtype="datetime64[ns]"))
    assert np.isnat(first[1])  # 2024-13-45
    assert np.isnat(first[3])  # ontem
    assert str(first[2]) == "2024-06-03T09:00:00.000000000"


def test_odd_values_of_a_few_distinct_read_as_each_alone() -> None:
    # given 20,000 quantities of a handful of distinct values, odd ones among them (the
    # column is then converted once per distinct value, not slice by slice)
    rng = np.random.default_rng(12)
    distinct = ["1", "2", "3.5", "4", *ODD_NUMBERS]
    values = [distinct[i] for i in rng.integers(0, len(distinct), 20_000)]
    # when converted as one column
    whole = to_float(pa.chunked_array([pa.array(values, pa.string())]))
    # then every value is what it is when converted alone
    alone = dict(zip(distinct, _one_by_one_float(distinct), strict=True))
    np.testing.assert_array_equal(whole, np.array([alone[v] for v in values]))
