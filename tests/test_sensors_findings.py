"""Anomalies as parallel arrays: built at rows of a chunk, joined, filtered, named."""

from __future__ import annotations

import numpy as np
from s3worker.processors.sensors.findings import KINDS, Found, concat, empty, found_at, take
from s3worker.processors.sensors.tails import Ext


def _ext() -> Ext:
    cols = {
        "ts": np.array([100, 200, 300, 400]),
        "index": np.array([7, 8, 9, 0]),
        "record": np.array([17, 18, 19, 3]),
    }
    return Ext(np.array([0, 0, 0, 5]), cols, np.ones(4, bool))


def test_found_at_spans_rows_of_the_chunk() -> None:
    # given anomalies from row 0 to 2 and at row 3
    f = found_at(_ext(), "gap", np.array([0, 3]), np.array([2, 3]), [1.5, 2], [10, 20], [1.0, 2.0])
    # then each carries its series, times, reading numbers and first record
    assert f.gid.tolist() == [0, 5]
    assert f.reason.tolist() == ["gap", "gap"]
    assert (f.ts.tolist(), f.until.tolist()) == ([100, 400], [300, 400])
    assert (f.first.tolist(), f.last.tolist()) == ([7, 0], [9, 0])
    assert f.record.tolist() == [17, 3]
    assert f.value.dtype == f.score.dtype == f.expected.dtype == np.float64
    assert f.score.tolist() == [1.5, 2.0]


def test_kinds_are_named_in_their_order() -> None:
    f = concat(
        [
            found_at(_ext(), k, np.array([1]), np.array([1]), np.ones(1), np.ones(1), np.ones(1))
            for k in KINDS
        ]
    )
    assert f.reason.tolist() == list(KINDS)
    assert f.kind.tolist() == list(range(len(KINDS)))


def test_empty_joins_and_takes_to_nothing() -> None:
    nothing = empty()
    assert nothing.reason.tolist() == []
    assert nothing.gid.dtype == np.int64
    assert nothing.score.dtype == np.float64
    one = found_at(
        _ext(), "spike", np.array([2]), np.array([2]), np.ones(1), np.ones(1), np.ones(1)
    )
    joined = concat([nothing, one, nothing])
    assert joined.record.tolist() == [19]
    assert take(joined, np.zeros(1, bool)).gid.size == 0


def test_take_keeps_every_field_of_the_rows_taken() -> None:
    f = found_at(
        _ext(),
        "spike",
        np.arange(4),
        np.arange(4),
        np.arange(4.0),
        np.arange(4.0) * 10,
        np.zeros(4),
    )
    kept = take(f, np.array([3, 1]))
    assert isinstance(kept, Found)
    assert kept.record.tolist() == [3, 18]
    assert kept.value.tolist() == [30.0, 10.0]
    assert kept.ts.tolist() == [400, 200]
