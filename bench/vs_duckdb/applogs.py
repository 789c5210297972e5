"""applogs side by side with DuckDB: the processor vs the query a data engineer would write.

The input is an nginx "combined" access log with `$request_time` (what `make_input` writes:
tens of thousands of clients, a few hundred paths with query strings, browsers and bots, a
planted 0.2% of broken lines). The DuckDB query reads the same file as one text column,
splits it with `regexp_extract` (the Combined Log Format pattern), skips the lines that do
not match and writes the same per-minute, per-status, per-method and per-path aggregates
as Parquet, bots told from humans with the same CrawlerDetect patterns once per distinct
user agent. Each side runs in a fresh process (its own peak RSS), alternated and repeated.

    .venv/bin/python bench/vs_duckdb/applogs.py [FILE] [--size-gib 0.5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from s3worker.samples.applogs import HUMANS as SAMPLE_HUMANS

KIND = "applogs"
GIB = 1 << 30
BLOCK_LINES = 100_000
REQUESTS_PER_SECOND = 2_000  # a busy site: ~120k requests a minute
PATHS = [
    "/",
    "/login",
    "/logout",
    "/cart",
    "/checkout",
    "/search",
    "/health",
    *[f"/api/v1/items/{i}" for i in range(200)],
    *[f"/static/{name}.{ext}" for name in ("app", "vendor", "main") for ext in ("js", "css")],
    *[f"/products/{i}" for i in range(300)],
]
HUMANS = [
    *SAMPLE_HUMANS,
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.71 Mobile Safari/537.36",
    *[
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
        for v in range(100, 128)
    ],
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "-",
]
STATUSES = (["200", "201", "204", "301", "304", "400", "404", "500", "502", "503"],
            [0.74, 0.03, 0.02, 0.03, 0.06, 0.02, 0.06, 0.02, 0.01, 0.01])  # fmt: skip
METHODS = (["GET", "POST", "PUT", "DELETE", "HEAD"], [0.8, 0.12, 0.03, 0.02, 0.03])
REFERERS = ["-", "https://www.example.com/", "https://www.google.com/", "https://t.co/x"]
BROKEN_SHARE = 0.002


def make_input(path: Path, size_bytes: int, seed: int = 7) -> Path:
    """An nginx combined log (with `$request_time`) of at least `size_bytes`, written in
    blocks of BLOCK_LINES lines (about 18 MB: the last block may overshoot by that)."""
    rng = np.random.default_rng(seed)
    written, first = 0, 0
    with path.open("wb") as f:
        while written < size_bytes:
            block = _block(rng, first, BLOCK_LINES)
            f.write(block)
            written += len(block)
            first += BLOCK_LINES
    return path


def _block(rng: np.random.Generator, first: int, n: int) -> bytes:
    seconds = (first + np.arange(n)) // REQUESTS_PER_SECOND
    stamps = np.datetime64("2024-06-01T00:00:00", "s") + seconds
    times = pc.strftime(pa.array(stamps), format="%d/%b/%Y:%H:%M:%S +0000")
    octets = rng.integers(0, 256, (n, 2)).astype(str)
    clients = pc.binary_join_element_wise("10.1", octets[:, 0], octets[:, 1], ".")
    bot = rng.random(n) < 0.2
    agent = np.where(bot, rng.choice(BOTS, n), rng.choice(HUMANS, n))
    path = np.array(PATHS)[np.minimum(rng.zipf(1.3, n) - 1, len(PATHS) - 1)]
    query = np.where(rng.random(n) < 0.3, "?q=" + rng.integers(0, 1000, n).astype(str), "")
    request = pc.binary_join_element_wise(
        rng.choice(METHODS[0], n, p=METHODS[1]), pc.binary_join_element_wise(path, query, ""),
        "HTTP/1.1", " ",
    )  # fmt: skip
    rtime = pc.round(pa.array(rng.lognormal(-3.0, 1.0, n)), 3).cast(pa.string())
    parts: list[Any] = [
        clients, " - - [", times, '] "', request, '" ',
        rng.choice(STATUSES[0], n, p=STATUSES[1]), " ", rng.integers(0, 50_000, n).astype(str),
        ' "', rng.choice(REFERERS, n), '" "', agent, '" ', rtime,
    ]  # fmt: skip
    lines = pc.binary_join_element_wise(*parts, "")
    broken = rng.random(n) < BROKEN_SHARE
    lines = pc.if_else(pa.array(broken), pc.utf8_slice_codeunits(lines, 0, 40), lines)
    return ("\n".join(lines.to_pylist()) + "\n").encode()


# --- the DuckDB side ---------------------------------------------------------------------

# What a data engineer writes for this log_format: the request split into method and path
# (query string dropped), the status, the user agent and `$request_time` (seconds).
DUCK_PATTERN = (
    r'^(\S+) \S+ \S+ \[([^\]]+)\] "([A-Za-z]+) ([^ "?#]*)[^"]*" (\d{3}) \S+ '
    r'"[^"]*" "([^"]*)"(?: (\d+(?:\.\d+)?))?'
)
DUCK_FIELDS = ["client", "time", "method", "path", "status", "agent", "rtime"]


def duckdb_query(src: Path, out: Path) -> int:
    """The same four tables as the processor, from `src`, as Parquet in `out`; the requests."""
    import duckdb
    from s3worker.processors.applogs.agents import bot_patterns

    exclusions, crawlers = bot_patterns()
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(
        f"""CREATE TEMP TABLE req AS
        WITH parsed AS (
          SELECT regexp_extract(line, $pattern, {DUCK_FIELDS!r}) AS f
          FROM read_csv($src, columns = {{'line': 'VARCHAR'}}, delim = '\x1f', quote = '',
                        escape = '', header = false, auto_detect = false))
        SELECT date_trunc('minute', try_strptime(f.time, '%d/%b/%Y:%H:%M:%S %z')) AS minute,
               CAST(f.status AS INTEGER) AS status, f.method, f.path, f.client, f.agent,
               TRY_CAST(f.rtime AS DOUBLE) * 1000 AS latency_ms
        FROM parsed WHERE f.client <> '' AND minute IS NOT NULL""",
        {"pattern": DUCK_PATTERN, "src": str(src)},
    )
    con.execute(
        """CREATE TEMP TABLE agents AS
        SELECT agent, agent NOT IN ('', '-') AND trim(regexp_replace(agent, $ex, '', 'g')) <> ''
               AND regexp_matches(trim(regexp_replace(agent, $ex, '', 'g')), $bots, 'i') AS bot
        FROM (SELECT DISTINCT agent FROM req)""",
        {"ex": exclusions, "bots": crawlers},
    )
    queries = {
        "per_minute": """SELECT minute, count(*) AS requests,
              count(*) FILTER (status BETWEEN 200 AND 299) AS status_2xx,
              count(*) FILTER (status BETWEEN 300 AND 399) AS status_3xx,
              count(*) FILTER (status BETWEEN 400 AND 499) AS status_4xx,
              count(*) FILTER (status >= 500) AS status_5xx,
              count(*) FILTER (status >= 500) / count(*) AS error_rate,
              approx_quantile(latency_ms, 0.5) AS p50_ms,
              approx_quantile(latency_ms, 0.95) AS p95_ms,
              approx_quantile(latency_ms, 0.99) AS p99_ms,
              count(DISTINCT client) AS unique_clients,
              count(*) FILTER (bot) AS bot_requests
            FROM req JOIN agents USING (agent) GROUP BY minute ORDER BY minute""",
        "status_codes": """SELECT minute, status, count(*) AS requests FROM req
            GROUP BY minute, status ORDER BY minute, status""",
        "methods": """SELECT upper(method) AS method, count(*) AS requests,
              count(*) FILTER (status >= 500) AS errors, errors / requests AS error_rate
            FROM req GROUP BY 1 ORDER BY requests DESC""",
        "top_paths": """SELECT row_number() OVER (ORDER BY requests DESC, errors DESC) AS rank,
              * FROM (SELECT path, count(*) AS requests,
                        count(*) FILTER (status >= 500) AS errors, errors / requests AS error_rate
                      FROM req GROUP BY path ORDER BY requests DESC, errors DESC LIMIT 100)""",
    }
    for name, sql in queries.items():
        con.execute(f"COPY ({sql}) TO '{out / name}.parquet' (FORMAT parquet)")
    (requests,) = con.execute("SELECT count(*) FROM req").fetchone() or (0,)
    con.close()
    return int(requests)


# --- side by side ----------------------------------------------------------------------

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
side, src, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
if side == "processor":
    from s3worker.processors.base import JobContext, execute
    from s3worker.processors.registry import registry
    ctx = JobContext(key=src.name, size=src.stat().st_size)
    requests = execute(registry.get("applogs"), src, out, ctx).summary["requests"]
elif side == "duckdb":
    sys.path.insert(0, sys.argv[4])
    from applogs import duckdb_query
    requests = duckdb_query(src, out)
else:
    import pandas as pd
    requests = len(pd.read_csv(src, engine="pyarrow", on_bad_lines="skip"))
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss": usage.ru_maxrss * 1024, "requests": requests}))
"""
SIDES = ("processor", "duckdb")


