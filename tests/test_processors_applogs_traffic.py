"""applogs.traffic: distinct values by sorting give what np.unique gives."""

from __future__ import annotations

import numpy as np
from s3worker.processors.applogs.traffic import distinct


def test_distinct_is_np_unique() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 2**63, 500, dtype=np.uint64)[rng.integers(0, 500, 20_000)]
    assert np.array_equal(distinct(values), np.unique(values))
    assert distinct(np.zeros(0, dtype=np.uint64)).size == 0
    assert distinct(np.array([7, 7, 7], dtype=np.uint64)).tolist() == [7]


def test_a_frame_of_requests_adds_its_counts() -> None:
    import pandas as pd
    from s3worker.processors.applogs.traffic import Traffic, ranked, status_codes

    # given: two frames of requests, as Traffic.add takes them
    minute = pd.to_datetime(["2024-06-01 00:00", "2024-06-01 00:00", "2024-06-01 00:01"])
    frame = pd.DataFrame(
        {
            "minute": minute,
            "status": [200, 500, 200],
            "method": pd.Categorical(["GET", "GET", "POST"]),
            "path": ["/a", "/b", "/a"],
            "client": np.array([1, 2, 1], dtype=np.uint64),
            "latency_ms": [1.0, np.nan, 3.0],
            "agent": np.array([0, 1, -1], dtype=np.int8),
        }
    )
    traffic = Traffic()
    # when
    traffic.add(frame)
    traffic.add(frame)
    # then
    assert status_codes(traffic)["requests"].tolist() == [2, 2, 2]
    paths = ranked(traffic.paths, "path")
    assert dict(zip(paths["path"], paths["requests"], strict=True)) == {"/a": 4, "/b": 2}
    assert paths.set_index("path")["errors"].to_dict() == {"/a": 0, "/b": 2}
    assert traffic.unique_clients() == 2
    assert traffic.agents == {1: 2, 0: 2, -1: 2}
