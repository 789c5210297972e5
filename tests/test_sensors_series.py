"""Per-series detection carried from chunk to chunk: flat runs judged by the series' own
repeat rate, re-sent readings left out, wild magnitudes capped, and the same anomalies
whatever the chunk size. First SeriesState itself, then whole files through the processor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from processing import run
from s3worker.processors.sensors.findings import Found, Readings, concat
from s3worker.processors.sensors.flat import FLAT_MIN
from s3worker.processors.sensors.series import SeriesState
from sensor_series import NS, anomalies_of, incident_rows, minutes, noise


def _state(series: int) -> SeriesState:
    state = SeriesState()
    state.add_series(np.full(series, -np.inf), np.full(series, np.inf), np.full(series, 50.0))
    return state


def _incidents(
    gid: np.ndarray, value: np.ndarray, chunk: int, ts: np.ndarray | None = None
) -> Found:
    """Every incident of the readings scanned in chunks of `chunk` rows, then finished."""
    state = _state(int(gid.max()) + 1)
    ts = np.arange(gid.size, dtype=np.int64) * 60 * NS if ts is None else ts
    record = np.arange(gid.size)
    found = [
        state.scan(
            Readings(
                gid[lo : lo + chunk],
                ts[lo : lo + chunk],
                value[lo : lo + chunk],
                record[lo : lo + chunk],
            )
        )
        for lo in range(0, gid.size, chunk)
    ]
    return concat([*found, state.finish()])


def test_add_series_makes_room_for_new_ids() -> None:
    state = _state(2)
    state.add_series(np.zeros(3), np.ones(3), np.array([1.0, np.nan, 1e300]))
    assert state.size == 5
    assert state.ref.tolist() == [50.0, 50.0, 1.0, 0.0, 1e150]


def test_a_stuck_sensor_is_one_flat_line_over_its_readings() -> None:
    # given one noisy series stuck at one value for readings 900..939
    value = noise(2_000)
    value[900:940] = value[900]
    f = _incidents(np.zeros(2_000, dtype=np.int64), value, 2_000)
    assert incident_rows(f) == [("flatline", 0, 900, 939, 40.0)]
    assert (f.ts[0], f.until[0], f.record[0]) == (900 * 60 * NS, 939 * 60 * NS, 900)
    assert f.value[0] == value[900]
    assert f.expected[0] == FLAT_MIN


def test_a_flat_run_shorter_than_the_least_is_no_flat_line() -> None:
    value = noise(2_000)
    value[900 : 900 + FLAT_MIN - 1] = value[900]
    assert incident_rows(_incidents(np.zeros(2_000, dtype=np.int64), value, 2_000)) == []


def test_interleaved_series_give_the_same_incidents_in_any_chunking() -> None:
    # given two interleaved series: a spike and a flat line in one, a shift in the other,
    # and a flat line running to the end of the file
    rng = np.random.default_rng(7)
    gid = rng.integers(0, 2, 6_000)
    value = noise(6_000)
    ones = np.flatnonzero(gid == 1)
    zeros = np.flatnonzero(gid == 0)
    value[zeros[1_000]] += 12.0
    value[zeros[1_500:1_540]] = 49.0
    value[ones[1_200:]] += 9.0
    value[ones[-30:]] = 60.0
    whole = incident_rows(_incidents(gid, value, 6_000))
    # then each is found, and cutting the file anywhere changes nothing
    assert {(r, g) for r, g, *_ in whole} == {
        ("spike", 0),
        ("flatline", 0),
        ("level_shift", 1),
        ("flatline", 1),
    }
    for chunk in (97, 1_000, 2_999):
        assert incident_rows(_incidents(gid, value, chunk)) == whole, chunk


def test_a_resent_reading_is_left_out_of_detection() -> None:
    # given every reading sent twice (same time, same value) and a sensor stuck for 14
    value = noise(2_000)
    value[1_600:1_614] = value[1_600]
    ts = np.arange(2_000, dtype=np.int64) * 60 * NS
    f = _incidents(np.zeros(4_000, dtype=np.int64), np.repeat(value, 2), 999, np.repeat(ts, 2))
    # then readings are numbered once each, and the flat line is 14 long
    assert incident_rows(f) == [("flatline", 0, 1_600, 1_613, 14.0)]


def test_missing_and_wild_readings_are_left_out_or_capped() -> None:
    # given series 0 with NaN, inf and -1e308 readings, interleaved with series 1 and its spike
    gid = np.tile([0, 1], 1_000)
    value = noise(2_000)
    value[[200, 202, 204]] = [np.nan, np.inf, -1e308]
    value[1_201] += 15.0
    f = _incidents(gid, value, 2_000)
    # then the NaN is no reading (the next one is number 100), the wild two are one spike
    # episode with a finite score, and the other series' spike is found where it is
    rows = incident_rows(f)
    assert [r[:4] for r in rows] == [("spike", 0, 100, 101), ("spike", 1, 600, 600)]
    assert np.isfinite(f.score).all()
    assert np.abs(f.value).max() == 1e150


# Through the processor.


def test_flat_line_spans_the_stuck_readings(tmp_path: Path) -> None:
    # given noise, then a sensor stuck at one value for 40 readings
    values, ts = noise(2_000), minutes(2_000)
    values[900:940] = values[900]
    found = anomalies_of(tmp_path, ts, values)
    assert found["reason"].tolist() == ["flatline"]
    assert (found.iloc[0]["timestamp"], found.iloc[0]["until"]) == (ts[900], ts[939])
    assert found.iloc[0]["score"] == 40


def test_a_coarse_sensor_that_often_repeats_is_not_flat(tmp_path: Path) -> None:
    # given a sensor whose resolution (1 unit) is coarser than its noise: runs of 20+ are normal
    values = np.round(noise(4_000, sd=0.3))
    found = anomalies_of(tmp_path, minutes(4_000), values)
    assert found.empty, found


def test_repeated_readings_count_once(tmp_path: Path) -> None:
    # given every reading sent twice (same time, same value), a spike, and a sensor stuck
    # for 14 readings (28 rows): each repeat is one reading
    values, ts = noise(2_000), minutes(2_000)
    values[1_200] += 12.0
    values[1_600:1_614] = values[1_600]
    found = anomalies_of(tmp_path, pd.Series(np.repeat(ts, 2)), np.repeat(values, 2))
    # then the spike is one incident and the stuck readings are a flat line of 14
    assert found.sort_values("timestamp")["reason"].tolist() == ["spike", "flatline"]
    assert found.sort_values("timestamp")["timestamp"].tolist() == [ts[1_200], ts[1_600]]
    assert found.loc[found["reason"] == "flatline", "score"].tolist() == [14]


def test_a_sensor_turning_coarse_is_judged_by_its_recent_repeats(tmp_path: Path) -> None:
    # given a fine sensor (no repeats) that switches to a coarse steady mode, where runs of
    # one value last tens of readings
    fine = noise(2_000)
    coarse = np.round(noise(3_000, sd=0.35)[::-1])
    ts = minutes(5_000)
    found = anomalies_of(tmp_path, ts, np.concatenate([fine, coarse]))
    # then only the switch itself may be reported, not the runs of the coarse mode
    assert found["timestamp"].between(ts[2_000], ts[2_060]).all(), found


def test_every_kind_at_once_does_not_depend_on_the_chunk_size(tmp_path: Path) -> None:
    # given one series with a spike, a shift, a drift, a flat line and a gap
    n = 6_000
    values, ts = noise(n), minutes(n)
    values[800] += 12
    values[1_500:] += 9
    values += np.clip((np.arange(n) - 2_500) / 600, 0, 1) * 40
    values[4_000:4_040] = values[4_000]
    keep = np.ones(n, dtype=bool)
    keep[5_000:5_030] = False
    ts, values = ts[keep].reset_index(drop=True), values[keep]
    whole = anomalies_of(tmp_path / "whole", ts, values)
    small = anomalies_of(tmp_path / "small", ts, values, chunk=97)
    assert set(whole["reason"]) == {"spike", "level_shift", "drift", "flatline", "gap"}
    pd.testing.assert_frame_equal(
        whole.sort_values(["reason", "timestamp"]).reset_index(drop=True),
        small.sort_values(["reason", "timestamp"]).reset_index(drop=True),
    )


def test_a_flat_line_ending_with_a_chunk_is_reported(tmp_path: Path) -> None:
    # given a sensor stuck for readings 960-999 and chunks of 1,000 rows: the run is open at
    # the end of the first chunk, and the second chunk starts with another value
    values, ts = noise(2_000), minutes(2_000)
    values[960:1_000] = values[960]
    found = anomalies_of(tmp_path, ts, values, chunk=1_000)
    assert found["reason"].tolist() == ["flatline"]
    assert (found.iloc[0]["timestamp"], found.iloc[0]["until"]) == (ts[960], ts[999])


def test_infinite_and_huge_readings_do_not_upset_other_series(tmp_path: Path) -> None:
    # given a series with inf, -inf and +-1e308 readings before a series with a clear spike
    rows = ["device,timestamp,metric,value"]
    rows += [
        f"a,2024-01-01T00:00:0{i}Z,t,{v}"
        for i, v in enumerate(["1", "inf", "-inf", "1e308", "-1e308"])
    ]
    values, ts = noise(1_000), minutes(1_000)
    values[500] += 15
    stamps = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows += [f"b,{t},t,{v:.4f}" for t, v in zip(stamps, values, strict=True)]
    src = tmp_path / "mixed.csv"
    src.write_text("\n".join(rows) + "\n")
    outs = []
    for chunk in (3, 250_000):
        run("sensors", src, tmp_path / f"out{chunk}", chunk_rows=chunk)
        outs.append(pd.read_parquet(tmp_path / f"out{chunk}" / "anomalies.parquet"))
    # then the other series' spike is found, whatever the chunk size
    for found in outs:
        assert found.loc[found["device"] == "b", "reason"].tolist() == ["spike"]
    pd.testing.assert_frame_equal(
        outs[0].sort_values(["device", "timestamp"]).reset_index(drop=True),
        outs[1].sort_values(["device", "timestamp"]).reset_index(drop=True),
    )