def run_side(side: str, path: Path, out: Path) -> dict[str, float]:
    """One side in a fresh process: its wall and CPU seconds, its own peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, side, str(path), str(out), str(Path(__file__).parent)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(
    path: Path, repeat: int = 3, floor: bool = False, repeats: int | None = None
) -> dict[str, Any]:
    """Processor and DuckDB query alternated (A B A B ...), `repeat` times each; medians.

    `ratio` is processor seconds / DuckDB seconds (at or under 1.0: the processor is at or
    ahead); `peak_rss` is the processor's. With `floor`, pandas' pyarrow CSV read of the
    same bytes is alternated in too and `floor_ratio` (read seconds / processor seconds)
    reported. `repeats`: bench/bench_vs_duckdb.py's name for `repeat`."""
    repeat = repeats or repeat
    sides = (*SIDES, "floor") if floor else SIDES
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="s3worker-vs-duckdb-") as tmp:
        run_side("floor", path, Path(tmp))  # warms the page cache for every side
        for i in range(repeat):
            for side in sides:
                runs[side].append(run_side(side, path, Path(tmp) / f"{side}-{i}"))
    counts = {side: {r["requests"] for r in rs} for side, rs in runs.items() if side != "floor"}
    med = {side: _medians(rs) for side, rs in runs.items()}
    out: dict[str, Any] = {
        "kind": KIND,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "processor_s": round(med["processor"]["seconds"], 2),
        "duckdb_s": round(med["duckdb"]["seconds"], 2),
        "ratio": round(med["processor"]["seconds"] / med["duckdb"]["seconds"], 2),
        "peak_rss": int(med["processor"]["peak_rss"]),
        "duckdb_peak_rss": int(med["duckdb"]["peak_rss"]),
        "processor_cpu_s": round(med["processor"]["cpu_s"], 2),
        "duckdb_cpu_s": round(med["duckdb"]["cpu_s"], 2),
        "requests": {side: sorted(c) for side, c in counts.items()},
        "repeat": repeat,
    }
    if floor:
        out["floor_s"] = round(med["floor"]["seconds"], 2)
        out["floor_ratio"] = round(med["floor"]["seconds"] / med["processor"]["seconds"], 2)
    return out


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", type=Path, help="a log (default: one made here)")
    parser.add_argument("--size-gib", type=float, default=0.5, help="size of the made log")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--floor", action="store_true", help="also pandas' pyarrow read")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s3worker-applogs-") as tmp:
        path = args.file
        if path is None:
            started = time.perf_counter()
            path = make_input(Path(tmp) / "access.log", int(args.size_gib * GIB))
            took = time.perf_counter() - started
            print(f"made {path.stat().st_size / 1e6:.0f} MB in {took:.0f} s", file=sys.stderr)
        print(json.dumps(measure(path, args.repeat, args.floor)), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
