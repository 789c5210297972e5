"""Column conversions: a few odd values among many read as each would alone."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from s3worker.processors.tabular.columns import (
    RAW_LIMIT,
    _runs,
    raw_json,
    rejects_of,
    to_float,
    to_time,
    to_time_checked,
)
from s3worker.processors.tabular.rows import Chunk

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


# Zoned, naive, epoch, odd, out-of-window and missing times, and São Paulo's DST edges of
# 2018 (the clocks skipped 00:00-01:00 on 4 November; 23:00-24:00 of 17 February was lived
# twice), read in runs as in sorted readings.
RUN_TIMES = [
    "2024-06-03T09:00:00Z",
    "2024-06-03T06:00:00-03:00",
    "2024-06-03 09:00:00",
    "2018-11-04 00:30:00",
    "2018-02-17 23:30:00",
    "1717405200",
    "9999-12-31T00:00:00",
    "2024-13-45",
    "03/06/2024 09:00",
    None,
]


def _alone(values: list[str | None], tz: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Each value converted alone (once per distinct value), in the column's order."""
    read = {
        v: to_time_checked(pa.chunked_array([pa.array([v], pa.string())]), (), tz)
        for v in set(values)
    }
    return (
        np.array([read[v][0][0] for v in values], dtype="datetime64[ns]"),
        np.array([read[v][1][0] for v in values], dtype=bool),
    )


def test_times_in_runs_read_as_each_alone() -> None:
    # given columns whose values come in runs of 7 to 13 (read by runs), in two chunks the
    # second of them a slice, every kind of time among them, with and without a zone
    rng = np.random.default_rng(13)
    for tz in (None, "America/Sao_Paulo"):
        for _ in range(5):
            picks = rng.integers(0, len(RUN_TIMES), 400)
            values = [RUN_TIMES[i] for i in picks for _ in range(int(rng.integers(7, 14)))]
            cut = len(values) // 3
            tail = pa.array(["x", *values[cut:]], pa.string()).slice(1)
            col = pa.chunked_array([pa.array(values[:cut], pa.string()), tail])
            assert _runs(col) is not None
            # when converted as one column
            times, outside = to_time_checked(col, (), tz)
            # then every value is what it is when converted alone
            alone_times, alone_outside = _alone(values, tz)
            np.testing.assert_array_equal(times, alone_times)
            np.testing.assert_array_equal(outside, alone_outside)
            assert outside.any()
            assert np.isnat(times).any()
            assert (~np.isnat(times)).any()


def test_times_in_no_order_are_not_read_by_runs() -> None:
    # given bookings' start times, each row another (no runs)
    values = [f"2024-06-{d:02d}T{h:02d}:00:00Z" for d in range(1, 29) for h in range(24)]
    col = pa.chunked_array([pa.array(values, pa.string())])
    # then they are dictionary-encoded as they are, and read as each alone
    assert _runs(col) is None
    np.testing.assert_array_equal(to_time_checked(col)[0], _alone(values, None)[0])


def test_a_column_zoned_after_a_naive_first_value_reads_as_each_alone() -> None:
    # given distinct times whose first value decides which whole-column cast is tried
    for first in ("2024-06-03 09:00:00", "2024-06-03T09:00:00Z", "2024-06-03T06:00:00-03:00"):
        values = [first, "2024-06-03T10:00:00Z", "2024-06-03 11:00:00", "2024-06-03T12:00:00+01:00"]
        for group in (values, values[:1] + values[1:2], values[:1] + values[2:3]):
            # when converted as one column, then as each alone
            col = pa.chunked_array([pa.array(group, pa.string())])
            np.testing.assert_array_equal(to_time_checked(col)[0], _alone(group, None)[0])


def test_rejected_rows_keep_json_dumps_text_and_every_reason() -> None:
    # given rows with quotes, backslashes, control and non-ASCII characters, nulls, a long one
    awkward = ['a"b', "c\\d", "tab\there", "\x00\x1f\x7f", "é€😀", "\u2028", "", None, "x" * 1200]
    table = pa.table(
        {"id": [str(i) for i in range(len(awkward))], 'we"ird': awkward, "plain": awkward[::-1]}
    )
    problems = {
        "first": np.arange(len(awkward)) % 2 == 0,
        "second": np.arange(len(awkward)) % 3 == 0,
        "never": np.zeros(len(awkward), dtype=bool),
    }
    # when the bad rows are rejected
    keep, rejects = rejects_of(Chunk(table, start=100), problems)
    # then each holds its record as json.dumps writes it (cut) and its reasons in order
    bad = [i for i in range(len(awkward)) if i % 2 == 0 or i % 3 == 0]
    assert keep.tolist() == [i not in bad for i in range(len(awkward))]
    assert [r.record for r in rejects] == [100 + i for i in bad]
    records = table.to_pylist()
    assert [r.raw for r in rejects] == [json.dumps(records[i])[:RAW_LIMIT] for i in bad]
    reasons = {0: "first; second", 2: "first", 3: "second", 4: "first"}
    assert [r.reason for r in rejects][:4] == [reasons[i] for i in bad[:4]]


def test_raw_json_of_other_columns_than_strings_is_json_dumps() -> None:
    table = pa.table({"a": ["x", None], "n": [1, 2]})
    assert raw_json(table) == [json.dumps(r) for r in table.to_pylist()]
    assert raw_json(table.slice(0, 0)) == []
