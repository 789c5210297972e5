"""Web server requests: Combined Log Format (with a request time) or JSON lines.

Planted: malformed lines/records (truth: record numbers). The truth also carries the
request count, the number of 5xx responses and of bot requests (Googlebot, bingbot,
curl; the rest browsers) of the valid lines, to check the figures.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from s3worker.samples.writing import Truth

PATHS = [
    "/",
    "/login",
    "/api/orders",
    "/api/items",
    "/static/app.js",
    "/health",
    "/search?q=x",
    "/cart",
]
START = pd.Timestamp("2024-06-01T12:00:00Z")
HUMANS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
]
BOT_SHARE = 0.15


def generate(rows: int, seed: int, truth: Truth) -> Iterator[pa.Table]:
    rng = np.random.default_rng(seed)
    t = START + pd.to_timedelta(np.sort(rng.uniform(0, max(60.0, rows / 50.0), rows)), "s")
    status = rng.choice(
        [200, 201, 304, 404, 500, 503], size=rows, p=[0.8, 0.04, 0.06, 0.06, 0.03, 0.01]
    )
    bot = rng.random(rows) < BOT_SHARE
    agents = np.where(bot, rng.choice(BOTS, rows), rng.choice(HUMANS, rows))
    frame = pd.DataFrame(
        {
            "time": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "client": [f"10.0.{a}.{b}" for a, b in rng.integers(0, 256, (rows, 2)) // [8, 1]],
            "method": rng.choice(["GET", "POST"], size=rows, p=[0.85, 0.15]),
            "path": np.array(PATHS)[rng.zipf(1.6, rows).clip(1, len(PATHS)) - 1],
            "status": status.astype(str),
            "latency_ms": np.round(rng.lognormal(3.5, 0.7, rows), 3).astype(str),
            "user_agent": agents,
            "clf_time": t.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        }
    )
    bad = np.sort(rng.choice(rows, size=max(3, rows // 500), replace=False))
    valid = np.ones(rows, dtype=bool)
    valid[bad] = False
    truth.planted["malformed"] = bad.tolist()
    truth.planted["requests"] = [int(valid.sum())]
    truth.planted["status_5xx"] = [int((valid & (status >= 500)).sum())]
    truth.planted["bots"] = [int((valid & bot).sum())]
    frame.loc[bad[0::2], "status"] = "ok"
    frame.loc[bad[1::2], "time"] = "sometime"
    frame.loc[bad[1::2], "clf_time"] = "sometime"
    yield pa.Table.from_pandas(frame, preserve_index=False)


def clf_lines(block: pa.Table) -> list[str]:
    """Combined Log Format lines, Nginx style, with `$request_time` (seconds) at the end."""
    f = block.to_pandas()
    seconds = (pd.to_numeric(f["latency_ms"]) / 1000).map("{:.3f}".format)
    lines: list[str] = (
        f["client"]
        + " - - ["
        + f["clf_time"]
        + '] "'
        + f["method"]
        + " "
        + f["path"]
        + ' HTTP/1.1" '
        + f["status"]
        + ' 512 "-" "'
        + f["user_agent"]
        + '" '
        + seconds
    ).tolist()
    return lines


def broken_lines(fmt: str) -> list[str]:
    return ["{not json"] if fmt == "jsonl" else []
