"""Numbers from strings: the plain ones cast in one go, the odd few read leniently."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from s3worker.processors.tabular import floats
from s3worker.processors.tabular.floats import to_float


def _one_by_one(values: list[str | None]) -> np.ndarray:
    one = [to_float(pa.chunked_array([pa.array([v], pa.string())])) for v in values]
    return np.concatenate(one)


def test_odd_values_among_plain_numbers_are_read_each_on_its_own() -> None:
    # given plain numbers with odd values among them, in a slice of a longer array
    values = ["1", "-2.5", "two", "12,5", "R$ 3,20", "1e3", None, "", "inf", "1e400", ".5"]
    sliced = pa.array(["pad", "pad", *values], pa.string()).slice(2)
    # when read as one column
    out = to_float(pa.chunked_array([sliced]))
    # then each value reads as it does alone; non-numbers, infinities and gaps are NaN
    expected = [1, -2.5, np.nan, 12.5, 3.2, 1000, np.nan, np.nan, np.nan, np.nan, 0.5]
    np.testing.assert_array_equal(out, np.array(expected))
    np.testing.assert_array_equal(out, _one_by_one(values))


def test_a_number_between_spaces_is_read() -> None:
    # given numbers padded with spaces (pyarrow's cast refuses " 4")
    col = pa.chunked_array([pa.array([" 4", "5 ", "6"]), pa.array(["\t7\t"])])
    # then they read as the numbers, instead of failing the column
    np.testing.assert_array_equal(to_float(col), [4.0, 5.0, 6.0, 7.0])


def test_plain_bytes_the_cast_refuses_fall_back_without_losing_the_rest() -> None:
    # given digits and points that make no number, among numbers, over two chunks
    col = pa.chunked_array([pa.array(["1.2.3", "2", "--1"]), pa.array(["3", "4.0"])])
    np.testing.assert_array_equal(to_float(col), [np.nan, 2.0, np.nan, 3.0, 4.0])


def test_odd_values_are_parsed_once_and_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a fresh memo, and a count of what goes to the lenient parser
    monkeypatch.setattr(floats, "_ODD_FLOATS", {})
    seen: list[int] = []
    lenient = floats._odd_floats
    monkeypatch.setattr(floats, "_odd_floats", lambda col: seen.append(len(col)) or lenient(col))
    # when two chunks hold the same odd values
    for _ in range(2):
        out = to_float(pa.chunked_array([pa.array(["two", "1", "two", "12,5"])]))
        np.testing.assert_array_equal(out, [np.nan, 1.0, np.nan, 12.5])
    # then the two distinct odd values were parsed once, together
    assert seen == [2]


def test_an_empty_column_reads_as_no_numbers() -> None:
    assert to_float(pa.chunked_array([], pa.string())).shape == (0,)
    assert np.isnan(to_float(pa.chunked_array([pa.nulls(3, pa.string())]))).all()


@pytest.mark.parametrize(
    "col",
    [
        pa.chunked_array([pa.array(["a", None, "c"] * 700).slice(5, 2000), pa.array([None, "e"])]),
        pa.chunked_array([pa.array([1.0, None]), pa.array([], pa.float64()), pa.array([2.0])]),
        pa.nulls(9, pa.string()),
        pa.array(["x", None]).dictionary_encode(),
        pa.chunked_array([], pa.string()),
    ],
    ids=["sliced chunks", "an empty chunk", "all null", "dictionary", "no chunks"],
)
def test_missing_is_what_pyarrow_counts_as_null(col: pa.ChunkedArray | pa.Array) -> None:
    want = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    assert floats.missing(col).tolist() == want.tolist()
