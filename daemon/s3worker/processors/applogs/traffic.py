"""Request aggregates that merge across chunks, and the output tables built from them.

Latency percentiles come from mergeable log-scale histograms (bins 2% wide), so they are
exact to within 2% whatever the chunk size. Unique clients are counted from the distinct
(minute, client) pairs, each client held as a 64-bit hash of its address (exact but for
hash collisions: about one in 10^7 at 10^6 distinct addresses), which is what memory grows
with; every other aggregate is keyed by minute, status code, method or path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.applogs.agents import BOT, HUMAN, UNKNOWN
from s3worker.processors.applogs.tally import (
    BIN_BASE,
    BIN_RATIO,
    NO_CLIENT,
    Requests,
    Tally,
    distinct,
    tally,
)

QUANTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}
TOP_N = 100
CLASSES = ("2xx", "3xx", "4xx", "5xx")
MIN = pa.timestamp("ms", "UTC")
MINUTE_SCHEMA = pa.schema(
    [
        ("minute", MIN),
        ("requests", pa.int64()),
        *[(f"status_{c}", pa.int64()) for c in CLASSES],
        ("error_rate", pa.float64()),
        ("p50_ms", pa.float64()),
        ("p95_ms", pa.float64()),
        ("p99_ms", pa.float64()),
        ("unique_clients", pa.int64()),
        ("bot_requests", pa.int64()),
    ]
)
STATUS_SCHEMA = pa.schema([("minute", MIN), ("status", pa.int64()), ("requests", pa.int64())])
METHOD_SCHEMA = pa.schema(
    [
        ("method", pa.string()),
        ("requests", pa.int64()),
        ("errors", pa.int64()),
        ("error_rate", pa.float64()),
    ]
)
PATH_SCHEMA = pa.schema(
    [
        ("rank", pa.int64()),
        ("path", pa.string()),
        ("requests", pa.int64()),
        ("errors", pa.int64()),
        ("error_rate", pa.float64()),
    ]
)


class Traffic:
    """Partial aggregates of every chunk seen so far, merged when the file is done."""

    def __init__(self) -> None:
        self.codes: list[pd.Series] = []
        self.bots: list[pd.Series] = []
        self.hist: list[pd.Series] = []
        self.paths: list[pd.DataFrame] = []
        self.methods: list[pd.DataFrame] = []
        # Per minute (ns since the epoch): its distinct client hashes, sorted; and all of them.
        self.clients: dict[int, npt.NDArray[np.uint64]] = {}
        self.all_clients = np.zeros(0, dtype=np.uint64)
        self._new_clients: list[npt.NDArray[np.uint64]] = []  # merged once they outgrow it
        self.agents = dict.fromkeys((BOT, HUMAN, UNKNOWN), 0)

    def add(self, r: pd.DataFrame) -> None:
        """`r`: minute, status, method, path, client (client_ids), latency_ms, agent."""
        if len(r):
            self.merge(tally(requests_of(r)))

    def merge(self, t: Tally) -> None:
        """A slice's counts (tally.tally), added to the file's."""
        if not len(t.codes):
            return
        self.codes.append(t.codes)
        self.bots.append(t.bots)
        for kind, n in t.agents.items():
            self.agents[kind] += n
        if t.hist is not None:
            self.hist.append(t.hist)
        self.paths.append(t.paths)
        self.methods.append(t.methods)
        # Merged minute by minute: memory is the distinct pairs (8 bytes each) and a merge
        # touches one minute's set, not every pair seen (a file's pairs in one frame, deduped
        # whole, took 0.4 GB more at 2 GiB of log).
        for key, part in t.clients.items():
            seen = self.clients.get(key)
            self.clients[key] = part if seen is None else distinct(np.concatenate([seen, part]))
        self._new_clients.append(t.all_clients)
        if sum(map(len, self._new_clients)) > max(len(self.all_clients), 1 << 16):
            self.unique_clients()  # amortised: each merge at least doubles what is merged

    def unique_clients(self) -> int:
        """Distinct clients over the whole file."""
        if self._new_clients:
            self.all_clients = distinct(np.concatenate([self.all_clients, *self._new_clients]))
            self._new_clients = []
        return len(self.all_clients)

    def clients_per_minute(self) -> pd.Series:
        """Distinct clients of each minute, by minute (naive UTC)."""
        index = pd.DatetimeIndex(np.array(list(self.clients), dtype="datetime64[ns]"))
        counts = np.array([len(v) for v in self.clients.values()], dtype=np.int64)
        return pd.Series(counts, index=index)


def requests_of(r: pd.DataFrame) -> Requests:
    """A frame of requests (Traffic.add) as the arrays a Tally counts."""

    def coded(column: str) -> tuple[pa.Array, npt.NDArray[np.int64]]:
        codes, names = pd.factorize(r[column])
        return pa.array(list(names), pa.string()), codes.astype(np.int64)

    return Requests(
        minute=r["minute"].to_numpy(dtype="datetime64[ns]"),
        status=r["status"].to_numpy(dtype=np.int64),
        method=coded("method"),
        path=coded("path"),
        client=r["client"].to_numpy(dtype=np.uint64),
        latency_ms=r["latency_ms"].to_numpy(dtype=np.float64),
        agent=r["agent"].to_numpy(dtype=np.int8),
    )


def status_codes(traffic: Traffic) -> pd.DataFrame:
    """Requests per (minute, status code)."""
    if not traffic.codes:
        return pd.DataFrame(columns=STATUS_SCHEMA.names)
    codes = pd.concat(traffic.codes).groupby(level=[0, 1]).sum()
    out = codes.rename("requests").reset_index()
    return out.assign(minute=pd.to_datetime(out["minute"], utc=True))


def per_minute(traffic: Traffic, codes: pd.DataFrame) -> pd.DataFrame:
    if not len(codes):
        return pd.DataFrame(columns=MINUTE_SCHEMA.names)
    by_class = codes.assign(cls=codes["status"] // 100).pivot_table(
        index="minute", columns="cls", values="requests", aggfunc="sum", fill_value=0
    )
    m = pd.DataFrame(index=by_class.index)
    m["requests"] = codes.groupby("minute")["requests"].sum()
    for c in CLASSES:
        m[f"status_{c}"] = by_class.get(int(c[0]), 0)
    m["error_rate"] = m["status_5xx"] / m["requests"]
    naive = m.index.tz_convert(None)
    for name, q in QUANTILES.items():
        m[name] = _quantile(traffic, q).reindex(naive).to_numpy()
    m["unique_clients"] = traffic.clients_per_minute().reindex(naive, fill_value=0).to_numpy()
    bots = pd.concat(traffic.bots).groupby(level=0).sum() if traffic.bots else pd.Series()
    m["bot_requests"] = bots.reindex(naive, fill_value=0).to_numpy()
    return m.rename_axis("minute").reset_index()


def client_ids(clients: pa.ChunkedArray) -> npt.NDArray[np.uint64]:
    """64-bit hashes of client addresses (NO_CLIENT where none), one per distinct address."""
    enc = pc.dictionary_encode(clients).combine_chunks()
    # Python's own string hash (64-bit SipHash, salted per process: the ids only have to
    # agree within one job), ten times cheaper than pandas' hash_array on these objects.
    values = enc.dictionary.to_pylist()
    distinct = np.fromiter(map(hash, values), dtype=np.int64, count=len(values))
    hashes = np.append(distinct.view(np.uint64), np.uint64(NO_CLIENT))
    codes = pc.fill_null(enc.indices, len(enc.dictionary))
    return hashes[np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)]


def _quantile(traffic: Traffic, q: float) -> pd.Series:
    if not traffic.hist:
        return pd.Series(dtype="float64")
    h = (
        pd.concat(traffic.hist)
        .groupby(level=["minute", "bin"])
        .sum()
        .sort_index()
        .reset_index(name="n")
    )
    cum = h.groupby("minute")["n"].cumsum()
    total = h.groupby("minute")["n"].transform("sum")
    first = h[cum >= q * total].groupby("minute")["bin"].first()
    return BIN_BASE * BIN_RATIO ** (first + 0.5)


def ranked(parts: list[pd.DataFrame], key: str, top: int | None = None) -> pd.DataFrame:
    """Merged (key -> requests, errors), busiest first, with the error rate (5xx share)."""
    if not parts:
        return pd.DataFrame(columns=[key, "requests", "errors", "error_rate"])
    p = pd.concat(parts).groupby(level=0).sum()
    p = p.sort_values(["requests", "errors"], ascending=False)
    p = (p.head(top) if top else p).rename_axis(key).reset_index()
    return p.assign(error_rate=p["errors"] / p["requests"])


def top_paths(traffic: Traffic) -> pd.DataFrame:
    p = ranked(traffic.paths, "path", TOP_N)
    return p.assign(rank=np.arange(1, len(p) + 1))


def summary(
    traffic: Traffic, m: pd.DataFrame, codes: pd.DataFrame, methods: pd.DataFrame
) -> dict[str, Any]:
    requests = int(m["requests"].sum()) if len(m) else 0
    by_code = codes.groupby("status")["requests"].sum() if len(codes) else pd.Series()
    return {
        "requests": requests,
        "minutes": len(m),
        "status_classes": {c: int(m[f"status_{c}"].sum()) for c in CLASSES} if len(m) else {},
        "status_codes": {str(int(k)): int(v) for k, v in by_code.items()},
        "methods": dict(zip(methods["method"], methods["requests"].astype(int), strict=True)),
        "error_rate": round(float(m["status_5xx"].sum()) / requests, 4) if requests else None,
        "unique_clients": traffic.unique_clients(),
        "user_agents": {
            "bot": traffic.agents[BOT],
            "human": traffic.agents[HUMAN],
            "unknown": traffic.agents[UNKNOWN],
        },
        "busiest_minute": str(m.loc[m["requests"].idxmax(), "minute"]) if len(m) else None,
    }
