"""The applogs processor's pandas side: requests in, per-minute metrics and top paths out.

Latency percentiles come from mergeable log-scale histograms (bins 2% wide), so they are
exact to within 2% whatever the chunk size. Unique clients are counted exactly from the
distinct (minute, client) pairs, which is what memory grows with.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.errors import BadDataError
from s3worker.processors.applogs import ALIASES
from s3worker.processors.base import JobContext, ProcessResult
from s3worker.processors.sniffing import CLF_PATTERN, norm
from s3worker.processors.tabular.columns import (
    missing,
    rejects_of,
    resolve,
    strings,
    to_float,
    to_time,
)
from s3worker.processors.tabular.output import RejectSink, write_frame
from s3worker.processors.tabular.reading import (
    Chunk,
    Reject,
    input_encoding,
    input_format,
    iter_chunks,
    iter_lines,
    undecodable,
)

BIN_BASE, BIN_RATIO = 0.01, 1.02  # ms
QUANTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}
TOP_N = 100
MS_PER_UNIT = {"us": 0.001, "s": 1000.0}
SECOND_FIELDS = {"requesttime", "upstreamresponsetime"}  # nginx writes these in seconds
MIN = pa.timestamp("ms", "UTC")
MINUTE_SCHEMA = pa.schema(
    [
        ("minute", MIN),
        ("requests", pa.int64()),
        ("status_2xx", pa.int64()),
        ("status_3xx", pa.int64()),
        ("status_4xx", pa.int64()),
        ("status_5xx", pa.int64()),
        ("error_rate", pa.float64()),
        ("p50_ms", pa.float64()),
        ("p95_ms", pa.float64()),
        ("p99_ms", pa.float64()),
        ("unique_clients", pa.int64()),
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
    """Per-minute counts, latency histograms, path counts and distinct client pairs."""

    def __init__(self) -> None:
        self.minutes: list[pd.DataFrame] = []
        self.hist: list[pd.Series] = []
        self.paths: list[pd.DataFrame] = []
        self.clients: list[pd.DataFrame] = []

    def add(self, r: pd.DataFrame) -> None:
        cls = (r["status"] // 100).clip(1, 5)
        counts = pd.crosstab(r["minute"], cls).reindex(columns=[2, 3, 4, 5], fill_value=0)
        counts.columns = [f"status_{c}xx" for c in counts.columns]
        counts["requests"] = r.groupby("minute").size()
        self.minutes.append(counts)
        lat = r.dropna(subset=["latency_ms"])
        if len(lat):
            bins = np.floor(
                np.log(np.maximum(lat["latency_ms"], BIN_BASE) / BIN_BASE) / np.log(BIN_RATIO)
            )
            self.hist.append(lat.assign(bin=bins.astype("int64")).groupby(["minute", "bin"]).size())
        self.paths.append(
            r.assign(errors=r["status"] >= 500)
            .groupby("path")
            .agg(requests=("status", "size"), errors=("errors", "sum"))
        )
        self.clients.append(r[["minute", "client"]].dropna().drop_duplicates())
        if len(self.clients) > 16:  # keep the partial lists short
            self.clients = [pd.concat(self.clients).drop_duplicates()]


def requests_from_lines(
    start: int, lines: list[str], bad: Sequence[int] = (), encoding: str = "utf-8"
) -> tuple[pd.DataFrame, list[Reject]]:
    """Lines of Combined Log Format; those at `bad` held undecodable bytes and are rejected."""
    arr = pa.array(lines, pa.string())
    parts = pc.extract_regex(arr, CLF_PATTERN)
    unparsed = np.asarray(parts.is_null().to_numpy(zero_copy_only=False))
    undecoded = np.zeros(len(lines), dtype=bool)
    undecoded[list(bad)] = True
    request = pc.extract_regex(parts.field("request"), r"^(?P<method>\S+) (?P<path>\S+)")
    rtime = parts.field("rtime")
    latency = to_float(pa.chunked_array([rtime]))
    with_dot = np.asarray(
        pc.fill_null(pc.match_substring(rtime, "."), False).to_numpy(zero_copy_only=False)
    )
    latency = np.where(with_dot, latency * 1000.0, latency / 1000.0)  # $request_time s, %D us
    fields = {
        "time": parts.field("time"),
        "status": parts.field("status"),
        "client": parts.field("client"),
        "path": request.field("path"),
        "line": arr,
    }
    table = pa.table(fields)
    unread = (unparsed | undecoded, undecodable(encoding), undecoded)
    return _requests(Chunk(table, start), {c: c for c in fields}, latency, unread)


def _requests(
    chunk: Chunk,
    cols: dict[str, str],
    latency: np.ndarray | None = None,
    unread: tuple[np.ndarray, str, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, list[Reject]]:
    t = chunk.table
    time_raw, status_raw = strings(t, cols.get("time")), strings(t, cols.get("status"))
    path = strings(t, cols.get("path"))
    ts, status = to_time(time_raw), to_float(status_raw)
    if latency is None:
        latency = to_float(strings(t, cols.get("latency"))) * _latency_scale(cols.get("latency"))
    problems = {
        "time: missing": missing(time_raw),
        "time: unparseable": np.isnat(ts) & ~missing(time_raw),
        "status: missing": missing(status_raw),
        "status: not an HTTP status": ~missing(status_raw) & ~((status >= 100) & (status < 600)),
        "path: missing": missing(path),
    }
    if unread is not None:  # a line not read (bad bytes, or not the format) has one reason only
        unparsed, reason, undecoded = unread
        problems = {k: v & ~unparsed for k, v in problems.items()}
        problems["not a Combined Log Format line"] = unparsed & ~undecoded
        problems[reason] = undecoded
    keep, rejects = rejects_of(chunk, problems)
    clean_path = pc.replace_substring_regex(path, r"[?#].*$", "")
    frame = pd.DataFrame(
        {
            "minute": ts[keep].astype("datetime64[m]").astype("datetime64[ns]"),
            "status": status[keep].astype("int64"),
            "path": clean_path.filter(pa.array(keep)).to_numpy(zero_copy_only=False),
            "client": strings(t, cols.get("client"))
            .filter(pa.array(keep))
            .to_numpy(zero_copy_only=False),
            "latency_ms": latency[keep],
        }
    )
    return frame, rejects


def _latency_scale(column: str | None) -> float:
    name = norm(column or "")
    if name in SECOND_FIELDS:
        return MS_PER_UNIT["s"]
    return MS_PER_UNIT["us"] if name.endswith("us") else 1.0


def run(src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    traffic, rejected = Traffic(), RejectSink(out_dir)
    for frame, rejects in _frames(src, ctx.chunk_rows):
        rejected.add(rejects)
        traffic.add(frame)
    rows = rejected.close()
    per_minute, top = _per_minute(traffic), _top_paths(traffic)
    rows |= write_frame(out_dir, "per_minute.parquet", per_minute, MINUTE_SCHEMA)
    rows |= write_frame(out_dir, "top_paths.parquet", top, PATH_SCHEMA)
    return ProcessResult(
        summary={
            "encoding": input_encoding(src),
            **_summary(traffic, per_minute, top, rows, rejected.rows),
        },
        rows=rows,
    )


def _frames(src: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, list[Reject]]]:
    if input_format(src) == "clf":
        encoding = input_encoding(src)
        for start, lines, bad in iter_lines(src, chunk_rows):
            yield requests_from_lines(start, lines, bad, encoding)
        return
    cols: dict[str, str] | None = None
    for chunk in iter_chunks(src, chunk_rows):
        if cols is None:
            cols = resolve(chunk.table, ALIASES)
            if not {"time", "status", "path"} <= cols.keys():
                raise BadDataError(
                    f"logs need time, status and path fields; found {chunk.table.column_names}"
                )
        yield _requests(chunk, cols)


def _per_minute(traffic: Traffic) -> pd.DataFrame:
    if not traffic.minutes:
        return pd.DataFrame(columns=MINUTE_SCHEMA.names)
    m = pd.concat(traffic.minutes).groupby(level=0).sum()
    m["error_rate"] = m["status_5xx"] / m["requests"]
    for name, q in QUANTILES.items():
        m[name] = _quantile(traffic, q).reindex(m.index)
    clients = (
        pd.concat(traffic.clients).drop_duplicates()
        if traffic.clients
        else pd.DataFrame(columns=["minute"])
    )
    m["unique_clients"] = clients.groupby("minute").size().reindex(m.index, fill_value=0)
    return (
        m.rename_axis("minute")
        .reset_index()
        .assign(minute=lambda d: pd.to_datetime(d["minute"], utc=True))
    )


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


def _top_paths(traffic: Traffic) -> pd.DataFrame:
    if not traffic.paths:
        return pd.DataFrame(columns=PATH_SCHEMA.names)
    p = pd.concat(traffic.paths).groupby(level=0).sum()
    p = (
        p.sort_values(["requests", "errors"], ascending=False)
        .head(TOP_N)
        .rename_axis("path")
        .reset_index()
    )
    return p.assign(rank=np.arange(1, len(p) + 1), error_rate=p["errors"] / p["requests"])


def _summary(
    traffic: Traffic, m: pd.DataFrame, top: pd.DataFrame, rows: dict[str, int], rejected: int
) -> dict[str, Any]:
    requests = int(m["requests"].sum()) if len(m) else 0
    clients = pd.concat(traffic.clients)["client"].nunique() if traffic.clients else 0
    return {
        "requests": requests,
        "rejected_rows": rejected,
        "minutes": len(m),
        "status_classes": {c: int(m[f"status_{c}"].sum()) for c in ("2xx", "3xx", "4xx", "5xx")}
        if len(m)
        else {},
        "error_rate": round(float(m["status_5xx"].sum()) / requests, 4) if requests else None,
        "unique_clients": int(clients),
        "busiest_minute": str(m.loc[m["requests"].idxmax(), "minute"]) if len(m) else None,
        "top_paths": top.head(5)["path"].tolist(),
        "outputs": rows,
    }
