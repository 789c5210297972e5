"""applogs.tally: a slice's counts are what pandas' groupbys of the same requests give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from s3worker.processors.applogs.agents import BOT, HUMAN, UNKNOWN
from s3worker.processors.applogs.tally import NO_CLIENT, Requests, factorized, tally


def _requests(n: int = 5_000) -> tuple[Requests, pd.DataFrame]:
    rng = np.random.default_rng(5)
    minute = np.datetime64("2024-06-01T00:00", "ns") + rng.integers(0, 7, n) * np.timedelta64(
        60, "s"
    )
    status = rng.choice([0, 200, 304, 404, 500, 503], n)
    paths, path = pa.array(["/", "/a", "/b", "/never"]), rng.integers(0, 3, n)
    methods, method = pa.array(["GET", "POST"]), rng.integers(0, 2, n)
    client = rng.integers(0, 40, n).astype(np.uint64)  # 0 is NO_CLIENT
    latency = np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(3, 1, n))
    agent = rng.choice([BOT, HUMAN, UNKNOWN], n).astype(np.int8)
    r = Requests(minute, status, (methods, method), (paths, path), client, latency, agent)
    frame = pd.DataFrame(
        {
            "minute": minute,
            "status": status,
            "method": np.array(methods.to_pylist())[method],
            "path": np.array(paths.to_pylist())[path],
            "client": client,
            "agent": agent,
        }
    )
    return r, frame


def test_counts_are_the_groupbys() -> None:
    # given
    r, frame = _requests()
    # when
    t = tally(r)
    # then
    pd.testing.assert_series_equal(t.codes, frame.groupby(["minute", "status"]).size())
    bots = frame.loc[frame["agent"] == BOT].groupby("minute").size()
    pd.testing.assert_series_equal(t.bots, bots, check_names=False, check_freq=False)
    assert t.agents == frame["agent"].value_counts().to_dict()
    errors = (frame["status"] >= 500).groupby(frame["path"])
    assert t.paths["requests"].to_dict() == errors.size().to_dict()
    assert t.paths["errors"].to_dict() == errors.sum().to_dict()
    assert "/never" not in t.paths.index  # a name no request has is left out
    assert t.methods["requests"].sum() == len(frame)
    named = frame[frame["client"] != NO_CLIENT]
    expected = {
        int(k.value): sorted(set(v)) for k, v in named.groupby("minute")["client"].unique().items()
    }
    assert {k: v.tolist() for k, v in t.clients.items()} == expected
    assert t.all_clients.tolist() == sorted(set(named["client"]))
    assert t.hist is not None
    assert t.hist.sum() == int((~np.isnan(r.latency_ms)).sum())


def test_factorized_gives_sorted_values_and_each_ones_index() -> None:
    values = np.array([30, 10, 30, 20, 10], dtype=np.int64)
    distinct, index = factorized(values)
    assert distinct.tolist() == [10, 20, 30]
    assert distinct[index].tolist() == values.tolist()
