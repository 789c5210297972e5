"""Request aggregates merged across chunks, and the per-minute, status, method and path tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from s3worker.processors.applogs import traffic as agg
from s3worker.processors.applogs.agents import BOT, HUMAN, UNKNOWN
from s3worker.processors.applogs.traffic import distinct


def requests(rows: list[tuple[str, int, str, str, str | None, float, int]]) -> pd.DataFrame:
    """(minute, status, method, path, client, latency ms, agent kind) as Traffic takes them."""
    minute, status, method, path, client, latency, agent = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "minute": pd.to_datetime(list(minute)).as_unit("ns"),
            "status": np.array(status, dtype=np.int64),
            "method": pd.Categorical(method),
            "path": list(path),
            "client": agg.client_ids(pa.chunked_array([list(client)], pa.string())),
            "latency_ms": np.array(latency, dtype=np.float64),
            "agent": np.array(agent, dtype=np.int8),
        }
    )


A, B = "2024-06-03 10:00", "2024-06-03 10:01"
FIRST = requests([
    (A, 200, "GET", "/a", "10.0.0.1", 10.0, HUMAN),
    (A, 200, "GET", "/a", "10.0.0.2", 20.0, HUMAN),
    (A, 503, "POST", "/b", "10.0.0.1", 1000.0, BOT),
    (B, 404, "GET", "/c", None, np.nan, UNKNOWN),
])  # fmt: skip
SECOND = requests([
    (B, 301, "GET", "/a", "10.0.0.3", 5.0, BOT),
    (B, 500, "GET", "/b", "10.0.0.1", 50.0, HUMAN),
])  # fmt: skip


def tables(*frames: pd.DataFrame) -> tuple[agg.Traffic, pd.DataFrame, pd.DataFrame]:
    traffic = agg.Traffic()
    for frame in frames:
        traffic.add(frame)
    codes = agg.status_codes(traffic)
    return traffic, codes, agg.per_minute(traffic, codes)


def test_requests_per_minute_and_status_class() -> None:
    _, codes, minutes = tables(FIRST, SECOND)
    assert codes.to_dict("list") == {
        "minute": list(pd.to_datetime([A, A, B, B, B], utc=True)),
        "status": [200, 503, 301, 404, 500],
        "requests": [2, 1, 1, 1, 1],
    }
    assert minutes["minute"].tolist() == list(pd.to_datetime([A, B], utc=True))
    assert minutes["requests"].tolist() == [3, 3]
    classes = minutes[[f"status_{c}" for c in agg.CLASSES]].to_numpy().tolist()
    assert classes == [[2, 0, 0, 1], [0, 1, 1, 1]]
    assert minutes["error_rate"].tolist() == pytest.approx([1 / 3, 1 / 3])  # 5xx only
    assert minutes["bot_requests"].tolist() == [1, 1]


def test_unique_clients_per_minute_and_over_the_file() -> None:
    traffic, _, minutes = tables(FIRST, SECOND)
    # 10:00 has 10.0.0.1 twice and 10.0.0.2; 10:01 has no client, 10.0.0.3 and 10.0.0.1
    assert minutes["unique_clients"].tolist() == [2, 2]
    assert traffic.unique_clients() == 3


def test_latency_percentiles_are_within_two_percent() -> None:
    latencies = np.arange(1, 1001, dtype=np.float64)  # 1..1000 ms in one minute
    frame = requests([(A, 200, "GET", "/", "c", ms, HUMAN) for ms in latencies])
    _, _, minutes = tables(frame)
    for name, q in agg.QUANTILES.items():
        exact = float(np.quantile(latencies, q))
        assert minutes[name].iloc[0] == pytest.approx(exact, rel=0.02), name


def test_a_percentile_is_the_first_latency_that_reaches_its_share() -> None:
    frame = requests([(A, 200, "GET", "/", "c", ms, HUMAN) for ms in (10.0, 1000.0)])
    _, _, minutes = tables(frame)
    assert minutes["p50_ms"].iloc[0] == pytest.approx(10.0, rel=0.02)  # half the requests
    assert minutes["p95_ms"].iloc[0] == pytest.approx(1000.0, rel=0.02)


def test_a_minute_without_latencies_has_none() -> None:
    _, _, minutes = tables(FIRST)
    assert minutes["p50_ms"].iloc[0] == pytest.approx(20.0, rel=0.02)
    assert np.isnan(minutes["p50_ms"].iloc[1])  # 10:01's one request logged no latency


def test_chunks_merge_to_what_one_chunk_gives() -> None:
    both = pd.concat([FIRST, SECOND], ignore_index=True)
    both["method"] = both["method"].astype("category")
    whole, split = tables(both), tables(FIRST, SECOND)
    pd.testing.assert_frame_equal(whole[2], split[2])
    pd.testing.assert_frame_equal(
        agg.top_paths(whole[0]), agg.top_paths(split[0]), check_dtype=False
    )


def test_ranked_is_busiest_first_then_most_errors_with_the_5xx_share() -> None:
    traffic, _, _ = tables(FIRST, SECOND)
    methods = agg.ranked(traffic.methods, "method")
    assert methods.to_dict("list") == {
        "method": ["GET", "POST"],
        "requests": [5, 1],
        "errors": [1, 1],
        "error_rate": [0.2, 1.0],
    }
    top = agg.top_paths(traffic)
    assert top[["rank", "path", "requests", "errors"]].to_dict("list") == {
        "rank": [1, 2, 3],
        "path": ["/a", "/b", "/c"],
        "requests": [3, 2, 1],
        "errors": [0, 2, 0],
    }
    assert agg.ranked(traffic.paths, "path", top=1)["path"].tolist() == ["/a"]


def test_equally_busy_keys_rank_by_their_errors() -> None:
    frame = requests([
        (A, 200, "GET", "/a-ok", "c", 1.0, HUMAN),
        (A, 500, "GET", "/z-bad", "c", 1.0, HUMAN),
    ])  # fmt: skip
    traffic, _, _ = tables(frame)
    assert agg.top_paths(traffic)["path"].tolist() == ["/z-bad", "/a-ok"]


def test_the_summary_of_a_file() -> None:
    traffic, codes, minutes = tables(FIRST, SECOND)
    methods = agg.ranked(traffic.methods, "method")
    assert agg.summary(traffic, minutes, codes, methods) == {
        "requests": 6,
        "minutes": 2,
        "status_classes": {"2xx": 2, "3xx": 1, "4xx": 1, "5xx": 2},
        "status_codes": {"200": 2, "301": 1, "404": 1, "500": 1, "503": 1},
        "methods": {"GET": 5, "POST": 1},
        "error_rate": 0.3333,
        "unique_clients": 3,
        "user_agents": {"bot": 2, "human": 3, "unknown": 1},
        "busiest_minute": "2024-06-03 10:00:00+00:00",
    }


def test_no_requests_give_empty_tables_and_an_empty_summary() -> None:
    traffic, codes, minutes = tables(FIRST.iloc[:0])
    assert list(codes.columns) == agg.STATUS_SCHEMA.names
    assert list(minutes.columns) == agg.MINUTE_SCHEMA.names
    assert len(codes) == len(minutes) == 0
    methods = agg.ranked(traffic.methods, "method")
    assert list(methods.columns) == agg.METHOD_SCHEMA.names
    summary = agg.summary(traffic, minutes, codes, methods)
    assert summary["requests"] == 0
    assert summary["error_rate"] is None
    assert summary["busiest_minute"] is None
    assert summary["unique_clients"] == 0


def test_client_ids_agree_for_one_address_and_none_is_no_client() -> None:
    ids = agg.client_ids(pa.chunked_array([["10.0.0.1", None], ["10.0.0.2", "10.0.0.1"]]))
    assert ids.dtype == np.uint64
    assert ids[0] == ids[3] != ids[2]
    assert ids[1] == agg.NO_CLIENT


def test_many_distinct_clients_are_counted_exactly_across_merges() -> None:
    # More distinct clients than the first merge threshold (65,536), in several chunks
    traffic = agg.Traffic()
    for part in range(4):
        addresses = [f"10.{part}.{i // 256}.{i % 256}" for i in range(30_000)]
        frame = pd.DataFrame(
            {
                "minute": pd.to_datetime([A] * len(addresses)).as_unit("ns"),
                "status": np.full(len(addresses), 200, dtype=np.int64),
                "method": pd.Categorical(["GET"] * len(addresses)),
                "path": ["/"] * len(addresses),
                "client": agg.client_ids(pa.chunked_array([addresses])),
                "latency_ms": np.full(len(addresses), np.nan),
                "agent": np.full(len(addresses), HUMAN, dtype=np.int8),
            }
        )
        traffic.add(frame)
    assert traffic.unique_clients() == 120_000
    assert traffic.clients_per_minute().tolist() == [120_000]


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
