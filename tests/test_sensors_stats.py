"""Per-series statistics and hourly aggregates, merged chunk by chunk, and the summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from s3worker.processors.sensors import stats as sensor_stats
from s3worker.processors.sensors.findings import KINDS, Found, concat, empty
from s3worker.processors.sensors.series import Readings
from s3worker.processors.sensors.stats import Stats, Tally, summary, write

HOUR = 3_600 * 1_000_000_000
T0 = pd.Timestamp("2024-06-01T10:00:00Z").value  # ns


def _readings(gid: list[int], minutes: list[float], value: list[float]) -> Readings:
    ts = T0 + (np.array(minutes) * 60e9).astype(np.int64)
    return Readings(
        np.array(gid, dtype=np.int64), ts, np.array(value, dtype=np.float64), np.arange(len(gid))
    )


def _flags(gid: list[int], kind: str) -> Found:
    f = empty()
    n = len(gid)
    f.gid, f.kind = np.array(gid), np.full(n, KINDS.index(kind))
    for name in ("ts", "until", "first", "last", "record"):
        setattr(f, name, np.zeros(n, dtype=np.int64))
    for name in ("value", "expected", "score"):
        setattr(f, name, np.zeros(n))
    return f


def _stats_of_two_chunks() -> Stats:
    stats = Stats()
    # series 0 and 1 in the first chunk; series 2 first seen in the second
    stats.add(_readings([0, 1, 0, 0], [0, 0, 30, 61], [10.0, 5.0, 20.0, 30.0]), 2)
    stats.add(_readings([2, 0, 1], [62, 90, 120.5], [7.0, 40.0, 6.0]), 3)
    tally = Tally()
    tally.add(concat([_flags([0, 0], "spike"), _flags([2], "gap")]), 3)
    stats.add_tally(tally)
    return stats


def _hourly(stats: Stats) -> pd.DataFrame:
    """Every (series, hour) group of `stats` in key order: count, sum, extremes."""
    g, hour, n, s, lo, hi = stats.groups()
    index = pd.MultiIndex.from_arrays([g, hour], names=["gid", "hour"])
    frame = pd.DataFrame({"n": n, "s": s, "lo": lo, "hi": hi}, index=index)
    return frame.sort_index()


def test_each_series_gets_its_count_mean_spread_extremes_and_times(tmp_path: Path) -> None:
    rows = write(tmp_path, _stats_of_two_chunks(), ["pump", "pump", "fan"], ["flow", "temp", "rpm"])
    assert rows == {"device_stats.parquet": 3, "hourly.parquet": 5}
    got = pd.read_parquet(tmp_path / "device_stats.parquet")
    # sorted by device and metric
    assert got[["device", "metric", "readings", "anomalies"]].values.tolist() == [
        ["fan", "rpm", 1, 1],
        ["pump", "flow", 4, 2],
        ["pump", "temp", 2, 0],
    ]
    flow = got.iloc[1]
    assert flow["mean"] == 25.0
    assert flow["std"] == pytest.approx(np.std([10, 20, 30, 40], ddof=1))
    assert (flow["min"], flow["max"]) == (10.0, 40.0)
    assert flow["first_seen"] == pd.Timestamp(T0, tz="UTC")
    assert flow["last_seen"] == pd.Timestamp(T0, tz="UTC") + pd.Timedelta(minutes=90)
    assert np.isnan(got.iloc[0]["std"])  # one reading has no spread
    # a time with microseconds is kept to its millisecond
    assert got.iloc[2]["last_seen"] == pd.Timestamp(T0, tz="UTC") + pd.Timedelta(
        minutes=120, seconds=30
    )


def test_hourly_rows_merge_each_series_hour_across_chunks(tmp_path: Path) -> None:
    write(tmp_path, _stats_of_two_chunks(), ["pump", "pump", "fan"], ["flow", "temp", "rpm"])
    hourly = pd.read_parquet(tmp_path / "hourly.parquet")
    hours = hourly["hour"].dt.strftime("%H").tolist()
    assert list(zip(hourly["device"], hourly["metric"], hours, strict=True)) == [
        ("fan", "rpm", "11"),
        ("pump", "flow", "10"),
        ("pump", "flow", "11"),
        ("pump", "temp", "10"),
        ("pump", "temp", "12"),
    ]
    flow_11 = hourly.iloc[2]
    # 30 at 11:01 (first chunk) and 40 at 11:30 (second)
    assert (flow_11["readings"], flow_11["mean"], flow_11["min"], flow_11["max"]) == (
        2,
        35.0,
        30.0,
        40.0,
    )


@pytest.mark.parametrize(("setting", "value"), [("COMPACT_ROWS", 1), ("HOURLY_SLICE", 2)])
def test_compacting_the_hourly_parts_or_writing_them_in_slices_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, value: int
) -> None:
    names = (["pump", "pump", "fan"], ["flow", "temp", "rpm"])
    write(tmp_path / "a", _stats_of_two_chunks(), *names)
    monkeypatch.setattr(sensor_stats, setting, value)
    write(tmp_path / "b", _stats_of_two_chunks(), *names)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "hourly.parquet"),
        pd.read_parquet(tmp_path / "b" / "hourly.parquet"),
    )


def test_past_hours_are_set_aside_so_the_merged_parts_do_not_grow_with_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given 3 series read every 10 minutes for 2 days, in chunks of 60 readings (whole
    # numbers: every order of the additions gives the same sums), then one late reading
    monkeypatch.setattr(sensor_stats, "COMPACT_ROWS", 20)
    gid, minutes = _two_days()
    value = (np.arange(minutes.size) % 7).astype(float)
    late = _readings([1], [125], [3.0])
    chunked, whole = Stats(), Stats()
    held = _add_in_chunks(chunked, gid, minutes, value)
    # then the parts held stay within one compaction's worth (the open hour of each series
    # and the chunks since), while the file has 3 x 48 groups
    assert max(held) <= 20 + 12
    # and the groups are those of the readings taken at once, the late one included
    chunked.add(late, 3)
    whole.add(_readings(gid.tolist(), minutes.tolist(), value.tolist()), 3)
    whole.add(late, 3)
    assert len(_hourly(chunked)) == 3 * 48
    pd.testing.assert_frame_equal(_hourly(chunked), _hourly(whole))


def test_the_groups_written_are_the_open_and_the_set_aside_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given 3 series over 2 days added in chunks, past hours set aside as they go
    monkeypatch.setattr(sensor_stats, "COMPACT_ROWS", 20)
    gid, minutes = _two_days()
    stats = Stats()
    value = np.arange(minutes.size) / 8.0
    _add_in_chunks(stats, gid, minutes, value)
    assert stats._closed
    # when the groups are taken for hourly.parquet
    g, hour, n, s, lo, hi = stats.groups()
    # then they are every group, with pandas' own figures, in some order
    order = np.lexsort((hour, g))
    want = _pandas_hourly(_readings(gid.tolist(), minutes.tolist(), value.tolist()))
    assert len(want) == 3 * 48
    assert list(zip(g[order], hour[order], strict=True)) == want.index.tolist()
    for got, column in ((n, "n"), (s, "s"), (lo, "lo"), (hi, "hi")):
        assert np.array_equal(got[order], want[column].to_numpy()), column


def test_closed_groups_parked_in_a_folder_come_back_as_they_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the same readings added in chunks to statistics in memory and to statistics that
    # park their closed groups in a folder, then a late reading that opens them all again
    monkeypatch.setattr(sensor_stats, "COMPACT_ROWS", 20)
    gid, minutes = _two_days()
    value = np.arange(minutes.size) / 8.0
    kept, parked = Stats(), Stats(tmp_path)
    for stats in (kept, parked):
        _add_in_chunks(stats, gid[:600], minutes[:600], value[:600])
    # then the parked ones hold none in memory, the others some
    assert kept._closed
    assert not parked._closed
    assert [p.name[:7] for p in tmp_path.iterdir()] == [".spill-"]
    for stats in (kept, parked):
        stats.add(_readings([1], [125], [3.0]), 3)
        _add_in_chunks(stats, gid[600:], minutes[600:], value[600:])
    # and their groups are the same, and the folder is left empty once they are closed
    pd.testing.assert_frame_equal(_hourly(parked), _hourly(kept))
    parked.close()
    assert list(tmp_path.iterdir()) == []


def test_a_tally_counts_the_anomalies_of_every_chunk_per_series_and_reason() -> None:
    # given anomalies found in two chunks, a series first seen in the second one
    flags = [concat([_flags([0, 0], "spike"), _flags([1], "gap")]), _flags([3, 0], "drift")]
    tallied = _stats_of_two_chunks()  # 2 anomalies of series 0, 1 of series 2 already
    tallied.add(_readings([3], [130], [1.0]), 4)
    tally = Tally()
    # when they are tallied as they come and added to the statistics at the end
    for f, size in zip(flags, (3, 4), strict=True):
        tally.add(f, size)
    tallied.add_tally(tally)
    # then the counts per series and per reason are those of every finding counted at once
    every = concat(flags)
    before = np.array([2, 0, 1, 0])
    assert tallied.anomalies.tolist() == (np.bincount(every.gid, minlength=4) + before).tolist()
    assert tallied.anomalies.tolist() == [5, 1, 1, 1]
    assert tallied.reasons == Counter(every.reason.tolist()) + Counter({"spike": 2, "gap": 1})


def _two_days() -> tuple[np.ndarray, np.ndarray]:
    """3 series read every 10 minutes for 2 days: series ids and minutes."""
    minutes = np.repeat(np.arange(0, 2 * 24 * 60, 10), 3)
    return np.tile([0, 1, 2], minutes.size // 3), minutes


def _add_in_chunks(
    stats: Stats, gid: np.ndarray, minutes: np.ndarray, value: np.ndarray
) -> list[int]:
    """Readings added in chunks of 60; the partial hourly rows held after each."""
    held = []
    for lo in range(0, minutes.size, 60):
        part = slice(lo, lo + 60)
        stats.add(_readings(gid[part].tolist(), minutes[part].tolist(), value[part].tolist()), 3)
        held.append(stats._hourly_rows)
    return held


def test_big_values_keep_their_mean_and_spread_precise(tmp_path: Path) -> None:
    # given readings near 1e9 that differ by tenths
    stats = Stats()
    values = 1e9 + np.array([0.1, 0.2, 0.3, 0.4])
    stats.add(Readings(np.zeros(4, dtype=np.int64), np.arange(4) + T0, values, np.arange(4)), 1)
    write(tmp_path, stats, ["d"], ["m"])
    got = pd.read_parquet(tmp_path / "device_stats.parquet").iloc[0]
    assert got["mean"] == pytest.approx(1e9 + 0.25, abs=1e-6)
    assert got["std"] == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4], ddof=1), rel=1e-6)


def test_infinite_readings_make_infinite_figures_not_errors(tmp_path: Path) -> None:
    stats = Stats()
    stats.add(_readings([0, 0, 1], [0, 1, 0], [1.0, np.inf, 2.0]), 2)
    write(tmp_path, stats, ["a", "b"], ["m", "m"])
    got = pd.read_parquet(tmp_path / "device_stats.parquet")
    assert got["max"].tolist() == [np.inf, 2.0]
    assert got["mean"].tolist()[1] == 2.0


def test_the_summary_counts_readings_series_devices_and_reasons() -> None:
    stats = _stats_of_two_chunks()
    stats.add(_readings([], [], []), 4)  # a fourth series, never read
    s = summary(stats, ["pump", "pump", "fan", "fan"], {"x.parquet": 1}, 3)
    assert s == {
        "readings": 7,
        "rejected_rows": 3,
        "devices": 2,
        "series": 3,
        "first_reading": "2024-06-01 10:00:00+00:00",
        "last_reading": "2024-06-01 12:00:30+00:00",
        "anomalies": 3,
        "anomalies_by_reason": {"gap": 1, "spike": 2},
        "outputs": {"x.parquet": 1},
    }


def test_the_summary_of_no_readings_has_no_times() -> None:
    s = summary(Stats(), [], {}, 0)
    assert (s["readings"], s["series"], s["first_reading"], s["last_reading"]) == (0, 0, None, None)


def _pandas_hourly(r: Readings) -> pd.DataFrame:
    """The hourly groups as pandas' groupby takes them from a chunk in file order."""
    g = pd.Series(r.value).groupby([r.gid, r.ts // HOUR])
    return pd.DataFrame({"n": g.size(), "s": g.sum(), "lo": g.min(), "hi": g.max()})


@pytest.mark.parametrize(
    "layout", ["interleaved", "sorted", "descending", "long groups", "with inf"]
)
def test_hourly_groups_add_up_as_pandas_groupby_does(layout: str) -> None:
    # given readings of many series over a few hours, whose sums depend on the order and
    # the algorithm of the additions (values of 2 decimals near 60, some near 1e12)
    rng = np.random.default_rng(7)
    n = 40_000 if layout == "long groups" else 20_000
    gid = rng.integers(0, 2 if layout == "long groups" else 300, n)
    ts = T0 + np.sort(rng.integers(0, 3 * HOUR, n))
    value = np.round(rng.normal(60, 1, n), 2) + np.where(rng.random(n) < 0.01, 1e12, 0.0)
    if layout == "with inf":
        value[rng.integers(0, n, 20)] = np.inf
    if layout in ("sorted", "descending"):
        order = np.lexsort((ts, gid))
        gid, ts = gid[order], ts[order]
        if layout == "descending":
            gid, ts, value = gid[::-1].copy(), ts[::-1].copy(), value[::-1].copy()
    r = Readings(gid, ts, value, np.arange(n))
    # when grouped by series and hour, then counts, sums and extremes are pandas' to the bit
    stats = Stats()
    stats.add(r, int(gid.max()) + 1)
    got = _hourly(stats)
    want = _pandas_hourly(r)
    assert got.index.tolist() == want.index.tolist()
    for column in ("n", "s", "lo", "hi"):
        assert np.array_equal(got[column].to_numpy(), want[column].to_numpy()), column
