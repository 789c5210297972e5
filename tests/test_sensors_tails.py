"""Each series' last readings carried to the next chunk and put in front of its new ones."""

from __future__ import annotations

import numpy as np
from s3worker.processors.sensors.tails import Ext, Tails


def test_ext_knows_each_rows_place_in_its_series() -> None:
    ext = Ext(np.array([0, 0, 1, 1, 1, 4]), {"v": np.array([1, 2, 3, 4, 5, 6])}, np.ones(6, bool))
    assert ext.group_start.tolist() == [0, 0, 2, 2, 2, 5]
    assert ext.pos.tolist() == [0, 1, 0, 1, 2, 0]
    assert ext.size_of_group.tolist() == [2, 2, 3, 3, 3, 1]
    assert ext.last_of_group.tolist() == [False, True, False, False, True, True]
    assert ext.f64("v").dtype == np.float64
    assert ext.i64("v").tolist() == [1, 2, 3, 4, 5, 6]
    assert ext.group_cumsum(ext.f64("v")).tolist() == [1.0, 3.0, 3.0, 7.0, 12.0, 6.0]


def _tails(width: int = 3) -> Tails:
    tails = Tails(width, {"v": float, "t": np.int64})
    tails.grow(3)
    return tails


def test_a_first_chunk_is_grouped_by_series_in_file_order() -> None:
    tails = _tails()
    ext = tails.extend(np.array([2, 0, 2, 0, 2]), {"v": np.arange(5.0), "t": np.arange(5)})
    assert ext.gid.tolist() == [0, 0, 2, 2, 2]
    assert ext.cols["v"].tolist() == [1.0, 3.0, 0.0, 2.0, 4.0]
    assert ext.new.all()


def test_the_kept_rows_of_a_series_come_before_its_new_rows() -> None:
    # given a chunk with 5 readings of series 0 and 1 of series 1, and tails of 3 rows
    tails = _tails()
    first = tails.extend(np.array([0, 0, 1, 0, 0, 0]), {"v": np.arange(6.0), "t": np.arange(6)})
    tails.keep(first)
    assert tails.length.tolist() == [3, 1, 0]
    # when the next chunk has readings of series 0 and 2 only
    second = tails.extend(np.array([2, 0]), {"v": np.array([10.0, 11.0]), "t": np.array([6, 7])})
    # then series 0's last three readings come first, marked old; series 1 waits
    assert second.gid.tolist() == [0, 0, 0, 0, 2]
    assert second.cols["v"].tolist() == [3.0, 4.0, 5.0, 11.0, 10.0]
    assert second.cols["t"].tolist() == [3, 4, 5, 7, 6]
    assert second.new.tolist() == [False, False, False, True, True]
    tails.keep(second)
    assert tails.length.tolist() == [3, 1, 1]
    third = tails.extend(np.array([1, 0]), {"v": np.array([20.0, 21.0]), "t": np.array([8, 9])})
    assert third.cols["v"].tolist() == [4.0, 5.0, 11.0, 21.0, 2.0, 20.0]
    assert third.gid.tolist() == [0, 0, 0, 0, 1, 1]


def test_many_series_keep_their_order() -> None:
    # given more series than 16 bits number
    tails = Tails(2, {"v": float})
    tails.grow(70_001)
    gid = np.array([70_000, 3, 70_000, 3, 65_536])
    ext = tails.extend(gid, {"v": np.arange(5.0)})
    assert ext.gid.tolist() == [3, 3, 65_536, 70_000, 70_000]
    assert ext.cols["v"].tolist() == [1.0, 3.0, 4.0, 0.0, 2.0]
    tails.keep(ext)
    again = tails.extend(np.array([70_000]), {"v": np.array([9.0])})
    assert again.cols["v"].tolist() == [0.0, 2.0, 9.0]


def test_a_large_chunk_keeps_file_order_within_each_series() -> None:
    # given 5,000 readings of 3 series, interleaved at random, each numbered in file order
    gid = np.random.default_rng(2).integers(0, 3, 5_000)
    ext = _tails().extend(gid, {"v": np.arange(5_000.0), "t": np.arange(5_000)})
    for g in range(3):
        assert ext.cols["t"][ext.gid == g].tolist() == np.flatnonzero(gid == g).tolist()
