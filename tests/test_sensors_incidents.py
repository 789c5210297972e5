"""Flags of one series and kind close together become one incident: its start, its end and
its worst score; the last incident of each stays open across chunks until the file ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from s3worker.processors.sensors.findings import KINDS, Found, concat, empty
from s3worker.processors.sensors.incidents import MERGE, Incidents, _running_max
from sensor_series import anomalies_of, incident_rows, minutes, noise


def _flags(
    kind: str, gid: list[int], first: list[int], score: list[float], last: list[int] | None = None
) -> Found:
    n = len(gid)
    start, end = np.array(first), np.array(last if last is not None else first)
    return Found(
        gid=np.array(gid),
        kind=np.full(n, KINDS.index(kind)),
        ts=start * 60,
        until=end * 60,
        first=start,
        last=end,
        value=np.array(score) * 10,
        expected=np.array(score) * 100,
        score=np.array(score, dtype=np.float64),
        record=start + 1_000,
    )


def test_flags_close_together_are_one_incident_with_the_worst_score() -> None:
    # given three spikes of one series, each within MERGE readings of the one before
    incidents = Incidents()
    closed = incidents.merge(
        _flags("spike", [0, 0, 0], [100, 100 + MERGE, 100 + 2 * MERGE], [8.0, -12.0, 9.0])
    )
    # then nothing is closed yet, and at the end they are one incident
    assert closed.gid.size == 0
    (incident,) = [incidents.finish()]
    assert incident_rows(incident) == [("spike", 0, 100, 100 + 2 * MERGE, -12.0)]
    assert (incident.ts[0], incident.until[0]) == (100 * 60, (100 + 2 * MERGE) * 60)
    assert (incident.value[0], incident.expected[0]) == (-120.0, -1200.0)
    assert incident.record[0] == 1_100
    assert incidents.finish().gid.size == 0


def test_a_flag_too_far_away_closes_the_incident_before_it() -> None:
    incidents = Incidents()
    closed = incidents.merge(_flags("spike", [0, 0], [100, 101 + MERGE], [8.0, 9.0]))
    assert incident_rows(closed) == [("spike", 0, 100, 100, 8.0)]
    assert incident_rows(incidents.finish()) == [("spike", 0, 101 + MERGE, 101 + MERGE, 9.0)]


def test_an_incident_reaches_as_far_as_its_longest_flag() -> None:
    # a flat line over readings 100..300, a short one inside it, and one within MERGE of 300
    incidents = Incidents()
    flags = _flags(
        "flatline", [0, 0, 0], [100, 110, 300 + MERGE], [201.0, 12.0, 12.0], last=[300, 121, 350]
    )
    incidents.merge(flags)
    assert incident_rows(incidents.finish()) == [("flatline", 0, 100, 350, 201.0)]


def test_other_series_open_incidents_stay_open() -> None:
    incidents = Incidents()
    incidents.merge(_flags("spike", [0], [100], [8.0]))
    incidents.merge(_flags("spike", [1, 1], [100, 500], [8.0, 9.0]))
    assert incident_rows(incidents.finish()) == [
        ("spike", 0, 100, 100, 8.0),
        ("spike", 1, 500, 500, 9.0),
    ]


def test_an_open_incident_takes_in_the_next_chunks_flags() -> None:
    incidents = Incidents()
    incidents.merge(_flags("level_shift", [3], [500], [7.0]))
    assert incidents.merge(empty()).gid.size == 0
    closed = incidents.merge(_flags("level_shift", [3, 3], [510, 900], [9.0, 8.0]))
    assert incident_rows(closed) == [("level_shift", 3, 500, 510, 9.0)]
    assert incident_rows(incidents.finish()) == [("level_shift", 3, 900, 900, 8.0)]


def test_series_kinds_and_directions_are_incidents_of_their_own() -> None:
    # given, at the same readings: two series, two kinds, and a shift up then back down
    flags = concat(
        [
            _flags("spike", [0, 1], [100, 100], [8.0, 8.0]),
            _flags("gap", [0], [101], [5.0]),
            _flags("level_shift", [2, 2], [100, 110], [7.0, -7.0]),
            _flags("spike", [0], [110], [-9.0]),  # a spike down joins the spike up
        ]
    )
    incidents = Incidents()
    closed = incidents.merge(flags)
    rows = incident_rows(concat([closed, incidents.finish()]))
    assert rows == [
        ("gap", 0, 101, 101, 5.0),
        ("level_shift", 2, 100, 100, 7.0),
        ("level_shift", 2, 110, 110, -7.0),
        ("spike", 0, 100, 110, -9.0),
        ("spike", 1, 100, 100, 8.0),
    ]


def test_of_equally_bad_flags_the_first_is_the_worst() -> None:
    incidents = Incidents()
    incidents.merge(_flags("spike", [0, 0, 0], [100, 105, 110], [-8.0, 9.0, -9.0]))
    (incident,) = [incidents.finish()]
    assert incident_rows(incident) == [("spike", 0, 100, 110, 9.0)]
    assert incident.record[0] == 1_100  # the incident's first flag's
    assert incident.value[0] == 90.0  # the worst flag's


@pytest.mark.parametrize("scale", [1, 1 << 56])  # 1 << 56: lifting the runs would overflow
def test_the_reach_of_flags_runs_within_each_series_and_kind(scale: int) -> None:
    # given flat lines of two series: series 0 reaches far, series 1 starts low again
    last = np.array([50, 40, 30, 5, 3, 9]) * scale
    starts = np.array([True, False, False, True, False, False])
    assert _running_max(last, starts).tolist() == [x * scale for x in (50, 50, 50, 5, 5, 9)]


# Through the processor.


def test_spikes_close_together_are_one_incident(tmp_path: Path) -> None:
    # given two spikes 10 readings apart, and a third 200 readings later
    values, ts = noise(2_000), minutes(2_000)
    values[[1_000, 1_010, 1_210]] += [13.0, 14.0, 13.0]
    found = anomalies_of(tmp_path, ts, values).sort_values("timestamp")
    # then the first two make one incident spanning both, with the worse score
    assert found["reason"].tolist() == ["spike", "spike"]
    assert found["timestamp"].tolist() == [ts[1_000], ts[1_210]]
    assert found["until"].tolist() == [ts[1_010], ts[1_210]]
    assert found.iloc[0]["value"] == pytest.approx(values[1_010], abs=1e-3)
