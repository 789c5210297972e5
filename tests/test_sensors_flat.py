"""Flat lines: runs of one value judged by the series' own repeat rate, carried open
between chunks (FlatRuns on prepared chunks, and the least flat run as a pure function)."""

from __future__ import annotations

import numpy as np
import pytest
from s3worker.processors.sensors.flat import FLAT_MIN, RECENT, FlatRuns, flat_length
from sensor_series import first_chunk, noise


def test_a_run_closed_within_the_chunk_is_one_flat_line() -> None:
    # given one noisy series stuck at one value for readings 100..139
    value = noise(400)
    value[100:140] = value[100]
    ext, _, _ = first_chunk(value)
    runs = FlatRuns()
    runs.grow(1)
    # when its runs are scanned
    found = runs.scan(ext)
    # then the stuck readings are one flat line, and nothing is left open to report
    assert (found.first.tolist(), found.last.tolist()) == ([100], [139])
    assert found.score.tolist() == [40.0]
    assert runs.finish().gid.size == 0


def test_a_run_open_at_the_chunk_end_waits_for_the_end_of_the_file() -> None:
    value = noise(400)
    value[370:] = value[370]
    ext, _, _ = first_chunk(value)
    runs = FlatRuns()
    runs.grow(1)
    assert runs.scan(ext).gid.size == 0  # it may go on in the next chunk
    found = runs.finish()
    assert (found.first.tolist(), found.last.tolist()) == ([370], [399])


def test_the_least_flat_line_follows_the_repeat_rate() -> None:
    # spans: start ts and record, last ts, readings before, last index, runs before,
    # recent repeats (millionths)
    def span(readings: int, runs: int, recent: float) -> list[int]:
        return [0, 0, 0, readings, 0, runs, int(recent * 1e6)]

    spans = np.array(
        [
            span(1_000, 1_000, 0.0),
            span(1_000, 500, 0.0),
            span(1_000, 1_000, 0.5),
            span(RECENT - 1, RECENT - 1, 0.0),
        ]
    )
    assert flat_length(spans).tolist() == pytest.approx(
        [FLAT_MIN, 1 + np.log(1e-9) / np.log(0.5), 1 + np.log(1e-9) / np.log(0.5), 3 * FLAT_MIN]
    )
